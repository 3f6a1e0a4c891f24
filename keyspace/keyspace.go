// Package keyspace defines what a configd key and a key prefix are, and
// checks them. Every layer that accepts a key from outside (the HTTP API, the
// CLI, sources) validates it here, so the rules live in one place.
//
// A key is a path of one or more segments separated by '/':
//
//	app/db/timeout
//
// Rules, chosen to keep keys portable to file paths, URLs and other stores:
//
//   - at most MaxKeyLen (512) bytes, valid UTF-8, no control characters;
//   - no leading or trailing '/', no empty segment ("a//b"), no "." or ".."
//     segment. These are refused, not silently normalised, so that two
//     spellings never name one key.
//
// A key that is written (a put, a source's key) must also look like what it
// is (ValidateNew): no invisible or bidirectional-control characters, no
// space other than ' ', and in Unicode normalization form C, so that two
// keys never look the same in the UI or the CLI. Keys are not normalised
// for the writer: a key in another form is refused with the NFC spelling to
// use. Reads and deletes take any key that Validate accepts, so that a key
// stored before these rules can still be read and removed.
//
// A prefix names a subtree. "" is the whole keyspace; "app" and "app/" both
// name every key under app/ (prefixes match whole segments: "app/" does not
// match "apple"). Prefix returns the canonical form, which ends in '/'.
//
// Keys that start with '/' are the store's own records (a prefix's JSON
// Schema is kept at SchemaKey(prefix)): Validate refuses them, so no read or
// write of a key reaches one, and no prefix, the whole keyspace ""
// included, contains one (InPrefix).
// The change requests' keys (under RequestsNS) are configd's own too (Own):
// the whole keyspace "" leaves them out, their own prefix reaches them.
package keyspace

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxKeyLen is the longest key, in bytes.
const MaxKeyLen = 512

// ErrInvalidKey is wrapped by every error that Validate and Prefix return.
var ErrInvalidKey = errors.New("invalid key")

// Validate reports whether key is a valid key. The error wraps ErrInvalidKey
// and says which rule was broken.
func Validate(key string) error {
	if key == "" {
		return fmt.Errorf("%w: key is empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key is %d bytes, the limit is %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: key %q is not valid UTF-8", ErrInvalidKey, key)
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: key %q contains a control character", ErrInvalidKey, key)
		}
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: key %q starts with '/'", ErrInvalidKey, key)
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w: key %q ends with '/' (a trailing '/' names a prefix)", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") { // no slice: every write checks its keys
		switch seg {
		case "":
			return fmt.Errorf("%w: key %q has an empty segment", ErrInvalidKey, key)
		case ".", "..":
			return fmt.Errorf("%w: key %q has a %q segment", ErrInvalidKey, key, seg)
		}
	}
	return nil
}

