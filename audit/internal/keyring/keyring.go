// Package keyring holds the keys of secrets: the master key given at
// start and the data keys the database keeps wrapped by it, and what they
// do to values: seal them as they are written, open them as they are
// read, and withhold them (a keyed digest and a length instead of the
// value) from the audit views.
//
// A key marked secret (Op.Secret) has every value the database holds of
// it encrypted with its prefix's data key (package secrets): kv, changes,
// the store layer's layer_kv and layer_changes, history_base; each such
// row has secret = 1. The data keys are stored wrapped by the master key,
// which is never stored. In memory, values are plain: the commit path
// seals them as it writes, and reads open them as they scan.
//
// The audit chain hashes the rows as stored, ciphertext included, so
// verifying it needs no key; a row's secret flag is part of its canonical
// content (only when set, so that rows written before secrets existed
// hash as before).
package keyring

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/secrets"
)

// ErrNoMasterKey: a secret cannot be written, or a database that holds
// secrets cannot be opened, because the store has no master key.
var ErrNoMasterKey = errors.New("no master key")

// Keyring holds the master key and the unwrapped data keys. It is safe
// for concurrent use.
type Keyring struct {
	mu       sync.RWMutex
	master   *secrets.MasterKey
	byID     map[int64]*secrets.DataKey
	byPrefix map[string]*secrets.DataKey // the newest data key of each prefix
}

// New returns a keyring with the master key mk (nil: none) and no data
// key yet.
func New(mk *secrets.MasterKey) *Keyring {
	return &Keyring{master: mk, byID: map[int64]*secrets.DataKey{}, byPrefix: map[string]*secrets.DataKey{}}
}

