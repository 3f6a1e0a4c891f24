package config

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestGetAnswersFromTheCopyAfterACommit(t *testing.T) {
	d := startConfigd(t)
	d.put("app/db/timeout", "3s", "app/db/host", "db1")
	c := connect(t, []string{d.addr})
	if got := c.Get("app", "db", "timeout").Duration(0); got != 3*time.Second {
		t.Fatalf("timeout = %v, want 3s", got)
	}
	rev := d.put("app/db/host", "db2")
	waitRev(t, c, rev)
	v := c.Get("app/db/host")
	if v.String("") != "db2" || v.Rev() != rev {
		t.Fatalf("host = %q at %d, want db2 at %d", v.String(""), v.Rev(), rev)
	}
	if c.Rev() != rev {
		t.Fatalf("Rev = %d, want %d", c.Rev(), rev)
	}
}

func TestWatchKeySeesEachCommitOfThatKey(t *testing.T) {
	d := startConfigd(t)
	d.put("key1", "v1")
	c := connect(t, []string{d.addr})
	w, err := c.Watch("key1")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	d.put("other", "x") // outside the watch: no update
	rev := d.put("key1", "v2")
	u := next(t, w)
	if u.Rev != rev || u.Value.String("") != "v2" || u.Actor != "alice" || u.Origin != "api" {
		t.Fatalf("update = rev %d value %q actor %q origin %q; want rev %d v2 alice api", u.Rev, u.Value.String(""), u.Actor, u.Origin, rev)
	}
	if got := keysOf(u); !slices.Equal(got, []string{"key1=v2"}) {
		t.Fatalf("changes = %v", got)
	}
	d.put("key1", "v3")
	if v, err := w.Next(); err != nil || v.String("") != "v3" {
		t.Fatalf("Next = %q, %v; want v3", v.String(""), err)
	}
}

func TestWatchPrefixGetsACommitOfSeveralKeysAsOneUpdate(t *testing.T) {
	d := startConfigd(t)
	c := connect(t, []string{d.addr})
	w, err := c.Watch("app", "db")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	rev := d.put("app/db/host", "db1", "app/db/port", "5432", "app/web/port", "80")
	u := next(t, w)
	if u.Rev != rev {
		t.Fatalf("rev = %d, want %d", u.Rev, rev)
	}
	if got := keysOf(u); !slices.Equal(got, []string{"app/db/host=db1", "app/db/port=5432"}) {
		t.Fatalf("changes = %v, want the two keys under app/db only", got)
	}
	var db struct {
		Host string
		Port int
	}
	if err := u.Value.Scan(&db); err != nil || db.Host != "db1" || db.Port != 5432 {
		t.Fatalf("Scan = %+v, %v", db, err)
	}
	waitRev(t, c, rev)
	if n := queued(w); n != 0 {
		t.Fatalf("%d more updates queued, want 0", n)
	}
}

func TestWatchSeesDeletes(t *testing.T) {
	d := startConfigd(t)
	d.put("app/a", "1", "app/b", "2")
	c := connect(t, []string{d.addr})
	wk, _ := c.Watch("app/a")
	wp, _ := c.Watch("app")
	defer wk.Stop()
	defer wp.Stop()

	rev := d.del("app/a")
	u := next(t, wk)
	if u.Rev != rev || u.Value.Exists() || len(u.Changes) != 1 || !u.Changes[0].Deleted || u.Changes[0].Value.Exists() {
		t.Fatalf("key watch: %+v", u)
	}
	if c.Get("app/a").Exists() {
		t.Fatal("app/a still exists after its delete")
	}
	u = next(t, wp)
	if got := keysOf(u); !slices.Equal(got, []string{"-app/a"}) || !u.Value.Exists() {
		t.Fatalf("prefix watch: %v, exists %v", got, u.Value.Exists())
	}
	d.del("app/b")
	u = next(t, wp)
	if got := keysOf(u); !slices.Equal(got, []string{"-app/b"}) || u.Value.Exists() {
		t.Fatalf("prefix emptied: %v, exists %v", got, u.Value.Exists())
	}
}

