package etcdlog

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/internal/retention"
	"github.com/configd/configd/audit/record"
)

// Retention in a cluster (see package retention): a compaction is decided
// once, by one replica, and recorded in the log beside the revisions, so
// that every replica meets it in order with them:
//
//	P/log/compaction/<id>        the compaction record (id in 20 digits),
//	                             kept for ever: the records chain
//	P/snapshot/<horizon>/<part>  the state before the newest horizon,
//	                             in parts of at most snapshotPart bytes
//
// The transaction that records compaction <id> (if no replica recorded one
// under <id> first) also deletes the log's records below its horizon and
// the snapshot of the horizon before; then the replica compacts etcd's own
// history (its MVCC revisions) up to that transaction. A replica that
// starts on an empty data dir takes the compaction records and the
// snapshot, and applies the log from the horizon on (Restore).

// snapshotPart is the largest part of a snapshot: one put of it stays
// under etcd's default request limit (1.5 MiB).
const snapshotPart = 1 << 20

// ErrBehindHorizon: the replica has not applied revisions that the
// cluster compacted away (they are no longer in the log).
var ErrBehindHorizon = errors.New("the replica is behind the cluster's history horizon")

func (l *Log) compactionDir() string { return l.logDir() + "compaction/" }
func (l *Log) compactionKey(id int64) string {
	return l.compactionDir() + revString(id)
}
func (l *Log) snapshotDir() string { return l.prefix + "/snapshot/" }
func (l *Log) snapshotHorizonDir(horizon int64) string {
	return l.snapshotDir() + revString(horizon) + "/"
}

// compactionJSON is a compaction record in etcd.
type compactionJSON struct {
	ID            int64  `json:"id"`
	TS            int64  `json:"ts"`
	From          int64  `json:"from"`
	Horizon       int64  `json:"horizon"`
	Revisions     int64  `json:"revisions"`
	Rows          int64  `json:"rows"`
	KeepRevisions int64  `json:"keep_revisions"`
	KeepAge       int64  `json:"keep_age"`
	Anchor        []byte `json:"anchor"`
	BaseHash      []byte `json:"base_hash"`
	Hash          []byte `json:"hash"`
	// The snapshot of the state before the horizon: how many parts, and
	// the SHA-256 of their concatenation.
	SnapshotParts  int    `json:"snapshot_parts"`
	SnapshotSHA256 []byte `json:"snapshot_sha256"`
}

// snapshotJSON is the state before a horizon.
type snapshotJSON struct {
	KV     []kvJSON    `json:"kv"`
	Layers []layerJSON `json:"layers"`
}

type kvJSON struct {
	Key       string `json:"k"`
	Value     []byte `json:"v,omitempty"`
	Type      string `json:"t"`
	CreateRev int64  `json:"c"`
	ModRev    int64  `json:"m"`
	Version   int64  `json:"n"`
	Secret    bool   `json:"s,omitempty"`
}

type layerJSON struct {
	Layer     string `json:"l"`
	Key       string `json:"k"`
	Value     []byte `json:"v,omitempty"`
	Type      string `json:"t"`
	Tombstone bool   `json:"x,omitempty"`
	Secret    bool   `json:"s,omitempty"`
}

func (c *compactionJSON) record() chain.Compaction {
	return chain.Compaction{ID: c.ID, TS: c.TS, From: c.From, Horizon: c.Horizon, Revisions: c.Revisions, Rows: c.Rows,
		KeepRevisions: c.KeepRevisions, KeepAge: c.KeepAge, Anchor: c.Anchor, BaseHash: c.BaseHash, Hash: c.Hash, Found: true}
}

// decodeCompaction decodes the compaction record under key; one that does
// not decode, or not under its ID's key, is not the log's: ErrDiverged.
func (l *Log) decodeCompaction(key, value []byte) (compactionJSON, error) {
	var c compactionJSON
	d := json.NewDecoder(bytes.NewReader(value))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return c, fmt.Errorf("%w: %s: %w", commit.ErrDiverged, key, err)
	}
	if string(key) != l.compactionKey(c.ID) {
		return c, fmt.Errorf("%w: %s holds compaction record %d", commit.ErrDiverged, key, c.ID)
	}
	return c, nil
}

