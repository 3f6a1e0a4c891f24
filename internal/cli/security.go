package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// errChainBroken makes audit verify exit 1 after printing what it found.
var errChainBroken = errors.New("the audit chain is broken")

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the audit trail",
		Args:  rangeArgs(0, 0, "a subcommand (verify)"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Verify the audit chain; exit 1 and name the first broken revision if it is broken",
		Long: `Verify the audit chain. Every revision carries a SHA-256 over its content
(who, when, why, every change with its old and new values) and over the
previous revision's hash; configd recomputes all of them and names the
first revision that does not match, or that is missing.

Exits 0 when the chain is intact and 1 when it is broken (or configd cannot
be asked). Keep the head hash it prints somewhere else: a chain that was
rewritten from some revision on, or cut short, no longer ends there.`,
		Args: rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := c.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := a.structured(v); ok {
				if err == nil && !v.OK {
					err = fmt.Errorf("%w at revision %d: %s", errChainBroken, v.BrokenRev, v.Problem)
				}
				return err
			}
			if !v.OK {
				fmt.Fprintf(a.stdout, "BROKEN at revision %d: %s\n", v.BrokenRev, v.Problem)
				fmt.Fprintf(a.stdout, "revisions 1-%d verify (head hash %s)\n", v.Head, dash(v.HeadHash))
				return fmt.Errorf("%w at revision %d", errChainBroken, v.BrokenRev)
			}
			fmt.Fprintf(a.stdout, "ok: %d revisions verify\nhead: revision %d, hash %s\n", v.Revisions, v.Head, dash(v.HeadHash))
			if v.LegacyThrough > 0 {
				fmt.Fprintf(a.stdout, "revisions 1-%d predate the chain: they were hashed when the database was upgraded\n", v.LegacyThrough)
			}
			return nil
		},
	})
	return cmd
}

func (a *app) backupCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Save a consistent copy of configd's database, with its history and audit chain",
		Long: `Save a consistent copy of configd's database into FILE while configd keeps
serving and writing: the current state, every layer, the whole history and
the audit chain, as one SQLite file. The copy's size and SHA-256 are checked
against what configd sent before FILE is written (atomically: a temporary
file is renamed). Restore it with: configd restore --data-dir DIR FILE.

FILE must not exist unless --force. --timeout does not apply: a large
database takes as long as it takes to send.`,
		Args: rangeArgs(1, 1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			if _, err := os.Lstat(file); err == nil && !force {
				return fmt.Errorf("%s exists; pass --force to replace it", file)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			info, err := c.Backup(cmd.Context(), tmp)
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if err := os.Rename(tmp.Name(), file); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if ok, err := a.structured(map[string]any{"file": file, "rev": info.Rev, "head_hash": info.HeadHash,
				"size": info.Size, "sha256": info.SHA256}); ok {
				return err
			}
			fmt.Fprintf(a.stdout, "backup of revision %d written to %s (%d bytes, sha256 %s)\nhead hash %s\n",
				info.Rev, file, info.Size, info.SHA256, dash(info.HeadHash))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	return cmd
}
