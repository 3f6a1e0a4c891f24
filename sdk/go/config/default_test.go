package config

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

// resetDefault forgets the default client, now and after the test.
func resetDefault(t *testing.T) {
	t.Helper()
	reset := func() {
		std.mu.Lock()
		defer std.mu.Unlock()
		if c := std.c.Swap(nil); c != nil {
			c.Close()
		}
		std.err = nil
	}
	reset()
	t.Cleanup(reset)
}

func TestPackageLevelGetAndWatch(t *testing.T) {
	resetDefault(t)
	d := startConfigd(t)
	d.put("app/db/timeout", "3s", "key1", "v1")
	if err := Init(WithAddress(d.addr), WithLogger(discard())); err != nil {
		t.Fatal(err)
	}
	if got := Get("app", "db", "timeout").Duration(time.Second); got != 3*time.Second {
		t.Fatalf("timeout = %v", got)
	}
	w, err := Watch("key1")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	d.put("key1", "v2")
	if v, err := w.Next(); err != nil || v.String("") != "v2" {
		t.Fatalf("Next = %q, %v", v.String(""), err)
	}

	// Init again replaces the default client and ends its watchers.
	if err := Init(WithAddress(d.addr), WithPrefix("app"), WithLogger(discard())); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next on the old default client = %v, want ErrClosed", err)
	}
	if Get("db/timeout").String("") != "3s" {
		t.Fatal("the new default client does not use its prefix")
	}
}

func TestTheDefaultClientIsMadeOnFirstUseFromTheEnvironment(t *testing.T) {
	resetDefault(t)
	old := slog.Default()
	slog.SetDefault(discard())
	t.Cleanup(func() { slog.SetDefault(old) })
	d := startConfigd(t)
	d.put("k", "v")
	t.Setenv(EnvAddress, d.addr)
	if Get("k").String("") != "v" {
		t.Fatal("Get did not make the default client from CONFIGD_ADDR")
	}
}

func TestABadOptionLeavesNoDefaultClient(t *testing.T) {
	resetDefault(t)
	err := Init(WithTimeout(-1))
	if err == nil {
		t.Fatal("Init accepted a negative timeout")
	}
	if v := Get("k"); v.Exists() || v.String("def") != "def" {
		t.Fatal("Get without a default client returned a value")
	}
	if _, werr := Watch("k"); werr == nil || werr.Error() != err.Error() {
		t.Fatalf("Watch = %v, want Init's error %v", werr, err)
	}
}

func TestADefaultClientStartedWhileConfigdIsDownCatchesUp(t *testing.T) {
	resetDefault(t)
	d := startConfigd(t)
	r := d.put("k", "v")
	d.stop()
	err := Init(WithAddress(d.addr), WithTimeout(200*time.Millisecond), WithLogger(discard()))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Init = %v, want ErrUnavailable", err)
	}
	if Get("k").Exists() || Get("k").Int(7) != 7 {
		t.Fatal("a value before configd answered")
	}
	w, err := Watch("k")
	if err != nil {
		t.Fatalf("Watch on a default client that is still trying: %v", err)
	}
	defer w.Stop()
	d.restart(false)
	if u := next(t, w); u.Rev != r || u.Value.String("") != "v" {
		t.Fatalf("update %d %q, want %d v", u.Rev, u.Value.String(""), r)
	}
	if Get("k").String("") != "v" {
		t.Fatal("Get does not see the value once configd answered")
	}
}
