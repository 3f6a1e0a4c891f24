package consulapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/configd/configd/audit"
)

func TestGoClientGetListKeysPut(t *testing.T) {
	d := newDoor(t)
	kv := d.client(t, "")

	if _, err := kv.Put(&consul.KVPair{Key: "app/db/host", Value: []byte("db1")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(&consul.KVPair{Key: "app/bin", Value: []byte{0xff, 0x00, 0xfe}}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := d.c.Store.Get(t.Context(), "app/bin")
	if err != nil || got.ContentType != "application/octet-stream" || string(got.Value) != "\xff\x00\xfe" {
		t.Fatalf("bytes that are not UTF-8 stored as %q %q (%v), want application/octet-stream", got.ContentType, got.Value, err)
	}
	if h, _ := d.c.Store.Get(t.Context(), "app/db/host"); h.ContentType != "text/plain" {
		t.Fatalf("a UTF-8 value stored as %q, want text/plain", h.ContentType)
	}

	p, meta, err := kv.Get("app/db/host", nil)
	if err != nil || p == nil {
		t.Fatalf("Get: %v %v", p, err)
	}
	h, _ := d.c.Store.Get(t.Context(), "app/db/host")
	if string(p.Value) != "db1" || p.ModifyIndex != uint64(h.ModRev) || p.CreateIndex != uint64(h.CreateRev) || p.Flags != 0 || p.Session != "" {
		t.Fatalf("Get: %+v, want db1 at %d", p, h.ModRev)
	}
	if meta.LastIndex != uint64(d.c.Store.Rev()) || !meta.KnownLeader {
		t.Fatalf("meta %+v, want index %d and a known leader", meta, d.c.Store.Rev())
	}
	if p, _, err := kv.Get("app/missing", nil); err != nil || p != nil {
		t.Fatalf("Get of a missing key: %v %v, want nil nil", p, err)
	}

	pairs, _, err := kv.List("app/", nil)
	if err != nil || len(pairs) != 2 || pairs[0].Key != "app/bin" || pairs[1].Key != "app/db/host" {
		t.Fatalf("List: %v %v", pairs, err)
	}
	keys, _, err := kv.Keys("app/", "/", nil)
	if err != nil || !slices.Equal(keys, []string{"app/bin", "app/db/"}) {
		t.Fatalf("Keys: %v %v", keys, err)
	}

	// A JSON key written by configd stays JSON, and its value is checked
	// as JSON.
	if _, err := d.c.Store.Commit(t.Context(), audit.Txn{Actor: "test", Ops: []audit.Op{audit.Put("app/conf", []byte(`{"a":1}`), "application/json")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(&consul.KVPair{Key: "app/conf", Value: []byte(`{"a":2}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := d.c.Store.Get(t.Context(), "app/conf"); c.ContentType != "application/json" || string(c.Value) != `{"a":2}` {
		t.Fatalf("app/conf is %q %s", c.ContentType, c.Value)
	}
	if _, err := kv.Put(&consul.KVPair{Key: "app/conf", Value: []byte(`{not json`)}, nil); err == nil || !strings.Contains(err.Error(), "422") {
		t.Fatalf("invalid JSON into a JSON key: %v, want 422", err)
	}
	if c, _ := d.c.Store.Get(t.Context(), "app/conf"); string(c.Value) != `{"a":2}` {
		t.Fatalf("the refused value changed app/conf to %s", c.Value)
	}
}

func TestGoClientCASHasOneWinner(t *testing.T) {
	d := newDoor(t)
	kv := d.client(t, "")
	d.put(t, "app/leader", "none")
	p, _, err := kv.Get("app/leader", nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for _, who := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := kv.CAS(&consul.KVPair{Key: "app/leader", Value: []byte(who), ModifyIndex: p.ModifyIndex}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				wins = append(wins, who)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("winners %v, want exactly one", wins)
	}
	if v, _ := d.value(t, "app/leader"); v != wins[0] {
		t.Fatalf("app/leader is %q, the winner %q", v, wins[0])
	}
	// cas=0: only when the key does not exist.
	if ok, _, _ := kv.CAS(&consul.KVPair{Key: "app/leader", Value: []byte("c")}, nil); ok {
		t.Fatal("CAS at index 0 replaced an existing key")
	}
	if ok, _, _ := kv.CAS(&consul.KVPair{Key: "app/new", Value: []byte("c")}, nil); !ok {
		t.Fatal("CAS at index 0 did not create a new key")
	}
}

func TestGoClientDeleteCASAndDeleteTree(t *testing.T) {
	d := newDoor(t)
	kv := d.client(t, "")
	d.put(t, "app/a", "1")
	d.put(t, "app/b/c", "2")
	d.put(t, "apple", "3")
	a, _ := d.c.Store.Get(t.Context(), "app/a")

	if ok, _, err := kv.DeleteCAS(&consul.KVPair{Key: "app/a", ModifyIndex: uint64(a.ModRev) + 100}, nil); err != nil || ok {
		t.Fatalf("DeleteCAS at a stale index: %v %v", ok, err)
	}
	if _, ok := d.value(t, "app/a"); !ok {
		t.Fatal("a failed DeleteCAS deleted the key")
	}
	if ok, _, err := kv.DeleteCAS(&consul.KVPair{Key: "app/a", ModifyIndex: uint64(a.ModRev)}, nil); err != nil || !ok {
		t.Fatalf("DeleteCAS at the key's index: %v %v", ok, err)
	}
	if _, ok := d.value(t, "app/a"); ok {
		t.Fatal("DeleteCAS left the key")
	}

	// Deleting a key that does not exist is done, as Consul answers.
	before := d.c.Store.Rev()
	if _, err := kv.Delete("app/never", nil); err != nil || d.c.Store.Rev() != before {
		t.Fatalf("Delete of a missing key: %v, revision %d -> %d", err, before, d.c.Store.Rev())
	}
	if ok, _, err := kv.DeleteCAS(&consul.KVPair{Key: "app/never", ModifyIndex: 7}, nil); err != nil || !ok {
		t.Fatalf("DeleteCAS of a missing key: %v %v, want true", ok, err)
	}

	// Configd's own keys are never in a tree delete of everything.
	d.put(t, ".configd/policies", "{}")
	if _, err := kv.DeleteTree("", nil); err != nil {
		t.Fatal(err)
	}
	rev := d.last(t)
	if len(rev.Changes) != 2 {
		t.Fatalf("DeleteTree of everything: %d changes, want app/b/c and apple", len(rev.Changes))
	}
	if _, ok := d.value(t, ".configd/policies"); !ok {
		t.Fatal("DeleteTree of everything deleted configd's own key")
	}
}

func TestGoClientTxnIsOneRevision(t *testing.T) {
	d := newDoor(t)
	c, err := consul.NewClient(&consul.Config{Address: d.addr})
	if err != nil {
		t.Fatal(err)
	}
	d.put(t, "app/x", "1")
	x, _ := d.c.Store.Get(t.Context(), "app/x")
	before := d.c.Store.Rev()
	ok, resp, _, err := c.Txn().Txn(consul.TxnOps{
		{KV: &consul.KVTxnOp{Verb: consul.KVCheckIndex, Key: "app/x", Index: uint64(x.ModRev)}},
		{KV: &consul.KVTxnOp{Verb: consul.KVSet, Key: "app/x", Value: []byte("2")}},
		{KV: &consul.KVTxnOp{Verb: consul.KVSet, Key: "app/y", Value: []byte("3")}},
		{KV: &consul.KVTxnOp{Verb: consul.KVGet, Key: "app/x"}},
	}, nil)
	if err != nil || !ok {
		t.Fatalf("Txn: %v %v %+v", ok, err, resp)
	}
	rev := d.last(t)
	if rev.Rev != before+1 || len(rev.Changes) != 2 || rev.Origin != "consul-api" {
		t.Fatalf("the txn made revision %d with %d changes, want one revision of 2", rev.Rev, len(rev.Changes))
	}
	if len(resp.Results) != 4 || resp.Results[1].KV.ModifyIndex != uint64(rev.Rev) {
		t.Fatalf("results %+v", resp.Results)
	}

	// A failed check: nothing is written, Consul's 409 with the op named.
	before = d.c.Store.Rev()
	ok, resp, _, err = c.Txn().Txn(consul.TxnOps{
		{KV: &consul.KVTxnOp{Verb: consul.KVSet, Key: "app/z", Value: []byte("9")}},
		{KV: &consul.KVTxnOp{Verb: consul.KVCheckNotExists, Key: "app/y"}},
	}, nil)
	if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 {
		t.Fatalf("a failed check: ok %v err %v resp %+v", ok, err, resp)
	}
	if _, present := d.value(t, "app/z"); present || d.c.Store.Rev() != before {
		t.Fatal("a failed txn wrote")
	}

	// A cas whose index went stale loses at the commit.
	ok, resp, _, err = c.Txn().Txn(consul.TxnOps{
		{KV: &consul.KVTxnOp{Verb: consul.KVCAS, Key: "app/x", Value: []byte("3"), Index: uint64(x.ModRev)}},
		{KV: &consul.KVTxnOp{Verb: consul.KVDeleteTree, Key: "app/y"}},
	}, nil)
	if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 0 {
		t.Fatalf("a stale cas: ok %v err %v resp %+v", ok, err, resp)
	}
	if v, _ := d.value(t, "app/y"); v != "3" {
		t.Fatal("a failed txn deleted app/y")
	}
}

func TestGoClientBlockingQuery(t *testing.T) {
	d := newDoor(t)
	kv := d.client(t, "")
	d.put(t, "app/k", "1")
	_, meta, err := kv.Get("app/k", nil)
	if err != nil {
		t.Fatal(err)
	}

	// One that times out: the same data and index.
	start := time.Now()
	p, meta2, err := kv.Get("app/k", &consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 300 * time.Millisecond})
	if err != nil || string(p.Value) != "1" || meta2.LastIndex != meta.LastIndex {
		t.Fatalf("timed out query: %v %+v %v", p, meta2, err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("returned after %v, before its wait", el)
	}

	// A write to another key does not wake it; one to the key does.
	type answer struct {
		p    *consul.KVPair
		meta *consul.QueryMeta
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		p, m, err := kv.List("app/", &consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		var first *consul.KVPair
		if len(p) > 0 {
			first = p[0]
		}
		done <- answer{first, m, err}
	}()
	d.put(t, "other", "x")
	select {
	case a := <-done:
		t.Fatalf("a write outside the prefix woke the query: %+v", a)
	case <-time.After(200 * time.Millisecond):
	}
	rev := d.put(t, "app/k", "2")
	select {
	case a := <-done:
		if a.err != nil || string(a.p.Value) != "2" || a.meta.LastIndex != uint64(rev.Rev) {
			t.Fatalf("woken query: %+v %+v %v", a.p, a.meta, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write to the prefix did not wake the query")
	}

	// An index configd has not reached is answered at once with the
	// current, lower index: the client starts over from it.
	start = time.Now()
	_, meta3, err := kv.Get("app/k", &consul.QueryOptions{WaitIndex: 1 << 40, WaitTime: time.Minute})
	if err != nil || meta3.LastIndex != uint64(rev.Rev) || time.Since(start) > 10*time.Second {
		t.Fatalf("future index: %+v %v after %v", meta3, err, time.Since(start))
	}
}

func TestGoClientTokens(t *testing.T) {
	d := newDoor(t, withAuth())
	writer := d.token(t, "deployer", "write:app/")
	reader := d.token(t, "viewer", "read:app/")
	other := d.token(t, "stranger", "read:other/")

	if _, err := d.client(t, writer).Put(&consul.KVPair{Key: "app/k", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	if rev := d.last(t); rev.Actor != "deployer" || rev.Origin != "consul-api" {
		t.Fatalf("revision by %q from %q, want deployer from consul-api", rev.Actor, rev.Origin)
	}
	if p, _, err := d.client(t, reader).Get("app/k", nil); err != nil || string(p.Value) != "v" {
		t.Fatalf("reader's Get: %v %v", p, err)
	}
	_, err := d.client(t, reader).Put(&consul.KVPair{Key: "app/k", Value: []byte("w")}, nil)
	if !isStatus(err, 403) || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("reader's Put: %v, want 403 Permission denied", err)
	}
	if v, _ := d.value(t, "app/k"); v != "v" {
		t.Fatal("a refused put wrote")
	}
	if _, _, err := d.client(t, other).Get("app/k", nil); !isStatus(err, 403) {
		t.Fatalf("a token without read: %v, want 403", err)
	}
	if _, _, err := d.client(t, "").Get("app/k", nil); !isStatus(err, 403) {
		t.Fatalf("no token: %v, want 403", err)
	}
	if _, _, err := d.client(t, "cfgd_not-a-token").Get("app/k", nil); !isStatus(err, 403) || !strings.Contains(err.Error(), "ACL not found") {
		t.Fatalf("an unknown token: %v, want 403 ACL not found", err)
	}
	// A listing leaves out what the token may not read, as Consul does.
	d.put(t, "other/k", "o")
	pairs, _, err := d.client(t, other).List("", nil)
	if err != nil || len(pairs) != 1 || pairs[0].Key != "other/k" {
		t.Fatalf("stranger's List of everything: %v %v", pairs, err)
	}
}

// isStatus reports whether err is Consul's client's error for status.
func isStatus(err error, status int) bool {
	var se consul.StatusError
	if errors.As(err, &se) {
		return se.Code == status
	}
	return err != nil && strings.Contains(err.Error(), "Unexpected response code: "+strconv.Itoa(status))
}

func TestAWriteCarriesTheReasonHeader(t *testing.T) {
	d := newDoor(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, d.srv.URL+"/v1/kv/app/k", strings.NewReader("v"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Configd-Reason", "INC-42 failover")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if rev := d.last(t); resp.StatusCode != http.StatusOK || rev.Reason != "INC-42 failover" || rev.Origin != "consul-api" {
		t.Fatalf("%d: revision reason %q origin %q", resp.StatusCode, rev.Reason, rev.Origin)
	}
}

func TestABlockingQueryWakesOnlyForKeysItsTokenReads(t *testing.T) {
	d := newDoor(t, withAuth())
	kv := d.client(t, d.token(t, "narrow", "read:app/a/"))
	d.put(t, "app/a/k", "1")
	_, meta, err := kv.List("app/", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan uint64, 1)
	go func() {
		_, m, err := kv.List("app/", &consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		done <- m.LastIndex
	}()
	d.put(t, "app/b/secret-plan", "x")
	select {
	case <-done:
		t.Fatal("a write the token may not read woke its query")
	case <-time.After(200 * time.Millisecond):
	}
	rev := d.put(t, "app/a/k", "2")
	select {
	case idx := <-done:
		if idx != uint64(rev.Rev) {
			t.Fatalf("woken at index %d, want %d", idx, rev.Rev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write the token reads did not wake its query")
	}
}

// Two transactions that each check the key the other writes can never
// both succeed (no write skew): each is decided at one revision and
// committed only if nothing came first.
func TestTxnChecksHoldAtTheCommit(t *testing.T) {
	d := newDoor(t)
	c, err := consul.NewClient(&consul.Config{Address: d.addr})
	if err != nil {
		t.Fatal(err)
	}
	skew := func(check, set string) consul.TxnOps {
		return consul.TxnOps{
			{KV: &consul.KVTxnOp{Verb: consul.KVCheckNotExists, Key: check}},
			{KV: &consul.KVTxnOp{Verb: consul.KVSet, Key: set, Value: []byte("1")}},
		}
	}
	for round := range 20 {
		x, y := fmt.Sprintf("r%d/x", round), fmt.Sprintf("r%d/y", round)
		var wg sync.WaitGroup
		oks := make([]bool, 2)
		for i, ops := range []consul.TxnOps{skew(x, y), skew(y, x)} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, _, _, err := c.Txn().Txn(ops, nil)
				if err != nil {
					t.Error(err)
				}
				oks[i] = ok
			}()
		}
		wg.Wait()
		if oks[0] == oks[1] {
			t.Fatalf("round %d: both transactions answered %v, want exactly one to succeed", round, oks[0])
		}
	}
}
