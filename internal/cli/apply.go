package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
)

const formatHelp = `The file format (what export writes):

  rev: 12                 # the revision exported (informational)
  prefix: app/            # every key must lie under it; --prune's scope
  keys:
    app/db/timeout: 5s    # a string is a text value
    app/db/hosts: |       # multi-line text
      db1
      db2
    app/features:         # other types: type and value
      type: application/json
      value: '{"beta": true}'
    app/logo:             # bytes that are not UTF-8
      type: image/png
      encoding: base64
      value: iVBORw0KGgo=

Values are strings, kept to the byte: "port: 8080" is the text 8080. For
type json or yaml (short names text, json, yaml, binary are accepted), value
may also be written as a YAML structure, which apply encodes.`

func (a *app) applyCmd() *cobra.Command {
	var (
		file  string
		prune bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Set many keys in one revision from a YAML file",
		Long: `Set every key of FILE ('-' for standard input) in one revision: all of
them or, on any error, none. With --prune, keys under the file's prefix that
the file does not list are deleted in the same revision (and if any of them
changes meanwhile, nothing is applied: exit code 4).

Prints "rev N", or "rev N (unchanged)" when configd already held all of it.

` + formatHelp,
		Example: `  configctl export app/ > app.yaml
  configctl apply -f app.yaml --reason "restore app/"
  configctl apply -f app.yaml --prune`,
		Args: rangeArgs(0, 0, "no arguments (the file is -f FILE)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("apply: -f FILE is required ('-' for standard input)")
			}
			var data []byte
			var err error
			name := file
			if file == "-" {
				name = "<stdin>"
				data, err = io.ReadAll(a.stdin)
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			doc, err := decodeExport(name, data)
			if err != nil {
				return err
			}
			txn := api.TxnRequest{Reason: a.reason}
			listed := make(map[string]bool, len(doc.Entries))
			for _, e := range doc.Entries {
				op := api.TxnOp{Op: "put", Key: e.Key, ContentType: e.ContentType}
				op.Value, op.Encoding = api.EncodeValue(e.Value)
				txn.Ops = append(txn.Ops, op)
				listed[e.Key] = true
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if prune {
				lr, err := c.List(cmd.Context(), doc.Prefix)
				if err != nil {
					return err
				}
				for _, kv := range lr.KVs {
					if !listed[kv.Key] {
						modRev := kv.ModRev
						txn.Ops = append(txn.Ops, api.TxnOp{Op: "delete", Key: kv.Key, IfModRev: &modRev})
					}
				}
			}
			if len(txn.Ops) == 0 {
				_, err := fmt.Fprintf(a.stdout, "nothing to apply: %s has no keys\n", name)
				return err
			}
			wr, err := c.Txn(cmd.Context(), txn)
			if err != nil {
				return err
			}
			return a.printWrite(wr)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the YAML file to apply ('-' for standard input)")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete the keys under the file's prefix that it does not list")
	return cmd
}

func (a *app) exportCmd() *cobra.Command {
	var rev int64
	cmd := &cobra.Command{
		Use:   "export [PREFIX]",
		Short: "Print keys as YAML that apply takes back",
		Long: `Print the keys under PREFIX (every key without one) as a YAML file that
'configctl apply -f' sets back exactly: same bytes, same content types.
Always YAML, whatever -o says.

` + formatHelp,
		Example: `  configctl export app/ > app.yaml
  configctl export app/ --rev 12 | configctl apply -f -`,
		Args: rangeArgs(0, 1, "at most one PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.output == "json" {
				return usagef("export: the export format is YAML only")
			}
			prefix, err := prefixArg(args)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			lr, err := c.List(cmd.Context(), prefix, atRev(rev)...)
			if err != nil {
				return err
			}
			doc := exportDoc{Rev: lr.Rev, Prefix: prefix}
			for _, kv := range lr.KVs {
				b, err := kv.Bytes()
				if err != nil {
					return fmt.Errorf("decoding the value of %q: %w", kv.Key, err)
				}
				doc.Entries = append(doc.Entries, exportEntry{Key: kv.Key, Value: b, ContentType: kv.ContentType})
			}
			out, err := encodeExport(doc)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "export the keys as of revision N")
	return cmd
}