// Decide records p as the cluster's next compaction (retention.Cluster):
// it writes the snapshot of the state before p's horizon, then, in one
// transaction, the compaction record unless one is under its ID already
// (false), the deletion of the log's records below the horizon and of the
// older snapshots. It then compacts etcd's history up to that transaction.
func (l *Log) Decide(ctx context.Context, p retention.Plan) (bool, error) {
	rec := p.Record
	snap, err := l.snapshotAt(ctx, p)
	if err != nil {
		return false, err
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return false, fmt.Errorf("audit: compact: snapshot: %w", err)
	}
	sum := sha256.Sum256(data)
	c := compactionJSON{ID: rec.ID, TS: rec.TS, From: rec.From, Horizon: rec.Horizon, Revisions: rec.Revisions, Rows: rec.Rows,
		KeepRevisions: rec.KeepRevisions, KeepAge: rec.KeepAge, Anchor: rec.Anchor, BaseHash: rec.BaseHash, Hash: rec.Hash,
		SnapshotParts: (len(data) + snapshotPart - 1) / snapshotPart, SnapshotSHA256: sum[:]}
	dir := l.snapshotHorizonDir(rec.Horizon)
	for i := range c.SnapshotParts {
		part := data[i*snapshotPart : min(len(data), (i+1)*snapshotPart)]
		pctx, cancel := context.WithTimeout(ctx, l.timeout)
		_, err := l.cli.Put(pctx, fmt.Sprintf("%s%06d", dir, i), string(part))
		cancel()
		if err != nil {
			return false, unavailable("write the snapshot", err)
		}
	}
	value, _ := json.Marshal(c)
	key := l.compactionKey(rec.ID)
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	if rec.ID > 1 {
		conds = append(conds, clientv3.Compare(clientv3.CreateRevision(l.compactionKey(rec.ID-1)), ">", 0))
	}
	tctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.cli.Txn(tctx).If(conds...).Then(
		clientv3.OpPut(key, string(value)),
		clientv3.OpDelete(l.LogKey(0), clientv3.WithRange(l.LogKey(rec.Horizon))),
		clientv3.OpDelete(l.snapshotDir(), clientv3.WithRange(dir)),
		clientv3.OpDelete(clientv3.GetPrefixRangeEnd(dir), clientv3.WithRange(clientv3.GetPrefixRangeEnd(l.snapshotDir()))),
	).Commit()
	if err != nil {
		return false, unavailable("record the compaction", err)
	}
	if !resp.Succeeded {
		return false, nil
	}
	// Every reader of the log goes back to reading it when its history is
	// compacted under it (ErrCompacted), so compacting right away is safe.
	if _, err := l.cli.Compact(tctx, resp.Header.Revision); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return true, unavailable("compact etcd's history", err)
	}
	return true, nil
}

// snapshotAt returns the state before p's horizon: p's base (the kv
// rows), and the layer rows of the snapshot at the horizon before (none
// before the first compaction) with the layer changes of the records from
// there to p's horizon applied. A record holds the rows it writes exactly
// as stored (a secret's ciphertext); it does not hold the rows it replaces
// so (a secret's old value in it is sealed again), which is why the layers
// go forward from the snapshot before rather than back from the newest
// state. The result must give the state digest that the revision before
// the horizon recorded.
func (l *Log) snapshotAt(ctx context.Context, p retention.Plan) (snapshotJSON, error) {
	type lk struct{ layer, key string }
	layers := map[lk]record.LayerValue{}
	rec := p.Record
	if rec.From > 0 {
		cs, at, err := l.compactions(ctx, 0)
		if err != nil {
			return snapshotJSON{}, err
		}
		if len(cs) == 0 || cs[len(cs)-1].ID != rec.ID-1 || cs[len(cs)-1].Horizon != rec.From {
			return snapshotJSON{}, fmt.Errorf("audit: compact: the cluster's newest compaction is not the one before compaction %d: another replica compacted", rec.ID)
		}
		prev, err := l.snapshot(ctx, cs[len(cs)-1], at)
		if err != nil {
			return snapshotJSON{}, err
		}
		for _, r := range prev.Layers {
			layers[lk{r.Layer, r.Key}] = r.value()
		}
	}
	next := max(rec.From, 1)
	if _, err := l.Scan(ctx, next-1, func(page []commit.Record) error {
		for i := range page {
			r := &page[i].Rev
			if r.Rev >= rec.Horizon {
				return errScanned
			}
			if r.Rev != next {
				return fmt.Errorf("audit: compact: the log holds revision %d where %d should be: another replica compacted", r.Rev, next)
			}
			next++
			for _, lc := range r.LayerChanges {
				if lc.New == nil {
					delete(layers, lk{lc.Layer, lc.Key})
				} else {
					layers[lk{lc.Layer, lc.Key}] = *lc.New
				}
			}
		}
		return nil
	}, nil); err != nil && !errors.Is(err, errScanned) {
		return snapshotJSON{}, err
	}
	if next != rec.Horizon {
		return snapshotJSON{}, fmt.Errorf("audit: compact: the log ends at revision %d, before the horizon %d", next-1, rec.Horizon)
	}
	rows := make([]chain.LayerRow, 0, len(layers))
	for k, v := range layers {
		rows = append(rows, chain.LayerRow{Layer: k.layer, Key: k.key, Value: v})
	}
	// Sorted: two replicas that decide the same compaction write the
	// same snapshot.
	slices.SortFunc(rows, func(a, b chain.LayerRow) int {
		return cmp.Or(strings.Compare(a.Layer, b.Layer), strings.Compare(a.Key, b.Key))
	})
	digest, err := chain.StateDigest(p.Base, rows)
	if err != nil {
		return snapshotJSON{}, err
	}
	if !bytes.Equal(digest, p.State) {
		return snapshotJSON{}, fmt.Errorf("audit: compact: %w: the state before the horizon %d, from the history base and the log, does not give the digest revision %d recorded; nothing was compacted",
			commit.ErrDiverged, rec.Horizon, rec.Horizon-1)
	}
	var s snapshotJSON
	for _, kv := range p.Base {
		s.KV = append(s.KV, kvJSON{Key: kv.Key, Value: kv.Value, Type: kv.ContentType, CreateRev: kv.CreateRev,
			ModRev: kv.ModRev, Version: kv.Version, Secret: kv.Secret})
	}
	for _, r := range rows {
		s.Layers = append(s.Layers, layerJSON{Layer: r.Layer, Key: r.Key, Value: r.Value.Value, Type: r.Value.ContentType,
			Tombstone: r.Value.Tombstone, Secret: r.Value.Secret})
	}
	return s, nil
}

