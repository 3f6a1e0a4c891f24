package kratos_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/configd/configd/adapters/internal/configdtest"
	"github.com/configd/configd/adapters/kratos"
	"github.com/configd/configd/sdk/go/config"
	kconfig "github.com/go-kratos/kratos/v2/config"
)

// A Kratos program reading its configuration from configd's app/ prefix and
// hearing of a change as configd pushes it.
func Example() {
	// A configd for the example, with two keys under app/.
	d, err := configdtest.Start(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer d.Stop()
	d.Put("app/server.json", "application/json", `{"server": {"addr": ":8000", "timeout": "1s"}}`)
	d.Put("app/greeting", "text/plain", "hello")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := kratos.New(ctx, kratos.WithPrefix("app"),
		kratos.WithClientOptions(config.WithAddress(d.Addr))) // and config.WithToken, config.WithTLS
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()

	c := kconfig.New(kconfig.WithSource(src))
	defer c.Close()
	if err := c.Load(); err != nil {
		log.Fatal(err)
	}
	var bc struct {
		Server struct {
			Addr    string `json:"addr"`
			Timeout string `json:"timeout"`
		} `json:"server"`
	}
	if err := c.Scan(&bc); err != nil {
		log.Fatal(err)
	}
	greeting, _ := c.Value("greeting").String()
	fmt.Println(bc.Server.Addr, bc.Server.Timeout, greeting)

	changed := make(chan string, 1)
	if err := c.Watch("server.timeout", func(key string, v kconfig.Value) {
		s, _ := v.String()
		changed <- key + " = " + s
	}); err != nil {
		log.Fatal(err)
	}
	d.Put("app/server.json", "application/json", `{"server": {"addr": ":8000", "timeout": "5s"}}`)
	fmt.Println(<-changed)
	// Output:
	// :8000 1s hello
	// server.timeout = 5s
}