// Load unwraps every data key of the database with mk. With sealed, a
// database with data keys and no mk is not an error: it is opened to check
// its chain, and nothing reads a value.
func Load(ctx context.Context, q sqlitedb.Querier, mk *secrets.MasterKey, sealed bool) (*Keyring, error) {
	k := New(mk)
	rows, err := q.QueryContext(ctx, `SELECT id, prefix, master_key_id, wrapped FROM data_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("audit: read data keys: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id int64
		var prefix, mkID string
		var wrapped []byte
		if err := rows.Scan(&id, &prefix, &mkID, &wrapped); err != nil {
			return nil, fmt.Errorf("audit: read data keys: %w", err)
		}
		n++
		if mk == nil {
			continue
		}
		if mkID != mk.ID() {
			return nil, fmt.Errorf("%w: the data key of prefix %q is wrapped by master key %s; the master key given is %s",
				secrets.ErrWrongMasterKey, prefix, mkID, mk.ID())
		}
		dk, err := mk.Unwrap(id, prefix, wrapped)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		k.byID[id] = dk
		k.byPrefix[prefix] = dk
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: read data keys: %w", err)
	}
	if n > 0 && mk == nil && !sealed {
		return nil, fmt.Errorf("%w: the database holds secrets (%d data keys) and no master key was given to open them", ErrNoMasterKey, n)
	}
	return k, nil
}

// Enabled reports whether there is a master key: whether secrets can be
// written.
func (k *Keyring) Enabled() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.master != nil
}

// MasterKeyID returns the fingerprint of the master key, or "".
func (k *Keyring) MasterKeyID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.master == nil {
		return ""
	}
	return k.master.ID()
}

// Prefixes returns the prefixes that have a data key, sorted.
func (k *Keyring) Prefixes() []string {
	k.mu.RLock()
	have := make([]string, 0, len(k.byPrefix))
	for p := range k.byPrefix {
		have = append(have, p)
	}
	k.mu.RUnlock()
	slices.Sort(have)
	return have
}

// IDs returns the ids of the data keys.
func (k *Keyring) IDs() []int64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ids := make([]int64, 0, len(k.byID))
	for id := range k.byID {
		ids = append(ids, id)
	}
	return ids
}

// Missing returns the prefixes of keys that have no data key yet; with no
// master key, it is ErrNoMasterKey.
func (k *Keyring) Missing(keys []string) ([]string, error) {
	k.mu.RLock()
	master := k.master
	var missing []string
	for _, key := range keys {
		if p := secrets.PrefixOf(key); k.byPrefix[p] == nil {
			missing = append(missing, p)
		}
	}
	k.mu.RUnlock()
	if master == nil {
		return nil, fmt.Errorf("%w: key %q cannot be secret: the store was opened without a master key", ErrNoMasterKey, keys[0])
	}
	return missing, nil
}

func (k *Keyring) forPrefix(key string) (*secrets.DataKey, error) {
	p := secrets.PrefixOf(key)
	k.mu.RLock()
	dk := k.byPrefix[p]
	k.mu.RUnlock()
	if dk == nil {
		return nil, fmt.Errorf("%w: no data key for prefix %q of secret key %q", ErrNoMasterKey, p, key)
	}
	return dk, nil
}

func (k *Keyring) forCiphertext(key string, ct []byte) (*secrets.DataKey, error) {
	id, err := secrets.CiphertextKeyID(ct)
	if err != nil {
		return nil, fmt.Errorf("audit: key %q: %w", key, err)
	}
	k.mu.RLock()
	dk := k.byID[id]
	k.mu.RUnlock()
	if dk == nil {
		return nil, fmt.Errorf("audit: key %q: %w: no data key %d", key, secrets.ErrDecrypt, id)
	}
	return dk, nil
}

// seal encrypts the value of key.
func (k *Keyring) seal(key string, plain []byte) ([]byte, error) {
	dk, err := k.forPrefix(key)
	if err != nil {
		return nil, err
	}
	ct, err := dk.Seal(key, plain)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return ct, nil
}

// open decrypts a stored value of key.
func (k *Keyring) open(key string, ct []byte) ([]byte, error) {
	dk, err := k.forCiphertext(key, ct)
	if err != nil {
		return nil, err
	}
	pt, err := dk.Open(key, ct)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return pt, nil
}

// digest is the keyed digest of a plain value of key.
func (k *Keyring) digest(key string, plain []byte) (string, error) {
	dk, err := k.forPrefix(key)
	if err != nil {
		return "", err
	}
	return dk.Digest(plain), nil
}

// RevealKV decrypts, in place, a KeyValue scanned from a row.
func (k *Keyring) RevealKV(kv *record.KeyValue) error {
	if kv == nil || !kv.Secret {
		return nil
	}
	pt, err := k.open(kv.Key, kv.Value)
	if err != nil {
		return err
	}
	kv.Value = pt
	return nil
}

// RevealKVs decrypts scanned KeyValues in place.
func (k *Keyring) RevealKVs(kvs []record.KeyValue) error {
	for i := range kvs {
		if err := k.RevealKV(&kvs[i]); err != nil {
			return err
		}
	}
	return nil
}

// RevealLayer decrypts, in place, a layer value scanned from a row of key.
func (k *Keyring) RevealLayer(key string, v *record.LayerValue) error {
	if v == nil || !v.Secret || v.Tombstone {
		return nil
	}
	pt, err := k.open(key, v.Value)
	if err != nil {
		return err
	}
	v.Value = pt
	return nil
}

// RevealLayers decrypts, in place, the layer values of key scanned from
// its rows.
func (k *Keyring) RevealLayers(key string, vs map[string]*record.LayerValue) error {
	for _, v := range vs {
		if err := k.RevealLayer(key, v); err != nil {
			return err
		}
	}
	return nil
}

// Withheld returns a copy of a plain secret value with its value withheld;
// other values are returned as they are.
func (k *Keyring) Withheld(kv *record.KeyValue) (*record.KeyValue, error) {
	if kv == nil || !kv.Secret || kv.Withheld() {
		return kv, nil
	}
	h, err := k.digest(kv.Key, kv.Value)
	if err != nil {
		return nil, err
	}
	out := *kv
	out.Value, out.Hash, out.Length = nil, h, len(kv.Value)
	return &out, nil
}

// WithheldLayer is Withheld for a layer value of key.
func (k *Keyring) WithheldLayer(key string, v *record.LayerValue) (*record.LayerValue, error) {
	if v == nil || !v.Secret || v.Tombstone || v.Hash != "" {
		return v, nil
	}
	h, err := k.digest(key, v.Value)
	if err != nil {
		return nil, err
	}
	out := *v
	out.Value, out.Hash, out.Length = nil, h, len(v.Value)
	return &out, nil
}

// withholdChange returns c with secret values withheld. When either side
// is a secret's, both are withheld: a value written before the key was
// marked secret is not shown next to the secret's digest.
func (k *Keyring) withholdChange(c record.Change) (record.Change, error) {
	if !c.IsSecret() {
		return c, nil
	}
	for _, p := range []**record.KeyValue{&c.Old, &c.New} {
		if *p == nil {
			continue
		}
		v := **p
		v.Secret = true
		w, err := k.Withheld(&v)
		if err != nil {
			return record.Change{}, err
		}
		*p = w
	}
	return c, nil
}

// WithholdChanges is withholdChange of each of cs; it returns cs itself
// when none holds a secret.
func (k *Keyring) WithholdChanges(cs []record.Change) ([]record.Change, error) {
	var out []record.Change
	for i, c := range cs {
		w, err := k.withholdChange(c)
		if err != nil {
			return nil, err
		}
		if out == nil && (w.Old != c.Old || w.New != c.New) {
			out = append(make([]record.Change, 0, len(cs)), cs[:i]...)
		}
		if out != nil {
			out = append(out, w)
		}
	}
	if out == nil {
		return cs, nil
	}
	return out, nil
}

// WithholdRevision returns r with every secret value withheld, sharing
// nothing it changes with r.
func (k *Keyring) WithholdRevision(r record.Revision) (record.Revision, error) {
	cs, err := k.WithholdChanges(r.Changes)
	if err != nil {
		return record.Revision{}, err
	}
	r.Changes = cs
	if len(r.LayerChanges) > 0 {
		lcs := make([]record.LayerChange, len(r.LayerChanges))
		for i, lc := range r.LayerChanges {
			if lc.Old, err = k.WithheldLayer(lc.Key, lc.Old); err != nil {
				return record.Revision{}, err
			}
			if lc.New, err = k.WithheldLayer(lc.Key, lc.New); err != nil {
				return record.Revision{}, err
			}
			lcs[i] = lc
		}
		r.LayerChanges = lcs
	}
	return r, nil
}

// SealRevision returns r as it is stored: the values of secret rows
// sealed. r itself is not modified.
func (k *Keyring) SealRevision(r *record.Revision) (record.Revision, error) {
	out := *r
	sealKV := func(kv *record.KeyValue) (*record.KeyValue, error) {
		if kv == nil {
			return nil, nil
		}
		ct, err := k.seal(kv.Key, kv.Value)
		if err != nil {
			return nil, err
		}
		c := *kv
		c.Value, c.Secret = ct, true
		return &c, nil
	}
	sealLayer := func(key string, v *record.LayerValue) (*record.LayerValue, error) {
		if v == nil || v.Tombstone {
			return v, nil
		}
		ct, err := k.seal(key, v.Value)
		if err != nil {
			return nil, err
		}
		c := *v
		c.Value, c.Secret = ct, true
		return &c, nil
	}
	var err error
	for i := range r.Changes {
		c := r.Changes[i]
		if !c.IsSecret() {
			continue
		}
		if &out.Changes[0] == &r.Changes[0] {
			out.Changes = append([]record.Change(nil), r.Changes...)
		}
		if c.Old, err = sealKV(c.Old); err != nil {
			return record.Revision{}, err
		}
		if c.New, err = sealKV(c.New); err != nil {
			return record.Revision{}, err
		}
		out.Changes[i] = c
	}
	for i := range r.LayerChanges {
		lc := r.LayerChanges[i]
		if !lc.IsSecret() {
			continue
		}
		if &out.LayerChanges[0] == &r.LayerChanges[0] {
			out.LayerChanges = append([]record.LayerChange(nil), r.LayerChanges...)
		}
		if lc.Old, err = sealLayer(lc.Key, lc.Old); err != nil {
			return record.Revision{}, err
		}
		if lc.New, err = sealLayer(lc.Key, lc.New); err != nil {
			return record.Revision{}, err
		}
		out.LayerChanges[i] = lc
	}
	return out, nil
}

// RevealRevision returns r, a revision as it is stored, with its secret
// values decrypted: what SealRevision sealed, as the commit hooks and the
// in-memory state take it (a replica applying another's revision). r
// itself is not modified.
func (k *Keyring) RevealRevision(r *record.Revision) (record.Revision, error) {
	out := *r
	if len(r.Changes) > 0 {
		out.Changes = make([]record.Change, len(r.Changes))
	}
	for i, c := range r.Changes {
		for _, p := range []**record.KeyValue{&c.Old, &c.New} {
			if *p == nil || !(*p).Secret {
				continue
			}
			v := **p
			if err := k.RevealKV(&v); err != nil {
				return record.Revision{}, err
			}
			*p = &v
		}
		out.Changes[i] = c
	}
	if len(r.LayerChanges) > 0 {
		out.LayerChanges = make([]record.LayerChange, len(r.LayerChanges))
	}
	for i, lc := range r.LayerChanges {
		for _, p := range []**record.LayerValue{&lc.Old, &lc.New} {
			if *p == nil || !(*p).Secret {
				continue
			}
			v := **p
			if err := k.RevealLayer(lc.Key, &v); err != nil {
				return record.Revision{}, err
			}
			*p = &v
		}
		out.LayerChanges[i] = lc
	}
	return out, nil
}

// The writes below each take a transaction of their own on db, the
// writer's connection: the commit path runs them alone, between batches of
// commits (a revision that seals with a data key is decided after the key
// exists).

// RotateMaster re-wraps every data key under next, in one transaction on
// db, and makes next the master key. Values are not touched: they stay
// encrypted under their data keys.
func (k *Keyring) RotateMaster(ctx context.Context, db *sql.DB, next *secrets.MasterKey, log *slog.Logger) error {
	tx, err := k.begin(ctx, db)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	k.mu.RLock()
	all := make([]*secrets.DataKey, 0, len(k.byID))
	for _, dk := range k.byID {
		all = append(all, dk)
	}
	k.mu.RUnlock()
	for _, dk := range all {
		wrapped, err := next.Wrap(dk)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE data_keys SET wrapped = ?, master_key_id = ? WHERE id = ?`,
			wrapped, next.ID(), dk.ID()); err != nil {
			return fmt.Errorf("audit: rotate master key: %w", err)
		}
	}
	var left int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE master_key_id != ?`, next.ID()).Scan(&left); err != nil {
		return fmt.Errorf("audit: rotate master key: %w", err)
	}
	if left > 0 {
		return fmt.Errorf("audit: rotate master key: %d data keys were not loaded; nothing was changed", left)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: rotate master key: commit: %w", err)
	}
	k.mu.Lock()
	k.master = next
	k.mu.Unlock()
	log.Info("audit: master key rotated", "data_keys", len(all), "master_key_id", next.ID())
	return nil
}

// NewDataKeys gives each of prefixes a data key, wrapped by the master
// key, in one transaction on db: those that have none or, with renew, each
// of them a new one (values written from then on are sealed with it; the
// old key stays, to open what it sealed). now is the keys' creation time.
func (k *Keyring) NewDataKeys(ctx context.Context, db *sql.DB, prefixes []string, renew bool, now time.Time, log *slog.Logger) error {
	tx, err := k.begin(ctx, db)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	k.mu.RLock()
	master := k.master
	k.mu.RUnlock()
	var created []*secrets.DataKey
	for _, p := range prefixes {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE prefix = ?`, p).Scan(&n); err != nil {
			return fmt.Errorf("audit: data keys: %w", err)
		}
		if n > 0 && !renew {
			continue // an earlier request created it
		}
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM data_keys`).Scan(&id); err != nil {
			return fmt.Errorf("audit: data keys: %w", err)
		}
		dk, err := secrets.NewDataKey(id, p)
		if err != nil {
			return err
		}
		wrapped, err := master.Wrap(dk)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO data_keys (id, prefix, master_key_id, wrapped, created_at) VALUES (?, ?, ?, ?, ?)`,
			id, p, master.ID(), wrapped, now.UTC().UnixNano()); err != nil {
			return fmt.Errorf("audit: data keys: %w", err)
		}
		created = append(created, dk)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: data keys: commit: %w", err)
	}
	k.mu.Lock()
	for _, dk := range created {
		k.byID[dk.ID()] = dk
		k.byPrefix[dk.Prefix()] = dk
	}
	k.mu.Unlock()
	if renew {
		ids := make([]int64, len(created))
		for i, dk := range created {
			ids[i] = dk.ID()
		}
		log.Info("audit: data keys rotated", "prefixes", prefixes, "new_key_ids", ids)
	}
	return nil
}