// errScanned stops a Scan that has read what it needed.
var errScanned = errors.New("scanned")

func (r *layerJSON) value() record.LayerValue {
	return record.LayerValue{Value: r.Value, ContentType: r.Type, Tombstone: r.Tombstone, Secret: r.Secret}
}

// snapshot reads the snapshot of compaction c as of etcd revision at.
func (l *Log) snapshot(ctx context.Context, c compactionJSON, at int64) (snapshotJSON, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	dir := l.snapshotHorizonDir(c.Horizon)
	resp, err := l.cli.Get(ctx, dir, clientv3.WithPrefix(), clientv3.WithRev(at))
	if err != nil {
		return snapshotJSON{}, unavailable("read the snapshot", err)
	}
	var data []byte
	for _, kv := range resp.Kvs {
		data = append(data, kv.Value...)
	}
	if sum := sha256.Sum256(data); len(resp.Kvs) != c.SnapshotParts || !bytes.Equal(sum[:], c.SnapshotSHA256) {
		return snapshotJSON{}, fmt.Errorf("%w: the snapshot under %s has %d parts of the %d that compaction record %d names, or not their digest",
			commit.ErrDiverged, strings.TrimSuffix(dir, "/"), len(resp.Kvs), c.SnapshotParts, c.ID)
	}
	var s snapshotJSON
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return snapshotJSON{}, fmt.Errorf("%w: the snapshot at horizon %d: %w", commit.ErrDiverged, c.Horizon, err)
	}
	return s, nil
}

// Compactions returns the cluster's compaction records, oldest first.
func (l *Log) Compactions(ctx context.Context) ([]chain.Compaction, error) {
	cs, _, err := l.compactions(ctx, 0)
	out := make([]chain.Compaction, len(cs))
	for i := range cs {
		out[i] = cs[i].record()
	}
	return out, err
}

// compactions reads the compaction records as of etcd revision at (0: the
// newest), oldest first, and returns etcd's newest revision, the one read
// when at is 0.
func (l *Log) compactions(ctx context.Context, at int64) ([]compactionJSON, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if at > 0 {
		opts = append(opts, clientv3.WithRev(at))
	}
	resp, err := l.cli.Get(ctx, l.compactionDir(), opts...)
	if err != nil {
		return nil, 0, unavailable("read the compactions", err)
	}
	out := make([]compactionJSON, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		c, err := l.decodeCompaction(kv.Key, kv.Value)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, resp.Header.Revision, nil
}

// Restore reads what a replica on an empty data dir needs to start at the
// cluster's horizon: the compaction records, oldest first, and the state
// before the newest one's horizon (none when the cluster never compacted).
func (l *Log) Restore(ctx context.Context) ([]chain.Compaction, []record.KeyValue, []chain.LayerRow, error) {
	cs, at, err := l.compactions(ctx, 0)
	if err != nil || len(cs) == 0 {
		return nil, nil, nil, err
	}
	s, err := l.snapshot(ctx, cs[len(cs)-1], at)
	if err != nil {
		return nil, nil, nil, err
	}
	recs := make([]chain.Compaction, len(cs))
	for i := range cs {
		recs[i] = cs[i].record()
	}
	base := make([]record.KeyValue, len(s.KV))
	for i, kv := range s.KV {
		base[i] = record.KeyValue{Key: kv.Key, Value: kv.Value, ContentType: kv.Type, CreateRev: kv.CreateRev,
			ModRev: kv.ModRev, Version: kv.Version, Secret: kv.Secret}
	}
	layers := make([]chain.LayerRow, len(s.Layers))
	for i := range s.Layers {
		layers[i] = chain.LayerRow{Layer: s.Layers[i].Layer, Key: s.Layers[i].Key, Value: s.Layers[i].value()}
	}
	return recs, base, layers, nil
}

// behindHorizon tells why records after revision applied do not follow
// it: ErrBehindHorizon when the cluster compacted them away.
func (l *Log) behindHorizon(ctx context.Context, applied int64, gap error) error {
	cs, _, err := l.compactions(ctx, 0)
	if err != nil {
		return err
	}
	if len(cs) > 0 && cs[len(cs)-1].Horizon > applied+1 {
		return fmt.Errorf("audit: %w: it applied revisions up to %d, and the cluster keeps them from %d on (compaction %d): stop it and start it on an empty data dir, which starts from the cluster's snapshot at the horizon",
			ErrBehindHorizon, applied, cs[len(cs)-1].Horizon, cs[len(cs)-1].ID)
	}
	return gap
}
