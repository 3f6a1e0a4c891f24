package etcdapi_test

import (
	"context"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/testserver"
)

// confd's etcdv3 backend, which reads every key with a leading '/',
// renders configd's keys when the etcd API's prefix is "/".
func TestConfdEtcdv3RendersConfigdKeysUnderTheSlashPrefix(t *testing.T) {
	e := prefixedConfigd(t, "/")
	if _, err := e.c.Store.Commit(context.Background(), audit.Txn{Actor: "t", Ops: []audit.Op{
		audit.Put("app/db/host", []byte("db1"), ""), audit.Put("app/db/port", []byte("5432"), "")}}); err != nil {
		t.Fatal(err)
	}
	got, err := testserver.ConfdOnce(t, "etcdv3", "http://"+e.Addr)
	want := "host=db1\nmissing=fallback\ngets /app/db/host=db1\ngets /app/db/port=5432\nls host\nls port\n"
	if err != nil || got != want {
		t.Fatalf("confd -onetime -backend etcdv3 rendered %q (%v), want %q", got, err, want)
	}
}