// DataKeyRow is a data key as the database stores it: wrapped by the
// master key. A cluster of replicas shares these rows (through etcd), so
// that every replica opens what any of them sealed.
type DataKeyRow struct {
	ID                  int64
	Prefix, MasterKeyID string
	Wrapped             []byte
	CreatedAt           int64 // Unix nanoseconds, UTC
}

// Create returns new data keys for prefixes, wrapped by the master key,
// with the ids first, first+1, ...: rows to share, and to Add once they
// are. It stores nothing.
func (k *Keyring) Create(prefixes []string, first int64, now time.Time) ([]DataKeyRow, error) {
	if !k.Enabled() {
		return nil, fmt.Errorf("%w: the store was opened without a master key", ErrNoMasterKey)
	}
	k.mu.RLock()
	master := k.master
	k.mu.RUnlock()
	rows := make([]DataKeyRow, 0, len(prefixes))
	for i, p := range prefixes {
		dk, err := secrets.NewDataKey(first+int64(i), p)
		if err != nil {
			return nil, err
		}
		wrapped, err := master.Wrap(dk)
		if err != nil {
			return nil, err
		}
		rows = append(rows, DataKeyRow{ID: dk.ID(), Prefix: p, MasterKeyID: master.ID(), Wrapped: wrapped, CreatedAt: now.UTC().UnixNano()})
	}
	return rows, nil
}

