package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/internal/syncbuf"
)

// snapshotOf runs a client with a snapshot file against d until it has
// applied rev, so that the file holds rev, and closes it.
func snapshotOf(t *testing.T, d *testConfigd, path string, rev int64, opts ...Option) {
	t.Helper()
	c, err := New(context.Background(), append([]Option{WithAddress(d.addr), WithLogger(discard()), WithSnapshot(path)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	waitRev(t, c, rev)
	c.Close()
	body, err := readSnapshotFile(path, c.opts.prefix, c.opts.keys)
	if err != nil || body.Rev != rev {
		t.Fatalf("snapshot file at rev %d (%v), want %d", body.Rev, err, rev)
	}
}

func TestStartFromTheSnapshotFileWhenConfigdIsDownThenCatchUp(t *testing.T) {
	d := startConfigd(t)
	path := filepath.Join(t.TempDir(), "config.snapshot")
	d.put("app/db/timeout", "3s", "app/name", "shop", "web/x", "1")
	r := d.put("app/db/host", "db1")
	snapshotOf(t, d, path, r, WithPrefix("app"))

	d.stop()
	var want []string
	r = d.put("app/db/host", "db2")
	want = append(want, fmt.Sprint(r, ": ", []string{"db/host=db2"}))
	r = d.del("app/name")
	want = append(want, fmt.Sprint(r, ": ", []string{"-name"}))

	logs := &syncbuf.Buffer{}
	began := time.Now()
	c, err := New(context.Background(), WithAddress(d.addr), WithPrefix("app"), WithSnapshot(path),
		WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("New took %v to fall back to the file; a refused connection should be enough", took)
	}
	if got := c.Get("db", "timeout").Duration(0); got != 3*time.Second || c.Get("db/host").String("") != "db1" || c.Get("name").String("") != "shop" {
		t.Fatalf("from the file: timeout %v host %q", got, c.Get("db/host").String(""))
	}
	if !strings.Contains(logs.String(), "starting from the snapshot file") {
		t.Fatalf("no log of the fallback: %s", logs)
	}
	w, _ := c.Watch()
	defer w.Stop()

	d.restart(true)
	if got := collect(t, w, r); !slices.Equal(got, want) {
		t.Fatalf("catching up: %v, want %v", got, want)
	}
	if c.Get("name").Exists() || c.Get("db/host").String("") != "db2" {
		t.Fatal("the copy did not catch up")
	}
	if body, err := readSnapshotFile(path, "app/", nil); err != nil || body.Rev != r {
		t.Fatalf("the file was not refreshed: rev %d, %v", body.Rev, err)
	}
}

func TestNewRefusesACorruptSnapshotFileWhenConfigdIsDown(t *testing.T) {
	d := startConfigd(t)
	path := filepath.Join(t.TempDir(), "config.snapshot")
	r := d.put("k", "v")
	snapshotOf(t, d, path, r)
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 1
	os.WriteFile(path, data, 0o600)
	d.stop()

	_, err := New(context.Background(), WithAddress(d.addr), WithSnapshot(path), WithTimeout(200*time.Millisecond), WithLogger(discard()))
	if !errors.Is(err, ErrBadSnapshot) || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "checksum") || !strings.Contains(err.Error(), d.addr) {
		t.Fatalf("err = %v; want ErrUnavailable and ErrBadSnapshot, naming the address and the checksum", err)
	}
}

func TestNewRefusesASnapshotFileOfAnotherPrefixWhenConfigdIsDown(t *testing.T) {
	d := startConfigd(t)
	path := filepath.Join(t.TempDir(), "config.snapshot")
	r := d.put("web/k", "v")
	snapshotOf(t, d, path, r, WithPrefix("web"))
	d.stop()

	_, err := New(context.Background(), WithAddress(d.addr), WithPrefix("app"), WithSnapshot(path), WithTimeout(200*time.Millisecond), WithLogger(discard()))
	if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), `prefix "web/"`) || !strings.Contains(err.Error(), `"app/"`) {
		t.Fatalf("err = %v; want ErrBadSnapshot naming both prefixes", err)
	}
}

func TestABadSnapshotFileIsReplacedWhenConfigdIsUp(t *testing.T) {
	d := startConfigd(t)
	path := filepath.Join(t.TempDir(), "config.snapshot")
	os.WriteFile(path, []byte("garbage"), 0o600)
	r := d.put("k", "v")
	logs := &syncbuf.Buffer{}
	c, err := New(context.Background(), WithAddress(d.addr), WithSnapshot(path), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatalf("New with configd up and a bad file: %v", err)
	}
	defer c.Close()
	if !strings.Contains(logs.String(), "ignoring the snapshot file") {
		t.Fatalf("the refused file was not logged: %s", logs)
	}
	if body, err := readSnapshotFile(path, "", nil); err != nil || body.Rev != r || len(body.KVs) != 1 {
		t.Fatalf("the file was not replaced: %+v, %v", body, err)
	}
}

func TestNewFailsAfterItsTimeoutNamingTheAddresses(t *testing.T) {
	a, b := deadAddr(t), deadAddr(t)
	began := time.Now()
	_, err := New(context.Background(), WithAddress(a, b), WithTimeout(300*time.Millisecond), WithLogger(discard()))
	took := time.Since(began)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v; want ErrUnavailable naming %s, %s and the cause", err, a, b)
	}
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Fatalf("New returned after %v, want about its timeout of 300ms", took)
	}
}

func TestNewRespectsItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(ctx, WithAddress(deadAddr(t)), WithLogger(discard()))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestNewWaitsForAConfigdThatComesUpWithinTheTimeout(t *testing.T) {
	d := startConfigd(t)
	r := d.put("k", "v")
	d.stop()
	go func() {
		// No sleep needed: the client retries every few tens of ms; by the
		// time this runs it has most likely failed once already.
		d.restart(false)
	}()
	c := connect(t, []string{d.addr}, WithTimeout(waitLimit))
	if c.Rev() != r || c.Get("k").String("") != "v" {
		t.Fatalf("rev %d value %q", c.Rev(), c.Get("k").String(""))
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for name, opts := range map[string][]Option{
		"no address":    {WithAddress()},
		"empty address": {WithAddress("")},
		"bad prefix":    {WithPrefix("a//b")},
		"zero timeout":  {WithTimeout(0)},
		"nil logger":    {WithLogger(nil)},
	} {
		if _, err := New(context.Background(), opts...); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: err = %v, want an option error", name, err)
		}
	}
}

func TestAddressComesFromTheEnvironment(t *testing.T) {
	d := startConfigd(t)
	d.put("k", "from env")
	t.Setenv(EnvAddress, deadAddr(t)+", "+d.addr)
	c, err := New(context.Background(), WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Get("k").String("") != "from env" {
		t.Fatal("the client did not use CONFIGD_ADDR")
	}
}
