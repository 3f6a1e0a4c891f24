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
    app/db/password:      # a secret key, its value left out
      secret: true
    app/api/key:          # a secret key with its value (--with-secrets)
      secret: true
      value: s3kr1t

Values are strings, kept to the byte: "port: 8080" is the text 8080. For
type json or yaml (short names text, json, yaml, binary are accepted), value
may also be written as a YAML structure, which apply encodes. A file written
with 'export -o json' is the same document in JSON.`

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

An entry marked "secret: true" is stored as a secret: encrypted at rest and
withheld from history and diffs, as 'set --secret' does. Its value is sent
only over TLS or to a loopback address. A secret's entry without a value
leaves the key as it is (--prune does not delete it either); apply says so
on stderr.

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
			var leftOut []string
			for _, e := range doc.Entries {
				listed[e.Key] = true
				if e.LeftOut {
					leftOut = append(leftOut, e.Key)
					continue
				}
				op := api.TxnOp{Op: "put", Key: e.Key, ContentType: e.ContentType, Secret: e.Secret}
				op.Value, op.Encoding = api.EncodeValue(e.Value)
				txn.Ops = append(txn.Ops, op)
			}
			if secret, _ := doc.secrets(); secret > len(leftOut) {
				if err := a.checkConfidential("apply: the file holds secret values"); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			for _, k := range leftOut {
				fmt.Fprintf(a.stderr, "%s: secret, and %s holds no value for it: left as it is\n", k, name)
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
				what := "has no keys"
				if len(leftOut) > 0 {
					what = "has no value to set"
				}
				_, err := fmt.Fprintf(a.stdout, "nothing to apply: %s %s\n", name, what)
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
	var (
		rev         int64
		withSecrets bool
	)
	cmd := &cobra.Command{
		Use:   "export [PREFIX]",
		Short: "Print keys as YAML (or JSON) that apply takes back",
		Long: `Print the keys under PREFIX (every key without one) as a YAML file that
'configctl apply -f' sets back exactly: same bytes, same content types.
-o json prints the same document as JSON, which apply also reads; -o table
is YAML.

Secret keys are marked "secret: true" and their values left out: apply of
the file leaves them as they are. --with-secrets includes their values (in
clear text: keep the file as you keep passwords), for a token that may read
them, and only over TLS or to a loopback address; apply then stores them as
secrets again.

` + formatHelp,
		Example: `  configctl export app/ > app.yaml
  configctl export app/ --rev 12 | configctl apply -f -
  configctl export app/ --with-secrets --ca ca.pem > app.yaml && chmod 600 app.yaml`,
		Args: rangeArgs(0, 1, "at most one PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix, err := prefixArg(args)
			if err != nil {
				return err
			}
			if withSecrets {
				if err := a.checkConfidential("export --with-secrets"); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			lr, err := c.List(cmd.Context(), prefix, atRev(rev)...)
			if err != nil {
				return err
			}
			doc, err := exportOf(lr, withSecrets)
			if err != nil {
				return err
			}
			doc.Prefix = prefix
			encode := encodeExport
			if a.output == "json" {
				encode = encodeExportJSON
			}
			out, err := encode(doc)
			if err != nil {
				return err
			}
			if _, leftOut := doc.secrets(); leftOut > 0 {
				fmt.Fprintf(a.stderr, "left out the values of %d secret key(s), marked \"secret\": true; --with-secrets includes them\n", leftOut)
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "export the keys as of revision N")
	cmd.Flags().BoolVar(&withSecrets, "with-secrets", false, "include the values of secret keys, in clear text (only over TLS or to a loopback address)")
	return cmd
}

// exportOf is the export of a list: secret keys marked, their values left
// out unless withSecrets.
func exportOf(lr api.ListResponse, withSecrets bool) (exportDoc, error) {
	doc := exportDoc{Rev: lr.Rev}
	for _, kv := range lr.KVs {
		e := exportEntry{Key: kv.Key, ContentType: kv.ContentType, Secret: isSecretKV(&kv)}
		switch {
		case e.Secret && !withSecrets:
			e.LeftOut = true
		case kv.Withheld():
			return doc, fmt.Errorf("configd withheld the value of the secret key %q: it serves secret values only over TLS "+
				"or to a loopback address, and this connection is neither as configd sees it", kv.Key)
		default:
			b, err := kv.Bytes()
			if err != nil {
				return doc, fmt.Errorf("decoding the value of %q: %w", kv.Key, err)
			}
			e.Value = b
		}
		doc.Entries = append(doc.Entries, e)
	}
	return doc, nil
}
