package audit

import (
	"context"
	"fmt"
	"slices"

	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/secrets"
)

// ErrNoMasterKey: a secret cannot be written, or a database that holds
// secrets cannot be opened, because the Store has no master key.
var ErrNoMasterKey = keyring.ErrNoMasterKey

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

// SecretsEnabled reports whether the store has a master key: whether it
// can write secrets.
func (s *Store) SecretsEnabled() bool { return s.keys.Enabled() }

// MasterKeyID returns the fingerprint of the store's master key, or "".
func (s *Store) MasterKeyID() string { return s.keys.MasterKeyID() }

// IsSecret reports whether key is currently marked secret.
func (s *Store) IsSecret(key string) bool { return s.cur.IsSecret(key) }

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
	if s.elog != nil {
		return fmt.Errorf("%w: a replica cannot rotate the master key yet: every replica holds the data keys wrapped by it (see docs/ha.md)", ErrBadRequest)
	}
	return s.w.Alone(ctx, func(ctx context.Context) error {
		return s.keys.RotateMaster(ctx, s.wdb, next, s.opts.logger)
	})
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
	have := s.keys.Prefixes()
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
	err := s.w.Alone(ctx, func(ctx context.Context) error {
		if s.elog != nil {
			return s.shareDataKeys(ctx, prefixes, true)
		}
		return s.keys.NewDataKeys(ctx, s.wdb, prefixes, true, s.opts.now(), s.opts.logger)
	})
	if err != nil {
		return nil, err
	}
	return prefixes, nil
}

// Withhold returns kv with its value withheld when it is a secret's (Value
// nil, Hash and Length set), for a reader that may know of the value but
// not see it; other values are returned as they are.
func (s *Store) Withhold(kv KeyValue) (KeyValue, error) {
	w, err := s.keys.Withheld(&kv)
	if err != nil {
		return KeyValue{}, err
	}
	return *w, nil
}
