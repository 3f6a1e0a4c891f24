// Package textdifftest holds hostile values for tests of the rendering
// limits (package textdiff): cheap to store, and costly to show without
// the limits.
package textdifftest

import "strings"

// Depth is how deep the nested values nest where their format allows it.
const Depth = 10_000

// Value is a value written twice: Old, then New, which differs from it.
type Value struct {
	Name        string
	ContentType string
	Old, New    string
	// TooDeepToIndent says the value is JSON nested deeper than
	// textdiff.MaxIndentDepth: pages show it as stored, with a note.
	TooDeepToIndent bool
}

// Values returns the hostile values:
//   - JSON objects {"a":{"a":...}} nested Depth levels (60 KB), which
//     json.Indent turns into 200 MB;
//   - JSON arrays [[[...]]] nested Depth levels;
//   - YAML in flow style [[[...]]] nested Depth levels;
//   - YAML in block style a:\n a:\n ... nested as deep as 60 KB allows
//     (343 levels, one space each);
//   - text of 500,000 short lines (1 MB), whose line diff has 1,000,000
//     edits.
func Values() []Value {
	obj := func(leaf string) string {
		return strings.Repeat(`{"a":`, Depth) + leaf + strings.Repeat("}", Depth)
	}
	arr := func(leaf string) string {
		return strings.Repeat("[", Depth) + leaf + strings.Repeat("]", Depth)
	}
	block := func(leaf string) string {
		var b strings.Builder
		for i := range 343 {
			b.WriteString(strings.Repeat(" ", i) + "a:\n")
		}
		b.WriteString(strings.Repeat(" ", 343) + "a: " + leaf + "\n")
		return b.String()
	}
	return []Value{
		{Name: "json-object", ContentType: "application/json", Old: obj("1"), New: obj("2"), TooDeepToIndent: true},
		{Name: "json-array", ContentType: "application/json", Old: arr("1"), New: arr("2"), TooDeepToIndent: true},
		{Name: "yaml-flow", ContentType: "application/yaml", Old: arr("1"), New: arr("2")},
		{Name: "yaml-block", ContentType: "application/yaml", Old: block("1"), New: block("2")},
		{Name: "many-lines", ContentType: "text/plain", Old: strings.Repeat("a\n", 500_000), New: strings.Repeat("b\n", 500_000)},
	}
}
