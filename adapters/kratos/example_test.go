package kratos_test

import (
	"context"
	"log"
	"time"

	"github.com/configd/configd/adapters/kratos"
	"github.com/configd/configd/sdk/go/config"
	kconfig "github.com/go-kratos/kratos/v2/config"
)

// A Kratos program reading its configuration from configd's app/ prefix
// (app/server.json holding {"server": {"addr": ":8000", "timeout": "1s"}},
// app/greeting holding text) and hearing of a change as configd pushes it.
// TestKratosProgram runs it against a real configd.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := kratos.New(ctx, kratos.WithPrefix("app"),
		kratos.WithClientOptions(config.WithAddress("127.0.0.1:7700"))) // and config.WithToken, config.WithTLS
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
	log.Println(bc.Server.Addr, bc.Server.Timeout, greeting)

	if err := c.Watch("server.timeout", func(key string, v kconfig.Value) {
		timeout, _ := v.String()
		log.Println(key, "is now", timeout)
	}); err != nil {
		log.Fatal(err)
	}
	select {} // serve
}
