package configdsource_test

import (
	"log"

	"github.com/configd/configd/adapters/gomicro"
	"github.com/configd/configd/sdk/go/config"
	microconfig "go-micro.dev/v4/config"
)

// A go-micro program reading its configuration from configd's
// micro/config/ keys (micro/config/key1 holding text) and hearing of a
// change as configd pushes it. TestGoMicroProgram runs it against a real
// configd.
func Example() {
	src := configdsource.NewSource(configdsource.WithPrefix("/micro/config"), configdsource.StripPrefix(true),
		configdsource.WithClientOptions(config.WithAddress("127.0.0.1:7700"))) // and config.WithToken, config.WithTLS
	defer src.(*configdsource.Source).Close()

	if err := microconfig.Load(src); err != nil { // go-micro's config package
		log.Fatal(err)
	}
	log.Println("key1 is", microconfig.Get("key1").String(""))

	w, err := microconfig.Watch("key1")
	if err != nil {
		log.Fatal(err)
	}
	for {
		v, err := w.Next()
		if err != nil {
			log.Fatal(err)
		}
		log.Println("key1 is now", v.String(""))
	}
}
