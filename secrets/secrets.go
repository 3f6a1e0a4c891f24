// Package secrets is the cryptography of configd's secret keys, and only
// that: it stores nothing (package audit keeps the wrapped data keys and the
// ciphertexts in SQLite).
//
// Three kinds of key are involved:
//
//   - The master key (MasterKey), 32 bytes that the operator provides in a
//     file or in the environment. It never reaches the database; only its
//     ID, a fingerprint, is recorded next to what it wraps.
//   - Data keys (DataKey), 32 random bytes each, one per key prefix (the
//     first path segment of a key, see PrefixOf). A data key is stored
//     wrapped: sealed with AES-256-GCM under the master key, bound to its
//     id and prefix. Rotating the master key re-wraps the data keys and
//     leaves every value as it is.
//   - For each secret value, AES-256-GCM under its prefix's data key with a
//     random nonce; the associated data is the envelope header and the
//     key's name, so a ciphertext moved to another key (or re-labelled with
//     another data key) does not decrypt.
//
// What is shown instead of a secret value is Digest: a keyed hash
// (HMAC-SHA256 under a key derived from the data key), never a plain hash,
// which would give away a short or guessable secret to a dictionary.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of master and data keys: 32 bytes (AES-256).
const KeySize = 32

// Errors. The errors returned wrap them with details; none of them carries
// a plaintext.
var (
	// ErrBadMasterKey: master key material that is not 32 bytes, raw or in
	// base64.
	ErrBadMasterKey = errors.New("secrets: bad master key")
	// ErrWrongMasterKey: a data key does not unwrap under the master key
	// given: it is not the one the data key was wrapped with (or the
	// wrapped key was altered).
	ErrWrongMasterKey = errors.New("secrets: wrong master key")
	// ErrDecrypt: a ciphertext does not open: it was altered, moved to
	// another key, or is not a ciphertext of this package.
	ErrDecrypt = errors.New("secrets: decryption failed")
)

const (
	envelopeVersion = 1
	headerSize      = 1 + 8 // version, data key id
	nonceSize       = 12

	valueDomain  = "configd secret value v1\x00"
	wrapDomain   = "configd data key v1\x00"
	idDomain     = "configd master key id v1"
	digestDomain = "configd secret digest v1"
)

// MasterKey wraps and unwraps data keys.
type MasterKey struct {
	aead cipher.AEAD
	id   string
}

// NewMasterKey returns the master key of the 32 bytes b.
func NewMasterKey(b []byte) (*MasterKey, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("%w: it is %d bytes, want %d", ErrBadMasterKey, len(b), KeySize)
	}
	aead, err := newGCM(b)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, b)
	mac.Write([]byte(idDomain))
	return &MasterKey{aead: aead, id: hex.EncodeToString(mac.Sum(nil)[:8])}, nil
}

// ParseMasterKey reads master key material: exactly 32 raw bytes, or their
// standard or URL base64 encoding (padded or not) with surrounding white
// space, e.g. the output of `head -c 32 /dev/urandom | base64`.
func ParseMasterKey(data []byte) (*MasterKey, error) {
	if len(data) == KeySize {
		return NewMasterKey(data)
	}
	s := strings.TrimSpace(string(data))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("%w: it decodes from base64 to %d bytes, want %d", ErrBadMasterKey, len(b), KeySize)
			}
			return NewMasterKey(b)
		}
	}
	return nil, fmt.Errorf("%w: want %d raw bytes or their base64 (e.g. head -c 32 /dev/urandom | base64), got %d bytes that are neither",
		ErrBadMasterKey, KeySize, len(data))
}

// LoadMasterKeyFile reads the master key from the file at path (see
// ParseMasterKey). A file that others than its owner may read is refused:
// the master key opens every secret.
func LoadMasterKeyFile(path string) (*MasterKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: master key file %s has mode %#o: others than its owner may read it; chmod 600 it",
			ErrBadMasterKey, path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	mk, err := ParseMasterKey(data)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return mk, nil
}

// GenerateMasterKey returns a new random master key and its base64 form,
// to be written to a file.
func GenerateMasterKey() (*MasterKey, string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return nil, "", fmt.Errorf("secrets: generate master key: %w", err)
	}
	mk, err := NewMasterKey(b)
	return mk, base64.StdEncoding.EncodeToString(b), err
}

// ID is the master key's fingerprint (16 hex digits), recorded next to the
// data keys it wraps so that a wrong master key is named as such. It
// reveals nothing of the key.
func (m *MasterKey) ID() string { return m.id }

// DataKey encrypts the secret values of one prefix.
type DataKey struct {
	id     int64
	prefix string
	raw    []byte
	aead   cipher.AEAD
	mac    []byte // the digest key, derived from raw
}

