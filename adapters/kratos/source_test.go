package kratos_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/adapters/internal/adaptertest"
	"github.com/configd/configd/adapters/kratos"
	"github.com/configd/configd/sdk/go/config"
	kconfig "github.com/go-kratos/kratos/v2/config"
)

func TestMain(m *testing.M) { adaptertest.Main(m) }

func newSource(t *testing.T, d *adaptertest.Daemon, opts ...kratos.Option) *kratos.Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := kratos.New(ctx, append(opts, kratos.WithClientOptions(config.WithAddress(d.Addr)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// byKey indexes KeyValues by key as "format|value".
func byKey(kvs []*kconfig.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Format + "|" + string(kv.Value)
	}
	return m
}

func TestLoadMapsKeysUnderThePrefix(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/db/host", "text/plain", "db.internal")
	d.Put(t, "app/limits", "application/json", `{"rps": 100}`)
	d.Put(t, "app/tags", "application/json", `["a","b"]`)
	d.Put(t, "app/log.yaml", "application/yaml", "level: debug\n")
	d.Put(t, "other/key", "text/plain", "not mine")

	got := byKey(mustLoad(t, newSource(t, d, kratos.WithPrefix("app"))))
	want := map[string]string{
		"db/host":  "|db.internal",
		"limits":   `json|{"rps": 100}`,
		"tags":     `|["a","b"]`, // a JSON list can't merge at the root: stored under its key
		"log.yaml": "yaml|level: debug\n",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Load = %v, want %v", got, want)
	}

	full := byKey(mustLoad(t, newSource(t, d, kratos.WithPrefix("app"), kratos.WithFullKeys())))
	if _, ok := full["app/db/host"]; !ok || len(full) != 4 {
		t.Fatalf("Load WithFullKeys = %v, want the keys with app/", full)
	}
}

func mustLoad(t *testing.T, src *kratos.Source) []*kconfig.KeyValue {
	t.Helper()
	kvs, err := src.Load()
	if err != nil {
		t.Fatal(err)
	}
	return kvs
}

// next calls w.Next in a goroutine so that a test fails instead of hanging.
func next(t *testing.T, w kconfig.Watcher) map[string]string {
	t.Helper()
	type result struct {
		kvs []*kconfig.KeyValue
		err error
	}
	ch := make(chan result, 1)
	go func() {
		kvs, err := w.Next()
		ch <- result{kvs, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return byKey(r.kvs)
	case <-time.After(10 * time.Second):
		t.Fatal("Watcher.Next returned nothing within 10s")
		return nil
	}
}

func TestWatchSeesWritesAndDeletes(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/a", "text/plain", "1")
	src := newSource(t, d, kratos.WithPrefix("app"))
	mustLoad(t, src)
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	d.Put(t, "app/b", "text/plain", "2")
	if got := next(t, w); got["b"] != "|2" || got["a"] != "|1" {
		t.Fatalf("after a write Next = %v, want a and b", got)
	}
	d.Delete(t, "app/a")
	if got := next(t, w); len(got) != 1 || got["b"] != "|2" {
		t.Fatalf("after a delete Next = %v, want b alone", got)
	}
}

func TestWatchReturnsAChangeMadeBetweenLoadAndWatch(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/a", "text/plain", "1")
	src := newSource(t, d, kratos.WithPrefix("app"))
	mustLoad(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, err := src.Client().Put(ctx, "a", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	// The source's client has the write before Watch: its SDK watcher will
	// never hear of it.
	if err := src.Client().WaitRev(ctx, rev); err != nil {
		t.Fatal(err)
	}
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if got := next(t, w); got["a"] != "|2" {
		t.Fatalf("Next = %v, want the write made before Watch", got)
	}
}

func TestStoppedWatcherEndsWithContextCanceled(t *testing.T) {
	d := adaptertest.Start(t)
	src := newSource(t, d)
	mustLoad(t, src)
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	// Kratos's watch loop retries every error but context.Canceled.
	if _, err := w.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after Stop = %v, want context.Canceled", err)
	}
}

func TestNewFailsClearlyWhenConfigdIsDown(t *testing.T) {
	addr := adaptertest.DeadAddr(t)
	ctx := context.Background()
	_, err := kratos.New(ctx, kratos.WithClientOptions(config.WithAddress(addr), config.WithTimeout(time.Second)))
	if err == nil || !strings.Contains(err.Error(), "kratos: configd source") {
		t.Fatalf("New with configd down = %v, want a configd source error", err)
	}
	t.Log(err)
}

// TestKratosProgram is Example's program against a real configd: Kratos's
// config loads the prefix, scans the JSON document merged at its root,
// reads a text key under its own key, and calls its observer when configd
// pushes a change.
func TestKratosProgram(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/server.json", "application/json", `{"server": {"addr": ":8000", "timeout": "1s"}}`)
	d.Put(t, "app/greeting", "text/plain", "hello")

	c := kconfig.New(kconfig.WithSource(newSource(t, d, kratos.WithPrefix("app"))))
	defer c.Close()
	if err := c.Load(); err != nil {
		t.Fatal(err)
	}
	var bc struct {
		Server struct {
			Addr    string `json:"addr"`
			Timeout string `json:"timeout"`
		} `json:"server"`
	}
	if err := c.Scan(&bc); err != nil {
		t.Fatal(err)
	}
	greeting, err := c.Value("greeting").String()
	if bc.Server.Addr != ":8000" || bc.Server.Timeout != "1s" || greeting != "hello" || err != nil {
		t.Fatalf("after Load: server %+v, greeting %q (%v)", bc.Server, greeting, err)
	}

	changed := make(chan string, 1)
	if err := c.Watch("server.timeout", func(_ string, v kconfig.Value) {
		timeout, _ := v.String()
		changed <- timeout
	}); err != nil {
		t.Fatal(err)
	}
	d.Put(t, "app/server.json", "application/json", `{"server": {"addr": ":8000", "timeout": "5s"}}`)
	select {
	case got := <-changed:
		if got != "5s" {
			t.Fatalf("observer saw %v, want 5s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the observer was not called within 10s")
	}
}

func TestTokenAndPrefixPassToConfigd(t *testing.T) {
	const token = "adapter-test-admin-token"
	d := adaptertest.StartAuth(t, token)
	d.Put(t, "app/a", "text/plain", "1")

	ctx := context.Background()
	_, err := kratos.New(ctx, kratos.WithPrefix("app"), kratos.WithClientOptions(config.WithAddress(d.Addr)))
	if !errors.Is(err, config.ErrUnauthenticated) {
		t.Fatalf("New without a token = %v, want config.ErrUnauthenticated", err)
	}
	src := newSource(t, d, kratos.WithPrefix("app"), kratos.WithClientOptions(config.WithToken(token)))
	if byKey(mustLoad(t, src))["a"] != "|1" {
		t.Fatalf("with the token, Load = %v", byKey(mustLoad(t, src)))
	}
}
