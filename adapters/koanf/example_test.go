package koanf_test

import (
	"context"
	"log"
	"time"

	"github.com/configd/configd/adapters/koanf"
	"github.com/configd/configd/sdk/go/config"
	kv2 "github.com/knadh/koanf/v2"
)

// A koanf program reading configd's app/ prefix (app/db/host holding text,
// app/limits holding {"rps": 100}) and reloading when configd pushes a
// change. TestKoanfProgram runs it against a real configd.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := koanf.New(ctx, koanf.WithPrefix("app"),
		koanf.WithClientOptions(config.WithAddress("127.0.0.1:7700"))) // and config.WithToken, config.WithTLS
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	k := kv2.New(".")
	if err := k.Load(p, nil); err != nil {
		log.Fatal(err)
	}
	log.Println(k.String("db.host"), k.Int("limits.rps"))

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
		log.Println("rps is now", fresh.Int("limits.rps"))
	})
	select {} // serve
}
