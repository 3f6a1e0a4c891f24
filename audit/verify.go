package audit

import (
	"context"
	"database/sql"

	"github.com/configd/configd/audit/internal/chain"
)

// VerifyResult is what Verify found (see chain.VerifyResult).
type VerifyResult = chain.VerifyResult

// Verify walks the audit chain from revision 1 to the newest, in one
// consistent snapshot (writes go on meanwhile), and reports the first
// revision whose stored hash does not match its content and its
// predecessor's hash, or that is missing. When the chain verifies, it
// checks the current state against it: a state that disagrees is reported
// with StateMismatch. A broken chain is a result, not an error: the error
// is for a database that cannot be read.
//
// After a compaction the walk starts at the horizon, from the hash of the
// last removed revision that the compaction record keeps; the records
// themselves are chained and the history base is checked against the
// newest one (see Compact).
func (s *Store) Verify(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	err := s.readTx(ctx, func(tx *sql.Tx, _ int64) error {
		r, err := chain.Verify(ctx, tx)
		res = r
		return err
	})
	return res, err
}
