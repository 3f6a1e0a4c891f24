package main_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/forward"
)

// testWritesGoToTheWriter: a write sent to any replica is committed by the
// cluster's writer, the replica registered longest (the others forward
// it), and read back at once on the replica it was sent to; when the
// writer is killed, the others commit their writes themselves until the
// next oldest takes the role, with no gap in the numbering.
func testWritesGoToTheWriter(t *testing.T, c *configdtest.Cluster) {
	ds := replicaDaemons(t, c)
	r1, r2, r3 := ds[0], ds[1], ds[2]
	// tryPut writes on d and returns the revision and the writer that
	// committed it ("" for d itself), or ok false for a 503 unavailable: a
	// write the writer may have taken and not answered (it died), which a
	// client retries.
	tryPut := func(d *daemon, key, value string) (rev int64, to string, ok bool) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, d.url("/v1/kv/"+key), strings.NewReader(value))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := d.client.Do(req)
		if err != nil {
			t.Fatalf("put %s on %s: %v", key, d.Addr, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), `"code":"`+api.CodeUnavailable+`"`) {
			return 0, "", false
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("put %s on %s: %d %s", key, d.Addr, resp.StatusCode, b)
		}
		rev, err = strconv.ParseInt(resp.Header.Get(api.HeaderRev), 10, 64)
		if err != nil {
			t.Fatalf("put %s on %s: %s %q", key, d.Addr, api.HeaderRev, resp.Header.Get(api.HeaderRev))
		}
		return rev, resp.Header.Get(forward.HeaderForwardedTo), true
	}
	// putVia is tryPut that fails the test on a 503: while the writer lives,
	// a write is answered.
	putVia := func(d *daemon, key, value string) (int64, string) {
		t.Helper()
		rev, to, ok := tryPut(d, key, value)
		if !ok {
			t.Fatalf("put %s on %s: 503 unavailable while the writer is up", key, d.Addr)
		}
		return rev, to
	}
	var last int64
	// From the first write on: a replica serves once it knows the writer
	// (r3 listened just now).
	if _, to := putVia(r3, "app/w", "3"); to != r1.Addr {
		t.Fatalf("r3's first write went to %q, want the writer r1 (%s)", to, r1.Addr)
	}
	if _, to := putVia(r2, "app/w", "2"); to != r1.Addr {
		t.Fatalf("r2's first write went to %q, want the writer r1 (%s)", to, r1.Addr)
	}
	rev, to := putVia(r1, "app/w", "1")
	if to != "" {
		t.Fatalf("the writer forwarded its own write to %s", to)
	}
	rev, to = putVia(r3, "app/ryw", "mine")
	var kv api.KeyValue
	r3.mustCall(http.MethodGet, "/v1/kv/app/ryw", nil, &kv) // no min_rev: read your writes
	if to != r1.Addr || kv.Value != "mine" || kv.ModRev != rev {
		t.Fatalf("on r3, after its forwarded write (to %q) at %d: %+v", to, rev, kv)
	}

	r1.Signal(syscall.SIGKILL)
	r1.Wait()
	// Until r1's lease ends, r2 and r3 find it gone and commit themselves;
	// then r2, the oldest left, takes the writes. A write sent on a pooled
	// connection to r1 just as it died is answered 503 (r1 may have taken
	// it): the client retries, as docs/ha.md says.
	waitFor(t, "r2 takes a write after r1's death", func() bool {
		var ok bool
		rev, _, ok = tryPut(r2, "app/after", "x")
		return ok
	})
	waitFor(t, "r3 forwards to r2", func() bool {
		var to string
		var ok bool
		last, to, ok = tryPut(r3, "app/after", "y")
		return ok && to == r2.Addr
	})
	if last <= rev {
		t.Fatalf("revision %d after %d", last, rev)
	}
	sameEverywhere(t, ds[1:], last)
	for i, r := range r2.history() {
		if r.Rev != int64(i+1) {
			t.Fatalf("revision %d at position %d: a gap", r.Rev, i)
		}
	}
}
