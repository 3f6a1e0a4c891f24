package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/sdk/go/apiclient"
)

func (a *app) setCmd() *cobra.Command {
	var (
		file     string
		typ      string
		ifModRev int64
		secret   bool
	)
	cmd := &cobra.Command{
		Use:   "set KEY VALUE|-",
		Short: "Set a key's value",
		Long: `Set a key's value, as one new revision.

The value is VALUE, or standard input when VALUE is '-', or the contents of
--file. Its bytes are stored exactly: 'echo hi | configctl set k -' stores
"hi\n" (use printf to leave out the newline). A VALUE that starts with '-'
goes after '--': configctl set app/offset -- -5.

--type sets the content type: text, json, yaml, binary, or a MIME type
configd accepts (text/plain, application/json, application/yaml,
application/octet-stream; configd checks that JSON and YAML values parse). Without
it, a file named *.json or *.yaml gets that type, an existing key keeps its
type, and a new key is text.

--secret marks the key secret: configd encrypts its values at rest and shows
only a digest and a length in history, diffs and the web UI; readers of the
key still get the value. The mark sticks to the key for later sets until it
is deleted. configd needs a master key for it (see docs/security.md).

Prints "rev N", or "rev N (unchanged)" when the key already had this value.`,
		Example: `  configctl set app/db/timeout 5s --reason "slower disks"
  configctl set app/features --file features.json
  configctl set app/db/timeout 10s --if-mod-rev 42
  configctl set app/db/password --secret - < password.txt`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 2 && file != "":
				return usagef("set: give a VALUE or --file, not both")
			case len(args) == 1 && file == "":
				return usagef("set: want KEY and VALUE (or '-' for standard input, or --file)")
			case len(args) < 1 || len(args) > 2:
				return usagef("set: want KEY and VALUE, got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if err := keyspace.Validate(key); err != nil {
				return usageError{err}
			}
			var opts []apiclient.WriteOption
			var contentType string // for --secret
			if typ != "" {
				ct, err := parseType(typ)
				if err != nil {
					return usagef("--type: %v", err)
				}
				opts = append(opts, apiclient.WithContentType(ct))
				contentType = ct
			}
			if cmd.Flags().Changed("if-mod-rev") {
				if ifModRev < 0 {
					return usagef("--if-mod-rev %d: must be 0 (key must not exist) or a revision", ifModRev)
				}
				opts = append(opts, apiclient.IfModRev(ifModRev))
			}
			var value []byte
			var err error
			switch {
			case file != "":
				value, err = os.ReadFile(file)
			case args[1] == "-":
				value, err = io.ReadAll(a.stdin)
			default:
				value = []byte(args[1])
			}
			if err != nil {
				return fmt.Errorf("reading the value: %w", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if typ == "" {
				ct, err := a.defaultType(cmd, c, key, file)
				if err != nil {
					return err
				}
				if ct != "" {
					opts = append(opts, apiclient.WithContentType(ct))
				}
				contentType = ct
			}
			if secret {
				wr, err := a.putSecret(cmd, c, key, value, contentType, ifModRev)
				if err != nil {
					return keyError(err, key, 0)
				}
				return a.printWrite(wr)
			}
			if a.reason != "" {
				opts = append(opts, apiclient.WithReason(a.reason))
			}
			wr, err := c.Put(cmd.Context(), key, value, opts...)
			if err != nil {
				return keyError(err, key, 0)
			}
			return a.printWrite(wr)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "read the value from this file")
	f.StringVar(&typ, "type", "", "content type: text, json, yaml, binary or a MIME type")
	f.Int64Var(&ifModRev, "if-mod-rev", 0, "set only if the key's mod_rev is N (0: only if the key does not exist)")
	f.BoolVar(&secret, "secret", false, "mark the key secret: encrypted at rest, its value hidden from history, diffs and the UI")
	return cmd
}

// putSecret sets a key and marks it secret, as a one-op transaction (the
// op's secret field).
func (a *app) putSecret(cmd *cobra.Command, c *apiclient.Client, key string, value []byte, contentType string, ifModRev int64) (api.WriteResponse, error) {
	op := api.TxnOp{Op: "put", Key: key, Secret: true, ContentType: contentType}
	op.Value, op.Encoding = api.EncodeValue(value)
	if cmd.Flags().Changed("if-mod-rev") {
		op.IfModRev = &ifModRev
	}
	return c.Txn(cmd.Context(), api.TxnRequest{Reason: a.reason, Ops: []api.TxnOp{op}})
}

// defaultType is the content type of a set without --type: from the file's
// extension, else the key's current type ("" for a new key: configd's
// default, text).
func (a *app) defaultType(cmd *cobra.Command, c *apiclient.Client, key, file string) (string, error) {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".json":
		return api.TypeJSON, nil
	case ".yaml", ".yml":
		return api.TypeYAML, nil
	}
	kv, err := c.Get(cmd.Context(), key)
	if errors.Is(err, apiclient.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return kv.ContentType, nil
}

// printWrite prints the answer of a write: "rev N" or "rev N (unchanged)".
func (a *app) printWrite(wr api.WriteResponse) error {
	if ok, err := a.structured(wr); ok {
		return err
	}
	if !wr.Changed {
		_, err := fmt.Fprintf(a.stdout, "rev %d (unchanged)\n", wr.Rev)
		return err
	}
	_, err := fmt.Fprintf(a.stdout, "rev %d\n", wr.Rev)
	return err
}

// keyError rewords a not-found error of a key command as `key "k" not
// found`, keeping the error matchable with errors.Is.
func keyError(err error, key string, rev int64) error {
	if !errors.Is(err, apiclient.ErrNotFound) {
		return err
	}
	msg := fmt.Sprintf("key %q not found", key)
	if rev > 0 {
		msg += fmt.Sprintf(" at rev %d", rev)
	}
	return &reworded{msg: msg, err: err}
}

// reworded is an error shown with a message of configctl's own while still
// matching its cause.
type reworded struct {
	msg string
	err error
}

func (e *reworded) Error() string { return e.msg }
func (e *reworded) Unwrap() error { return e.err }

func (a *app) getCmd() *cobra.Command {
	var rev int64
	var fresh freshness
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a key's value",
		Long: `Print a key's value: its bytes exactly as stored (a newline is added only
on a terminal). With -o json or -o yaml, print the key with its content type
and revisions instead; a value that is not UTF-8 is then base64 with
"encoding": "base64".`,
		Example: `  configctl get app/db/timeout
  configctl get app/db/timeout --rev 12 -o json`,
		Args: rangeArgs(1, 1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if err := keyspace.Validate(key); err != nil {
				return usageError{err}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			kv, err := c.Get(cmd.Context(), key, fresh.options(atRev(rev))...)
			if err != nil {
				return keyError(err, key, rev)
			}
			if ok, err := a.structured(kv); ok {
				return err
			}
			b, err := kv.Bytes()
			if err != nil {
				return fmt.Errorf("decoding the value of %q: %w", key, err)
			}
			if isTerminal(a.stdout) && (len(b) == 0 || b[len(b)-1] != '\n') {
				b = append(b, '\n')
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "read the value as of revision N")
	fresh.flags(cmd)
	return cmd
}

func (a *app) delCmd() *cobra.Command {
	var ifModRev int64
	cmd := &cobra.Command{
		Use:     "del KEY",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete a key",
		Long: `Delete a key, as one new revision. Prints "rev N". A key that does not
exist is an error (exit code 3).`,
		Example: `  configctl del app/db/timeout --reason "back to the default"`,
		Args:    rangeArgs(1, 1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if err := keyspace.Validate(key); err != nil {
				return usageError{err}
			}
			var opts []apiclient.WriteOption
			if cmd.Flags().Changed("if-mod-rev") {
				if ifModRev < 0 {
					return usagef("--if-mod-rev %d: must be 0 or a revision", ifModRev)
				}
				opts = append(opts, apiclient.IfModRev(ifModRev))
			}
			if a.reason != "" {
				opts = append(opts, apiclient.WithReason(a.reason))
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			wr, err := c.Delete(cmd.Context(), key, opts...)
			if err != nil {
				return keyError(err, key, 0)
			}
			return a.printWrite(wr)
		},
	}
	cmd.Flags().Int64Var(&ifModRev, "if-mod-rev", 0, "delete only if the key's mod_rev is N")
	return cmd
}

func (a *app) lsCmd() *cobra.Command {
	var (
		rev    int64
		tree   bool
		layers bool
		fresh  freshness
	)
	cmd := &cobra.Command{
		Use:   "ls [PREFIX] | ls --layers KEY",
		Short: "List the keys under a prefix",
		Long: `List the keys under PREFIX (every key without one), sorted: a table of
KEY, TYPE, MOD_REV, VERSION and the start of each VALUE. -o json and -o yaml
print the keys with their whole values.

--tree prints the keys as one nested JSON object (YAML with -o yaml): JSON
and YAML values are embedded as structures, other values as strings.

--layers KEY shows which layers define KEY, highest precedence first, and
marks with '*' the one its value comes from: the store (what configctl set
writes) and the sources of configd.yaml.`,
		Example: `  configctl ls app/
  configctl ls app/ -o json
  configctl ls app/ --tree
  configctl ls --layers app/db/host`,
		Args: rangeArgs(0, 1, "at most one PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if layers {
				if len(args) != 1 || tree || rev != 0 {
					return usagef("--layers takes one KEY, without --tree or --rev")
				}
				return a.printLayers(cmd.Context(), args[0])
			}
			prefix, err := prefixArg(args)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			opts := fresh.options(atRev(rev))
			if tree {
				tr, err := c.Tree(cmd.Context(), prefix, opts...)
				if err != nil {
					return err
				}
				if a.output == "yaml" {
					return writeYAML(a.stdout, tr.Tree)
				}
				return writeJSON(a.stdout, tr.Tree)
			}
			lr, err := c.List(cmd.Context(), prefix, opts...)
			if err != nil {
				return err
			}
			if ok, err := a.structured(lr); ok {
				return err
			}
			if len(lr.KVs) == 0 {
				where := "in configd"
				if prefix != "" {
					where = fmt.Sprintf("under %q", prefix)
				}
				fmt.Fprintf(a.stderr, "no keys %s (rev %d)\n", where, lr.Rev)
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "KEY\tTYPE\tMOD_REV\tVERSION\tVALUE")
			for i := range lr.KVs {
				kv := &lr.KVs[i]
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", kv.Key, shortType(kv.ContentType), kv.ModRev, kv.Version, tableValue(kv, 40))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "list the keys as of revision N")
	fresh.flags(cmd)
	cmd.Flags().BoolVar(&tree, "tree", false, "print the keys as one nested JSON object")
	cmd.Flags().BoolVar(&layers, "layers", false, "show which layers (sources, store) define KEY and which one wins")
	return cmd
}
