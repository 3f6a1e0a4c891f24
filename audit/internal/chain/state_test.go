package chain

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/audit/record"
)

// The lanes are added and subtracted modulo 2^16 each, whatever the carries
// and borrows, and the order of the elements does not matter.
func TestLtHashAddsAndSubtractsEachLaneModulo2To16(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lanes := func(h *LtHash) []uint16 {
		out := make([]uint16, 0, ltWords*4)
		for _, w := range h {
			for j := range 4 {
				out = append(out, uint16(w>>(16*j)))
			}
		}
		return out
	}
	var a, b, c LtHash
	for i := range a {
		a[i], b[i], c[i] = rng.Uint64(), rng.Uint64(), rng.Uint64()
	}
	// Lanes at the edges: 0, 1, 0x7fff, 0x8000, 0xffff.
	a[0], b[0] = 0xffff_8000_7fff_0000, 0x0001_8000_0001_ffff
	var x, y [ltWords * 8]byte
	for i := range b {
		binary.LittleEndian.PutUint64(x[8*i:], b[i])
		binary.LittleEndian.PutUint64(y[8*i:], c[i])
	}
	sum := a
	sum.add(&x)
	la, lb, ls := lanes(&a), lanes(&b), lanes(&sum)
	for i := range ls {
		if ls[i] != la[i]+lb[i] {
			t.Fatalf("lane %d: %#x + %#x = %#x, want %#x", i, la[i], lb[i], ls[i], la[i]+lb[i])
		}
	}
	diff := a
	diff.sub(&x)
	ld := lanes(&diff)
	for i := range ld {
		if ld[i] != la[i]-lb[i] {
			t.Fatalf("lane %d: %#x - %#x = %#x, want %#x", i, la[i], lb[i], ld[i], la[i]-lb[i])
		}
	}
	if sum.sub(&x); sum != a {
		t.Fatal("a + b - b != a")
	}
	ab, ba := a, a
	ab.add(&x)
	ab.add(&y)
	ba.add(&y)
	ba.add(&x)
	if ab != ba {
		t.Fatal("the order of the elements changes the sum")
	}
}

// Two rows that differ in any column, or a row in kv and the same in a
// layer, are different elements.
func TestStateRowsAreDistinctElements(t *testing.T) {
	base := record.KeyValue{Key: "k", Value: []byte("v"), ContentType: record.TypeText, CreateRev: 1, ModRev: 2, Version: 2}
	kvs := []record.KeyValue{base}
	for _, edit := range []func(*record.KeyValue){
		func(kv *record.KeyValue) { kv.Key = "k2" },
		func(kv *record.KeyValue) { kv.Value = []byte("w") },
		func(kv *record.KeyValue) { kv.ContentType = record.TypeJSON },
		func(kv *record.KeyValue) { kv.CreateRev = 2 },
		func(kv *record.KeyValue) { kv.ModRev = 3 },
		func(kv *record.KeyValue) { kv.Version = 3 },
		func(kv *record.KeyValue) { kv.Secret = true },
	} {
		kv := base
		edit(&kv)
		kvs = append(kvs, kv)
	}
	var h stateHasher
	seen := map[string]string{}
	add := func(what string, f func(sum *LtHash)) {
		var sum LtHash
		f(&sum)
		d := hex.EncodeToString(sum.digest())
		if prev, dup := seen[d]; dup {
			t.Fatalf("%s and %s are the same element", prev, what)
		}
		seen[d] = what
	}
	for i := range kvs {
		add(fmt.Sprintf("kv row %+v", kvs[i]), func(sum *LtHash) { h.kvRow(sum, kvs[i].Key, &kvs[i], false) })
	}
	for _, v := range []record.LayerValue{text("v"), {Tombstone: true}, {Value: []byte("v"), ContentType: record.TypeText, Secret: true}, text("")} {
		for _, layer := range []string{record.StoreLayer, "file"} {
			add(fmt.Sprintf("layer %s row %+v", layer, v), func(sum *LtHash) { h.layerRow(sum, layer, "k", &v, false) })
		}
	}
}

