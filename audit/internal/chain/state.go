package chain

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
)

// The state digest makes the current state part of what the audit chain
// attests (issue 13). Each revision records the SHA-256 of an LtHash of the
// state it produced: every row of kv and layer_kv as stored (a secret's
// ciphertext and its secret flag included), and its chain hash covers that
// digest. Open and Verify recompute the LtHash from the tables and compare
// it with the newest revision's digest; Open refuses a state that differs,
// so an edited, inserted or deleted row is not served.
//
// LtHash (Bellare and Micciancio's lattice hash, with the parameters of
// Lewi et al., "Securing update propagation with homomorphic hashing",
// 2019: 1024 lanes of 16 bits) is a set hash: the lane-wise sum, modulo
// 2^16, of a 2048-byte expansion of each element. Adding and removing an
// element commute, so the writer keeps the digest up to date with the old
// and new rows of each change, a microsecond or two per row, and a scan in
// any order recomputes it. A sum or xor of 256-bit hashes would not do:
// generalised birthday attacks find sets with equal sums. An element's
// expansion is the AES-256-CTR keystream (zero IV) under the SHA-256 of
// the row's canonical encoding: a PRF output per row, and AES-NI makes it
// several times faster than SHAKE.
//
// What it cannot catch on its own: someone who rewrites the state and
// recomputes the digests and the chain after it. A head hash kept elsewhere
// catches that: the head's hash covers its digest.

const (
	stateRowDomain    = "configd state row v1\n"
	stateDigestDomain = "configd state v1\n"
	// ltWords is the LtHash's size in 64-bit words: 1024 lanes of 16 bits,
	// four lanes per word, the lowest lane in the lowest bits.
	ltWords = 256
	// laneHigh has the top bit of each 16-bit lane of a word.
	laneHigh = 0x8000_8000_8000_8000
)

// LtHash is an LtHash of a set of rows; the zero value is the empty set.
// Two LtHashes of the same set are equal (==).
type LtHash [ltWords]uint64

// addLanes adds the four lanes of b to those of a: within each lane, the
// sum of the low 15 bits cannot carry into the next lane, and the top bit
// is the xor of both top bits and that carry.
func addLanes(a, b uint64) uint64 {
	return ((a &^ laneHigh) + (b &^ laneHigh)) ^ ((a ^ b) & laneHigh)
}

// add adds an element's expansion x, 2048 bytes, lane by lane.
func (h *LtHash) add(x *[ltWords * 8]byte) {
	for i := range h {
		h[i] = addLanes(h[i], binary.LittleEndian.Uint64(x[8*i:]))
	}
}

// addSum adds the elements of o.
func (h *LtHash) addSum(o *LtHash) {
	for i := range h {
		h[i] = addLanes(h[i], o[i])
	}
}

// sub removes an element's expansion x: setting each lane's top bit in the
// minuend and clearing it in the subtrahend keeps a borrow from crossing
// lanes, and the top bit is then fixed up as in add.
func (h *LtHash) sub(x *[ltWords * 8]byte) {
	for i := range h {
		a, b := h[i], binary.LittleEndian.Uint64(x[8*i:])
		h[i] = ((a | laneHigh) - (b &^ laneHigh)) ^ ((a ^ ^b) & laneHigh)
	}
}

// digest is what a revision records: SHA-256 over the lanes, little-endian.
func (h *LtHash) digest() []byte {
	var buf [len(stateDigestDomain) + ltWords*8]byte
	n := copy(buf[:], stateDigestDomain)
	for i, w := range h {
		binary.LittleEndian.PutUint64(buf[n+8*i:], w)
	}
	sum := sha256.Sum256(buf[:])
	return sum[:]
}

// rowSeed is the SHA-256 of a row's canonical encoding: the key of its
// element's expansion.
type rowSeed [sha256.Size]byte

// stateHasher encodes rows and expands them into elements. Its buffers are
// reused: one hasher serves one goroutine.
type stateHasher struct {
	enc  chainEncoder
	iv   [aes.BlockSize]byte // zero
	zero [ltWords * 8]byte
	ks   [ltWords * 8]byte
}

