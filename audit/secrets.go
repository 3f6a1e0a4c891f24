package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/secrets"
)

// Secrets. A key marked secret (Op.Secret) has every value the database
// holds of it encrypted with its prefix's data key (package secrets): kv,
// changes, the store layer's layer_kv and layer_changes, history_base; each
// such row has secret = 1. The data keys are stored wrapped by the master
// key (WithMasterKey), which is never stored. In memory, values are plain:
// the writer seals them as it writes, and reads open them as they scan.
//
// The audit chain hashes the rows as stored, ciphertext included, so Verify
// needs no key; a row's secret flag is part of its canonical content (only
// when set, so that rows written before secrets existed hash as before).

// ErrNoMasterKey: a secret cannot be written, or a database that holds
// secrets cannot be opened, because the Store has no master key.
var ErrNoMasterKey = errors.New("no master key")

// ErrWrongMasterKey: the master key given is not the one the database's
// data keys are wrapped with.
var ErrWrongMasterKey = secrets.ErrWrongMasterKey

// ErrDecrypt: a stored secret value does not decrypt: it was altered, or
// moved to another key. Verify tells whether the history was tampered with.
var ErrDecrypt = secrets.ErrDecrypt

// WithMasterKey sets the master key that wraps the data keys of secrets.
// Without one, Open refuses a database that holds data keys, and a write
// that marks a key secret fails with ErrNoMasterKey.
func WithMasterKey(mk *secrets.MasterKey) Option { return func(o *options) { o.masterKey = mk } }

// keyring holds the master key and the unwrapped data keys.
type keyring struct {
	mu       sync.RWMutex
	master   *secrets.MasterKey
	byID     map[int64]*secrets.DataKey
	byPrefix map[string]*secrets.DataKey // the newest data key of each prefix
}

// loadKeyring unwraps every data key of the database with mk. With
// sealed, a database with data keys and no mk is not an error (see
// options.sealed).
func loadKeyring(ctx context.Context, q sqlitedb.Querier, mk *secrets.MasterKey, sealed bool) (*keyring, error) {
	k := &keyring{master: mk, byID: map[int64]*secrets.DataKey{}, byPrefix: map[string]*secrets.DataKey{}}
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
				ErrWrongMasterKey, prefix, mkID, mk.ID())
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

// SecretsEnabled reports whether the store has a master key: whether it
// can write secrets.
func (s *Store) SecretsEnabled() bool {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	return s.keys.master != nil
}

// MasterKeyID returns the fingerprint of the store's master key, or "".
func (s *Store) MasterKeyID() string {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	if s.keys.master == nil {
		return ""
	}
	return s.keys.master.ID()
}

// IsSecret reports whether key is currently marked secret.
func (s *Store) IsSecret(key string) bool {
	s.currentMu.RLock()
	defer s.currentMu.RUnlock()
	kv := s.current[key]
	return kv != nil && kv.Secret
}

func (k *keyring) forPrefix(key string) (*secrets.DataKey, error) {
	p := secrets.PrefixOf(key)
	k.mu.RLock()
	dk := k.byPrefix[p]
	k.mu.RUnlock()
	if dk == nil {
		return nil, fmt.Errorf("%w: no data key for prefix %q of secret key %q", ErrNoMasterKey, p, key)
	}
	return dk, nil
}

func (k *keyring) forCiphertext(key string, ct []byte) (*secrets.DataKey, error) {
	id, err := secrets.CiphertextKeyID(ct)
	if err != nil {
		return nil, fmt.Errorf("audit: key %q: %w", key, err)
	}
	k.mu.RLock()
	dk := k.byID[id]
	k.mu.RUnlock()
	if dk == nil {
		return nil, fmt.Errorf("audit: key %q: %w: no data key %d", key, ErrDecrypt, id)
	}
	return dk, nil
}

