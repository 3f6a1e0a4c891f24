package mdsection

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	write("# T\n\nintro\n<!-- x:begin -->\nold\n<!-- x:end -->\n\nnotes\n")
	if err := Rewrite(path, "x", "new\n", ""); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), "# T\n\nintro\n<!-- x:begin -->\nnew\n<!-- x:end -->\n\nnotes\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := After(path, "x"); got != "notes" {
		t.Fatalf("After = %q, want notes", got)
	}

	if err := Rewrite(path, "y", "body\n", ""); !errors.Is(err, ErrNoSection) {
		t.Fatalf("a missing section without a place to insert it: %v, want ErrNoSection", err)
	}
	if err := Rewrite(path, "y", "body\n", "notes"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), "# T\n\nintro\n<!-- x:begin -->\nnew\n<!-- x:end -->\n\n<!-- y:begin -->\nbody\n<!-- y:end -->\n\nnotes\n"; got != want {
		t.Fatalf("inserted before 'notes': got %q, want %q", got, want)
	}
	if err := Rewrite(path, "z", "end\n", "no such line"); err != nil {
		t.Fatal(err)
	}
	if got := read(); got[len(got)-len("<!-- z:end -->\n\n"):] != "<!-- z:end -->\n\n" {
		t.Fatalf("appended at the end: got %q", got)
	}
}
