package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/configd/configd/keyspace"
)

func (a *app) sourcesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sources",
		Short: "Show configd's layers: its sources and the store, with their state",
		Long: `Show the layers that make configd's configuration, highest precedence first:
the sources of configd.yaml (file, env, consul, etcd) and the writable store
layer, each with its state (ok, degraded with its last error, starting), the
time of its last successful read, the last revision of its backend seen, the
configd revision that last applied it, and its number of keys.`,
		Args: rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.Sources(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := a.structured(s); ok {
				return err
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "NAME\tTYPE\tMOUNT\tSTATE\tKEYS\tLAST SYNC\tSOURCE REV\tREV\tLAST ERROR")
			for _, src := range s.Sources {
				sync := "-"
				if src.LastSync != nil {
					sync = src.LastSync.Local().Format(time.DateTime)
				}
				lastErr := "-"
				if src.LastError != "" {
					lastErr = src.LastError
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", src.Name, src.Type, dash(src.Mount),
					src.State, src.Keys, sync, src.SourceRevision, src.Rev, lastErr)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(s.Events) == 0 {
				return nil
			}
			fmt.Fprintln(a.stdout, "\nRecent events (newest first):")
			tw = newTable(a.stdout)
			for _, e := range s.Events {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Source, e.State, oneLine(e.Message))
			}
			return tw.Flush()
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printLayers prints which layers define key, highest first; '*' marks
// the one its value comes from.
func (a *app) printLayers(ctx context.Context, key string) error {
	if err := keyspace.Validate(key); err != nil {
		return usagef("%v", err)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	l, err := c.Layers(ctx, key)
	if err != nil {
		return err
	}
	if ok, err := a.structured(l); ok {
		return err
	}
	if len(l.Layers) == 0 {
		fmt.Fprintf(a.stderr, "no layer defines %q\n", key)
		return nil
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "\tLAYER\tTYPE\tVALUE")
	for _, e := range l.Layers {
		mark, value, typ := " ", e.Value, shortType(e.ContentType)
		if e.Effective {
			mark = "*"
		}
		if e.Tombstone {
			value, typ = "(deleted: hides the layers below)", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, e.Layer, typ, strings.ReplaceAll(value, "\n", `\n`))
	}
	return tw.Flush()
}
