package web_test

// Tests of the rendering limits (package textdiff) through the real
// handler: values built to be costly to show (textdifftest.Values) give
// small pages, say why they are shown as they are, and leave the memory
// flat.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/textdiff"
	"github.com/configd/configd/internal/textdiff/textdifftest"
)

// maxPage is the largest answer a page about one hostile value may be.
const maxPage = 1 << 20

// view is one page or answer that shows or diffs a value.
type view struct {
	name string
	get  func() (int, []byte)
	// notes the answer must hold.
	notes []string
	// max is the largest the answer may be.
	max int
}

// hostileViews writes hv to key twice and returns every view of it: the
// key page, the revision pages of both writes, the timeline, the
// rollback dry run of the UI and of the API, and the diff API.
func hostileViews(t *testing.T, c *configd, s *session, key string, hv textdifftest.Value) []view {
	t.Helper()
	r1 := c.put(key, hv.Old, hv.ContentType, "mallory", "")
	r2 := c.put(key, hv.New, hv.ContentType, "mallory", "")
	get := func(path string) func() (int, []byte) {
		return func() (int, []byte) {
			status, b, _ := c.do(http.MethodGet, path, nil)
			return status, b
		}
	}
	post := func(path string, body any, headers ...string) func() (int, []byte) {
		return func() (int, []byte) {
			b, _ := json.Marshal(body)
			req, _ := http.NewRequest(http.MethodPost, c.URL+path, strings.NewReader(string(b)))
			req.Header.Set("Content-Type", "application/json")
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			resp, err := s.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			return resp.StatusCode, []byte(readAll(t, resp))
		}
	}
	var shown, diffed []string
	if hv.TooDeepToIndent {
		shown = append(shown, fmt.Sprintf("not pretty-printed: nested deeper than %d levels; shown as stored", textdiff.MaxIndentDepth))
		diffed = shown
	}
	if len(hv.New) > textdiff.MaxShowBytes {
		shown = append(shown, fmt.Sprintf("showing the first %d of %d bytes", textdiff.MaxShowBytes, len(hv.New)))
	}
	if strings.Count(hv.New, "\n") > textdiff.MaxDiffLines {
		diffed = append(diffed, "values differ; too large to diff: ")
		shown = append(shown, "values differ; too large to diff: ")
	}
	// The API answers with the values as stored, JSON-escaped: at most
	// twice their size for these values, never an amplification.
	asStored := max(maxPage, 2*(len(hv.Old)+len(hv.New)))
	dry := map[string]any{"scope": "key", "key": key, "to": r1, "dry_run": true}
	return []view{
		{"key page", get(keyURL(key)), shown, maxPage},
		{"key page comparing the creation", get(fmt.Sprintf("%s?a=0&b=%d", keyURL(key), r2)), shown, maxPage},
		{"revision page of the update", get(fmt.Sprintf("/ui/rev/%d", r2)), diffed, maxPage},
		{"revision page of the creation", get(fmt.Sprintf("/ui/rev/%d", r1)), nil, maxPage},
		{"timeline", get("/ui/"), nil, maxPage},
		{"live timeline", get("/ui/timeline.json?after=0"), nil, maxPage},
		{"rollback dry run", post("/ui/rollback", dry, "X-CSRF-Token", s.token, "Sec-Fetch-Site", "same-origin", "Origin", c.URL), diffed, maxPage},
		{"API rollback dry run", post("/v1/rollback", map[string]any{"key": key, "to": r1, "dry_run": true}), nil, asStored},
		{"API diff", get(fmt.Sprintf("/v1/diff?from=%d&to=%d&key=%s", r1, r2, key)), nil, asStored},
		{"API diff from the start", get(fmt.Sprintf("/v1/diff?from=0&key=%s", key)), nil, asStored},
	}
}

func keyURL(key string) string { return "/ui/key/" + key }

// TestHostileValuesRenderSmallPages views each hostile value on every page
// that shows or diffs it: each answers a small page, quickly, with a note
// where the value is not pretty-printed or not diffed.
func TestHostileValuesRenderSmallPages(t *testing.T) {
	c := startConfigd(t)
	s := newSession(t, c)
	for _, hv := range textdifftest.Values() {
		t.Run(hv.Name, func(t *testing.T) {
			for _, v := range hostileViews(t, c, s, "hostile/"+hv.Name, hv) {
				start := time.Now()
				status, body := v.get()
				t.Logf("%s: %d bytes in %v", v.name, len(body), time.Since(start).Round(time.Millisecond))
				if status != http.StatusOK {
					t.Errorf("%s: status %d: %.300s", v.name, status, body)
				}
				if len(body) > v.max {
					t.Errorf("%s: %d bytes, want at most %d", v.name, len(body), v.max)
				}
				for _, n := range v.notes {
					if !strings.Contains(string(body), n) {
						t.Errorf("%s: no note %q", v.name, n)
					}
				}
			}
		})
	}
}

