package offline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server"
	"github.com/configd/configd/setting"
)

// RotateMasterKeyCommand is "configd rotate-master-key": offline, on a data dir
// that no configd has open, it re-wraps every data key of the secrets
// under a new master key. Values are not touched. It returns the exit
// code: 0 done, 1 failed, 2 usage.
func RotateMasterKeyCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("configd rotate-master-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, settings, flags := offlineSettings(fs, "data-dir")
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
	if err := settings.Load(setting.Sources{Env: lookupEnv(getenv), Flags: flags}); err != nil {
		fmt.Fprintln(stderr, "configd rotate-master-key:", err)
		return 2
	}
	if err := rotate(ctx, filepath.Join(cfg.DataDir, server.DBFile), *oldFile, *newFile, stdout); err != nil {
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
	st, err := openOffline(ctx, dbPath, oldKey, "the old key file "+oldFile)
	if err != nil {
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

// offlineSettings adds to fs the flags of the daemon's settings called names (--data-dir, ...),
// as configd has them but for the config file, which the offline commands do not read. After
// fs.Parse, settings.Load(flags and the environment) sets them in cfg, over the defaults.
func offlineSettings(fs *flag.FlagSet, names ...string) (cfg *server.Config, settings setting.Table, flags *setting.Flags) {
	c := server.DefaultConfig()
	settings = c.Settings().Only(names...).NoFile()
	return &c, settings, settings.AddFlags(fs, setting.ParseOnLoad)
}

// lookupEnv reads the environment through getenv, an empty variable counting as unset.
func lookupEnv(getenv func(string) string) func(string) (string, bool) {
	return func(k string) (string, bool) { v := getenv(k); return v, v != "" }
}

// openOffline opens the database at path with master key mk (from where, for the error), for a
// command that needs no configd running on it.
func openOffline(ctx context.Context, path string, mk *secrets.MasterKey, where string) (*audit.Store, error) {
	st, err := audit.Open(ctx, path, audit.WithMasterKey(mk))
	switch {
	case errors.Is(err, audit.ErrLocked):
		return nil, fmt.Errorf("%s is open by a running configd: stop it first", path)
	case errors.Is(err, audit.ErrWrongMasterKey):
		return nil, fmt.Errorf("%s does not hold the database's master key: %w", where, err)
	case errors.Is(err, audit.ErrStateMismatch):
		return nil, fmt.Errorf("%w; %s", err, server.RestoreHint(filepath.Dir(path)))
	case err != nil:
		return nil, err
	}
	return st, nil
}

// prefixList is a repeatable --prefix flag.
type prefixList []string

func (p *prefixList) String() string     { return strings.Join(*p, ",") }
func (p *prefixList) Set(v string) error { *p = append(*p, v); return nil }

// RotateDataKeysCommand is "configd rotate-data-keys": offline, it gives the secrets of each prefix
// named (every prefix with secrets when none is) a new data key. New values are sealed with
// it; values written before keep their key. It returns the exit code: 0 done, 1 failed, 2
// usage.
func RotateDataKeysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("configd rotate-data-keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, settings, flags := offlineSettings(fs, "data-dir", "master-key-file", "master-key")
	var prefixes prefixList
	fs.Var(&prefixes, "prefix", "a prefix to rotate, as secrets are grouped: the key's first segment and a slash (app/); repeatable; default every prefix with secrets")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: configd rotate-data-keys [--prefix app/]... [--master-key-file F] [--data-dir D]\n\n"+
			"Gives each prefix's secrets a new data key, wrapped by the master key. Values written from then on\n"+
			"are sealed with it; values written before keep the key they were sealed with (the audit chain covers\n"+
			"the ciphertext, so history is not re-encrypted). Stop configd first.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "configd rotate-data-keys: no arguments expected (see -h)")
		return 2
	}
	if err := settings.Load(setting.Sources{Env: lookupEnv(getenv), Flags: flags}); err != nil {
		fmt.Fprintln(stderr, "configd rotate-data-keys:", err)
		return 2
	}
	mk, err := cfg.LoadMasterKey()
	if err == nil && mk == nil {
		err = errors.New("no master key: give --master-key-file (or " + server.EnvPrefix + "MASTER_KEY_FILE, or " + server.EnvPrefix + "MASTER_KEY)")
	}
	if err != nil {
		fmt.Fprintln(stderr, "configd rotate-data-keys:", err)
		return 2
	}
	path := filepath.Join(cfg.DataDir, server.DBFile)
	st, err := openOffline(ctx, path, mk, "the master key given")
	if err != nil {
		fmt.Fprintln(stderr, "configd rotate-data-keys:", err)
		return 1
	}
	rotated, err := st.RotateDataKeys(ctx, prefixes...)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(stderr, "configd rotate-data-keys:", err)
		return 1
	}
	if len(rotated) == 0 {
		fmt.Fprintln(stdout, "no secrets: no data key to rotate")
		return 0
	}
	fmt.Fprintf(stdout, "new data keys for %s; values written from now on are sealed with them\n", strings.Join(rotated, ", "))
	return 0
}