// A nil state encodes as before the digest existed: a chain written then
// keeps its hashes (the golden hash was computed by the code before it).
func TestRevisionsWithoutAStateDigestHashAsBefore(t *testing.T) {
	r := record.Revision{Rev: 42, Time: time.Unix(0, 1_700_000_000_123456789), Actor: "alice", Reason: "why", Origin: "api", NumChanges: 1,
		Changes: []record.Change{{Key: "app/k", Type: record.OpPut,
			Old: &record.KeyValue{Key: "app/k", Value: []byte("1"), ContentType: record.TypeText, CreateRev: 3, ModRev: 3, Version: 1},
			New: &record.KeyValue{Key: "app/k", Value: []byte("2"), ContentType: record.TypeText, CreateRev: 3, ModRev: 42, Version: 2}}},
		LayerChanges: []record.LayerChange{{Layer: record.StoreLayer, Key: "app/k", Old: &record.LayerValue{Value: []byte("1"), ContentType: record.TypeText},
			New: &record.LayerValue{Value: []byte("2"), ContentType: record.TypeText}}}}
	prev := make([]byte, 32)
	for i := range prev {
		prev[i] = byte(i)
	}
	var enc chainEncoder
	const golden = "dd2a40148efd66b4b91dcd3eed5597d9822e923f527a8eb25c9102cc7a8840a8"
	if got := hex.EncodeToString(enc.revisionHash(prev, &r, nil)); got != golden {
		t.Fatalf("revision hash without a state digest = %s, want %s", got, golden)
	}
	if got := hex.EncodeToString(enc.revisionHash(prev, &r, make([]byte, 32))); got == golden {
		t.Fatal("a state digest does not change the revision hash")
	}
}

// BenchmarkStateHashRow measures what the digest adds to a write, per row
// the LtHash takes in or gives up (a put of an existing key moves four: its
// old and new kv row and store layer row), with a 200-byte value.
func BenchmarkStateHashRow(b *testing.B) {
	kv := &record.KeyValue{Key: "bench/1", Value: []byte(strings.Repeat("v", 200)), ContentType: record.TypeText, CreateRev: 1, ModRev: 42, Version: 7}
	var h stateHasher
	var sum LtHash
	b.ReportAllocs()
	for i := range b.N {
		h.kvRow(&sum, kv.Key, kv, i%2 == 1)
	}
}

// BenchmarkStateDigestOfAPut measures what the digest adds to the
// writer's work for a revision that changes one existing key (200-byte
// values): its old and new kv rows and store layer rows, and the digest.
func BenchmarkStateDigestOfAPut(b *testing.B) {
	old := &record.KeyValue{Key: "bench/1", Value: []byte(strings.Repeat("v", 200)), ContentType: record.TypeText, CreateRev: 1, ModRev: 41, Version: 6}
	nw := &record.KeyValue{Key: "bench/1", Value: []byte(strings.Repeat("w", 200)), ContentType: record.TypeText, CreateRev: 1, ModRev: 42, Version: 7}
	oldL, newL := &record.LayerValue{Value: old.Value, ContentType: record.TypeText}, &record.LayerValue{Value: nw.Value, ContentType: record.TypeText}
	var st stateSum
	b.ReportAllocs()
	for range b.N {
		st.h.kvRow(&st.pending, old.Key, old, true)
		st.h.kvRow(&st.pending, nw.Key, nw, false)
		st.h.layerRow(&st.pending, record.StoreLayer, old.Key, oldL, true)
		st.h.layerRow(&st.pending, record.StoreLayer, nw.Key, newL, false)
		st.pending.digest()
	}
}

func text(v string) record.LayerValue {
	return record.LayerValue{Value: []byte(v), ContentType: record.TypeText}
}
