// Package offline holds configd's offline commands, run on the data dir of
// a stopped configd (cmd/configd dispatches them by name, Lookup): restore
// (from a backup), rotate-master-key and rotate-data-keys. They read the
// daemon's settings where it does (the data dir, the master key) and
// answer with its exit codes: 0 done, 1 refused or failed, 2 usage.
package offline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server"
)

// RestoreUsage is the synopsis of configd restore.
const RestoreUsage = `usage: configd restore [--data-dir DIR] [--replace] FILE

Restore configd's database in DIR (default ./data, or $CONFIGD_DATA_DIR)
from FILE, a backup made by configctl backup (GET /v1/backup). configd must
not be running on DIR. FILE must be a configd database whose audit chain
verifies and whose current state matches its history; it is checked in a
temporary file and moved into place only then.
An existing database is replaced only with --replace, and kept beside it as
configd.db.replaced-<time>.

Exit codes: 0 restored, 1 refused or failed, 2 usage.
`

// Restore restores the database of dataDir from the backup file, creating
// dataDir if needed. Its errors are one line that says what to fix.
func Restore(ctx context.Context, dataDir, file string, replace bool) (audit.VerifyResult, error) {
	dbPath, err := server.PrepareDataDir(dataDir)
	if err != nil {
		return audit.VerifyResult{}, err
	}
	res, err := audit.Restore(ctx, file, dbPath, audit.RestoreOptions{Replace: replace})
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, audit.ErrLocked):
		return res, fmt.Errorf("data dir %s is in use by a running configd; stop it first", dataDir)
	case errors.Is(err, audit.ErrTargetExists):
		return res, fmt.Errorf("data dir %s already holds a database; pass --replace to replace it (the old one is kept beside it)", dataDir)
	case errors.Is(err, audit.ErrNotConfigd):
		return res, fmt.Errorf("refused: %w", err)
	case errors.Is(err, audit.ErrChainBroken):
		return res, fmt.Errorf("%s: refused: the audit chain is broken at revision %d: %s", file, res.BrokenRev, res.Problem)
	case errors.Is(err, audit.ErrStateMismatch):
		return res, fmt.Errorf("%s: refused: its current state disagrees with its audit history: %s", file, res.Problem)
	case errors.Is(err, audit.ErrSchemaTooNew):
		return res, fmt.Errorf("%s was written by a newer configd; restore it with that version or newer", file)
	}
	return res, err
}

// RestoreCommand runs "configd restore" with args (after "restore") and
// returns the exit code.
func RestoreCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("configd restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, RestoreUsage) }
	dataDir := server.DefaultConfig().DataDir
	if d := getenv(server.EnvPrefix + "DATA_DIR"); d != "" {
		dataDir = d
	}
	fs.StringVar(&dataDir, "data-dir", dataDir, "directory of the database to restore")
	replace := fs.Bool("replace", false, "replace an existing database (it is kept beside it)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "configd restore: want one backup FILE, got %d arguments\n%s", fs.NArg(), RestoreUsage)
		return 2
	}
	file := fs.Arg(0)
	if _, err := os.Stat(file); err != nil {
		fmt.Fprintf(stderr, "configd: restore: %v\n", err)
		return 1
	}
	res, err := Restore(ctx, dataDir, file, *replace)
	if err != nil {
		fmt.Fprintf(stderr, "configd: restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s into %s: revision %d, audit chain verified (%d revisions, head hash %s)\n",
		file, dataDir, res.Head, res.Revisions, res.HeadHash)
	return 0
}
