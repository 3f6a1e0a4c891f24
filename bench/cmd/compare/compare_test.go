package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRewriteSectionKeepsTheRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(path, []byte("# B\n\nintro\n\n"+beginMarker+"\nold\n"+endMarker+"\n\n## rest\n"), 0o644)
	if err := rewriteSection(path, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# B\n\nintro\n\n" + beginMarker + "\nnew\n" + endMarker + "\n\n## rest\n"
	if string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	os.WriteFile(path, []byte("no markers"), 0o644)
	if err := rewriteSection(path, "x"); err == nil {
		t.Fatal("no error without markers")
	}
}

func TestNumbers(t *testing.T) {
	for x, want := range map[float64]string{1234567: "1,234,567", 999: "999", 0: "0"} {
		if got := num(x); got != want {
			t.Errorf("num(%v) = %q, want %q", x, got, want)
		}
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
	if plural(1, "writer") != "1 writer" || plural(10000, "watcher") != "10,000 watchers" {
		t.Error("plural")
	}
}
