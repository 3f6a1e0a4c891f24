package server_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server"
)

// The daemon's --etcd-api-prefix reaches its etcd API: etcd's client
// writes "/app/db/host", configd's API reads app/db/host.
func TestEtcdAPIPrefixServesKeysWithALeadingSlash(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.EtcdAPIPrefix = "/"
	d := configdtest.Run(t, cfg)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{d.Addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/app/db/host", "db1"); err != nil {
		t.Fatalf("put /app/db/host: %v", err)
	}
	resp, err := http.Get("http://" + d.Addr + "/v1/kv/app/db/host?raw=true")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "db1" {
		t.Fatalf("configd's API reads %q", b)
	}
	if got, err := cli.Get(ctx, "/app/", clientv3.WithPrefix()); err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Key) != "/app/db/host" {
		t.Fatalf("get /app/ --prefix: %v, %v", got, err)
	}
}
