package source_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/configd/configd/source"
	"github.com/configd/configd/source/memory"
)

func text(s string) source.Value { return source.Value{Data: []byte(s), ContentType: source.TypeText} }

// What a consumer of a source does with its updates: diff each snapshot
// against the last good one, keys mounted under the source's prefix; keep
// the last good one through errors.
func Example() {
	cfg := source.Config{Name: "shared", Type: "consul", Mount: "app/"}
	mount := cfg.MountPrefix()
	src := memory.New(cfg.Name) // stands in for source.New(cfg)

	done := make(chan struct{})
	var last map[string]source.Value
	emit := func(u source.Update) {
		defer func() { done <- struct{}{} }()
		if u.Err != nil {
			fmt.Printf("source:%s degraded (%v); keeping %d keys\n", src.Name(), u.Err, len(last))
			return
		}
		for _, c := range source.Diff(last, u.Snapshot) {
			if c.Deleted {
				fmt.Printf("delete %s%s\n", mount, c.Key)
			} else {
				fmt.Printf("put %s%s = %s\n", mount, c.Key, c.Value)
			}
		}
		last = u.Snapshot
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, emit)

	src.Set(map[string]source.Value{"db/host": text("db1"), "db/port": text("5432")})
	<-done
	src.Fail(errors.New("connection refused"))
	<-done
	src.Set(map[string]source.Value{"db/host": text("db2")})
	<-done
	// Output:
	// put app/db/host = db1
	// put app/db/port = 5432
	// source:shared degraded (connection refused); keeping 2 keys
	// put app/db/host = db2
	// delete app/db/port
}