// TestViewingHostileValuesKeepsMemoryFlat views every hostile value on
// every page, three times over, and checks what configd (and the test's
// client) allocated meanwhile: a few MiB a view, where pretty-printing
// the deep JSON alone once took 5 GiB.
func TestViewingHostileValuesKeepsMemoryFlat(t *testing.T) {
	const rounds, perView = 3, 16 << 20
	c := startConfigd(t)
	s := newSession(t, c)
	var views []view
	for _, hv := range textdifftest.Values() {
		views = append(views, hostileViews(t, c, s, "hostile/"+hv.Name, hv)...)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := uint64(0)
	for range rounds {
		for _, v := range views {
			if status, _ := v.get(); status != http.StatusOK {
				t.Fatalf("%s: status %d", v.name, status)
			}
			// Stop at the first view over the bound: without the limits,
			// one view takes seconds and GiBs.
			n++
			if runtime.ReadMemStats(&after); after.TotalAlloc-before.TotalAlloc > n*perView {
				t.Fatalf("after %d views (the last: %s), %d MiB allocated; want at most %d MiB a view",
					n, v.name, (after.TotalAlloc-before.TotalAlloc)>>20, perView>>20)
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d views: %d MiB allocated, %d KiB a view; heap %d → %d MiB", n, alloc>>20, alloc/n>>10, before.HeapAlloc>>20, after.HeapAlloc>>20)
	if alloc > n*perView {
		t.Errorf("%d views allocated %d MiB, want at most %d MiB a view", n, alloc>>20, perView>>20)
	}
	if after.HeapAlloc > before.HeapAlloc+64<<20 {
		t.Errorf("the heap grew from %d to %d MiB", before.HeapAlloc>>20, after.HeapAlloc>>20)
	}
}

// TestManyChangedKeysShareOnePageBudget writes, in one transaction, many
// keys of many lines each: the revision page and the rollback dry run
// diff the first ones, say the rest differ, and stay small.
func TestManyChangedKeysShareOnePageBudget(t *testing.T) {
	const keys, lines = 60, 2000
	c := startConfigd(t)
	s := newSession(t, c)
	before := c.put("other", "x", "", "alice", "")
	txn := api.TxnRequest{}
	for i := range keys {
		var v strings.Builder
		for j := range lines {
			fmt.Fprintf(&v, "line %d of key %d\n", j, i)
		}
		txn.Ops = append(txn.Ops, api.TxnOp{Op: "put", Key: fmt.Sprintf("many/k%02d", i), Value: v.String()})
	}
	body, _ := json.Marshal(txn)
	status, b, _ := c.do(http.MethodPost, "/v1/txn", body, "Content-Type", "application/json")
	if status != http.StatusOK {
		t.Fatalf("txn: %d %s", status, b)
	}
	var wr api.WriteResponse
	if err := json.Unmarshal(b, &wr); err != nil {
		t.Fatal(err)
	}
	status, page, _ := c.do(http.MethodGet, fmt.Sprintf("/ui/rev/%d", wr.Rev), nil)
	t.Logf("revision page: %d bytes", len(page))
	if status != http.StatusOK || len(page) > maxPage {
		t.Errorf("revision page: %d, %d bytes; want 200 and at most %d", status, len(page), maxPage)
	}
	const notDiffed = "values differ; not diffed: the diffs before this one used the budget"
	if n := strings.Count(string(page), notDiffed); n < keys/2 {
		t.Errorf("revision page: %d notes %q, want one for most keys", n, notDiffed)
	}
	status, dry := s.post(map[string]any{"scope": "prefix", "prefix": "many/", "to": before, "dry_run": true},
		"X-CSRF-Token", s.token, "Sec-Fetch-Site", "same-origin", "Origin", c.URL)
	if status != http.StatusOK || len(dry.Changes) != keys {
		t.Fatalf("dry run: %d, %d changes", status, len(dry.Changes))
	}
	shown := 0
	for _, ch := range dry.Changes {
		shown += len(ch.Lines)
	}
	if shown > textdiff.MaxPageLines {
		t.Errorf("dry run: %d lines shown, want at most %d", shown, textdiff.MaxPageLines)
	}
}
