package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
)

// auditVerify answers GET /v1/audit/verify: a walk of the whole audit
// chain and a check of the current state against it. A broken chain, or a
// state that disagrees with it, is a 200 with ok false, naming the
// revision.
func (h *handler) auditVerify(w http.ResponseWriter, r *http.Request) {
	res, err := h.st.Verify(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !res.OK {
		h.opts.logger.Error("audit chain broken", "rev", res.BrokenRev, "problem", res.Problem)
	}
	h.metrics.verified(res.OK)
	setRev(w, res.Head)
	apierror.WriteJSON(w, http.StatusOK, verifyResponse(res))
}

func verifyResponse(res audit.VerifyResult) api.VerifyResponse {
	return api.VerifyResponse{OK: res.OK, Revisions: res.Revisions, Head: res.Head, HeadHash: res.HeadHash,
		LegacyThrough: res.LegacyThrough, StateFrom: res.StateFrom, BrokenRev: res.BrokenRev, Problem: res.Problem}
}

// backup answers GET /v1/backup with a consistent copy of the database, a
// SQLite file, made while writes go on. The copy is made in a temporary
// directory inside the data dir (audit.Store.TempBackup) and removed once
// sent.
func (h *handler) backup(w http.ResponseWriter, r *http.Request) {
	path, info, remove, err := h.st.TempBackup(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer remove()
	f, err := os.Open(path)
	if err != nil {
		h.fail(w, r, fmt.Errorf("backup: %w", err))
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Content-Type", api.BackupContentType)
	hd.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="configd-rev%d.db"`, info.Rev))
	hd.Set("Cache-Control", "no-store")
	hd.Set(api.HeaderBackupSHA256, info.SHA256)
	hd.Set(api.HeaderBackupHeadHash, info.HeadHash)
	setRev(w, info.Rev)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, f); err != nil {
		h.opts.logger.Warn("backup not fully sent", "rev", info.Rev, "err", err)
		return
	}
	h.opts.logger.Info("backup sent", "rev", info.Rev, "bytes", info.Size, "sha256", info.SHA256)
}
