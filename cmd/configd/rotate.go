package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server"
)

// rotateMasterKey is "configd rotate-master-key": offline, on a data dir
// that no configd has open, it re-wraps every data key of the secrets
// under a new master key. Values are not touched. It returns the exit
// code: 0 done, 1 failed, 2 usage.
func rotateMasterKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("configd rotate-master-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "the data dir of the database (env "+server.EnvPrefix+"DATA_DIR; default ./data)")
	oldFile := fs.String("old-key-file", "", "file of the current master key (required)")
	newFile := fs.String("new-key-file", "", "file of the new master key (required; e.g. head -c 32 /dev/urandom | base64 > new.key; chmod 600 new.key)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: configd rotate-master-key --old-key-file A --new-key-file B [--data-dir D]\n\n"+
			"Re-wraps the data keys of the secrets under the new master key, in one transaction.\n"+
			"Stop configd first; start it again with the new key. Values are not re-encrypted.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *oldFile == "" || *newFile == "" {
		fmt.Fprintln(stderr, "configd rotate-master-key: want --old-key-file and --new-key-file, and no arguments (see -h)")
		return 2
	}
	dir := *dataDir
	if dir == "" {
		dir = getenv(server.EnvPrefix + "DATA_DIR")
	}
	if dir == "" {
		dir = server.DefaultConfig().DataDir
	}
	if err := rotate(ctx, filepath.Join(dir, server.DBFile), *oldFile, *newFile, stdout); err != nil {
		fmt.Fprintln(stderr, "configd rotate-master-key:", err)
		return 1
	}
	return 0
}

func rotate(ctx context.Context, dbPath, oldFile, newFile string, stdout io.Writer) error {
	oldKey, err := secrets.LoadMasterKeyFile(oldFile)
	if err != nil {
		return fmt.Errorf("old key: %w", err)
	}
	newKey, err := secrets.LoadMasterKeyFile(newFile)
	if err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	if oldKey.Equal(newKey) {
		return errors.New("the old and the new master key are the same key")
	}
	st, err := audit.Open(ctx, dbPath, audit.WithMasterKey(oldKey))
	switch {
	case errors.Is(err, audit.ErrLocked):
		return fmt.Errorf("%s is open by a running configd: stop it first", dbPath)
	case errors.Is(err, audit.ErrWrongMasterKey):
		return fmt.Errorf("the old key file %s does not hold the database's master key: %w", oldFile, err)
	case err != nil:
		return err
	}
	if err := st.RotateMasterKey(ctx, newKey); err != nil {
		st.Close()
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "master key rotated: %s → %s; start configd with --master-key-file %s\n", oldKey.ID(), newKey.ID(), newFile)
	return nil
}