func TestWatchersQueueEveryChangeInOrder(t *testing.T) {
	d := startConfigd(t)
	c := connect(t, []string{d.addr})
	w, _ := c.Watch("n")
	defer w.Stop()
	var revs []int64
	for i := range 50 {
		revs = append(revs, d.put("n", string(rune('a'+i%26))))
	}
	waitRev(t, c, revs[len(revs)-1]) // all applied before the first Next: nothing is merged
	for i, want := range revs {
		u := next(t, w)
		if u.Rev != want || u.Value.String("") != string(rune('a'+i%26)) {
			t.Fatalf("update %d: rev %d value %q, want rev %d", i, u.Rev, u.Value.String(""), want)
		}
	}
}

func TestWithPrefixMirrorsOnlyThePrefixWithRelativePaths(t *testing.T) {
	d := startConfigd(t)
	d.put("app/db/timeout", "3s", "apple", "no", "other/x", "no")
	c := connect(t, []string{d.addr}, WithPrefix("app"))
	if got := c.Get("db/timeout").String(""); got != "3s" {
		t.Fatalf("db/timeout = %q", got)
	}
	if c.Get("apple").Exists() || c.Get("other", "x").Exists() || c.Get("app/db/timeout").Exists() {
		t.Fatal("keys outside the prefix are visible")
	}
	w, _ := c.Watch("db")
	defer w.Stop()
	d.put("apple", "still no")
	rev := d.put("app/db/timeout", "4s")
	u := next(t, w)
	if u.Rev != rev || keysOf(u)[0] != "db/timeout=4s" {
		t.Fatalf("update = %d %v", u.Rev, keysOf(u))
	}
}

func TestStopEndsNextAndCloseEndsWatchers(t *testing.T) {
	d := startConfigd(t)
	c := connect(t, []string{d.addr})
	w, _ := c.Watch("k")
	errc := make(chan error, 1)
	go func() { _, err := w.Next(); errc <- err }()
	w.Stop()
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("Next after Stop = %v, want ErrStopped", err)
	}
	w.Stop() // again: no panic
	if _, err := w.Next(); !errors.Is(err, ErrStopped) {
		t.Fatalf("second Next = %v", err)
	}

	w2, _ := c.Watch("k")
	go func() { _, err := w2.Next(); errc <- err }()
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v, want ErrClosed", err)
	}
	if _, err := c.Watch("k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Watch after Close = %v, want ErrClosed", err)
	}
	if err := c.WaitRev(context.Background(), 1<<40); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitRev after Close = %v", err)
	}
}

func TestWatchRefusesAnInvalidPath(t *testing.T) {
	d := startConfigd(t)
	c := connect(t, []string{d.addr})
	if _, err := c.Watch("app", "..", "x"); err == nil {
		t.Fatal("Watch(app/../x) succeeded")
	}
}

func TestConcurrentReadsSeeWholeRevisions(t *testing.T) {
	d := startConfigd(t)
	d.put("a", "0", "b", "0")
	c := connect(t, []string{d.addr})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 2)
	for range 2 {
		wg.Go(func() {
			var last int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				root := c.Get()
				if root.Rev() < last {
					errs <- "revision went backwards"
					return
				}
				last = root.Rev()
				// a and b are always committed together: one Value's view
				// of the prefix must show them equal.
				var m map[string]string
				if err := root.Scan(&m); err != nil || m["a"] != m["b"] {
					errs <- "a torn revision: " + m["a"] + " vs " + m["b"]
					return
				}
			}
		})
	}
	var rev int64
	for i := range 40 {
		s := string(rune('0' + i%10))
		rev = d.put("a", s, "b", s)
	}
	waitRev(t, c, rev)
	close(stop)
	wg.Wait()
	select {
	case e := <-errs:
		t.Fatal(e)
	default:
	}
}
