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
