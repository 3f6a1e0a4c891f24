package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/cli"
)

// restore runs "configd restore" and returns its exit code and output.
func restore(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"restore"}, args...)...)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run configd restore: %v", err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func TestBackupUnderWritesRestoresIntoANewDataDir(t *testing.T) {
	dirA := t.TempDir()
	a := start(t, dirA)

	// Writers keep changing keys, two per revision, for the whole backup.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"reason":"load","ops":[{"op":"put","key":"load/w%d/a","value":"%d"},{"op":"put","key":"load/w%d/b","value":"%d"}]}`, w, i, w, i)
				if err := a.call(http.MethodPost, "/v1/txn", []byte(body), nil); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		}()
	}
	var st api.Status
	for st.Rev < 50 {
		a.mustCall(http.MethodGet, "/v1/status", nil, &st)
	}
	file := filepath.Join(t.TempDir(), "configd-backup.db")
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), []string{"--addr", a.Addr, "-o", "json", "backup", file}, nil, &out, &errOut)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("configctl backup: exit %d: %s", code, errOut.String())
	}
	var info struct {
		Rev      int64  `json:"rev"`
		HeadHash string `json:"head_hash"`
	}
	if err := json.Unmarshal(out.Bytes(), &info); err != nil || info.Rev < 50 || len(info.HeadHash) != 64 {
		t.Fatalf("configctl backup printed %q (%v)", out.String(), err)
	}
	a.mustCall(http.MethodGet, "/v1/status", nil, &st)
	if st.Rev <= info.Rev {
		t.Fatalf("no write landed after the backup (backup rev %d, now %d): the test did not back up under writes", info.Rev, st.Rev)
	}

	// Refused: the data dir of a running configd, and a file that is not a
	// configd database.
	if code, out := restore(t, "--data-dir", dirA, "--replace", file); code != 1 || !strings.Contains(out, "in use by a running configd") {
		t.Fatalf("restore into a running configd's data dir: exit %d: %s", code, out)
	}
	notes := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notes, []byte("not a database"), 0o600)
	if code, out := restore(t, "--data-dir", t.TempDir(), notes); code != 1 || !strings.Contains(out, "not a SQLite database") {
		t.Fatalf("restore of a text file: exit %d: %s", code, out)
	}

	dirB := filepath.Join(t.TempDir(), "restored")
	code, rout := restore(t, "--data-dir", dirB, file)
	if code != 0 || !strings.Contains(rout, fmt.Sprintf("revision %d, audit chain verified", info.Rev)) {
		t.Fatalf("restore: exit %d: %s", code, rout)
	}
	if code, out := restore(t, "--data-dir", dirB, file); code != 1 || !strings.Contains(out, "--replace") {
		t.Fatalf("restore over a restored database: exit %d: %s", code, out)
	}

	b := start(t, dirB)
	var stB api.Status
	b.mustCall(http.MethodGet, "/v1/status", nil, &stB)
	if stB.Rev != info.Rev {
		t.Fatalf("restored configd is at revision %d, the backup at %d", stB.Rev, info.Rev)
	}
	for rev := int64(1); rev <= info.Rev; rev++ {
		var ra, rb api.Revision
		path := fmt.Sprintf("/v1/revisions/%d", rev)
		a.mustCall(http.MethodGet, path, nil, &ra)
		b.mustCall(http.MethodGet, path, nil, &rb)
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("revision %d differs:\noriginal %+v\nrestored %+v", rev, ra, rb)
		}
	}
	var va, vb api.VerifyResponse
	a.mustCall(http.MethodGet, "/v1/audit/verify", nil, &va)
	b.mustCall(http.MethodGet, "/v1/audit/verify", nil, &vb)
	if !va.OK || !vb.OK || vb.Head != info.Rev || vb.HeadHash != info.HeadHash {
		t.Fatalf("verify: original %+v, restored %+v, backup head %d %s", va, vb, info.Rev, info.HeadHash)
	}
	// The restored configd goes on with the chain.
	b.mustCall(http.MethodPut, "/v1/kv/after/restore", []byte("yes"), nil)
	b.mustCall(http.MethodGet, "/v1/audit/verify", nil, &vb)
	if !vb.OK || vb.Head != info.Rev+1 {
		t.Fatalf("verify after a write on the restored configd: %+v", vb)
	}
}
