package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/sdk/go/apiclient"
)

// structured prints v as JSON or YAML when -o asks for it, and reports
// whether it did; with -o table the caller prints its own form.
func (a *app) structured(v any) (bool, error) {
	switch a.output {
	case "json":
		return true, writeJSON(a.stdout, v)
	case "yaml":
		return true, writeYAML(a.stdout, v)
	}
	return false, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeYAML prints v as YAML with the names of its JSON tags, in their
// order: v goes through JSON (which is YAML) into a yaml.Node, whose flow
// style is then cleared so it prints as block YAML.
func writeYAML(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return err
	}
	blockStyle(&n)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return err
	}
	return enc.Close()
}

func blockStyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "\n") {
		n.Style = yaml.LiteralStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// newTable returns a tabwriter for aligned columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// isTerminal reports whether w is a terminal, where a value without a final
// newline gets one so the prompt does not stick to it.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// shortTypes are the names --type accepts for the common content types.
var shortTypes = map[string]string{
	"text":   api.TypeText,
	"json":   api.TypeJSON,
	"yaml":   api.TypeYAML,
	"yml":    api.TypeYAML,
	"binary": api.TypeBinary,
}

// parseType turns text|json|yaml|binary or a MIME type into a MIME type.
// Which MIME types are accepted is configd's decision (today the four of
// package api and YAML's aliases); configctl passes any well-formed one on.
func parseType(s string) (string, error) {
	if t, ok := shortTypes[strings.ToLower(s)]; ok {
		return t, nil
	}
	if strings.Contains(s, "/") {
		if _, _, err := mime.ParseMediaType(s); err == nil {
			return s, nil
		}
	}
	return "", fmt.Errorf("content type %q: want text, json, yaml, binary or their MIME type", s)
}

// shortType is the short name of a content type, for tables.
func shortType(ct string) string {
	switch ct {
	case api.TypeText, "":
		return "text"
	case api.TypeJSON:
		return "json"
	case api.TypeYAML:
		return "yaml"
	case api.TypeBinary:
		return "binary"
	}
	return ct
}

// isBinary reports whether a value is shown as a byte count rather than
// as text.
func isBinary(kv *api.KeyValue) bool {
	return kv.ContentType == api.TypeBinary || kv.Encoding == api.EncodingBase64
}

// showValue is a value on one line, quoted and cut to max runes: for tables
// and change lists. A missing value is "(none)".
func showValue(kv *api.KeyValue, max int) string {
	if kv == nil {
		return "(none)"
	}
	if isBinary(kv) {
		b, err := kv.Bytes()
		if err != nil {
			return "<undecodable value>"
		}
		return fmt.Sprintf("<%d bytes>", len(b))
	}
	return truncate(strconv.Quote(kv.Value), max)
}

// tableValue is a value for a table cell: as it is when that reads
// unambiguously, quoted when it is empty, has spaces at its edges or
// holds line breaks or other control characters; cut to max runes.
func tableValue(kv *api.KeyValue, max int) string {
	if isBinary(kv) {
		return showValue(kv, max)
	}
	v := kv.Value
	if v == "" || strings.TrimSpace(v) != v || strings.ContainsFunc(v, unicode.IsControl) || strings.HasPrefix(v, `"`) {
		v = strconv.Quote(v)
	}
	return truncate(v, max)
}

// truncate cuts s to max runes, marking the cut with "...".
func truncate(s string, max int) string {
	if max <= 3 || utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-3]) + "..."
}

// plural is "1 key", "2 keys".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// printChanges lists changes as "key: old → new", one per line, indented.
func printChanges(w io.Writer, indent string, changes []api.Change) {
	for _, ch := range changes {
		line := fmt.Sprintf("%s%s: %s → %s", indent, ch.Key, showValue(ch.Old, 60), showValue(ch.New, 60))
		if ch.Old != nil && ch.New != nil && ch.Old.ContentType != ch.New.ContentType {
			line += fmt.Sprintf(" (type %s → %s)", shortType(ch.Old.ContentType), shortType(ch.New.ContentType))
		}
		fmt.Fprintln(w, line)
	}
}

// prefixArg returns the canonical prefix of an optional PREFIX argument
// ("" without one: everything).
func prefixArg(args []string) (string, error) {
	if len(args) == 0 {
		return "", nil
	}
	p, err := keyspace.Prefix(args[0])
	if err != nil {
		return "", usageError{err}
	}
	return p, nil
}

// atRev is the read option of --rev (none when it is 0: the current state).
func atRev(rev int64) []apiclient.ReadOption {
	if rev > 0 {
		return []apiclient.ReadOption{apiclient.AtRev(rev)}
	}
	return nil
}

// freshness is how new a read must be, on a replica of a configd cluster:
// get's and ls's --min-rev and --consistent.
type freshness struct {
	minRev     int64
	consistent bool
}

func (f *freshness) flags(cmd *cobra.Command) {
	cmd.Flags().Int64Var(&f.minRev, "min-rev", 0, "read at least revision N: a replica that has not applied it yet waits for it (the revision a write printed)")
	cmd.Flags().BoolVar(&f.consistent, "consistent", false, "a linearizable read: at least as new as every write any replica acknowledged before it")
}

func (f freshness) options(opts []apiclient.ReadOption) []apiclient.ReadOption {
	if f.minRev > 0 {
		opts = append(opts, apiclient.MinRev(f.minRev))
	}
	if f.consistent {
		opts = append(opts, apiclient.Consistent())
	}
	return opts
}
