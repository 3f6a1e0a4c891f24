package writeops_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/writeops"
)

type store struct {
	limit   int
	secrets bool
}

func (s store) MaxValueSize() int    { return s.limit }
func (s store) SecretsEnabled() bool { return s.secrets }

// TestOpsRefusesTheFirstBadOpByIndex: each refusal names its op, with
// the code each door answers.
func TestOpsRefusesTheFirstBadOpByIndex(t *testing.T) {
	st := store{limit: 4}
	neg := int64(-2)
	for _, c := range []struct {
		name string
		in   []writeops.Op
		code string
		msg  string
	}{
		{"no ops", nil, "bad_request", "the transaction has no ops"},
		{"bad key", []writeops.Op{{Key: "a"}, {Key: "b//c"}}, "bad_key", ""},
		{"a key twice", []writeops.Op{{Key: "a"}, {Key: "b"}, {Key: "a", Delete: true}}, "bad_request",
			`ops[2]: key "a" is already in ops[0]; a transaction touches each key once`},
		{"too large", []writeops.Op{{Key: "a", Value: []byte("12345")}}, "too_large", "ops[0]: value is 5 bytes; the limit is 4"},
		{"secret without a master key", []writeops.Op{{Key: "a", Secret: true}}, "no_master_key", ""},
		{"a delete with a value", []writeops.Op{{Key: "a", Delete: true, ContentType: "text/plain"}}, "bad_request",
			"ops[0]: a delete takes no value, encoding, content_type or secret"},
		{"negative if_mod_rev", []writeops.Op{{Key: "a"}, {Key: "b", IfModRev: &neg}}, "bad_request", "ops[1]: if_mod_rev -2 is negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ops, err := writeops.Ops(st, c.in)
			if err == nil {
				t.Fatalf("Ops = %v, want an error", ops)
			}
			got := apierror.Classify(err)
			if got.Code != c.code || (c.msg != "" && got.Message != c.msg) {
				t.Fatalf("refusal %s %q, want %s %q", got.Code, got.Message, c.code, c.msg)
			}
		})
	}
	zero := int64(0)
	ops, err := writeops.Ops(st, []writeops.Op{{Key: "a", Value: []byte("1234"), IfModRev: &zero}, {Key: "b", Delete: true}})
	if err != nil || len(ops) != 2 {
		t.Fatalf("Ops of good ops = %v, %v", ops, err)
	}
}

// TestReadValueKeepsNoMoreThanTheValue: a body of its declared length is
// read into a buffer of that length and the byte that meets its end
// (io.ReadAll's kept 512 bytes for a 200-byte value); a body cut short is
// an error; a longer one, or one of no declared length, is read whole.
func TestReadValueKeepsNoMoreThanTheValue(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 200)
	got, err := writeops.ReadValue(bytes.NewReader(value), 200)
	if err != nil || !bytes.Equal(got, value) || cap(got) != 201 {
		t.Fatalf("declared length: %d bytes (cap %d), %v", len(got), cap(got), err)
	}
	if got, err := writeops.ReadValue(bytes.NewReader(value), 0); err != nil || len(got) != 200 {
		t.Fatalf("longer than declared: %d bytes, %v", len(got), err)
	}
	if got, err := writeops.ReadValue(bytes.NewReader(value), -1); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("no declared length: %d bytes, %v", len(got), err)
	}
	if _, err := writeops.ReadValue(bytes.NewReader(value), 300); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut short: %v", err)
	}
	if got, err := writeops.ReadValue(iotest.OneByteReader(bytes.NewReader(value)), 200); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("a byte at a time: %d bytes, %v", len(got), err)
	}
	if _, err := writeops.ReadValue(iotest.ErrReader(io.ErrClosedPipe), 10); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("a failing body: %v", err)
	}
}