// expand returns the element of the row whose seed is seed.
func (h *stateHasher) expand(seed *rowSeed) *[ltWords * 8]byte {
	block, err := aes.NewCipher(seed[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	cipher.NewCTR(block, h.iv[:]).XORKeyStream(h.ks[:], h.zero[:])
	return &h.ks
}

// kvRow adds a kv row, as stored, to sum, or removes it.
func (h *stateHasher) kvRow(sum *LtHash, key string, kv *record.KeyValue, remove bool) {
	seed := h.kvSeed(key, kv)
	h.apply(sum, &seed, remove)
}

// layerRow adds a layer_kv row, as stored, to sum, or removes it.
func (h *stateHasher) layerRow(sum *LtHash, layer, key string, v *record.LayerValue, remove bool) {
	seed := h.layerSeed(layer, key, v)
	h.apply(sum, &seed, remove)
}

func (h *stateHasher) apply(sum *LtHash, seed *rowSeed, remove bool) {
	x := h.expand(seed)
	if remove {
		sum.sub(x)
		return
	}
	sum.add(x)
}

// kvSeed returns the seed of a kv row, as stored.
func (h *stateHasher) kvSeed(key string, kv *record.KeyValue) rowSeed {
	e := &h.enc
	e.buf = append(e.buf[:0], stateRowDomain...)
	e.buf = append(e.buf, 'k')
	e.kvRow(key, kv)
	return sha256.Sum256(e.buf)
}

// kvRow encodes a row of kv (or of history_base, which has its columns),
// as stored.
func (e *chainEncoder) kvRow(key string, kv *record.KeyValue) {
	e.text(key)
	e.blob(kv.Value)
	e.text(kv.ContentType)
	e.int(kv.CreateRev)
	e.int(kv.ModRev)
	e.int(kv.Version)
	e.secret(kv.Secret)
}

// layerSeed returns the seed of a layer_kv row, as stored. A tombstone is
// stored with no value and an empty type.
func (h *stateHasher) layerSeed(layer, key string, v *record.LayerValue) rowSeed {
	e := &h.enc
	e.buf = append(e.buf[:0], stateRowDomain...)
	e.buf = append(e.buf, 'l')
	e.text(layer)
	e.text(key)
	if v.Tombstone {
		e.blob(nil)
		e.text("")
	} else {
		e.blob(v.Value)
		e.text(v.ContentType)
	}
	e.secret(v.Secret)
	return sha256.Sum256(e.buf)
}

// seedChunk is how many seeds sumSeeds hands a CPU at a time.
const seedChunk = 512

// sumSeeds returns the LtHash of the rows whose seeds produce emits (from
// its own goroutine), expanding them on every CPU: the expansions are most
// of the work of hashing a whole state.
func sumSeeds(produce func(emit func(rowSeed)) error) (LtHash, error) {
	n := runtime.GOMAXPROCS(0)
	chunks := make(chan []rowSeed, n)
	sums := make([]LtHash, n)
	var wg sync.WaitGroup
	for i := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h stateHasher
			for c := range chunks {
				for j := range c {
					sums[i].add(h.expand(&c[j]))
				}
			}
		}()
	}
	chunk := make([]rowSeed, 0, seedChunk)
	err := produce(func(seed rowSeed) {
		if chunk = append(chunk, seed); len(chunk) == seedChunk {
			chunks <- chunk
			chunk = make([]rowSeed, 0, seedChunk)
		}
	})
	chunks <- chunk
	close(chunks)
	wg.Wait()
	var total LtHash
	for i := range sums {
		total.addSum(&sums[i])
	}
	return total, err
}

// stateSum is the commit path's LtHash of the state: as of the newest
// durable revision, and as of the newest one staged in the batch under way.
type stateSum struct {
	head, pending LtHash
	h             stateHasher
}

