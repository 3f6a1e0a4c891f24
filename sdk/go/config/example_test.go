package config_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/configd/configd/sdk/go/config"
)

// The examples log nothing; a service would keep the default logger.
var quiet = config.WithLogger(slog.New(slog.DiscardHandler))

func ExampleNew() {
	addr, _, stop := startExampleConfigd("app/db/timeout", "3s", "app/db/hosts", "db1, db2")
	defer stop()

	c, err := config.New(context.Background(), quiet,
		config.WithAddress(addr), // or CONFIGD_ADDR
		config.WithPrefix("app")) // paths are relative to app/
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	fmt.Println(c.Get("db", "timeout").Duration(time.Second))
	fmt.Println(c.Get("db/hosts").StringSlice(nil))
	fmt.Println(c.Get("db", "pool", "size").Int(10)) // missing: the default
	// Output:
	// 3s
	// [db1 db2]
	// 10
}

func ExampleClient_Watch() {
	addr, set, stop := startExampleConfigd("key1", "v1")
	defer stop()
	c, err := config.New(context.Background(), quiet, config.WithAddress(addr))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	w, err := c.Watch("key1")
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()

	set("key1", "v2") // configctl set key1 v2, elsewhere
	set("key1", "v3")
	for range 2 {
		u, err := w.NextUpdate()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s by %s at rev %d\n", u.Value.String(""), u.Actor, u.Rev)
	}
	// Output:
	// v2 by alice at rev 2
	// v3 by alice at rev 3
}

func ExampleValue_Scan() {
	addr, _, stop := startExampleConfigd(
		"app/name", "shop",
		"app/db/host", "db1",
		"app/db/port", "5432", // text, scanned into an int
		"app/db/timeout", "5s", // text, scanned into a time.Duration
		"app/limits", `{"rps": 100, "burst": 20}`, // JSON, embedded as JSON
	)
	defer stop()
	c, err := config.New(context.Background(), quiet, config.WithAddress(addr))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var cfg struct {
		Name string
		DB   struct {
			Host    string
			Port    int
			Timeout time.Duration
		}
		Limits map[string]int
	}
	if err := c.Get("app").Scan(&cfg); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s:%d %v %v\n", cfg.Name, cfg.DB.Host, cfg.DB.Port, cfg.DB.Timeout, cfg.Limits)
	// Output: shop db1:5432 5s map[burst:20 rps:100]
}
