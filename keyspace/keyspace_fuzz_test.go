package keyspace

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FuzzKey checks Validate, Prefix, InPrefix and PrefixEnd against each
// other and against the rules in the package comment:
//
//   - every refusal wraps ErrInvalidKey;
//   - a valid key obeys each rule (length, UTF-8, no control character, no
//     empty, "." or ".." segment), each of its segments is a valid key,
//     and splitting it on '/' and joining it again gives it back;
//   - Prefix is idempotent, its result is "" or a valid key plus one '/',
//     and for a valid key k, Prefix(k) and Prefix(k+"/") are both k+"/";
//   - for a canonical prefix p, InPrefix(other, p) holds exactly when
//     p <= other < PrefixEnd(p), the range the store scans, except that
//     the store's own records (Reserved) lie in no prefix, "" included,
//     and configd's own keys (Own) not in "".
func FuzzKey(f *testing.F) {
	for _, s := range []struct{ key, other string }{
		{"app/db/timeout", "app/db/timeout/x"},
		{"app", "apple"},
		{"app/", "app/x"},
		{"", "anything"},
		{"/", ""},
		{"a//b", "a/b"},
		{"a/./b", "a/b"},
		{"a/../b", ".."},
		{"..", "."},
		{"ctl\x00", "ctl"},
		{"del\x7f", "del"},
		{"bad\xff\xfe", "bad"},
		{"ünïcode/ключ", "ünïcode/ключ/x"},
		{"trail/", "trail0"},
		{"trail//", "trail/x"},
		{strings.Repeat("k", MaxKeyLen), strings.Repeat("k", MaxKeyLen) + "/x"},
		{strings.Repeat("k", MaxKeyLen+1), ""},
		{"a/\u2028/b", "a/\u2028/b/c"},
		{"\u0085next-line", ""},
		{"app/a\u200bb", "app/ab"},
		{"app/\u202eexe.txt", "app/"},
		{"caf\u0065\u0301", "caf\u00e9"},
		{"nb\u00a0sp", "nb sp"},
	} {
		f.Add(s.key, s.other)
	}
	f.Fuzz(func(t *testing.T, key, other string) {
		checkKey(t, key)
		p := checkPrefix(t, key)
		checkRange(t, p, other)
		// The other string is a key too.
		checkKey(t, other)
		checkRange(t, checkPrefix(t, other), key)
	})
}

// checkKey checks Validate(key) and ValidateNew(key) against the rules
// they document.
func checkKey(t *testing.T, key string) {
	t.Helper()
	checkNewKey(t, key)
	err := Validate(key)
	if err != nil {
		if !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("Validate(%q) = %v: does not wrap ErrInvalidKey", key, err)
		}
		if _, perr := Prefix(key); perr == nil && key != "" && !strings.HasSuffix(key, "/") {
			t.Fatalf("Validate(%q) refuses it (%v) but Prefix accepts it", key, err)
		}
		return
	}
	switch {
	case key == "", len(key) > MaxKeyLen, !utf8.ValidString(key):
		t.Fatalf("Validate(%q) = nil: empty, too long or not UTF-8", key)
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		t.Fatalf("Validate(%q) = nil: has a control character", key)
	}
	segs := strings.Split(key, "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			t.Fatalf("Validate(%q) = nil: has segment %q", key, seg)
		}
		if err := Validate(seg); err != nil {
			t.Fatalf("Validate(%q) = nil but its segment %q is refused: %v", key, seg, err)
		}
	}
	if j := strings.Join(segs, "/"); j != key {
		t.Fatalf("split and join of %q gives %q", key, j)
	}
	// A valid key is its own prefix, with or without the trailing '/'.
	for _, in := range []string{key, key + "/"} {
		p, err := Prefix(in)
		if err != nil || p != key+"/" {
			t.Fatalf("Prefix(%q) = %q, %v; want %q for the valid key %q", in, p, err, key+"/", key)
		}
	}
	if !InPrefix(key+"/x", key+"/") || InPrefix(key, key+"/") {
		t.Fatalf("InPrefix with prefix %q: wrong on %q or on the key itself", key+"/", key+"/x")
	}
}

// checkPrefix checks Prefix(in) and returns its canonical form ("" when in
// is refused, which is the whole keyspace: checkRange still makes sense).
func checkPrefix(t *testing.T, in string) string {
	t.Helper()
	p, err := Prefix(in)
	if err != nil {
		if !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("Prefix(%q) = %v: does not wrap ErrInvalidKey", in, err)
		}
		if p != "" {
			t.Fatalf("Prefix(%q) = %q with error %v", in, p, err)
		}
		return ""
	}
	if p == "" {
		if in != "" && in != "/" {
			t.Fatalf("Prefix(%q) = \"\": only \"\" and \"/\" name the whole keyspace", in)
		}
		return ""
	}
	if !strings.HasSuffix(p, "/") {
		t.Fatalf("Prefix(%q) = %q: no trailing '/'", in, p)
	}
	if err := Validate(strings.TrimSuffix(p, "/")); err != nil {
		t.Fatalf("Prefix(%q) = %q, whose path is not a valid key: %v", in, p, err)
	}
	if p != in && p != in+"/" {
		t.Fatalf("Prefix(%q) = %q: changed more than a trailing '/'", in, p)
	}
	if again, err := Prefix(p); err != nil || again != p {
		t.Fatalf("Prefix is not idempotent: Prefix(%q) = %q, Prefix(%q) = %q, %v", in, p, p, again, err)
	}
	return p
}

// checkRange checks that the range scan [p, PrefixEnd(p)) holds exactly
// the strings InPrefix accepts.
func checkRange(t *testing.T, p, s string) {
	t.Helper()
	end := PrefixEnd(p)
	inRange := s >= p && (end == "" || s < end)
	if p == "" {
		// configd's own keys lie outside the whole keyspace (the
		// store's scan leaves them out too: read's rangeCond).
		inRange = !Own(s)
	}
	if Reserved(s) && InPrefix(s, p) {
		t.Fatalf("InPrefix(%q, %q): a reserved key lies in a prefix", s, p)
	}
	if p == "" && end != "" {
		t.Fatalf("PrefixEnd(\"\") = %q, want \"\" (no upper bound)", end)
	}
	if got := InPrefix(s, p); got != inRange {
		t.Fatalf("InPrefix(%q, %q) = %v, but the range [%q, %q) says %v", s, p, got, p, end, inRange)
	}
}

// checkNewKey checks ValidateNew(key): it refuses what Validate refuses,
// and accepts a key exactly when Validate does and the key is in NFC and
// has no invisible character.
func checkNewKey(t *testing.T, key string) {
	t.Helper()
	err := ValidateNew(key)
	if err != nil && !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("ValidateNew(%q) = %v: does not wrap ErrInvalidKey", key, err)
	}
	want := Validate(key) == nil && strings.IndexFunc(key, invisible) < 0 && norm.NFC.IsNormalString(key)
	if (err == nil) != want {
		t.Fatalf("ValidateNew(%q) = %v; want accepted: %v", key, err, want)
	}
}
