// Package mdsection rewrites the generated sections of Markdown reports
// (BENCHMARKS.md, docs/bench/*.md): the lines between "<!-- NAME:begin -->"
// and "<!-- NAME:end -->", so that what people wrote around them stays.
package mdsection

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
)

// ErrNoSection is returned when the file has no section of that name and
// none may be inserted.
var ErrNoSection = errors.New("mdsection: no such section")

// Markers returns the begin and end markers of the section name.
func Markers(name string) (begin, end string) {
	return "<!-- " + name + ":begin -->", "<!-- " + name + ":end -->"
}

// Rewrite replaces the section name of the file at path with body. A file
// without the section gets it inserted right before the line before (at the
// end when that line is missing) if before is not empty; otherwise Rewrite
// fails with ErrNoSection.
func Rewrite(path, name, body, before string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := Markers(name)
	i, j := bytes.Index(b, []byte(begin)), bytes.Index(b, []byte(end))
	if i < 0 && j < 0 && before != "" {
		markers := []byte(begin + "\n" + end + "\n\n")
		if k := bytes.Index(b, []byte("\n"+before+"\n")); k >= 0 {
			b = slices.Concat(b[:k+1], markers, b[k+1:])
		} else {
			b = slices.Concat(b, []byte("\n"), markers)
		}
		i, j = bytes.Index(b, []byte(begin)), bytes.Index(b, []byte(end))
	}
	if i < 0 || j < i {
		return fmt.Errorf("%s: %s … %s: %w", path, begin, end, ErrNoSection)
	}
	var out bytes.Buffer
	out.Write(b[:i+len(begin)])
	out.WriteString("\n" + body)
	out.Write(b[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// After returns what follows the section name in the file at path, trimmed
// (the notes people wrote below a generated section), or "" when the file
// or the section is missing.
func After(path, name string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	_, end := Markers(name)
	_, after, ok := bytes.Cut(b, []byte(end))
	if !ok {
		return ""
	}
	return string(bytes.TrimSpace(after))
}
