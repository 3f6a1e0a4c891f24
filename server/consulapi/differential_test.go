package consulapi_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	consul "github.com/hashicorp/consul/api"

	"github.com/configd/configd/internal/testserver"
)

// TestSameAnswersAsARealConsul runs one script of Consul KV calls (the Go
// client's, and raw HTTP where a tool reads the bytes) against a real
// Consul and against configd's door, each fresh, and compares every
// answer: keys, values, flags, sessions, lock indexes, whether a key was
// modified since it was created, the CAS and txn outcomes, the errors'
// statuses and bodies. Raft indexes differ between the two (Consul's
// count its own entries too), so an index is compared by what it says:
// that it moves on each write and that a CAS on it wins once.
func TestSameAnswersAsARealConsul(t *testing.T) {
	real := testserver.Consul(t)
	d := newDoor(t)
	want := runConsulScript(t, real.Addr)
	got := runConsulScript(t, d.addr)
	if len(want) != len(got) {
		t.Errorf("Consul answered %d steps, configd %d:\n  consul:\n    %s\n  configd:\n    %s", len(want), len(got),
			strings.Join(want, "\n    "), strings.Join(got, "\n    "))
	}
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			t.Errorf("step %d differs:\n  consul:  %s\n  configd: %s", i, want[i], got[i])
		}
	}
}

var digits = regexp.MustCompile(`[0-9]+`)