// Add unwraps the rows the keyring lacks, stores them in db's data_keys
// with their ids, in one transaction, and adds them to the keyring. A row
// wrapped by another master key is secrets.ErrWrongMasterKey, and rows
// without a master key ErrNoMasterKey: nothing is added then.
func (k *Keyring) Add(ctx context.Context, db *sql.DB, rows []DataKeyRow) error {
	k.mu.RLock()
	master := k.master
	var add []DataKeyRow
	for _, r := range rows {
		if k.byID[r.ID] == nil {
			add = append(add, r)
		}
	}
	k.mu.RUnlock()
	if len(add) == 0 {
		return nil
	}
	if master == nil {
		return fmt.Errorf("%w: the cluster holds secrets (%d data keys) and this replica has no master key to open them", ErrNoMasterKey, len(add))
	}
	keys := make([]*secrets.DataKey, len(add))
	for i, r := range add {
		if r.MasterKeyID != master.ID() {
			return fmt.Errorf("%w: the cluster's data key of prefix %q is wrapped by master key %s; this replica's master key is %s",
				secrets.ErrWrongMasterKey, r.Prefix, r.MasterKeyID, master.ID())
		}
		dk, err := master.Unwrap(r.ID, r.Prefix, r.Wrapped)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		keys[i] = dk
	}
	tx, err := k.begin(ctx, db)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range add {
		if _, err := tx.ExecContext(ctx, `INSERT INTO data_keys (id, prefix, master_key_id, wrapped, created_at) VALUES (?, ?, ?, ?, ?)`,
			r.ID, r.Prefix, r.MasterKeyID, r.Wrapped, r.CreatedAt); err != nil {
			return fmt.Errorf("audit: data keys: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: data keys: commit: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, dk := range keys {
		k.byID[dk.ID()] = dk
		if cur := k.byPrefix[dk.Prefix()]; cur == nil || cur.ID() < dk.ID() {
			k.byPrefix[dk.Prefix()] = dk
		}
	}
	return nil
}

// begin starts a write of the data keys, which needs the master key.
func (k *Keyring) begin(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	if !k.Enabled() {
		return nil, fmt.Errorf("%w: the store was opened without a master key", ErrNoMasterKey)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("audit: data keys: begin: %w", err)
	}
	return tx, nil
}
