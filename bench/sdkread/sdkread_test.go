// Package sdkread compares the config SDK's read path with koanf's and
// viper's in-memory Get for the same key (issue 8, workload 6):
//
//	cd bench && go test -run '^$' -bench . -benchmem ./sdkread
package sdkread

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/viper"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/sdk/go/config"
	"github.com/configd/configd/server/grpcapi"
)

// configdClient starts an in-process configd (store, hub, gRPC API) holding
// app/db/timeout = 5s and returns an SDK client with its local copy.
func configdClient(b *testing.B) *config.Client {
	b.Helper()
	ctx := context.Background()
	cd := configdtest.Core(b)
	st, hub := cd.Store, cd.Hub
	if _, err := st.Commit(ctx, audit.Txn{Actor: "bench", Ops: []audit.Op{audit.Put("app/db/timeout", []byte("5s"), "")}}); err != nil {
		b.Fatal(err)
	}
	gs := grpcapi.New(st, hub)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go gs.Serve(lis)
	// A gRPC-only configd: the read path is the same whatever the client
	// watches over.
	c, err := config.New(ctx, config.WithAddress(lis.Addr().String()), config.WithGRPC(),
		config.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), config.WithoutReports())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(); gs.Stop() })
	if c.Get("app", "db", "timeout").Duration(0) != 5*time.Second {
		b.Fatal("the SDK's copy lacks app/db/timeout")
	}
	return c
}

func BenchmarkGetDuration(b *testing.B) {
	b.Run("configd-sdk", func(b *testing.B) {
		c := configdClient(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if c.Get("app", "db", "timeout").Duration(0) != 5*time.Second {
				b.Fatal("wrong value")
			}
		}
	})
	b.Run("koanf", func(b *testing.B) {
		k := koanf.New(".")
		if err := k.Load(confmap.Provider(map[string]any{"app.db.timeout": "5s"}, "."), nil); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if k.Duration("app.db.timeout") != 5*time.Second {
				b.Fatal("wrong value")
			}
		}
	})
	b.Run("viper", func(b *testing.B) {
		v := viper.New()
		v.Set("app.db.timeout", "5s")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if v.GetDuration("app.db.timeout") != 5*time.Second {
				b.Fatal("wrong value")
			}
		}
	})
}

func BenchmarkGetString(b *testing.B) {
	b.Run("configd-sdk", func(b *testing.B) {
		c := configdClient(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if c.Get("app/db/timeout").String("") != "5s" {
				b.Fatal("wrong value")
			}
		}
	})
	b.Run("koanf", func(b *testing.B) {
		k := koanf.New(".")
		if err := k.Load(confmap.Provider(map[string]any{"app.db.timeout": "5s"}, "."), nil); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if k.String("app.db.timeout") != "5s" {
				b.Fatal("wrong value")
			}
		}
	})
	b.Run("viper", func(b *testing.B) {
		v := viper.New()
		v.Set("app.db.timeout", "5s")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if v.GetString("app.db.timeout") != "5s" {
				b.Fatal("wrong value")
			}
		}
	})
}
