package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustMaster(t *testing.T) (*MasterKey, string) {
	t.Helper()
	mk, b64, err := GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return mk, b64
}

func TestSealOpenRoundTrip(t *testing.T) {
	dk, err := NewDataKey(7, "app/")
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range [][]byte{{}, []byte("hunter2"), bytes.Repeat([]byte{0xff}, 4096)} {
		ct, err := dk.Seal("app/db/password", pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(pt) > 0 && bytes.Contains(ct, pt) {
			t.Fatalf("ciphertext contains the plaintext")
		}
		if id, err := CiphertextKeyID(ct); err != nil || id != 7 {
			t.Fatalf("CiphertextKeyID = %d, %v; want 7", id, err)
		}
		got, err := dk.Open("app/db/password", ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, %v; want %q", got, err, pt)
		}
	}
	a, _ := dk.Seal("app/k", []byte("same"))
	b, _ := dk.Seal("app/k", []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
}

func TestOpenRefusesTamperingAndMoves(t *testing.T) {
	dk, _ := NewDataKey(1, "app/")
	ct, _ := dk.Seal("app/a", []byte("s3cret"))
	if _, err := dk.Open("app/b", ct); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("moved to another key: err = %v, want ErrDecrypt", err)
	}
	bad := append([]byte(nil), ct...)
	bad[len(bad)-1] ^= 1
	if _, err := dk.Open("app/a", bad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("flipped bit: err = %v, want ErrDecrypt", err)
	}
	other, _ := NewDataKey(1, "app/")
	if _, err := other.Open("app/a", ct); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other data key: err = %v, want ErrDecrypt", err)
	}
	if _, err := dk.Open("app/a", []byte("plain")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("not a ciphertext: err = %v, want ErrDecrypt", err)
	}
	if _, err := dk.Open("app/a", ct[:headerSize+3]); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("truncated: err = %v, want ErrDecrypt", err)
	}
}

func TestWrapUnwrap(t *testing.T) {
	mk, _ := mustMaster(t)
	other, _ := mustMaster(t)
	dk, _ := NewDataKey(3, "app/")
	w, err := mk.Wrap(dk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mk.Unwrap(3, "app/", w)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := dk.Seal("app/x", []byte("v"))
	if pt, err := got.Open("app/x", ct); err != nil || string(pt) != "v" {
		t.Fatalf("unwrapped key: Open = %q, %v", pt, err)
	}
	if got.Digest([]byte("v")) != dk.Digest([]byte("v")) {
		t.Fatal("the unwrapped key's digest differs")
	}
	if _, err := other.Unwrap(3, "app/", w); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("other master key: err = %v, want ErrWrongMasterKey", err)
	}
	if _, err := mk.Unwrap(3, "db/", w); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("other prefix: err = %v, want ErrWrongMasterKey", err)
	}
	if _, err := mk.Unwrap(4, "app/", w); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("other id: err = %v, want ErrWrongMasterKey", err)
	}
	if mk.ID() == other.ID() || len(mk.ID()) != 16 {
		t.Fatalf("IDs %q and %q", mk.ID(), other.ID())
	}
}

func TestDigest(t *testing.T) {
	dk, _ := NewDataKey(1, "app/")
	d := dk.Digest([]byte("hunter2"))
	if !strings.HasPrefix(d, "hmac-sha256:") || len(d) != len("hmac-sha256:")+16 {
		t.Fatalf("Digest = %q", d)
	}
	if d != dk.Digest([]byte("hunter2")) || d == dk.Digest([]byte("hunter3")) {
		t.Fatal("digest is not a function of the value")
	}
	other, _ := NewDataKey(2, "app/")
	if d == other.Digest([]byte("hunter2")) {
		t.Fatal("digest does not depend on the data key")
	}
}

func TestParseMasterKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0x42}, KeySize)
	want, err := NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"raw":        raw,
		"std":        []byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
		"raw std":    []byte(base64.RawStdEncoding.EncodeToString(raw)),
		"url padded": []byte("  " + base64.URLEncoding.EncodeToString(raw)),
	} {
		mk, err := ParseMasterKey(in)
		if err != nil || !mk.Equal(want) {
			t.Errorf("%s: ParseMasterKey = %v, %v", name, mk, err)
		}
	}
	for name, in := range map[string][]byte{
		"short":    []byte("abc"),
		"16 bytes": []byte(base64.StdEncoding.EncodeToString(raw[:16])),
		"not b64":  []byte(strings.Repeat("!", 40)),
		"31 raw":   raw[:31],
		"empty":    nil,
	} {
		if _, err := ParseMasterKey(in); !errors.Is(err, ErrBadMasterKey) {
			t.Errorf("%s: err = %v, want ErrBadMasterKey", name, err)
		}
	}
}

func TestLoadMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	_, b64 := mustMaster(t)
	p := filepath.Join(dir, "master.key")
	if err := os.WriteFile(p, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMasterKeyFile(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMasterKeyFile(p); !errors.Is(err, ErrBadMasterKey) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable file: err = %v", err)
	}
	if _, err := LoadMasterKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestPrefixOf(t *testing.T) {
	for in, want := range map[string]string{"app/db/password": "app/", "app/x": "app/", "token": "token"} {
		if got := PrefixOf(in); got != want {
			t.Errorf("PrefixOf(%q) = %q, want %q", in, got, want)
		}
	}
}