// ValidateNew reports whether key may be written: Validate's rules, and
// the key must look like what it is. It refuses format characters (the
// bidirectional controls U+202A–U+202E and U+2066–U+2069, the marks U+200E,
// U+200F and U+061C, the zero-width U+200B–U+200D and U+2060, the byte-order
// mark U+FEFF, the soft hyphen, tag characters), private-use and surrogate
// code points, variation selectors, every space but U+0020, and the letters
// that draw nothing (Hangul fillers, the blank Braille pattern); and a key
// not in Unicode normalization form C, naming the NFC spelling.
func ValidateNew(key string) error {
	if err := Validate(key); err != nil {
		return err
	}
	if isASCII(key) {
		return nil // printable ASCII (Validate refused the controls) is visible and in NFC
	}
	for i, r := range key {
		if invisible(r) {
			return fmt.Errorf("%w: key %q has the invisible or direction-changing character %U at byte %d; such characters are refused so that two keys never look alike", ErrInvalidKey, key, r, i)
		}
	}
	if !norm.NFC.IsNormalString(key) {
		return fmt.Errorf("%w: key %q is not in Unicode normalization form C (NFC); write it as %q, which looks the same", ErrInvalidKey, key, norm.NFC.String(key))
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// invisible reports whether r draws nothing, or changes how the
// characters around it are drawn, in a key.
func invisible(r rune) bool {
	switch {
	case unicode.In(r, unicode.Cf, unicode.Co, unicode.Cs, unicode.Variation_Selector):
		return true
	case r != ' ' && unicode.IsSpace(r):
		return true
	}
	switch r {
	case 0x115F, 0x1160, 0x3164, 0xFFA0, // Hangul fillers
		0x2800: // Braille pattern blank
		return true
	}
	return false
}

// Prefix validates p as a prefix and returns its canonical form: "" for the
// whole keyspace, otherwise the path with exactly one trailing '/'.
func Prefix(p string) (string, error) {
	if p == "" || p == "/" {
		return "", nil
	}
	trimmed := strings.TrimSuffix(p, "/")
	if err := Validate(trimmed); err != nil {
		return "", fmt.Errorf("prefix %q: %w", p, err)
	}
	return trimmed + "/", nil
}

// InPrefix reports whether key lies under the canonical prefix p (as
// returned by Prefix). The store's own records (Reserved) lie under none,
// and configd's own keys (Own) not under the whole keyspace "".
func InPrefix(key, p string) bool {
	if p == "" {
		return !Own(key)
	}
	return strings.HasPrefix(key, p)
}

// Overlaps reports whether a client that watches watched sees anything
// under prefix: one is under the other. watched is a canonical prefix
// ("" is everything, else ending in "/") or a key.
func Overlaps(watched, prefix string) bool {
	return strings.HasPrefix(watched, prefix) || strings.HasPrefix(prefix, watched) && (watched == "" || strings.HasSuffix(watched, "/"))
}

// Own reports whether key is configd's own: one of the store's records
// (Reserved), or a key under RequestsNS. The whole keyspace "" leaves them
// out, so that a listing, watch, export, rollback or JSON Schema of
// everything is about the users' keys alone; naming their prefix reaches
// the keys under RequestsNS.
func Own(key string) bool { return Reserved(key) || strings.HasPrefix(key, RequestsNS) }

// schemaNS is the namespace of the store's records of schemas.
const schemaNS = "/schema/"

// Reserved reports whether key is one of the store's own records (it
// starts with '/', which no key written through Validate's rules can).
func Reserved(key string) bool { return strings.HasPrefix(key, "/") }

// SchemaKey returns the store's record that holds the JSON Schema of the
// canonical prefix p: "/schema/" + p ("/schema/app/" for app/, "/schema/"
// for the whole keyspace).
func SchemaKey(p string) string { return schemaNS + p }

// SchemaPrefix returns the canonical prefix whose schema record key is,
// and false when key is not a schema record.
func SchemaPrefix(key string) (string, bool) {
	if !strings.HasPrefix(key, schemaNS) {
		return "", false
	}
	return key[len(schemaNS):], true
}

// The change requests (docs/requests.md) are kept as keys of the store
// under RequestsNS, each request's record at RequestKey(id) and the
// approval policies of every prefix at PoliciesKey, so that they are
// versioned, audited, replicated and backed up as every key is. They are
// ordinary keys, not reserved records: the commit path takes no reserved
// record but a schema's yet (docs/requests.md, "Where requests live").
const (
	// RequestsNS is the prefix of configd's own keys about change requests.
	RequestsNS = ".configd/"
	requestNS  = RequestsNS + "requests/"
	// PoliciesKey is the key that holds every prefix's approval policy.
	PoliciesKey = RequestsNS + "policies"
)

// rolloutNS is the prefix of the rollouts' records (docs/rollouts.md),
// configd's own keys as the requests' are.
const rolloutNS = RequestsNS + "rollouts/"

// RolloutsActiveKey is the index of the running rollouts: a JSON object
// from each key a running rollout changes to that rollout's id. Starting,
// completing and aborting a rollout update it with a compare-and-set, so
// that two rollouts never hold one key, and a direct write of a key in it
// is refused. It is outside RolloutsPrefix: every key there is a record.
const RolloutsActiveKey = RequestsNS + "rollouts-active"

// RolloutKey returns the key of rollout id's record.
func RolloutKey(id int64) string { return rolloutNS + strconv.FormatInt(id, 10) }

// RolloutsPrefix is the canonical prefix of every rollout's record.
func RolloutsPrefix() string { return rolloutNS }

// IsRollout reports whether key is a rollout's record (RolloutKey of an
// id), not another key under RolloutsPrefix.
func IsRollout(key string) bool {
	_, ok := idUnder(key, rolloutNS)
	return ok
}

// RolloutID returns the id of the rollout whose record is key, and false
// when key is not one.
func RolloutID(key string) (int64, bool) { return idUnder(key, rolloutNS) }

// leaseNS is the prefix of the etcd API's lease records (docs/compat.md,
// "Leases"): configd's own keys, as the rollouts' are, so that a lease's
// keys and TTL are versioned, replicated and backed up, and no door's
// direct write reaches them.
const leaseNS = RequestsNS + "leases/"

// consulFlagsNS is the prefix of the Consul API's flags records
// (docs/compat.md): a key's Consul flags, other than 0, live in a key of
// configd's own written in the same revision as the key.
const consulFlagsNS = RequestsNS + "consul-flags/"

// ConsulFlagsKey returns the key of the record of key's Consul flags.
func ConsulFlagsKey(key string) string { return consulFlagsNS + key }

// LeaseKey returns the key of etcd lease id's record.
func LeaseKey(id int64) string { return leaseNS + strconv.FormatInt(id, 10) }

// LeasesPrefix is the canonical prefix of every lease's record.
func LeasesPrefix() string { return leaseNS }

// LeaseID returns the id of the lease whose record is key, and false when
// key is not one.
func LeaseID(key string) (int64, bool) { return idUnder(key, leaseNS) }

// RequestKey returns the key of change request id's record.
func RequestKey(id int64) string { return requestNS + strconv.FormatInt(id, 10) }

// RequestsPrefix is the canonical prefix of every change request's record.
func RequestsPrefix() string { return requestNS }

// RequestID returns the id of the change request whose record is key, and
// false when key is not one.
func RequestID(key string) (int64, bool) { return idUnder(key, requestNS) }

// idUnder returns the id of the record key under ns, and false when key is
// not ns followed by an id in canonical form.
func idUnder(key, ns string) (int64, bool) {
	s, ok := strings.CutPrefix(key, ns)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != s {
		return 0, false
	}
	return id, true
}

// PrefixEnd returns the smallest string greater than every string that
// starts with the canonical prefix p, for range scans: keys k under p are
// exactly p <= k < PrefixEnd(p). For the empty prefix it returns "".
func PrefixEnd(p string) string {
	if p == "" {
		return ""
	}
	// p ends in '/', and '/'+1 is '0', so the end is p with its last byte bumped.
	return p[:len(p)-1] + "0"
}
