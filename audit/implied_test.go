package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/configd/configd/internal/tampertest"
)

// layerRows returns layer_kv's rows of s's database as "layer key secret",
// in order.
func layerRows(t *testing.T, s *Store) []string {
	t.Helper()
	if err := s.r.AwaitDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.rdb.Query(`SELECT layer, key, secret FROM layer_kv ORDER BY layer, key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var layer, key string
		var secret bool
		if err := rows.Scan(&layer, &key, &secret); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %v", layer, key, secret))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stackOf returns key's layers as "layer=value", the effective one marked
// with a star.
func stackOf(t *testing.T, s *Store, key string) []string {
	t.Helper()
	entries, err := s.Stack(context.Background(), key)
	if err != nil {
		t.Fatalf("stack of %s: %v", key, err)
	}
	var out []string
	for _, e := range entries {
		v := string(e.Value.Value)
		if e.Value.Secret {
			v = "(secret)"
		}
		if e.Effective {
			v += "*"
		}
		out = append(out, e.Layer+"="+v)
	}
	return out
}

func wantRows(t *testing.T, step string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: layer_kv holds %q, want %q", step, got, want)
	}
}

// Without a source's row, the store layer's values are kept once, in kv
// (issue 17): layer_kv holds a secret's row alone, the stack shows the
// store layer's value all the same, and the state verifies. The first
// source row writes the store layer's rows out in its batch, and they stay
// written out, across a reopen.
func TestStoreLayerRowsAreImpliedUntilASourceWritesARow(t *testing.T) {
	ctx := context.Background()
	opts := []Option{WithLayers("file", StoreLayer), WithMasterKey(masterKey(t))}
	s, err := Open(ctx, t.TempDir()+"/configd.db", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	put(t, s, "app/a", "1")
	put(t, s, "app/b", "1")
	put(t, s, "app/b", "2")
	putSecret(t, s, "app/s", "hush")
	put(t, s, "app/x", "1")
	del(t, s, "app/x")
	wantRows(t, "store writes", layerRows(t, s), "store app/s true")
	if got := stackOf(t, s, "app/b"); !slices.Equal(got, []string{"store=2*"}) {
		t.Fatalf("stack of app/b: %q", got)
	}
	if got := stackOf(t, s, "app/x"); len(got) != 0 {
		t.Fatalf("stack of the deleted app/x: %q", got)
	}
	if res := verify(t, s); !res.OK {
		t.Fatalf("verify with the store layer implied: %+v", res)
	}

	applySource(t, s, "file", "app/a", "from file", "app/f", "file only")
	wantRows(t, "a source's first rows", layerRows(t, s),
		"file app/a false", "file app/f false", "store app/a false", "store app/b false", "store app/s true")
	if got := stackOf(t, s, "app/a"); !slices.Equal(got, []string{"store=1*", "file=from file"}) {
		t.Fatalf("stack of app/a: %q", got)
	}
	put(t, s, "app/c", "3")
	del(t, s, "app/b")
	if res := verify(t, s); !res.OK {
		t.Fatalf("verify after the rows were written out: %+v", res)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, s.Path(), opts...); err != nil {
		t.Fatal(err)
	}
	applySource(t, s, "file") // the source's rows gone: the store's stay written out
	put(t, s, "app/d", "4")
	wantRows(t, "after a reopen", layerRows(t, s), "store app/a false", "store app/c false", "store app/d false", "store app/s true")
	if res := verify(t, s); !res.OK {
		t.Fatalf("verify after a reopen: %+v", res)
	}
}

// A crash after a source's first row is acknowledged (in the journal) and
// before the database commits it: the next Open applies the journal's
// records in one batch, the store writes before the source's row still
// pending in it, and writes the store layer's rows out as they were just
// before that row: the state verifies and the stacks are whole.
func TestTheJournalWritesTheStoreLayerRowsOutAfterACrash(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, settleNever, WithLayers("file", StoreLayer))
	for i := range 5 {
		put(t, s, fmt.Sprintf("app/k%d", i), "1")
	}
	if err := s.r.AwaitDB(ctx); err != nil { // these settle
		t.Fatal(err)
	}
	put(t, s, "app/k0", "2")  // in the journal only, from here on
	put(t, s, "app/new", "1") //
	del(t, s, "app/k4")
	applySource(t, s, "file", "app/k0", "from file", "app/k1", "from file", "app/k4", "from file")
	put(t, s, "app/k1", "2")
	img := crashImage(t, s.Path())
	var inDB int64
	if err := s.rdb.QueryRow(`SELECT max(rev) FROM revisions`).Scan(&inDB); err != nil || inDB != 5 {
		t.Fatalf("the database holds revision %d (%v) at the crash, want 5: the test must crash before the settle", inDB, err)
	}

	c, err := Open(ctx, img, noLoop, WithLayers("file", StoreLayer))
	if err != nil {
		t.Fatalf("open after the crash: %v", err)
	}
	defer c.Close()
	if res := verify(t, c); !res.OK || res.Head != 10 {
		t.Fatalf("verify after the crash: %+v", res)
	}
	wantRows(t, "after the crash", layerRows(t, c),
		"file app/k0 false", "file app/k1 false", "file app/k4 false",
		"store app/k0 false", "store app/k1 false", "store app/k2 false", "store app/k3 false", "store app/new false")
	for key, want := range map[string][]string{
		"app/k0": {"store=2*", "file=from file"},
		"app/k1": {"store=2*", "file=from file"},
		"app/k4": {"file=from file*"},
		"app/k2": {"store=1*"},
	} {
		if got := stackOf(t, c, key); !slices.Equal(got, want) {
			t.Fatalf("stack of %s after the crash: %q, want %q", key, got, want)
		}
	}
}

// Edits of a database that keeps the store layer's values in kv alone are
// seen as edits of the state: Verify reports them and Open refuses, as it
// does for a database with every row written out (stateEdits).
func TestEditsOfAnImpliedStoreLayerAreSeen(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, stmt string }{
		{"kv value (and so its store layer value)", `UPDATE kv SET value = 'forged' WHERE key = 'app/a'`},
		{"kv row removed", `DELETE FROM kv WHERE key = 'app/a'`},
		{"a store layer row written out by hand, the same value", `INSERT INTO layer_kv (layer, key, value, content_type) SELECT 'store', key, value, content_type FROM kv WHERE key = 'app/a'`},
		{"a source row inserted", `INSERT INTO layer_kv (layer, key, value, content_type) VALUES ('file', 'app/a', 'x', 'text/plain')`},
		{"the secret's store layer row removed", `DELETE FROM layer_kv WHERE layer = 'store' AND key = 'app/s'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []Option{WithLayers("file", StoreLayer), WithMasterKey(masterKey(t))}
			s := openTest(t, opts...)
			put(t, s, "app/a", "1")
			put(t, s, "app/b", "2")
			putSecret(t, s, "app/s", "hush")
			wantRows(t, "before the edit", layerRows(t, s), "store app/s true")
			if res := verify(t, s); !res.OK {
				t.Fatalf("before the edit: %+v", res)
			}
			tampertest.Exec(t, s.Path(), tc.stmt)
			if res := verify(t, s); res.OK || !res.StateMismatch || res.BrokenRev != 3 {
				t.Fatalf("verify after the edit = %+v", res)
			}
			path := s.Path()
			s.Close()
			if _, err := Open(ctx, path, opts...); !errors.Is(err, ErrStateMismatch) {
				t.Fatalf("open after the edit: %v", err)
			}
		})
	}
}

// The journal's records applied in one batch after a crash, with the
// store layer implied throughout: a key deleted, written again and
// changed, each record checked against the store layer row the one
// before it leaves (kv's, as the batch holds it).
func TestTheJournalAppliesImpliedStoreRowsAfterACrash(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, settleNever)
	put(t, s, "app/k", "1")
	put(t, s, "app/j", "1")
	if err := s.r.AwaitDB(ctx); err != nil { // these settle
		t.Fatal(err)
	}
	del(t, s, "app/k") // in the journal only, from here on
	put(t, s, "app/k", "2")
	put(t, s, "app/k", "3")
	put(t, s, "app/j", "2")
	img := crashImage(t, s.Path())

	c, err := Open(ctx, img, noLoop)
	if err != nil {
		t.Fatalf("open after the crash: %v", err)
	}
	defer c.Close()
	if res := verify(t, c); !res.OK || res.Head != 6 {
		t.Fatalf("verify after the crash: %+v", res)
	}
	wantRows(t, "after the crash", layerRows(t, c))
	if got := stackOf(t, c, "app/k"); !slices.Equal(got, []string{"store=3*"}) {
		t.Fatalf("stack of app/k after the crash: %q", got)
	}
}