// NewDataKey returns a new random data key with the given id for prefix.
func NewDataKey(id int64, prefix string) (*DataKey, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("secrets: generate data key: %w", err)
	}
	return dataKey(id, prefix, raw)
}

func dataKey(id int64, prefix string, raw []byte) (*DataKey, error) {
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte(digestDomain))
	return &DataKey{id: id, prefix: prefix, raw: raw, aead: aead, mac: mac.Sum(nil)}, nil
}

// ID is the data key's id, which its ciphertexts carry.
func (d *DataKey) ID() int64 { return d.id }

// Prefix is the prefix whose values the data key encrypts.
func (d *DataKey) Prefix() string { return d.prefix }

// Wrap seals d under the master key, bound to d's id and prefix.
func (m *MasterKey) Wrap(d *DataKey) ([]byte, error) {
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secrets: wrap: %w", err)
	}
	return m.aead.Seal(nonce, nonce, d.raw, wrapAD(d.id, d.prefix)), nil
}

// Unwrap opens a data key that Wrap sealed for id and prefix.
// ErrWrongMasterKey means m is not the master key it was wrapped with.
func (m *MasterKey) Unwrap(id int64, prefix string, wrapped []byte) (*DataKey, error) {
	if len(wrapped) < nonceSize+m.aead.Overhead() {
		return nil, fmt.Errorf("%w: data key %d is too short to be a wrapped key", ErrWrongMasterKey, id)
	}
	raw, err := m.aead.Open(nil, wrapped[:nonceSize], wrapped[nonceSize:], wrapAD(id, prefix))
	if err != nil {
		return nil, fmt.Errorf("%w: data key %d (prefix %q) does not unwrap under master key %s", ErrWrongMasterKey, id, prefix, m.id)
	}
	return dataKey(id, prefix, raw)
}

func wrapAD(id int64, prefix string) []byte {
	ad := binary.BigEndian.AppendUint64([]byte(wrapDomain), uint64(id))
	return append(ad, prefix...)
}

// Seal encrypts the value of the key named name. The result is
// version (1 byte) || data key id (8 bytes) || nonce (12) || ciphertext
// and tag.
func (d *DataKey) Seal(name string, plaintext []byte) ([]byte, error) {
	out := make([]byte, headerSize, headerSize+nonceSize+len(plaintext)+d.aead.Overhead())
	out[0] = envelopeVersion
	binary.BigEndian.PutUint64(out[1:headerSize], uint64(d.id))
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secrets: seal: %w", err)
	}
	out = append(out, nonce...)
	return d.aead.Seal(out, nonce, plaintext, valueAD(out[:headerSize], name)), nil
}

// Open decrypts a ciphertext that Seal made for the key named name.
func (d *DataKey) Open(name string, ciphertext []byte) ([]byte, error) {
	id, err := CiphertextKeyID(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	if id != d.id {
		return nil, fmt.Errorf("%w: key %q: the ciphertext is under data key %d, not %d", ErrDecrypt, name, id, d.id)
	}
	body := ciphertext[headerSize:]
	if len(body) < nonceSize+d.aead.Overhead() {
		return nil, fmt.Errorf("%w: key %q: ciphertext is truncated", ErrDecrypt, name)
	}
	pt, err := d.aead.Open(nil, body[:nonceSize], body[nonceSize:], valueAD(ciphertext[:headerSize], name))
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: the ciphertext was altered or belongs to another key", ErrDecrypt, name)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

func valueAD(header []byte, name string) []byte {
	ad := append([]byte(valueDomain), header...)
	return append(ad, name...)
}

// CiphertextKeyID returns the id of the data key that sealed ciphertext.
func CiphertextKeyID(ciphertext []byte) (int64, error) {
	if len(ciphertext) < headerSize || ciphertext[0] != envelopeVersion {
		return 0, fmt.Errorf("%w: not a configd secret ciphertext", ErrDecrypt)
	}
	return int64(binary.BigEndian.Uint64(ciphertext[1:headerSize])), nil
}

// Digest is what is shown of a secret value instead of the value:
// "hmac-sha256:" and the first 16 hex digits of HMAC-SHA256 of the value
// under a key derived from the data key. Equal values of one prefix have
// equal digests, so a reader of the history sees whether a secret changed;
// without the data key nobody can test guesses against it.
func (d *DataKey) Digest(plaintext []byte) string {
	mac := hmac.New(sha256.New, d.mac)
	mac.Write(plaintext)
	return "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil)[:8])
}

// PrefixOf returns the prefix whose data key encrypts key: its first path
// segment with the '/' ("app/" for "app/db/password"), or the whole key
// when it has no '/'.
func PrefixOf(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return key
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return aead, nil
}

// Equal reports whether two master keys are the same key.
func (m *MasterKey) Equal(o *MasterKey) bool {
	return m != nil && o != nil && m.id == o.id
}
