package policy_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/configd/configd/sdk/go/micro/gateway/policy"
)

// TestJWTRefusesMissingBadExpiredAndForeignTokens: each bad token is a 401 with a JSON error
// and a WWW-Authenticate challenge that says what is wrong; a good token passes, its claims
// in the request's context; a public path needs none.
func TestJWTRefusesMissingBadExpiredAndForeignTokens(t *testing.T) {
	cfg := policy.Config{JWT: hs256()}
	cfg.JWT.Public = []policy.Match{{Method: "GET", Path: "/health"}}
	srv := serve(t, newPolicy(t, cfg), echo)

	a := get(t, srv, "GET", "/example/call", "")
	a.want(t, "no token", 401, "a bearer token is required")
	if got := a.header.Get("WWW-Authenticate"); got != `Bearer realm="gateway"` {
		t.Fatalf("no token: WWW-Authenticate %q", got)
	}
	for _, c := range []struct {
		what, token, msg string
	}{
		{"bad signature", sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), "", claims("bob")), "signature is invalid"},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob", "exp", time.Now().Add(-time.Minute).Unix())), "expired"},
		{"other audience", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob", "aud", "billing")), "another audience"},
		{"other issuer", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob", "iss", "mallory")), "another issuer"},
		{"no exp", sign(t, jwt.SigningMethodHS256, []byte(secret), "", jwt.MapClaims{"sub": "bob", "iss": "issuer", "aud": "gateway"}), "exp"},
		{"not a JWT", "hello", "malformed"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims("bob")), "invalid"},
	} {
		a := get(t, srv, "GET", "/example/call", c.token)
		a.want(t, c.what, 401, c.msg)
		if got := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="gateway", error="invalid_token", error_description="`) {
			t.Fatalf("%s: WWW-Authenticate %q", c.what, got)
		}
	}
	get(t, srv, "GET", "/example/call", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob"))).want(t, "good token", 200, "ok bob")
	get(t, srv, "GET", "/health", "").want(t, "public path", 200, "ok")
	get(t, srv, "POST", "/health", "").want(t, "public path, another method", 401, "required")
}

// pemOf is pub as a PKIX PEM block.
func pemOf(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestJWTPublicKeysAndKeyIDs: RSA, ECDSA and Ed25519 public keys verify their tokens; a kid
// picks its key, and a kid of a key of another algorithm, or of no key, is refused.
func TestJWTPublicKeysAndKeyIDs(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg := policy.Config{JWT: policy.JWT{Keys: []policy.Key{
		{ID: "rsa", Alg: "RS256", PEM: pemOf(t, &rsaKey.PublicKey)},
		{ID: "ec", Alg: "ES256", PEM: pemOf(t, &ecKey.PublicKey)},
		{Alg: "ES256", PEM: pemOf(t, &ecKey2.PublicKey)},
		{ID: "ed", Alg: "EdDSA", PEM: pemOf(t, edPub)},
		{ID: "hmac", Alg: "HS256", Secret: secret},
	}}}
	srv := serve(t, newPolicy(t, cfg), echo)
	for _, c := range []struct {
		what   string
		method jwt.SigningMethod
		key    any
		kid    string
		code   int
	}{
		{"RS256 by kid", jwt.SigningMethodRS256, rsaKey, "rsa", 200},
		{"RS256 without kid", jwt.SigningMethodRS256, rsaKey, "", 200},
		{"ES256 by kid", jwt.SigningMethodES256, ecKey, "ec", 200},
		{"ES256, the key without an id", jwt.SigningMethodES256, ecKey2, "", 200},
		{"ES256 without kid, the key with one", jwt.SigningMethodES256, ecKey, "", 200},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey, "ed", 200},
		{"HS256", jwt.SigningMethodHS256, []byte(secret), "hmac", 200},
		{"ES256 under the RSA key's id", jwt.SigningMethodES256, ecKey, "rsa", 401},
		{"an unknown kid", jwt.SigningMethodRS256, rsaKey, "nope", 401},
		{"HS256 keyed with the RSA public key's PEM", jwt.SigningMethodHS256, []byte(pemOf(t, &rsaKey.PublicKey)), "rsa", 401},
		{"RS384: no key of that algorithm", jwt.SigningMethodRS384, rsaKey, "", 401},
	} {
		a := get(t, srv, "GET", "/x", sign(t, c.method, c.key, c.kid, jwt.MapClaims{"sub": "s", "exp": time.Now().Add(time.Hour).Unix()}))
		if a.code != c.code {
			t.Fatalf("%s: %d %s, want %d", c.what, a.code, a.body, c.code)
		}
	}
}

// TestJWTConfigErrorsNameTheKey: a key that cannot verify anything is refused with its id and
// why, every one of them at once.
func TestJWTConfigErrorsNameTheKey(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	err := policy.Config{JWT: policy.JWT{Keys: []policy.Key{
		{ID: "short", Alg: "HS256", Secret: "too short"},
		{ID: "garbage", Alg: "RS256", PEM: "not a key"},
		{ID: "curve", Alg: "ES256", PEM: pemOf(t, &ecKey.PublicKey)},
		{ID: "none", Alg: "none"},
		{ID: "short", Alg: "HS512", Secret: strings.Repeat("k", 64)},
	}}}.Validate()
	if err == nil {
		t.Fatal("bad keys accepted")
	}
	for _, want := range []string{`"short": HS256 needs a secret of 32 bytes`, `"garbage"`, `"curve": a 384-bit curve's key cannot verify ES256`, `"none": unknown alg "none"`, `"short": two keys have this id`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := (policy.Config{JWT: policy.JWT{Audience: "gateway"}}).Validate(); err == nil {
		t.Error("an audience without a key (authentication off, silently) accepted")
	}
}

// TestRememberedTokensStillExpireAndDieWithTheirKey: a token verified once is remembered, yet
// refused once it expires, and refused as soon as an update removes its key.
func TestRememberedTokensStillExpireAndDieWithTheirKey(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := newPolicy(t, policy.Config{JWT: hs256()}, policy.WithClock(clock))
	srv := serve(t, p, echo)
	tok := sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob", "exp", now.Add(time.Minute).Unix()))
	for range 3 {
		get(t, srv, "GET", "/x", tok).want(t, "a fresh token", 200, "ok bob")
	}
	if n := p.TokensRemembered(); n != 1 {
		t.Fatalf("%d tokens remembered, want 1", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	get(t, srv, "GET", "/x", tok).want(t, "the remembered token, expired", 401, "expired")

	fresh := sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob", "exp", now.Add(time.Hour).Unix()))
	get(t, srv, "GET", "/x", fresh).want(t, "a fresh token", 200, "ok bob")
	rotated := hs256()
	rotated.Keys = []policy.Key{{Alg: "HS256", Secret: strings.Repeat("n", 32)}}
	if err := p.Update(policy.Config{JWT: rotated}); err != nil {
		t.Fatal(err)
	}
	get(t, srv, "GET", "/x", fresh).want(t, "a remembered token whose key is gone", 401, "signature is invalid")
}
