package koanf_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/adapters/internal/adaptertest"
	"github.com/configd/configd/adapters/koanf"
	"github.com/configd/configd/sdk/go/config"
	kv2 "github.com/knadh/koanf/v2"
)

func TestMain(m *testing.M) { adaptertest.Main(m) }

func newProvider(t *testing.T, d *adaptertest.Daemon, opts ...koanf.Option) *koanf.Provider {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := koanf.New(ctx, append(opts, koanf.WithClientOptions(config.WithAddress(d.Addr)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func load(t *testing.T, p *koanf.Provider) *kv2.Koanf {
	t.Helper()
	k := kv2.New(".")
	if err := k.Load(p, nil); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestReadNestsKeysAndParsesJSON(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/db/host", "text/plain", "db.internal")
	d.Put(t, "app/db", "text/plain", "primary")
	d.Put(t, "app/limits", "application/json", `{"rps": 100, "burst": [1, 2]}`)
	d.Put(t, "app/log", "application/yaml", "level: debug\n")
	d.Put(t, "other/key", "text/plain", "not mine")

	p := newProvider(t, d, koanf.WithPrefix("app"))
	k := load(t, p)
	want := map[string]any{
		"db._value":    "primary", // a key with keys under it
		"db.host":      "db.internal",
		"limits.rps":   float64(100),
		"limits.burst": []any{float64(1), float64(2)},
		"log":          "level: debug\n",
	}
	if got := k.All(); !reflect.DeepEqual(got, want) {
		t.Fatalf("koanf after Load = %v, want %v", got, want)
	}

	b, err := p.ReadBytes()
	if err != nil {
		t.Fatal(err)
	}
	var fromBytes map[string]any
	if err := json.Unmarshal(b, &fromBytes); err != nil {
		t.Fatal(err)
	}
	m, err := p.Read()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromBytes, m) {
		t.Fatalf("ReadBytes = %s, want Read's map %v", b, m)
	}

	raw := load(t, newProvider(t, d, koanf.WithPrefix("app"), koanf.WithRawJSON()))
	if got := raw.String("limits"); got != `{"rps": 100, "burst": [1, 2]}` {
		t.Fatalf("WithRawJSON limits = %q, want the JSON text", got)
	}
}

// watch starts p's watch and returns its events.
func watch(t *testing.T, p *koanf.Provider) <-chan error {
	t.Helper()
	events := make(chan error, 16)
	if err := p.Watch(func(event any, err error) {
		if _, ok := event.(config.Update); !ok && err == nil {
			t.Errorf("event %T, want a config.Update", event)
		}
		events <- err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Unwatch() })
	return events
}

func await(t *testing.T, events <-chan error) {
	t.Helper()
	select {
	case err := <-events:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch callback within 10s")
	}
}

func TestWatchCallsBackOnWritesAndDeletes(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/a", "text/plain", "1")
	p := newProvider(t, d, koanf.WithPrefix("app"))
	load(t, p)
	events := watch(t, p)

	d.Put(t, "app/b", "application/json", `{"on": true}`)
	await(t, events)
	if k := load(t, p); k.String("a") != "1" || !k.Bool("b.on") {
		t.Fatalf("after a write = %v, want a and b.on", k.All())
	}
	d.Delete(t, "app/a")
	await(t, events)
	if k := load(t, p); k.Exists("a") || !k.Bool("b.on") {
		t.Fatalf("after a delete = %v, want b.on alone", k.All())
	}
}

func TestWatchCallsBackForAChangeMadeBetweenReadAndWatch(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/a", "text/plain", "1")
	p := newProvider(t, d, koanf.WithPrefix("app"))
	load(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, err := p.Client().Put(ctx, "a", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	// The provider's client has the write before Watch: its SDK watcher
	// will never hear of it.
	if err := p.Client().WaitRev(ctx, rev); err != nil {
		t.Fatal(err)
	}
	await(t, watch(t, p))
	if k := load(t, p); k.String("a") != "2" {
		t.Fatalf("a = %q, want 2", k.String("a"))
	}
}

func TestWatchTwiceIsRefusedUntilUnwatch(t *testing.T) {
	d := adaptertest.Start(t)
	p := newProvider(t, d)
	cb := func(any, error) {}
	if err := p.Watch(cb); err != nil {
		t.Fatal(err)
	}
	if err := p.Watch(cb); err == nil {
		t.Fatal("a second Watch succeeded, want an error")
	}
	if err := p.Unwatch(); err != nil {
		t.Fatal(err)
	}
	if err := p.Watch(cb); err != nil {
		t.Fatalf("Watch after Unwatch = %v", err)
	}
	p.Unwatch()
}

func TestNewFailsClearlyWhenConfigdIsDown(t *testing.T) {
	addr := adaptertest.DeadAddr(t)
	_, err := koanf.New(context.Background(), koanf.WithClientOptions(config.WithAddress(addr), config.WithTimeout(time.Second)))
	if err == nil || !strings.Contains(err.Error(), "koanf: configd provider") || !strings.Contains(err.Error(), "cannot reach configd") {
		t.Fatalf("New with configd down = %v, want a clear error", err)
	}
}

// TestKoanfProgram is Example's program against a real configd.
func TestKoanfProgram(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/db/host", "text/plain", "db.internal")
	d.Put(t, "app/limits", "application/json", `{"rps": 100}`)

	p := newProvider(t, d, koanf.WithPrefix("app"))
	k := kv2.New(".")
	if err := k.Load(p, nil); err != nil {
		t.Fatal(err)
	}
	if k.String("db.host") != "db.internal" || k.Int("limits.rps") != 100 {
		t.Fatalf("after Load = %v", k.All())
	}
	reloaded := make(chan *kv2.Koanf, 1)
	if err := p.Watch(func(event any, err error) {
		if err != nil {
			t.Error(err)
			return
		}
		fresh := kv2.New(".")
		if err := fresh.Load(p, nil); err != nil {
			t.Error(err)
			return
		}
		reloaded <- fresh
	}); err != nil {
		t.Fatal(err)
	}
	defer p.Unwatch()
	d.Put(t, "app/limits", "application/json", `{"rps": 500}`)
	select {
	case k = <-reloaded:
		if k.Int("limits.rps") != 500 {
			t.Fatalf("after the write = %v, want limits.rps 500", k.All())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s")
	}
}

func TestTokenAndPrefixPassToConfigd(t *testing.T) {
	const token = "adapter-test-admin-token"
	d := adaptertest.StartAuth(t, token)
	d.Put(t, "app/a", "text/plain", "1")

	ctx := context.Background()
	_, err := koanf.New(ctx, koanf.WithPrefix("app"), koanf.WithClientOptions(config.WithAddress(d.Addr)))
	if !errors.Is(err, config.ErrUnauthenticated) {
		t.Fatalf("New without a token = %v, want config.ErrUnauthenticated", err)
	}
	p := newProvider(t, d, koanf.WithPrefix("app"), koanf.WithClientOptions(config.WithToken(token)))
	if load(t, p).String("a") != "1" {
		t.Fatalf("with the token, koanf = %v", load(t, p).All())
	}
}