// runConsulScript runs the script against the KV API at addr and returns
// each step's answer as a line: "name: answer".
func runConsulScript(t *testing.T, addr string) []string {
	c, err := consul.NewClient(&consul.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KV()
	var out []string
	add := func(name, format string, args ...any) { out = append(out, name+": "+fmt.Sprintf(format, args...)) }
	pair := func(p *consul.KVPair) string {
		if p == nil {
			return "nil"
		}
		rel := "c=m"
		if p.ModifyIndex > p.CreateIndex {
			rel = "c<m"
		}
		return fmt.Sprintf("%s=%q(flags %d, lock %d, session %q, %s)", p.Key, p.Value, p.Flags, p.LockIndex, p.Session, rel)
	}
	pairs := func(ps consul.KVPairs) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = pair(p)
		}
		return "[" + strings.Join(s, " ") + "]"
	}
	errText := func(err error) string {
		if err == nil {
			return "ok"
		}
		// The client's errors carry the status and the body.
		return "error " + err.Error()
	}
	var last uint64 // the newest index seen; each write moves it on
	moved := func(name string) {
		_, meta, err := kv.Get("no/such/key/for/the/index", nil)
		if err != nil {
			add(name+" index", "%s", errText(err))
			return
		}
		add(name+" index", "moved=%v", meta.LastIndex > last)
		last = meta.LastIndex
	}
	put := func(key, value string) {
		_, err := kv.Put(&consul.KVPair{Key: key, Value: []byte(value)}, nil)
		add("put "+key, "%s", errText(err))
	}
	get := func(name, key string) *consul.KVPair {
		p, _, err := kv.Get(key, nil)
		if err != nil {
			add(name, "%s", errText(err))
			return nil
		}
		add(name, "%s", pair(p))
		return p
	}
	raw := func(name, path string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			add(name, "%v", err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		add(name, "%d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	// First a key, so that configd's index is past 1 (an empty store's
	// index is 1, as after its first revision: docs/compat.md).
	put("seed", "0")
	moved("start")
	put("app/db/host", "db1")
	moved("put")
	put("app/db/port", "5432")
	put("app/name", "shop")
	put("apple", "x")
	put("app/db/host", "db2")
	get("get", "app/db/host")
	get("get missing", "app/none")
	raw("get raw", "/v1/kv/app/db/host?raw")
	raw("get raw missing", "/v1/kv/app/none?raw")
	raw("get missing", "/v1/kv/app/none")
	ps, _, err := kv.List("app/", nil)
	add("list app/", "%s %s", pairs(ps), errText(err))
	ps, _, err = kv.List("app", nil)
	add("list app", "%s %s", pairs(ps), errText(err))
	ps, _, err = kv.List("none/", nil)
	add("list none/", "%s %s", pairs(ps), errText(err))
	keys, _, err := kv.Keys("app/", "", nil)
	add("keys app/", "%q %s", keys, errText(err))
	keys, _, err = kv.Keys("app/", "/", nil)
	add("keys app/ separator /", "%q %s", keys, errText(err))
	keys, _, err = kv.Keys("", "/", nil)
	add("keys separator /", "%q %s", keys, errText(err))

	// Check-and-set.
	ok, _, err := kv.CAS(&consul.KVPair{Key: "app/new", Value: []byte("1"), ModifyIndex: 0}, nil)
	add("cas create", "%v %s", ok, errText(err))
	ok, _, err = kv.CAS(&consul.KVPair{Key: "app/new", Value: []byte("2"), ModifyIndex: 0}, nil)
	add("cas create again", "%v %s", ok, errText(err))
	p := get("get app/new", "app/new")
	if p != nil {
		ok, _, err = kv.CAS(&consul.KVPair{Key: "app/new", Value: []byte("3"), ModifyIndex: p.ModifyIndex}, nil)
		add("cas at its index", "%v %s", ok, errText(err))
		ok, _, err = kv.CAS(&consul.KVPair{Key: "app/new", Value: []byte("4"), ModifyIndex: p.ModifyIndex}, nil)
		add("cas at a stale index", "%v %s", ok, errText(err))
		ok, _, err = kv.DeleteCAS(&consul.KVPair{Key: "app/new", ModifyIndex: p.ModifyIndex}, nil)
		add("delete cas at a stale index", "%v %s", ok, errText(err))
	}
	p = get("get app/new again", "app/new")
	if p != nil {
		ok, _, err = kv.DeleteCAS(&consul.KVPair{Key: "app/new", ModifyIndex: p.ModifyIndex}, nil)
		add("delete cas at its index", "%v %s", ok, errText(err))
	}
	get("get deleted", "app/new")

	// Deletes.
	_, err = kv.Delete("seed", nil)
	add("delete seed", "%s", errText(err))
	_, err = kv.Delete("app/none", nil)
	add("delete missing", "%s", errText(err))
	_, err = kv.Delete("apple", nil)
	add("delete apple", "%s", errText(err))
	moved("delete")
	_, err = kv.DeleteTree("app/db/", nil)
	add("delete tree app/db/", "%s", errText(err))
	ps, _, err = kv.List("", nil)
	add("list all", "%s %s", pairs(ps), errText(err))

	// Transactions.
	txn := func(name string, ops consul.KVTxnOps) {
		ok, resp, _, err := kv.Txn(ops, nil)
		if err != nil {
			add(name, "%s", errText(err))
			return
		}
		s := fmt.Sprintf("ok=%v", ok)
		for _, r := range resp.Results {
			s += " " + pair(r)
		}
		for _, e := range resp.Errors {
			// The indexes it names differ: each server's own.
			s += fmt.Sprintf(" error[%d] %q", e.OpIndex, digits.ReplaceAllString(e.What, "N"))
		}
		add(name, "%s", s)
	}
	txn("txn set and get", consul.KVTxnOps{
		{Verb: consul.KVSet, Key: "t/a", Value: []byte("1")},
		{Verb: consul.KVSet, Key: "t/b", Value: []byte("2")},
		{Verb: consul.KVGet, Key: "t/a"},
	})
	txn("txn get-tree", consul.KVTxnOps{{Verb: consul.KVGetTree, Key: "t/"}})
	txn("txn check-not-exists that fails", consul.KVTxnOps{
		{Verb: consul.KVCheckNotExists, Key: "t/a"},
		{Verb: consul.KVSet, Key: "t/c", Value: []byte("3")},
	})
	txn("txn check-not-exists", consul.KVTxnOps{
		{Verb: consul.KVCheckNotExists, Key: "t/c"},
		{Verb: consul.KVSet, Key: "t/c", Value: []byte("3")},
	})
	txn("txn get of a missing key", consul.KVTxnOps{{Verb: consul.KVGet, Key: "t/none"}})
	txn("txn check-index 0", consul.KVTxnOps{{Verb: consul.KVCheckIndex, Key: "t/a", Index: 0}})
	txn("txn cas at 0", consul.KVTxnOps{{Verb: consul.KVCAS, Key: "t/a", Value: []byte("x"), Index: 0}})
	txn("txn delete and delete-tree", consul.KVTxnOps{
		{Verb: consul.KVDelete, Key: "t/a"},
		{Verb: consul.KVDeleteTree, Key: "t/"},
	})
	txn("txn get-tree sees the sets before it", consul.KVTxnOps{
		{Verb: consul.KVSet, Key: "u/b", Value: []byte("1")},
		{Verb: consul.KVSet, Key: "u/a", Value: []byte("2")},
		{Verb: consul.KVGetTree, Key: "u/"},
		{Verb: consul.KVCheckIndex, Key: "u/a", Index: 0},
	})
	txn("txn set, get, then delete", consul.KVTxnOps{
		{Verb: consul.KVSet, Key: "u/c", Value: []byte("3")},
		{Verb: consul.KVGet, Key: "u/c"},
		{Verb: consul.KVDelete, Key: "u/c"},
		{Verb: consul.KVCheckNotExists, Key: "u/c"},
		{Verb: consul.KVSet, Key: "u/d", Value: []byte("4")},
	})
	txn("txn cas and delete-cas after a set", consul.KVTxnOps{
		{Verb: consul.KVSet, Key: "u/e", Value: []byte("5")},
		{Verb: consul.KVCAS, Key: "u/e", Value: []byte("6"), Index: 0},
	})
	txn("txn delete-cas of a key the txn wrote", consul.KVTxnOps{
		{Verb: consul.KVSet, Key: "u/e", Value: []byte("5")},
		{Verb: consul.KVDeleteCAS, Key: "u/e", Index: 0},
	})
	txn("txn delete-cas of a missing key", consul.KVTxnOps{{Verb: consul.KVDeleteCAS, Key: "u/none", Index: 5}})
	txn("txn cas of a missing key", consul.KVTxnOps{{Verb: consul.KVCAS, Key: "u/none", Value: []byte("1"), Index: 5}})
	txn("txn two sets of one key", consul.KVTxnOps{
		{Verb: consul.KVSet, Key: "u/f", Value: []byte("1")},
		{Verb: consul.KVSet, Key: "u/f", Value: []byte("2")},
		{Verb: consul.KVGet, Key: "u/f"},
	})
	// Flags: kept with the key, changed, reset by a put without them, gone
	// with the key.
	_, err = kv.Put(&consul.KVPair{Key: "f/a", Value: []byte("1"), Flags: 42}, nil)
	add("put with flags", "%s", errText(err))
	get("get with flags", "f/a")
	_, err = kv.Put(&consul.KVPair{Key: "f/a", Value: []byte("1b"), Flags: 7}, nil)
	add("put with other flags", "%s", errText(err))
	get("get the new flags", "f/a")
	_, err = kv.Put(&consul.KVPair{Key: "f/b", Value: []byte("2"), Flags: 1}, nil)
	add("put f/b with flags", "%s", errText(err))
	ps, _, err = kv.List("f/", nil)
	add("list with flags", "%s %s", pairs(ps), errText(err))
	txn("txn set with flags and get", consul.KVTxnOps{
		{Verb: consul.KVSet, Key: "f/c", Value: []byte("3"), Flags: 9},
		{Verb: consul.KVGet, Key: "f/c"},
		{Verb: consul.KVGet, Key: "f/a"},
	})
	_, err = kv.Put(&consul.KVPair{Key: "f/a", Value: []byte("4")}, nil)
	add("put without flags", "%s", errText(err))
	get("get after a put without flags", "f/a")
	_, err = kv.Delete("f/b", nil)
	add("delete f/b", "%s", errText(err))
	_, err = kv.Put(&consul.KVPair{Key: "f/b", Value: []byte("5")}, nil)
	add("put f/b again", "%s", errText(err))
	get("get f/b again", "f/b")
	ps, _, err = kv.List("", nil)
	add("list all at the end", "%s %s", pairs(ps), errText(err))
	return out
}