// seal encrypts the value of key.
func (k *keyring) seal(key string, plain []byte) ([]byte, error) {
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
func (k *keyring) open(key string, ct []byte) ([]byte, error) {
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
func (k *keyring) digest(key string, plain []byte) (string, error) {
	dk, err := k.forPrefix(key)
	if err != nil {
		return "", err
	}
	return dk.Digest(plain), nil
}

// revealKV decrypts, in place, a KeyValue scanned from a row.
func (k *keyring) revealKV(kv *KeyValue) error {
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

// revealKVs decrypts scanned KeyValues in place.
func (k *keyring) revealKVs(kvs []KeyValue) error {
	for i := range kvs {
		if err := k.revealKV(&kvs[i]); err != nil {
			return err
		}
	}
	return nil
}

// revealLayer decrypts, in place, a layer value scanned from a row of key.
func (k *keyring) revealLayer(key string, v *LayerValue) error {
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

// withheld returns a copy of a plain secret value with its value withheld;
// other values are returned as they are.
func (k *keyring) withheld(kv *KeyValue) (*KeyValue, error) {
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

func (k *keyring) withheldLayer(key string, v *LayerValue) (*LayerValue, error) {
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
func (k *keyring) withholdChange(c Change) (Change, error) {
	secret := c.Old != nil && c.Old.Secret || c.New != nil && c.New.Secret
	if !secret {
		return c, nil
	}
	for _, p := range []**KeyValue{&c.Old, &c.New} {
		if *p == nil {
			continue
		}
		v := **p
		v.Secret = true
		w, err := k.withheld(&v)
		if err != nil {
			return Change{}, err
		}
		*p = w
	}
	return c, nil
}

func (k *keyring) withholdChanges(cs []Change) ([]Change, error) {
	var out []Change
	for i, c := range cs {
		w, err := k.withholdChange(c)
		if err != nil {
			return nil, err
		}
		if out == nil && (w.Old != c.Old || w.New != c.New) {
			out = append(make([]Change, 0, len(cs)), cs[:i]...)
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

// withholdRevision returns r with every secret value withheld, sharing
// nothing it changes with r.
func (k *keyring) withholdRevision(r Revision) (Revision, error) {
	cs, err := k.withholdChanges(r.Changes)
	if err != nil {
		return Revision{}, err
	}
	r.Changes = cs
	if len(r.LayerChanges) > 0 {
		lcs := make([]LayerChange, len(r.LayerChanges))
		for i, lc := range r.LayerChanges {
			if lc.Old, err = k.withheldLayer(lc.Key, lc.Old); err != nil {
				return Revision{}, err
			}
			if lc.New, err = k.withheldLayer(lc.Key, lc.New); err != nil {
				return Revision{}, err
			}
			lcs[i] = lc
		}
		r.LayerChanges = lcs
	}
	return r, nil
}

// sealRevision returns r as it is stored: the values of secret rows
// sealed. r itself is not modified.
func (k *keyring) sealRevision(r *Revision) (Revision, error) {
	out := *r
	sealKV := func(kv *KeyValue) (*KeyValue, error) {
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
	sealLayer := func(key string, v *LayerValue) (*LayerValue, error) {
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
			out.Changes = append([]Change(nil), r.Changes...)
		}
		if c.Old, err = sealKV(c.Old); err != nil {
			return Revision{}, err
		}
		if c.New, err = sealKV(c.New); err != nil {
			return Revision{}, err
		}
		out.Changes[i] = c
	}
	for i := range r.LayerChanges {
		lc := r.LayerChanges[i]
		if !lc.IsSecret() {
			continue
		}
		if &out.LayerChanges[0] == &r.LayerChanges[0] {
			out.LayerChanges = append([]LayerChange(nil), r.LayerChanges...)
		}
		if lc.Old, err = sealLayer(lc.Key, lc.Old); err != nil {
			return Revision{}, err
		}
		if lc.New, err = sealLayer(lc.Key, lc.New); err != nil {
			return Revision{}, err
		}
		out.LayerChanges[i] = lc
	}
	return out, nil
}

// dataKeyRequest asks the writer for a data key for each prefix that has
// none.
type dataKeyRequest struct {
	prefixes []string
	rotate   *secrets.MasterKey // instead: re-wrap every data key under it
	// renew: instead, give each of prefixes a new data key, whether it has
	// one or not.
	renew bool
}

// ensureDataKeys makes sure that every prefix of keys has a data key,
// creating the missing ones through the writer.
func (s *Store) ensureDataKeys(ctx context.Context, keys []string) error {
	s.keys.mu.RLock()
	master := s.keys.master
	var missing []string
	for _, key := range keys {
		if p := secrets.PrefixOf(key); s.keys.byPrefix[p] == nil {
			missing = append(missing, p)
		}
	}
	s.keys.mu.RUnlock()
	if master == nil {
		return fmt.Errorf("%w: key %q cannot be secret: the store was opened without a master key", ErrNoMasterKey, keys[0])
	}
	if len(missing) == 0 {
		return nil
	}
	_, err := s.submitResult(ctx, &request{dataKey: &dataKeyRequest{prefixes: missing}})
	return err
}

// RotateMasterKey re-wraps every data key under next, in one transaction,
// and makes next the store's master key. Values are not touched: they stay
// encrypted under their data keys. After it, the old master key no longer
// opens the database.
func (s *Store) RotateMasterKey(ctx context.Context, next *secrets.MasterKey) error {
	if next == nil {
		return fmt.Errorf("%w: no new master key", ErrBadRequest)
	}
	if !s.SecretsEnabled() {
		return fmt.Errorf("%w: the store was opened without the current master key", ErrNoMasterKey)
	}
	_, err := s.submitResult(ctx, &request{dataKey: &dataKeyRequest{rotate: next}})
	return err
}

// RotateDataKeys gives each of prefixes ("app/"; all the prefixes that
// have a data key when none is given) a new data key, wrapped by the master
// key, in one transaction, and returns the prefixes rotated. Values written
// from then on are sealed with the new key; values written before keep the
// key they were sealed with, which stays in the database to open them: the
// audit chain covers the stored ciphertext, so history is never
// re-encrypted (write a current value again to move it to the new key). The
// hashes shown for withheld values are keyed with a prefix's newest key, so
// they change for its old values too.
func (s *Store) RotateDataKeys(ctx context.Context, prefixes ...string) ([]string, error) {
	if !s.SecretsEnabled() {
		return nil, fmt.Errorf("%w: the store was opened without a master key", ErrNoMasterKey)
	}
	s.keys.mu.RLock()
	have := make([]string, 0, len(s.keys.byPrefix))
	for p := range s.keys.byPrefix {
		have = append(have, p)
	}
	s.keys.mu.RUnlock()
	slices.Sort(have)
	if len(prefixes) == 0 {
		prefixes = have
	}
	for _, p := range prefixes {
		if !slices.Contains(have, p) {
			return nil, fmt.Errorf("%w: prefix %q has no data key (prefixes with secrets: %q)", ErrBadRequest, p, have)
		}
	}
	if len(prefixes) == 0 {
		return nil, nil
	}
	if _, err := s.submitResult(ctx, &request{dataKey: &dataKeyRequest{prefixes: prefixes, renew: true}}); err != nil {
		return nil, err
	}
	return prefixes, nil
}

// runDataKeys creates data keys, or re-wraps them all, alone in its
// transaction, between batches of commits.
func (w *writer) runDataKeys(req *request) {
	if err := req.ctx.Err(); err != nil {
		req.done <- result{err: err}
		return
	}
	req.done <- result{err: w.dataKeys(req.dataKey)}
}

func (w *writer) dataKeys(dr *dataKeyRequest) error {
	ctx := context.Background()
	k := w.s.keys
	k.mu.RLock()
	master := k.master
	k.mu.RUnlock()
	if master == nil {
		return fmt.Errorf("%w: the store was opened without a master key", ErrNoMasterKey)
	}
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: data keys: begin: %w", err)
	}
	defer tx.Rollback()
	if dr.rotate != nil {
		k.mu.RLock()
		all := make([]*secrets.DataKey, 0, len(k.byID))
		for _, dk := range k.byID {
			all = append(all, dk)
		}
		k.mu.RUnlock()
		for _, dk := range all {
			wrapped, err := dr.rotate.Wrap(dk)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE data_keys SET wrapped = ?, master_key_id = ? WHERE id = ?`,
				wrapped, dr.rotate.ID(), dk.ID()); err != nil {
				return fmt.Errorf("audit: rotate master key: %w", err)
			}
		}
		var left int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE master_key_id != ?`, dr.rotate.ID()).Scan(&left); err != nil {
			return fmt.Errorf("audit: rotate master key: %w", err)
		}
		if left > 0 {
			return fmt.Errorf("audit: rotate master key: %d data keys were not loaded; nothing was changed", left)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("audit: rotate master key: commit: %w", err)
		}
		k.mu.Lock()
		k.master = dr.rotate
		k.mu.Unlock()
		w.s.opts.logger.Info("audit: master key rotated", "data_keys", len(all), "master_key_id", dr.rotate.ID())
		return nil
	}
	var created []*secrets.DataKey
	for _, p := range dr.prefixes {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE prefix = ?`, p).Scan(&n); err != nil {
			return fmt.Errorf("audit: data keys: %w", err)
		}
		if n > 0 && !dr.renew {
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
			id, p, master.ID(), wrapped, w.s.opts.now().UTC().UnixNano()); err != nil {
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
	if dr.renew {
		ids := make([]int64, len(created))
		for i, dk := range created {
			ids[i] = dk.ID()
		}
		w.s.opts.logger.Info("audit: data keys rotated", "prefixes", dr.prefixes, "new_key_ids", ids)
	}
	return nil
}

// Withhold returns kv with its value withheld when it is a secret's (Value
// nil, Hash and Length set), for a reader that may know of the value but
// not see it; other values are returned as they are.
func (s *Store) Withhold(kv KeyValue) (KeyValue, error) {
	w, err := s.keys.withheld(&kv)
	if err != nil {
		return KeyValue{}, err
	}
	return *w, nil
}
