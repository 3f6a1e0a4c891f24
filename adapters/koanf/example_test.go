package koanf_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/configd/configd/adapters/internal/configdtest"
	"github.com/configd/configd/adapters/koanf"
	"github.com/configd/configd/sdk/go/config"
	kv2 "github.com/knadh/koanf/v2"
)

// A koanf program reading configd's app/ prefix and reloading when configd
// pushes a change.
func Example() {
	// A configd for the example, with two keys under app/.
	d, err := configdtest.Start(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer d.Stop()
	d.Put("app/db/host", "text/plain", "db.internal")
	d.Put("app/limits", "application/json", `{"rps": 100}`)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := koanf.New(ctx, koanf.WithPrefix("app"),
		koanf.WithClientOptions(config.WithAddress(d.Addr))) // and config.WithToken, config.WithTLS
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	k := kv2.New(".")
	if err := k.Load(p, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.String("db.host"), k.Int("limits.rps"))

	reloaded := make(chan *kv2.Koanf, 1)
	p.Watch(func(event any, err error) {
		if err != nil {
			log.Print(err)
			return
		}
		fresh := kv2.New(".")
		if err := fresh.Load(p, nil); err != nil {
			log.Print(err)
			return
		}
		reloaded <- fresh
	})
	d.Put("app/limits", "application/json", `{"rps": 500}`)
	k = <-reloaded
	fmt.Println(k.Int("limits.rps"))
	// Output:
	// db.internal 100
	// 500
}
