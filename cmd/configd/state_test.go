package main_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/cli"
	"github.com/configd/configd/internal/tampertest"
)

// stop stops d with SIGTERM and waits for it to exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(); code != 0 {
		d.t.Fatalf("configd exited %d after SIGTERM; output:\n%s", code, d.Log)
	}
}

// refused starts configd on dir and checks that it refuses to start with
// an error line that says each of want.
func refused(t *testing.T, dir string, want ...string) {
	t.Helper()
	d := launch(t, "--data-dir", dir, "--http-addr", "127.0.0.1:0")
	if code := d.Wait(); code != 1 {
		t.Fatalf("configd exited %d, want 1; output:\n%s", code, d.Log)
	}
	line := configdLine(d.Log.String())
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("error line %q does not say %q", line, w)
		}
	}
	if strings.Contains(d.Log.String(), "msg=listening") {
		t.Errorf("configd listened; output:\n%s", d.Log)
	}
}

func configctl(addr string, args ...string) (int, string) {
	var out bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"--addr", addr}, args...), nil, &out, &out)
	return code, out.String()
}

// Issue 13, fault 3: an edit of the current state behind configd's back is
// reported by audit verify while configd runs, refused at the next start
// and in a backup by configd restore; restoring a good backup recovers.
func TestAStateEditedBehindConfigdsBackIsReportedRefusedAndRecovered(t *testing.T) {
	dir := t.TempDir()
	d := start(t, dir)
	d.mustCall(http.MethodPut, "/v1/kv/app/db/host", []byte("db.internal"), nil)
	d.mustCall(http.MethodPut, "/v1/kv/app/db/port", []byte("5432"), nil)
	backup := filepath.Join(t.TempDir(), "good.db")
	if code, out := configctl(d.Addr, "backup", backup); code != 0 {
		t.Fatalf("configctl backup: exit %d: %s", code, out)
	}

	tampertest.Exec(t, filepath.Join(dir, "configd.db"), `UPDATE kv SET value = 'evil.example' WHERE key = 'app/db/host'`)
	var v api.VerifyResponse
	d.mustCall(http.MethodGet, "/v1/audit/verify", nil, &v)
	const wrong = "the current state disagrees with the history at revision 2"
	if v.OK || v.BrokenRev != 2 || !strings.Contains(v.Problem, wrong) {
		t.Fatalf("GET /v1/audit/verify after the edit: %+v", v)
	}
	if code, out := configctl(d.Addr, "audit", "verify"); code != 1 || !strings.Contains(out, "BROKEN at revision 2: "+wrong) {
		t.Fatalf("configctl audit verify: exit %d: %s", code, out)
	}
	d.stop()
	refused(t, dir, "refusing to start", wrong, "configd restore --replace --data-dir "+dir)

	// The same edit in a backup: configd restore refuses it.
	bad := filepath.Join(t.TempDir(), "bad.db")
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tampertest.Exec(t, bad, `UPDATE kv SET value = 'evil.example' WHERE key = 'app/db/host'`)
	if code, out := restore(t, "--data-dir", t.TempDir(), bad); code != 1 || !strings.Contains(out, "refused: its current state disagrees with its audit history") {
		t.Fatalf("restore of an edited backup: exit %d: %s", code, out)
	}

	if code, out := restore(t, "--data-dir", dir, "--replace", backup); code != 0 {
		t.Fatalf("restore of the good backup: exit %d: %s", code, out)
	}
	d = start(t, dir)
	var kv api.KeyValue
	d.mustCall(http.MethodGet, "/v1/kv/app/db/host", nil, &kv)
	d.mustCall(http.MethodGet, "/v1/audit/verify", nil, &v)
	if kv.Value != "db.internal" || !v.OK || v.Head != 2 || v.StateFrom != 1 {
		t.Fatalf("after the restore: %+v, verify %+v", kv, v)
	}
}

