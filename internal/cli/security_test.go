package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
)

// newConfigdAt is newConfigd that also returns its store, for tests that
// edit the database file behind configd's back.
func newConfigdAt(t *testing.T) (*testConfigd, *audit.Store) {
	t.Helper()
	e := configdtest.NewEnv(t)
	return &testConfigd{t: t, url: e.URL}, e.Store
}

func TestAuditVerifyExits1AndNamesTheTamperedRevision(t *testing.T) {
	d, st := newConfigdAt(t)
	d.ok("set", "app/a", "1")
	d.ok("set", "app/b", "2")
	d.ok("set", "app/a", "3")
	d.run("", "audit", "verify").want(t, 0, "~(?s)ok: 3 revisions verify.*head: revision 3, hash [0-9a-f]{64}", "")

	// Someone with access to the file rewrites what revision 2 set.
	db, err := sql.Open("sqlite", st.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE changes SET new_value = 'evil' WHERE rev = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	d.run("", "audit", "verify").want(t, ExitError, "~BROKEN at revision 2: revision 2 does not match its hash",
		"~configctl: the audit chain is broken at revision 2")
	r := d.run("", "-o", "json", "audit", "verify")
	var v api.VerifyResponse
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != ExitError || v.OK || v.BrokenRev != 2 || v.Revisions != 1 {
		t.Fatalf("audit verify -o json: exit %d, %+v (%v), stderr %q", r.code, v, err, r.stderr)
	}
}

func TestBackupWritesAVerifiedRestorableCopy(t *testing.T) {
	d, _ := newConfigdAt(t)
	d.ok("set", "app/a", "1")
	d.ok("set", "app/b", "2")
	file := filepath.Join(t.TempDir(), "backup.db")
	d.run("", "backup", file).want(t, 0, "~backup of revision 2 written to .*backup.db \\(\\d+ bytes, sha256 [0-9a-f]{64}\\)", "")
	d.run("", "backup", file).want(t, ExitError, "", "~exists; pass --force")
	d.ok("set", "app/c", "3")
	d.run("", "backup", "--force", file).want(t, 0, "~backup of revision 3", "")
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	dbPath := filepath.Join(t.TempDir(), "configd.db")
	res, err := audit.Restore(context.Background(), file, dbPath, audit.RestoreOptions{})
	if err != nil || !res.OK || res.Head != 3 {
		t.Fatalf("restore of the backup: %+v, %v", res, err)
	}
	st, err := audit.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kv, err := st.Get(context.Background(), "app/c")
	if err != nil || string(kv.Value) != "3" {
		t.Fatalf("app/c in the restored copy = %+v, %v", kv, err)
	}
}

func TestBackupToAMissingDirectoryFails(t *testing.T) {
	d, _ := newConfigdAt(t)
	d.ok("set", "k", "v")
	file := filepath.Join(t.TempDir(), "no", "such", "dir", "backup.db")
	r := d.run("", "backup", file)
	if r.code != ExitError || !strings.Contains(r.stderr, "no such file or directory") {
		t.Fatalf("backup into a missing dir: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a backup file was written")
	}
}
