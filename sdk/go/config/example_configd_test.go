package config_test

import (
	"context"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/core"
)

// startExampleConfigd runs a configd in the process for the examples, with
// the key, value pairs of kvs (a value starting with '{' is JSON). set
// commits a change as another process would (configctl set key value);
// stop ends it all.
func startExampleConfigd(kvs ...string) (addr string, set func(key, value string), stop func()) {
	dir, err := os.MkdirTemp("", "configd-example")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	c, err := core.Open(ctx, filepath.Join(dir, "configd.db"), core.WithStoreOptions(audit.WithLogger(quiet)))
	if err != nil {
		log.Fatal(err)
	}
	st := c.Store
	set = func(key, value string) {
		ct := ""
		if len(value) > 0 && value[0] == '{' {
			ct = "application/json"
		}
		if _, err := st.Commit(ctx, audit.Txn{Actor: "alice", Ops: []audit.Op{audit.Put(key, []byte(value), ct)}}); err != nil {
			log.Fatal(err)
		}
	}
	for i := 0; i+1 < len(kvs); i += 2 {
		set(kvs[i], kvs[i+1])
	}
	apis := server.NewAPIs(c, server.APIConfig{Logger: quiet})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	apis.Serve(lis)
	return lis.Addr().String(), set, func() {
		apis.Close()
		c.Close() // ends the watch streams
		os.RemoveAll(dir)
	}
}