// StateReport is what CheckState found.
type StateReport struct {
	Sum LtHash // of the rows of kv and layer_kv
	// Head is the newest revision and StateFrom the first that must
	// record a digest (see migrations/0009_state_digest.sql).
	Head, StateFrom int64
	// Problem says how the state disagrees with the history ("" when it
	// does not) and BrokenRev names the revision concerned.
	Problem   string
	BrokenRev int64
}

// CheckState compares the current state with the history, in q's
// snapshot: the history must reach the high-water mark (the newest
// revision ever committed) and the compaction horizon, no key may have
// been modified after the newest revision, and the state must match the
// digest that revision recorded. It reads every row of kv and layer_kv,
// and passes those of kv, as stored, to keep unless it is nil.
func CheckState(ctx context.Context, q sqlitedb.Querier, keep func(record.KeyValue)) (StateReport, error) {
	var rep StateReport
	var head, horizon sql.NullInt64
	var highWater int64
	if err := q.QueryRowContext(ctx, `SELECT (SELECT max(rev) FROM revisions), state_from, high_water,
		(SELECT horizon FROM compactions ORDER BY id DESC LIMIT 1) FROM audit_chain WHERE id = 1`).
		Scan(&head, &rep.StateFrom, &highWater, &horizon); err != nil {
		return rep, fmt.Errorf("audit: state: read the chain's state: %w", err)
	}
	rep.Head = head.Int64
	// An empty history produced the empty state.
	recorded := (&LtHash{}).digest()
	// A replica restored from its cluster's snapshot at the horizon holds
	// no revision until it applies the horizon's: its state is the one
	// before the horizon, which that revision's digest checks when it is
	// applied (see package etcdlog).
	atHorizon := !head.Valid && horizon.Int64 > 0
	if atHorizon {
		rep.Head, recorded = horizon.Int64-1, nil
	}
	if rep.Head > 0 && !atHorizon {
		if err := q.QueryRowContext(ctx, `SELECT state FROM revisions WHERE rev = ?`, rep.Head).Scan(&recorded); err != nil {
			return rep, fmt.Errorf("audit: state: read revision %d: %w", rep.Head, err)
		}
	}
	sum, newest, newestKey, err := StateOf(ctx, q, keep)
	if err != nil {
		return rep, err
	}
	rep.Sum = sum
	kept := horizon.Int64 // a history compacted to it keeps it
	if atHorizon {
		kept--
	}
	switch reached := max(highWater, kept); {
	case reached > rep.Head:
		rep.BrokenRev = rep.Head + 1
		rep.Problem = fmt.Sprintf("the history ends at revision %d, but this database had reached revision %d: revisions %d..%d were removed",
			rep.Head, reached, rep.Head+1, reached)
	case newest > rep.Head:
		rep.BrokenRev = rep.Head + 1
		rep.Problem = fmt.Sprintf("the history ends at revision %d, but the state is newer: key %q was modified at revision %d (the newest revisions were removed, or the key was edited)",
			rep.Head, newestKey, newest)
	case recorded != nil && !bytes.Equal(recorded, rep.Sum.digest()):
		rep.BrokenRev = rep.Head
		rep.Problem = fmt.Sprintf("the current state disagrees with the history at revision %d: the kv and layer_kv tables do not match the state digest it recorded (a row was edited, added or removed behind configd's back)",
			rep.Head)
	case recorded == nil && rep.Head >= rep.StateFrom && !atHorizon:
		rep.BrokenRev = rep.Head
		rep.Problem = fmt.Sprintf("revision %d records no state digest, though every revision from %d on does", rep.Head, rep.StateFrom)
	}
	return rep, nil
}

// StateOf returns the LtHash of every row of kv and layer_kv (those of
// layers no longer configured included) and the newest revision at which a
// key was modified, with the key; it passes the rows of kv to keep unless
// it is nil.
func StateOf(ctx context.Context, q sqlitedb.Querier, keep func(record.KeyValue)) (sum LtHash, newest int64, newestKey string, err error) {
	sum, err = sumSeeds(func(emit func(rowSeed)) error {
		var h stateHasher
		var err error
		if newest, newestKey, err = seedKV(ctx, q, &h, emit, keep); err != nil {
			return err
		}
		return seedLayers(ctx, q, &h, emit)
	})
	return sum, newest, newestKey, err
}

