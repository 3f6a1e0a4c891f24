package apiclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/configd/configd/api"
)

// ErrBackupCorrupt: a backup arrived short, or with a digest other than
// the one configd announced.
var ErrBackupCorrupt = errors.New("backup corrupted in transit")

// VerifyAudit asks configd to walk its audit chain. A broken chain is not
// an error: the answer's OK is false and BrokenRev names the first broken
// revision.
func (c *Client) VerifyAudit(ctx context.Context) (api.VerifyResponse, error) {
	var v api.VerifyResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/audit/verify"}, &v)
	return v, err
}

// BackupInfo describes a backup that Backup received.
type BackupInfo struct {
	// Rev is the newest revision in the backup, HeadHash its audit chain
	// hash (hex).
	Rev      int64
	HeadHash string
	// Size in bytes and SHA256 (hex) of what was written, checked against
	// what configd announced.
	Size   int64
	SHA256 string
}

// Backup streams a consistent copy of configd's database (a SQLite file
// with the history and the audit chain; configd restore reads it) into w.
// It checks the length and SHA-256 configd announced and returns
// ErrBackupCorrupt when they differ; w may then hold a partial copy. A
// large database takes as long as it takes to send: WithTimeout does not
// apply to Backup, only ctx bounds it.
func (c *Client) Backup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	var info BackupInfo
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/v1/backup", nil)
	if err != nil {
		return info, fmt.Errorf("client: building request: %w", err)
	}
	hreq.Header.Set("Accept", api.BackupContentType)
	if c.opts.userAgent != "" {
		hreq.Header.Set("User-Agent", c.opts.userAgent)
	}
	c.authorize(hreq)
	if c.opts.actor != "" {
		hreq.Header.Set(api.HeaderActor, c.opts.actor)
	}
	resp, err := c.opts.httpClient.Do(hreq)
	if err != nil {
		return info, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, decodeError(resp)
	}
	info.Rev, _ = strconv.ParseInt(resp.Header.Get(api.HeaderRev), 10, 64)
	info.HeadHash = resp.Header.Get(api.HeaderBackupHeadHash)
	want := resp.Header.Get(api.HeaderBackupSHA256)
	h := sha256.New()
	info.Size, err = io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return info, c.transportError(ctx, err)
		}
		return info, fmt.Errorf("client: backup from configd at %s: %w", c.addr, err)
	}
	info.SHA256 = hex.EncodeToString(h.Sum(nil))
	switch {
	case resp.ContentLength >= 0 && info.Size != resp.ContentLength:
		return info, fmt.Errorf("%w: received %d bytes of %d", ErrBackupCorrupt, info.Size, resp.ContentLength)
	case want == "":
		return info, fmt.Errorf("%w: configd at %s sent no %s", ErrBackupCorrupt, c.addr, api.HeaderBackupSHA256)
	case want != info.SHA256:
		return info, fmt.Errorf("%w: SHA-256 %s, configd announced %s", ErrBackupCorrupt, info.SHA256, want)
	}
	return info, nil
}
