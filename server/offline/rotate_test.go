package offline

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/tampertest"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server"
)

func keyFile(t *testing.T, dir, name string) (string, *secrets.MasterKey) {
	t.Helper()
	mk, b64, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b64), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, mk
}

// newDataDir makes a data dir in dir and returns it with its database's
// path.
func newDataDir(t *testing.T, dir string) (string, string) {
	t.Helper()
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dataDir, filepath.Join(dataDir, server.DBFile)
}

func TestRotateMasterKeyCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dataDir, dbPath := newDataDir(t, dir)
	oldFile, oldKey := keyFile(t, dir, "old.key")
	newFile, newKey := keyFile(t, dir, "new.key")
	st, err := audit.Open(ctx, dbPath, audit.WithMasterKey(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(ctx, audit.Txn{Ops: []audit.Op{audit.Put("app/pw", []byte("rotate-me"), "").AsSecret()}}); err != nil {
		t.Fatal(err)
	}
	// While the database is open, the command refuses.
	var out, errOut bytes.Buffer
	env := func(string) string { return "" }
	if code := RotateMasterKeyCommand(ctx, []string{"--data-dir", dataDir, "--old-key-file", oldFile, "--new-key-file", newFile}, env, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "stop it first") {
		t.Fatalf("rotation of an open database: exit %d, %q", code, errOut.String())
	}
	st.Close()
	// The wrong old key is named as such, and changes nothing.
	otherFile, _ := keyFile(t, dir, "other.key")
	errOut.Reset()
	if code := RotateMasterKeyCommand(ctx, []string{"--data-dir", dataDir, "--old-key-file", otherFile, "--new-key-file", newFile}, env, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "does not hold the database's master key") {
		t.Fatalf("wrong old key: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := RotateMasterKeyCommand(ctx, []string{"--old-key-file", oldFile, "--new-key-file", newFile},
		func(k string) string {
			if k == "CONFIGD_DATA_DIR" {
				return dataDir
			}
			return ""
		}, &out, &errOut); code != 0 {
		t.Fatalf("rotation: exit %d, %q", code, errOut.String())
	}
	if !strings.Contains(out.String(), newKey.ID()) {
		t.Errorf("output %q does not name the new key", out.String())
	}
	if _, err := audit.Open(ctx, dbPath, audit.WithMasterKey(oldKey)); !errors.Is(err, audit.ErrWrongMasterKey) {
		t.Fatalf("old key after rotation: %v", err)
	}
	st, err = audit.Open(ctx, dbPath, audit.WithMasterKey(newKey))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kv, err := st.Get(ctx, "app/pw")
	if err != nil || string(kv.Value) != "rotate-me" {
		t.Fatalf("after rotation: %q, %v", kv.Value, err)
	}
	if code := RotateMasterKeyCommand(ctx, []string{"--old-key-file", oldFile}, env, &out, &errOut); code != 2 {
		t.Fatalf("missing --new-key-file: exit %d", code)
	}
}

func TestRotateDataKeysCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dataDir, dbPath := newDataDir(t, dir)
	mkFile, mk := keyFile(t, dir, "master.key")
	var out, errOut bytes.Buffer
	env := func(k string) string {
		if k == "CONFIGD_MASTER_KEY_FILE" {
			return mkFile
		}
		return ""
	}
	args := []string{"--data-dir", dataDir}

	// No master key anywhere: a usage error.
	if code := RotateDataKeysCommand(ctx, args, func(string) string { return "" }, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "no master key") {
		t.Fatalf("no master key: exit %d, %q", code, errOut.String())
	}
	st, err := audit.Open(ctx, dbPath, audit.WithMasterKey(mk))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(ctx, audit.Txn{Ops: []audit.Op{
		audit.Put("app/pw", []byte("old-key"), "").AsSecret(), audit.Put("db/pw", []byte("db"), "").AsSecret(),
	}}); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := RotateDataKeysCommand(ctx, args, env, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "stop it first") {
		t.Fatalf("rotation of an open database: exit %d, %q", code, errOut.String())
	}
	st.Close()
	errOut.Reset()
	if code := RotateDataKeysCommand(ctx, append(args, "--prefix", "nope/"), env, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), `"nope/" has no data key`) {
		t.Fatalf("unknown prefix: exit %d, %q", code, errOut.String())
	}
	out.Reset()
	if code := RotateDataKeysCommand(ctx, append(args, "--prefix", "app/"), env, &out, &errOut); code != 0 || !strings.Contains(out.String(), "app/") {
		t.Fatalf("rotation: exit %d, out %q, err %q", code, out.String(), errOut.String())
	}

	// The value from before still opens; a new one is sealed with another data key.
	st, err = audit.Open(ctx, dbPath, audit.WithMasterKey(mk))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if kv, err := st.Get(ctx, "app/pw"); err != nil || string(kv.Value) != "old-key" {
		t.Fatalf("app/pw after rotation: %q, %v", kv.Value, err)
	}
	before := storedKeyID(t, dbPath, "app/pw")
	r, err := st.Commit(ctx, audit.Txn{Ops: []audit.Op{audit.Put("app/pw", []byte("new-key"), "").AsSecret()}})
	if err != nil {
		t.Fatal(err)
	}
	// A read of the database waits until it holds the journaled revision.
	if _, err := st.Revision(ctx, r.Rev); err != nil {
		t.Fatal(err)
	}
	if after := storedKeyID(t, dbPath, "app/pw"); after == before {
		t.Fatalf("a value written after the rotation is sealed with the old data key %d", after)
	}
}

// storedKeyID is the data key id in the stored ciphertext of key, read from the file at path.
func storedKeyID(t *testing.T, path, key string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ct []byte
	if err := db.QueryRow(`SELECT value FROM kv WHERE key = ?`, key).Scan(&ct); err != nil {
		t.Fatal(err)
	}
	id, err := secrets.CiphertextKeyID(ct)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The rotate commands refuse a database whose state disagrees with its
// history, as configd does, and say how to recover.
func TestRotateCommandsRefuseAStateEditedBehindConfigdsBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dataDir, dbPath := newDataDir(t, dir)
	keyPath, key := keyFile(t, dir, "master.key")
	newPath, _ := keyFile(t, dir, "new.key")
	st, err := audit.Open(ctx, dbPath, audit.WithMasterKey(key))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []audit.Op{audit.Put("app/pw", []byte("s3cret"), "").AsSecret(), audit.Put("app/host", []byte("db"), "")} {
		if _, err := st.Commit(ctx, audit.Txn{Ops: []audit.Op{op}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	tampertest.Exec(t, dbPath, `UPDATE kv SET value = 'evil' WHERE key = 'app/host'`)
	env := func(string) string { return "" }
	for name, run := range map[string]func(out, errOut *bytes.Buffer) int{
		"rotate-master-key": func(out, errOut *bytes.Buffer) int {
			return RotateMasterKeyCommand(ctx, []string{"--data-dir", dataDir, "--old-key-file", keyPath, "--new-key-file", newPath}, env, out, errOut)
		},
		"rotate-data-keys": func(out, errOut *bytes.Buffer) int {
			return RotateDataKeysCommand(ctx, []string{"--data-dir", dataDir, "--master-key-file", keyPath}, env, out, errOut)
		},
	} {
		var out, errOut bytes.Buffer
		if code := run(&out, &errOut); code != 1 || !strings.Contains(errOut.String(), "disagrees with the history at revision 2") ||
			!strings.Contains(errOut.String(), "configd restore --replace --data-dir "+dataDir) {
			t.Errorf("%s: exit %d, %q", name, code, errOut.String())
		}
	}
}
