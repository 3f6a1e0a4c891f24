package keyspace

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"key1", true},
		{"app/db/timeout", true},
		{"ünïcode/ключ", true},
		{"with space/and-dash_under.dot", true},
		{"", false},
		{"/lead", false},
		{"trail/", false},
		{"a//b", false},
		{"a/../b", false},
		{"..", false},
		{"a/./b", false},
		{"ctl\x00", false},
		{"ctl\nnewline", false},
		{"del\x7f", false},
		{string([]byte{0xff, 0xfe}), false},
		{strings.Repeat("k", MaxKeyLen), true},
		{strings.Repeat("k", MaxKeyLen+1), false},
	}
	for _, tt := range tests {
		err := Validate(tt.key)
		if tt.ok && err != nil {
			t.Errorf("Validate(%q) = %v, want nil", tt.key, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Validate(%q) = %v, want ErrInvalidKey", tt.key, err)
		}
	}
}

func TestPrefix(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"/", "", true},
		{"app", "app/", true},
		{"app/", "app/", true},
		{"app/db/", "app/db/", true},
		{"app//", "", false},
		{"/app", "", false},
		{"../", "", false},
	}
	for _, tt := range tests {
		got, err := Prefix(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("Prefix(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Prefix(%q) = %q, %v; want ErrInvalidKey", tt.in, got, err)
		}
	}
}

func TestPrefixEndBoundsExactlyTheSubtree(t *testing.T) {
	p := "app/"
	end := PrefixEnd(p)
	for _, k := range []string{"app/a", "app/zzz", "app/~", "app/\u00ff"} {
		if !(k >= p && k < end) {
			t.Errorf("%q should be inside [%q, %q)", k, p, end)
		}
	}
	for _, k := range []string{"app", "apple", "app0", "apq", "ap"} {
		if k >= p && k < end {
			t.Errorf("%q should be outside [%q, %q)", k, p, end)
		}
	}
}

func TestValidateNewRefusesKeysThatLookLikeOthers(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want string // "" accepted, else part of the message
	}{
		{"app/db/timeout", ""},
		{"ünïcode/ключ/日本", ""},
		{"app/caf\u00e9", ""},
		{"app/with space", ""},
		{"app/a\u200bb", "U+200B"},         // zero-width space
		{"app/a\u200db", "U+200D"},         // zero-width joiner
		{"app/\u202eexe.txt", "U+202E"},    // right-to-left override
		{"app/\u2066x\u2069", "U+2066"},    // left-to-right isolate
		{"app/\u200fx", "U+200F"},          // right-to-left mark
		{"app/\ufeffx", "U+FEFF"},          // byte-order mark
		{"app/soft\u00adhyphen", "U+00AD"}, // soft hyphen
		{"app/nb\u00a0sp", "U+00A0"},       // no-break space
		{"app/ideo\u3000space", "U+3000"},  // ideographic space
		{"app/x\ufe0f", "U+FE0F"},          // variation selector
		{"app/\u3164", "U+3164"},           // Hangul filler
		{"app/\ue000", "U+E000"},           // private use
		{"app/caf\u0065\u0301", "NFC"},     // e + combining acute: not NFC
		{"app/\u212b", "NFC"},              // angstrom sign, whose NFC is Å
		{"app//x", "empty segment"},        // Validate's rules first
	} {
		err := ValidateNew(tc.key)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ValidateNew(%q) = %v, want nil", tc.key, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("ValidateNew(%q) = %v, want an ErrInvalidKey naming %s", tc.key, err, tc.want)
		}
		// Reads and deletes still take a stored key of any of these forms.
		if tc.want != "" && tc.want != "empty segment" && Validate(tc.key) != nil {
			t.Errorf("Validate(%q) refuses it: a key stored before ValidateNew could not be read or deleted", tc.key)
		}
	}
	if err := ValidateNew("app/caf\u0065\u0301"); err == nil || !strings.Contains(err.Error(), `"app/café"`) {
		t.Errorf("the NFC refusal does not name the NFC spelling: %v", err)
	}
}

func TestOverlaps(t *testing.T) {
	for _, tc := range []struct {
		watched, prefix string
		want            bool
	}{
		{"", "app/", true}, {"app/", "", true}, {"app/", "app/", true}, {"app/db/", "app/", true},
		{"app/", "app/db/", true}, {"app/x", "app/", true}, {"app/x", "app/x/", false},
		{"db/", "app/", false}, {"app", "app/", false}, {"apple/", "app/", false},
	} {
		if got := Overlaps(tc.watched, tc.prefix); got != tc.want {
			t.Errorf("Overlaps(%q, %q) = %v, want %v", tc.watched, tc.prefix, got, tc.want)
		}
	}
}

// TestLeaseKeysAreConfigdsOwn: a lease's record is configd's own key, out
// of the whole keyspace, and gives its ID back.
func TestLeaseKeysAreConfigdsOwn(t *testing.T) {
	k := LeaseKey(7587)
	if k != ".configd/leases/7587" || !Own(k) || InPrefix(k, "") || !InPrefix(k, LeasesPrefix()) {
		t.Fatalf("LeaseKey(7587) = %q: want configd's own key under %q", k, LeasesPrefix())
	}
	if id, ok := LeaseID(k); !ok || id != 7587 {
		t.Fatalf("LeaseID(%q) = %d, %v", k, id, ok)
	}
	for _, k := range []string{".configd/leases/x", ".configd/leases/07", ".configd/rollouts/1", "app/leases/1"} {
		if _, ok := LeaseID(k); ok {
			t.Errorf("LeaseID(%q): a lease", k)
		}
	}
}

func TestConsulFlagsKeysAreConfigdsOwn(t *testing.T) {
	k := ConsulFlagsKey("app/db/host")
	if k != ".configd/consul-flags/app/db/host" || !Own(k) || InPrefix(k, "") || InPrefix(k, "app/") {
		t.Fatalf("ConsulFlagsKey(app/db/host) = %q: want a key of configd's own, in no user's prefix", k)
	}
}
