package configdtest

import (
	"io"
	"testing"
)

// Troubles keeps the warnings, errors and panics of either log format,
// the newest n of them, in order.
func TestTroublesAreTheLastWarningsAndErrors(t *testing.T) {
	l := NewLog()
	for _, line := range []string{
		"time=1 level=INFO msg=listening\n",
		"time=2 level=WARN msg=first\n",
		`{"time":"3","level":"ERROR","msg":"second"}` + "\n",
		"time=4 level=INFO msg=quiet\n",
		"panic: third\n",
	} {
		if _, err := io.WriteString(l, line); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"time":"3","level":"ERROR","msg":"second"}` + "\npanic: third\n"
	if got := l.Troubles(2); got != want {
		t.Fatalf("Troubles(2) = %q, want %q", got, want)
	}
	if got := l.Troubles(10); got != "time=2 level=WARN msg=first\n"+want {
		t.Fatalf("Troubles(10) = %q", got)
	}
}
