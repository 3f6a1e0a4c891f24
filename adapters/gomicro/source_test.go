package configdsource_test

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/adapters/gomicro"
	"github.com/configd/configd/adapters/internal/adaptertest"
	"github.com/configd/configd/sdk/go/config"
	microconfig "go-micro.dev/v4/config"
	"go-micro.dev/v4/config/reader"
	"go-micro.dev/v4/config/source"
)

func TestMain(m *testing.M) { adaptertest.Main(m) }

// newSource returns a Source of d, closed when the test ends.
func newSource(t *testing.T, d *adaptertest.Daemon, opts ...source.Option) source.Source {
	t.Helper()
	src := configdsource.NewSource(append(opts, configdsource.WithClientOptions(config.WithAddress(d.Addr)))...)
	t.Cleanup(func() { src.(*configdsource.Source).Close() })
	return src
}

func mustRead(t *testing.T, src source.Source) *source.ChangeSet {
	t.Helper()
	cs, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestReadNestsThePrefixKeysAsJSON(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "micro/config/key1", "text/plain", "hello")
	d.Put(t, "micro/config/db/host", "text/plain", "db.internal")
	d.Put(t, "micro/config/limits", "application/json", `{"rps": 100}`)
	d.Put(t, "micro/config/log", "application/yaml", "level: debug\n")
	d.Put(t, "other/key", "text/plain", "not mine")
	const inner = `{"db":{"host":"db.internal"},"key1":"hello","limits":{"rps":100},"log":{"level":"debug"}}`

	cases := []struct {
		name string
		opts []source.Option
		want string
	}{
		{"stripped", []source.Option{configdsource.WithPrefix("/micro/config"), configdsource.StripPrefix(true)}, inner},
		{"kept", []source.Option{configdsource.WithPrefix("/micro/config/")}, `{"micro":{"config":` + inner + `}}`},
		{"default prefix", nil, `{"micro":{"config":` + inner + `}}`},
		{"whole keyspace", []source.Option{configdsource.WithPrefix("/")},
			`{"micro":{"config":` + inner + `},"other":{"key":"not mine"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := mustRead(t, newSource(t, d, tc.opts...))
			if string(cs.Data) != tc.want {
				t.Fatalf("Read Data = %s, want %s", cs.Data, tc.want)
			}
			sum := fmt.Sprintf("%x", md5.Sum(cs.Data))
			if cs.Format != "json" || cs.Checksum != sum || cs.Source != "configd" || cs.Timestamp.IsZero() {
				t.Fatalf("Read = format %q checksum %q source %q timestamp %v, want json, %s, configd, now",
					cs.Format, cs.Checksum, cs.Source, cs.Timestamp, sum)
			}
		})
	}
}

func TestReadOfAnEmptyPrefixIsAnEmptyDocument(t *testing.T) {
	d := adaptertest.Start(t)
	cs := mustRead(t, newSource(t, d, configdsource.WithPrefix("nothing/here"), configdsource.StripPrefix(true)))
	if string(cs.Data) != "{}" {
		t.Fatalf("Read Data = %s, want {}", cs.Data)
	}
}

// loadConfig is the program: a go-micro config loading the source.
func loadConfig(t *testing.T, src source.Source) microconfig.Config {
	t.Helper()
	conf, err := microconfig.NewConfig()
	if err != nil {
		t.Fatal(err)
	}
	// No conf.Close(): go-micro v4.11.0's Close panics (config/default.go
	// prints the nil error of its loader watcher's Stop).
	if err := conf.Load(src); err != nil {
		t.Fatal(err)
	}
	return conf
}

// next calls w.Next in a goroutine so that a test fails instead of hanging.
func next(t *testing.T, w microconfig.Watcher) reader.Value {
	t.Helper()
	type result struct {
		v   reader.Value
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := w.Next()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.v
	case <-time.After(10 * time.Second):
		t.Fatal("Watcher.Next returned nothing within 10s")
		return nil
	}
}

// TestGoMicroProgram runs the snippet in a real go-micro config:
// Load, Get, then Watch("key1") + Next after a PUT and after a DELETE.
func TestGoMicroProgram(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "micro/config/key1", "text/plain", "v1")
	d.Put(t, "micro/config/limits", "application/json", `{"rps": 100}`)

	conf := loadConfig(t, newSource(t, d, configdsource.WithPrefix("/micro/config"), configdsource.StripPrefix(true)))
	if got, rps := conf.Get("key1").String(""), conf.Get("limits", "rps").Int(0); got != "v1" || rps != 100 {
		t.Fatalf("after Load: key1 %q, limits.rps %d, want v1, 100", got, rps)
	}

	w, err := conf.Watch("key1")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	d.Put(t, "micro/config/key1", "text/plain", "v2")
	if got := next(t, w).String(""); got != "v2" {
		t.Fatalf("after a PUT Next = %q, want v2", got)
	}

	d.Delete(t, "micro/config/key1")
	if got := next(t, w).String("gone"); got != "gone" {
		t.Fatalf("after a DELETE Next = %q, want nothing (the default)", got)
	}
	// No conf.Get here: go-micro's Config takes the change through a loop
	// of its own, which may not have run yet when Next returns.
}

func TestWatchSeesWritesAndDeletes(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/a", "text/plain", "1")
	src := newSource(t, d, configdsource.WithPrefix("app"), configdsource.StripPrefix(true))
	mustRead(t, src)
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	d.Put(t, "app/b", "application/json", `{"c": 2}`)
	if got := string(nextSet(t, w).Data); got != `{"a":"1","b":{"c":2}}` {
		t.Fatalf("after a write Next = %s, want a and b", got)
	}
	d.Delete(t, "app/a")
	if got := string(nextSet(t, w).Data); got != `{"b":{"c":2}}` {
		t.Fatalf("after a delete Next = %s, want b alone", got)
	}
}

func TestWatchReturnsAChangeMadeBetweenReadAndWatch(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "app/a", "text/plain", "1")
	src := newSource(t, d, configdsource.WithPrefix("app"), configdsource.StripPrefix(true))
	mustRead(t, src)
	c, err := src.(*configdsource.Source).Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, err := c.Put(ctx, "a", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	// The source's client has the write before Watch: its SDK watcher will
	// never hear of it.
	if err := c.WaitRev(ctx, rev); err != nil {
		t.Fatal(err)
	}
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cs := nextSet(t, w)
	if string(cs.Data) != `{"a":"2"}` {
		t.Fatalf("Next = %s, want the write made before Watch", cs.Data)
	}
}

func nextSet(t *testing.T, w source.Watcher) *source.ChangeSet {
	t.Helper()
	ch := make(chan *source.ChangeSet, 1)
	errc := make(chan error, 1)
	go func() {
		cs, err := w.Next()
		if err != nil {
			errc <- err
			return
		}
		ch <- cs
	}()
	select {
	case cs := <-ch:
		return cs
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("Watcher.Next returned nothing within 10s")
	}
	return nil
}

func TestStoppedWatcherEndsWithErrWatcherStopped(t *testing.T) {
	d := adaptertest.Start(t)
	src := newSource(t, d)
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	if _, err := w.Next(); !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatalf("Next after Stop = %v, want source.ErrWatcherStopped", err)
	}
}

func TestWriteIsRefused(t *testing.T) {
	d := adaptertest.Start(t)
	d.Put(t, "micro/config/key1", "text/plain", "v1")
	src := newSource(t, d)
	err := src.Write(&source.ChangeSet{Data: []byte(`{"micro":{"config":{"key1":"v2"}}}`), Format: "json"})
	if !errors.Is(err, configdsource.ErrReadOnly) {
		t.Fatalf("Write = %v, want ErrReadOnly", err)
	}
	if got := string(mustRead(t, src).Data); got != `{"micro":{"config":{"key1":"v1"}}}` {
		t.Fatalf("after Write, Read = %s, want key1 unchanged", got)
	}
}

func TestLoadFailsClearlyWhenConfigdIsDown(t *testing.T) {
	addr := adaptertest.DeadAddr(t)
	src := configdsource.NewSource(configdsource.WithClientOptions(config.WithAddress(addr), config.WithTimeout(time.Second)))
	defer src.(*configdsource.Source).Close()
	if _, err := src.Read(); !errors.Is(err, config.ErrUnavailable) || !strings.Contains(err.Error(), "configdsource") {
		t.Fatalf("Read with configd down = %v, want a configdsource error wrapping config.ErrUnavailable", err)
	}
	conf, err := microconfig.NewConfig()
	if err != nil {
		t.Fatal(err)
	}
	err = conf.Load(src)
	if err == nil || !strings.Contains(err.Error(), "configd unavailable") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("config.Load with configd down = %v, want an error naming configd and %s", err, addr)
	}
	t.Log(err)
}

func TestTokenPassesToConfigd(t *testing.T) {
	const token = "adapter-test-admin-token"
	d := adaptertest.StartAuth(t, token)
	d.Put(t, "micro/config/key1", "text/plain", "v1")

	if _, err := newSource(t, d).Read(); !errors.Is(err, config.ErrUnauthenticated) {
		t.Fatalf("Read without a token = %v, want config.ErrUnauthenticated", err)
	}
	src := newSource(t, d, configdsource.StripPrefix(true), configdsource.WithClientOptions(config.WithToken(token)))
	if got := string(mustRead(t, src).Data); got != `{"key1":"v1"}` {
		t.Fatalf("with the token, Read = %s", got)
	}
}

func TestClosedSourceRefusesRead(t *testing.T) {
	d := adaptertest.Start(t)
	src := newSource(t, d)
	mustRead(t, src)
	src.(*configdsource.Source).Close()
	if _, err := src.Read(); !errors.Is(err, config.ErrClosed) {
		t.Fatalf("Read after Close = %v, want config.ErrClosed", err)
	}
}