// Issue 13, fault 4: after the newest revisions are cut off, configd
// refuses to start rather than hand their numbers out again.
func TestStartRefusesAHistoryWhoseNewestRevisionsWereRemoved(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stmts []string
	}{
		{"revisions removed", nil},
		// Without a source, the store layer's values are kv's alone (layer_kv holds no row of them).
		{"revisions and the keys they wrote removed", []string{`DELETE FROM kv WHERE mod_rev > 7`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := start(t, dir)
			for i := 1; i <= 10; i++ {
				d.mustCall(http.MethodPut, fmt.Sprintf("/v1/kv/app/k%d", i), []byte("v"), nil)
			}
			d.stop()
			tampertest.Exec(t, filepath.Join(dir, "configd.db"), append([]string{`DELETE FROM changes WHERE rev > 7`, `DELETE FROM layer_changes WHERE rev > 7`,
				`DELETE FROM revisions WHERE rev > 7`}, tc.stmts...)...)
			refused(t, dir, "the history ends at revision 7, but this database had reached revision 10", "configd restore --replace")
		})
	}
}

// Issue 13, item 7a: a backup cut by kill -9 leaves its temporary copy in
// the data dir; the next start removes it (and only it), and says so.
func TestStartRemovesWhatABackupKilledMidwayLeft(t *testing.T) {
	dir := t.TempDir()
	d := start(t, dir)
	// 6 MiB of values, which the database holds four times (the state,
	// the store layer, the history of each): more than the socket buffers
	// hold, so that the backup is still being sent when configd is killed.
	value := bytes.Repeat([]byte("x"), 1<<20)
	for i := range 6 {
		d.mustCall(http.MethodPut, fmt.Sprintf("/v1/kv/big/%d", i), value, nil)
	}
	resp, err := http.Get(d.url("/v1/backup"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %s", resp.Status)
	}
	// The headers are sent once the copy is made; the body is not read.
	d.Signal(syscall.SIGKILL)
	d.Wait()
	left, _ := filepath.Glob(filepath.Join(dir, ".backup-*"))
	if len(left) != 1 {
		t.Fatalf("the killed backup left %v, want its directory", left)
	}
	mine := filepath.Join(dir, ".backup-notes")
	if err := os.WriteFile(mine, []byte("not configd's"), 0o600); err != nil {
		t.Fatal(err)
	}

	d = start(t, dir)
	d.WaitLog(regexp.MustCompile(`removed what an interrupted backup left" dir=` + regexp.QuoteMeta(left[0])))
	if _, err := os.Stat(left[0]); !os.IsNotExist(err) {
		t.Errorf("%s is still there after the start: %v", left[0], err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a file configd did not make was removed: %v", err)
	}
	var v api.VerifyResponse
	d.mustCall(http.MethodGet, "/v1/audit/verify", nil, &v)
	if !v.OK || v.Head != 6 {
		t.Fatalf("verify after the restart: %+v", v)
	}
}

// Issue 13, item 7c: the data dir configd creates is 0700 and its database
// files 0600; an open data dir gets a warning, one every user may write in
// is refused.
func TestDataDirAndDatabaseFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	d := start(t, dir)
	d.mustCall(http.MethodPut, "/v1/kv/app/k", []byte("v"), nil)
	fileMode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := fileMode(dir); m != 0o700 {
		t.Errorf("data dir: mode %04o, want 0700", m)
	}
	for _, name := range []string{"configd.db", "configd.db-wal", "configd.db-shm", "configd.db.lock"} {
		if m := fileMode(filepath.Join(dir, name)); m != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", name, m)
		}
	}
	if regexp.MustCompile(`level=WARN msg="[^"]*(data dir|database file)`).MatchString(d.Log.String()) {
		t.Errorf("a private data dir got a warning:\n%s", d.Log)
	}
	d.stop()

	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "configd.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	d = start(t, dir)
	d.WaitLog(regexp.MustCompile(`level=WARN msg="the data dir is open to group or others.*mode=0755`))
	d.WaitLog(regexp.MustCompile(`level=WARN msg="audit: a database file was readable or writable by group or others; made it 0600".*mode=0644`))
	if m := fileMode(filepath.Join(dir, "configd.db")); m != 0o600 {
		t.Errorf("configd.db: mode %04o after the start, want 0600", m)
	}
	d.stop()

	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	refused(t, dir, "data dir "+dir+" is writable by every user (mode 0777)", "chmod 700 "+dir)
}
