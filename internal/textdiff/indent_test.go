package textdiff

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomJSON writes a random JSON value with random space between tokens,
// nested at most depth levels.
func randomJSON(rng *rand.Rand, b *strings.Builder, depth int) {
	space := func() {
		if rng.IntN(3) == 0 {
			b.WriteString([]string{" ", "\n", "\t", "\r\n  "}[rng.IntN(4)])
		}
	}
	space()
	switch k := rng.IntN(8); {
	case k < 2 && depth > 0:
		b.WriteByte('{')
		for i := range rng.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			space()
			b.WriteString([]string{`"a"`, `"b c"`, `"{[,:]}"`, `"q\"\\"`, `""`, `"é\u00e9"`}[rng.IntN(6)])
			space()
			b.WriteByte(':')
			randomJSON(rng, b, depth-1)
		}
		space()
		b.WriteByte('}')
	case k < 4 && depth > 0:
		b.WriteByte('[')
		for i := range rng.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			randomJSON(rng, b, depth-1)
		}
		space()
		b.WriteByte(']')
	default:
		b.WriteString([]string{`1`, `-2.5e3`, `true`, `false`, `null`, `"x"`, `"a,b:c"`, `"\\"`, `"[]"`}[rng.IntN(9)])
	}
	space()
}

func TestIndentJSONIndentsAsJSONIndent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		var b strings.Builder
		randomJSON(rng, &b, 5)
		var want bytes.Buffer
		if err := json.Indent(&want, bytes.TrimSpace([]byte(b.String())), "", "  "); err != nil {
			t.Fatalf("%q: %v", b.String(), err)
		}
		got, err := IndentJSON([]byte(b.String()))
		if err != nil || got != want.String() {
			t.Fatalf("IndentJSON(%q) = %q, %v; want %q", b.String(), got, err, want.String())
		}
	}
}

func TestIndentJSONRefusesInvalidJSON(t *testing.T) {
	for _, v := range []string{``, `{`, `{"a":}`, `[1,]`, `"x`, `{} {}`} {
		if got, err := IndentJSON([]byte(v)); err == nil {
			t.Errorf("IndentJSON(%q) = %q, want an error", v, got)
		}
	}
}

func deep(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }

func TestIndentJSONStopsAtMaxIndentDepth(t *testing.T) {
	if _, err := IndentJSON([]byte(deep(MaxIndentDepth))); err != nil {
		t.Fatalf("%d levels: %v", MaxIndentDepth, err)
	}
	for _, v := range []string{
		deep(MaxIndentDepth + 1),
		deep(10_000),
		strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000),
		strings.Repeat("[", MaxIndentDepth+1) + strings.Repeat("]", MaxIndentDepth+1),
	} {
		if _, err := IndentJSON([]byte(v)); !errors.Is(err, ErrTooDeep) {
			t.Errorf("%d bytes nested too deep: err %v, want ErrTooDeep", len(v), err)
		}
	}
}

func TestIndentJSONStopsAtMaxIndentBytes(t *testing.T) {
	// Short elements at depth 60: each indents to over 120 bytes.
	v := strings.Repeat("[", 60) + strings.Repeat("1,", 20_000) + "1" + strings.Repeat("]", 60)
	if _, err := IndentJSON([]byte(v)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("err %v, want ErrTooLong", err)
	}
	// One long string is copied whole or not at all.
	long := `"` + strings.Repeat("x", MaxIndentBytes) + `"`
	if _, err := IndentJSON([]byte(long)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("long string: err %v, want ErrTooLong", err)
	}
}