// LayerRow is a row of layer_kv, as stored.
type LayerRow struct {
	Layer, Key string
	Value      record.LayerValue
}

// StateDigest returns the digest of the state whose rows of kv and
// layer_kv, as stored, are kvs and layers: what the revision that produced
// that state recorded.
func StateDigest(kvs []record.KeyValue, layers []LayerRow) ([]byte, error) {
	sum, err := sumSeeds(func(emit func(rowSeed)) error {
		var h stateHasher
		for i := range kvs {
			emit(h.kvSeed(kvs[i].Key, &kvs[i]))
		}
		for i := range layers {
			emit(h.layerSeed(layers[i].Layer, layers[i].Key, &layers[i].Value))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sum.digest(), nil
}

// seedKV emits the seed of every row of kv, passes the row to keep unless
// it is nil, and returns the newest revision at which a key was modified,
// and the key.
func seedKV(ctx context.Context, q sqlitedb.Querier, h *stateHasher, emit func(rowSeed), keep func(record.KeyValue)) (int64, string, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value, content_type, create_rev, mod_rev, version, secret FROM kv`)
	if err != nil {
		return 0, "", fmt.Errorf("audit: state: read kv: %w", err)
	}
	defer rows.Close()
	var newest int64
	var newestKey string
	for rows.Next() {
		var kv record.KeyValue // Scan gives each row a Value of its own
		if err := rows.Scan(&kv.Key, &kv.Value, &kv.ContentType, &kv.CreateRev, &kv.ModRev, &kv.Version, &kv.Secret); err != nil {
			return 0, "", fmt.Errorf("audit: state: read kv: %w", err)
		}
		if kv.Value == nil {
			kv.Value = []byte{}
		}
		emit(h.kvSeed(kv.Key, &kv))
		if keep != nil {
			keep(kv)
		}
		if m := max(kv.ModRev, kv.CreateRev); m > newest {
			newest, newestKey = m, kv.Key
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("audit: state: read kv: %w", err)
	}
	return newest, newestKey, nil
}

// seedLayers emits the seed of every row of layer_kv, and of each store
// layer row that the database leaves implied by kv (sqlitedb.Implied).
func seedLayers(ctx context.Context, q sqlitedb.Querier, h *stateHasher, emit func(rowSeed)) error {
	if err := seedStoredLayers(ctx, q, h, emit); err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, sqlitedb.ImpliedStoreRows)
	if err != nil {
		return fmt.Errorf("audit: state: read the implied store layer rows: %w", err)
	}
	defer rows.Close()
	var key string
	var v record.LayerValue
	for rows.Next() {
		if err := rows.Scan(&key, &v.Value, &v.ContentType); err != nil {
			return fmt.Errorf("audit: state: read the implied store layer rows: %w", err)
		}
		emit(h.layerSeed(record.StoreLayer, key, &v))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: state: read the implied store layer rows: %w", err)
	}
	return nil
}

// seedStoredLayers emits the seed of every row of layer_kv.
func seedStoredLayers(ctx context.Context, q sqlitedb.Querier, h *stateHasher, emit func(rowSeed)) error {
	rows, err := q.QueryContext(ctx, `SELECT layer, key, value, content_type, secret FROM layer_kv`)
	if err != nil {
		return fmt.Errorf("audit: state: read layer_kv: %w", err)
	}
	defer rows.Close()
	var layer, key string
	var v record.LayerValue
	for rows.Next() {
		if err := rows.Scan(&layer, &key, &v.Value, &v.ContentType, &v.Secret); err != nil {
			return fmt.Errorf("audit: state: read layer_kv: %w", err)
		}
		v.Tombstone = v.ContentType == ""
		emit(h.layerSeed(layer, key, &v))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: state: read layer_kv: %w", err)
	}
	return nil
}
