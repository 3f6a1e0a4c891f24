package api

// Headers of GET /v1/backup.
const (
	// HeaderBackupSHA256 carries the hex SHA-256 of the backup file in the
	// body, so that a client can check what it stored.
	HeaderBackupSHA256 = "X-Configd-Backup-Sha256"
	// HeaderBackupHeadHash carries the audit chain hash (hex) of the newest
	// revision in the backup; HeaderRev carries that revision.
	HeaderBackupHeadHash = "X-Configd-Backup-Head-Hash"
)

// BackupContentType is the content type of GET /v1/backup's body: a SQLite
// database file.
const BackupContentType = "application/vnd.sqlite3"

// VerifyResponse answers GET /v1/audit/verify: what a walk of the audit
// chain, and the check of the current state against it, found. A broken
// chain, or a state that disagrees with it, is a 200 with OK false.
type VerifyResponse struct {
	OK bool `json:"ok"`
	// Revisions is how many revisions verified.
	Revisions int64 `json:"revisions"`
	// Head is the newest revision verified and HeadHash its chain hash
	// (hex): keep it elsewhere to detect a rewritten or truncated chain.
	Head     int64  `json:"head"`
	HeadHash string `json:"head_hash,omitempty"`
	// LegacyThrough is the newest revision written before the database had
	// the chain; those were hashed when it was upgraded.
	LegacyThrough int64 `json:"legacy_through,omitempty"`
	// StateFrom is the first revision that records a digest of the state
	// it produced (earlier ones predate the digest); from it on, the
	// current state is checked against the head's digest.
	StateFrom int64 `json:"state_from,omitempty"`
	// BrokenRev is the first revision that does not verify, and Problem
	// says why; both are empty when OK.
	BrokenRev int64  `json:"broken_rev,omitempty"`
	Problem   string `json:"problem,omitempty"`
}
