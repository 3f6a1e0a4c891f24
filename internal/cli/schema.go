package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/configd/configd/sdk/go/apiclient"
)

func (a *app) schemaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Set, show and delete the JSON Schemas of key prefixes",
		Long: `A prefix's JSON Schema is checked on every write, rollback and source
change against the merged view under the prefix: what a reader of the prefix
sees after the change, as one JSON document: what 'configctl ls PREFIX --tree'
prints (key app/db/host is {"db": {"host": ...}} under app/, JSON and YAML
values parsed, any other value a string). A change that breaks it is refused (exit code 6) with the key,
the JSON pointer inside its value, the rule and the schema's prefix; nothing
of it is written. A source's change that breaks it is held back, and the
source shown degraded, until the source is fixed. See docs/schemas.md.

Schemas are versioned and audited like keys: each change is a revision.`,
	}
	cmd.AddCommand(a.schemaSetCmd(), a.schemaGetCmd(), a.schemaListCmd(), a.schemaDeleteCmd(), a.schemaHistoryCmd())
	return cmd
}

// prefixClient returns the canonical prefix of a PREFIX argument and the
// client of --addr.
func (a *app) prefixClient(args []string) (string, *apiclient.Client, error) {
	p, err := prefixArg(args)
	if err != nil {
		return "", nil, err
	}
	c, err := a.client()
	return p, c, err
}

// schemaError rewords a not-found error of a schema command.
func schemaError(err error, prefix string) error {
	if !errors.Is(err, apiclient.ErrNotFound) {
		return err
	}
	return &reworded{msg: fmt.Sprintf("no schema for prefix %s", displayPrefix(prefix)), err: err}
}

func displayPrefix(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func (a *app) schemaSetCmd() *cobra.Command {
	var (
		file  string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "set PREFIX --file F",
		Short: "Set the JSON Schema of a prefix",
		Long: `Set the JSON Schema of PREFIX ('/' for the whole keyspace) to the contents of
--file ('-' for standard input), as one new revision. An invalid schema is
refused with the compiler's error; a schema that the current values under
PREFIX already break is refused (exit code 6) naming the first violation,
unless --force, which the revision's reason records.

Prints "rev N", or "rev N (unchanged)" when the prefix had this schema.`,
		Example: `  configctl schema set app/ --file app.schema.json --reason "limits must be positive"
  configctl schema set app/ --file app.schema.json --force`,
		Args: rangeArgs(1, 1, "one PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := prefixArg(args)
			if err != nil {
				return err
			}
			if file == "" {
				return usagef("schema set: --file is required")
			}
			var doc []byte
			if file == "-" {
				doc, err = io.ReadAll(a.stdin)
			} else {
				doc, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("reading the schema: %w", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			opts := []apiclient.SchemaOption{apiclient.SchemaReason(a.reason)}
			if force {
				opts = append(opts, apiclient.Force())
			}
			wr, err := c.SetSchema(cmd.Context(), p, doc, opts...)
			if err != nil {
				return err
			}
			return a.printWrite(wr)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the schema's JSON file ('-': standard input)")
	cmd.Flags().BoolVar(&force, "force", false, "set the schema even if the current values break it (recorded in the revision)")
	return cmd
}

func (a *app) schemaGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get PREFIX",
		Short: "Print the JSON Schema of a prefix",
		Long: `Print the JSON Schema of PREFIX ('/' for the whole keyspace), indented. With
-o json or -o yaml, print it with its revisions.`,
		Args: rangeArgs(1, 1, "one PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, c, err := a.prefixClient(args)
			if err != nil {
				return err
			}
			s, err := c.Schema(cmd.Context(), p)
			if err != nil {
				return schemaError(err, p)
			}
			if ok, err := a.structured(s); ok {
				return err
			}
			var out bytes.Buffer
			if err := json.Indent(&out, s.Schema, "", "  "); err != nil {
				out.Reset()
				out.Write(s.Schema)
			}
			out.WriteByte('\n')
			_, err = a.stdout.Write(out.Bytes())
			return err
		},
	}
}

func (a *app) schemaListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the prefixes that have a JSON Schema",
		Args:  rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Schemas(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := a.structured(res); ok {
				return err
			}
			if len(res.Schemas) == 0 {
				fmt.Fprintln(a.stderr, "no schemas")
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "PREFIX\tMOD REV\tVERSION\tBYTES")
			for _, s := range res.Schemas {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", displayPrefix(s.Prefix), s.ModRev, s.Version, len(s.Schema))
			}
			return tw.Flush()
		},
	}
}

func (a *app) schemaDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete PREFIX",
		Short: "Delete the JSON Schema of a prefix",
		Long: `Delete the JSON Schema of PREFIX, as one new revision: its keys are no longer
checked against it. Prints "rev N", or "rev N (unchanged)" when it had none.`,
		Args: rangeArgs(1, 1, "one PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, c, err := a.prefixClient(args)
			if err != nil {
				return err
			}
			wr, err := c.DeleteSchema(cmd.Context(), p, apiclient.SchemaReason(a.reason))
			if err != nil {
				return err
			}
			return a.printWrite(wr)
		},
	}
}

func (a *app) schemaHistoryCmd() *cobra.Command {
	var (
		limit  int
		cursor string
	)
	cmd := &cobra.Command{
		Use:   "history PREFIX",
		Short: "Show the revisions that set or deleted the JSON Schema of a prefix",
		Args:  rangeArgs(1, 1, "one PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := prefixArg(args)
			if err != nil {
				return err
			}
			if limit < 0 {
				return usagef("--limit %d: must be positive", limit)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.SchemaHistory(cmd.Context(), p, limit, cursor)
			if err != nil {
				return err
			}
			return a.printHistory(res)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "revisions per page (default: configd's)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "start at this page (as printed after a page)")
	return cmd
}
