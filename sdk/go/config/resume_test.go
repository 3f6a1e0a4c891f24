package config

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/watcher"
)

// collect takes updates from w until one at rev or later, and returns
// them as "rev: changes".
func collect(t *testing.T, w *Watcher, rev int64) []string {
	t.Helper()
	var out []string
	for {
		u := next(t, w)
		out = append(out, fmt.Sprint(u.Rev, ": ", keysOf(u)))
		if u.Rev >= rev {
			return out
		}
	}
}

func TestResumeAfterARestartMissesNothingAndRepeatsNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newHub  bool
		hubOpts []watcher.Option
	}{
		{"same hub", false, nil},
		{"restarted hub", true, nil},
		{"restarted hub without a window: replay from the store", true, []watcher.Option{watcher.WithWindow(0)}},
	} {
		for _, tr := range transports {
			t.Run(tc.name+"/"+tr.name, func(t *testing.T) {
				testResume(t, tc.newHub, tc.hubOpts, tr.opts)
			})
		}
	}
}

// transports are the client's two ways to watch.
var transports = []struct {
	name string
	opts []Option
}{
	{"http stream", nil},
	{"grpc", []Option{WithGRPC()}},
}

func testResume(t *testing.T, newHub bool, hubOpts []watcher.Option, opts []Option) {
	d := startConfigd(t, withHubOptions(hubOpts...))
	d.put("app/a", "1")
	c := connect(t, []string{d.addr}, opts...)
	w, _ := c.Watch("app")
	defer w.Stop()

	var want []string
	r := d.put("app/a", "2")
	want = append(want, fmt.Sprint(r, ": ", []string{"app/a=2"}))
	if got := collect(t, w, r); !slices.Equal(got, want) {
		t.Fatalf("before the restart: %v, want %v", got, want)
	}

	d.stop()
	want = want[:0]
	r = d.put("app/b", "1", "app/c", "1", "other", "x")
	want = append(want, fmt.Sprint(r, ": ", []string{"app/b=1", "app/c=1"}))
	d.put("other", "y") // outside the watch
	r = d.del("app/a")
	want = append(want, fmt.Sprint(r, ": ", []string{"-app/a"}))
	r = d.put("app/b", "2")
	want = append(want, fmt.Sprint(r, ": ", []string{"app/b=2"}))
	if c.Get("app/b").Exists() {
		t.Fatal("the client saw a change made while configd was down")
	}
	d.restart(newHub)

	if got := collect(t, w, r); !slices.Equal(got, want) {
		t.Fatalf("after the restart:\n got %v\nwant %v", got, want)
	}
	last := d.put("app/z", "live")
	if got := collect(t, w, last); !slices.Equal(got, []string{fmt.Sprint(last, ": ", []string{"app/z=live"})}) {
		t.Fatalf("live after the restart: %v", got)
	}
	waitRev(t, c, last)
	if n := queued(w); n != 0 {
		t.Fatalf("%d updates left over: something was delivered twice", n)
	}
	if c.Get("app/a").Exists() || c.Get("app/b").String("") != "2" || c.Get("other").String("") != "y" {
		t.Fatal("the copy differs from the store after the restart")
	}
}

func TestRestartsInARowKeepEveryChange(t *testing.T) {
	d := startConfigd(t, withHubOptions(watcher.WithWindow(2)))
	// Not an empty store: a client at revision 0 can only resume with a
	// snapshot (since 0 asks for one), which merges the changes it missed.
	d.put("start", "")
	c := connect(t, []string{d.addr})
	w, _ := c.Watch("n")
	defer w.Stop()
	var want, got []string
	var r int64
	for round := range 5 {
		for i := range 3 {
			v := fmt.Sprint(round, ".", i)
			r = d.put("n", v)
			want = append(want, fmt.Sprint(r, ": ", []string{"n=" + v}))
			if i == 1 {
				d.stop()
			}
		}
		d.restart(round%2 == 0)
		got = append(got, collect(t, w, r)...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestProgressAdvancesTheRevisionOfAnIdleClient(t *testing.T) {
	d := startConfigd(t, withProgressInterval(20*time.Millisecond))
	c := connect(t, []string{d.addr}, WithPrefix("app"))
	var r int64
	for range 3 {
		r = d.put("other/key", "x") // outside the client's prefix
	}
	waitRev(t, c, r)
	if c.Get().Exists() {
		t.Fatal("a key outside the prefix was applied")
	}
	// A resume starts from the new revision: the next change in scope
	// arrives once.
	w, _ := c.Watch()
	defer w.Stop()
	d.stop()
	r = d.put("app/k", "v")
	d.restart(true)
	if got := collect(t, w, r); !slices.Equal(got, []string{fmt.Sprint(r, ": ", []string{"k=v"})}) {
		t.Fatalf("after resume: %v", got)
	}
}

func TestFailoverToTheNextAddress(t *testing.T) {
	d := startConfigd(t)
	// Second APIs on the same store and hub: a second instance.
	d2 := &testConfigd{t: t, c: d.c, st: d.st}
	d2.serving = configdtest.Serve(t, d.c, d.config())
	d2.addr = d2.serving.Addr

	d.put("k", "1")
	c := connect(t, []string{d.addr, d2.addr})
	w, _ := c.Watch("k")
	defer w.Stop()
	d.stop() // the first instance dies for good
	r := d.put("k", "2")
	if got := collect(t, w, r); !slices.Equal(got, []string{fmt.Sprint(r, ": ", []string{"k=2"})}) {
		t.Fatalf("after failover: %v", got)
	}
	r = d.put("k", "3")
	waitRev(t, c, r)
	if c.Get("k").String("") != "3" {
		t.Fatal("the client does not follow the second instance")
	}
}

func TestFailoverAtStartSkipsADeadAddress(t *testing.T) {
	d := startConfigd(t)
	d.put("k", "1")
	dead := deadAddr(t)
	c := connect(t, []string{dead, d.addr})
	if c.Get("k").String("") != "1" {
		t.Fatal("the client did not start from the live address")
	}
}
