package policy

import (
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifier checks the bearer tokens of requests against a JWT configuration.
type verifier struct {
	parser    *jwt.Parser
	validator *jwt.Validator // the parser's checks of the claims, for remembered tokens
	cache     *tokenCache
	byID      map[string]verifyKey
	byAlg     map[string][]jwt.VerificationKey // the keys of each algorithm, for tokens without a kid
	sets      map[string]jwt.VerificationKeySet
	public    *matcher[struct{}]
}

type verifyKey struct {
	alg string
	key any
}

// newVerifier compiles c, or returns nil when it has no key (no authentication). now is the
// clock tokens are checked by.
func newVerifier(c JWT, now func() time.Time) (*verifier, error) {
	var e errs
	v := &verifier{byID: map[string]verifyKey{}, byAlg: map[string][]jwt.VerificationKey{}, sets: map[string]jwt.VerificationKeySet{}, public: newMatcher[struct{}]()}
	var algs []string
	ids := map[string]bool{}
	for i, k := range c.Keys {
		what := fmt.Sprintf("jwt key %d", i)
		if k.ID != "" {
			what = fmt.Sprintf("jwt key %q", k.ID)
		}
		if k.ID != "" {
			if ids[k.ID] {
				e.add(fmt.Errorf("%s: two keys have this id", what))
			}
			ids[k.ID] = true
		}
		key, err := parseKey(k)
		if err != nil {
			e.add(fmt.Errorf("%s: %w", what, err))
			continue
		}
		if k.ID != "" {
			v.byID[k.ID] = verifyKey{k.Alg, key}
		}
		if len(v.byAlg[k.Alg]) == 0 {
			algs = append(algs, k.Alg)
		}
		v.byAlg[k.Alg] = append(v.byAlg[k.Alg], key)
	}
	if c.Leeway < 0 {
		e.add(fmt.Errorf("jwt: leeway must be >= 0, got %v", time.Duration(c.Leeway)))
	}
	for i, m := range c.Public {
		e.add(v.public.add(fmt.Sprintf("jwt public path %d", i), m, struct{}{}))
	}
	if len(c.Keys) == 0 {
		if c.Issuer != "" || c.Audience != "" || len(c.Public) > 0 {
			e.add(errors.New("jwt: issuer, audience or public paths without a key: add keys, or remove them"))
		}
		return nil, e.err()
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	for alg, keys := range v.byAlg {
		v.sets[alg] = jwt.VerificationKeySet{Keys: keys}
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithExpirationRequired(), jwt.WithLeeway(time.Duration(c.Leeway)), jwt.WithTimeFunc(now)}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	v.validator = jwt.NewValidator(opts...)
	v.cache = newTokenCache()
	return v, nil
}

// hmacMinBytes is the shortest secret of each HMAC algorithm: the size of its hash (RFC 7518,
// section 3.2).
var hmacMinBytes = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// parseKey turns k into what jwt verifies its algorithm with.
func parseKey(k Key) (any, error) {
	m := jwt.GetSigningMethod(k.Alg)
	if m == nil || k.Alg == "none" {
		return nil, fmt.Errorf("unknown alg %q", k.Alg)
	}
	pem := []byte(k.PEM)
	switch m.(type) {
	case *jwt.SigningMethodHMAC:
		if k.PEM != "" {
			return nil, fmt.Errorf("%s takes a secret, not a PEM key", k.Alg)
		}
		if n := hmacMinBytes[k.Alg]; len(k.Secret) < n {
			return nil, fmt.Errorf("%s needs a secret of %d bytes at least, got %d", k.Alg, n, len(k.Secret))
		}
		return []byte(k.Secret), nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if k.Secret != "" {
			return nil, fmt.Errorf("%s takes a PEM public key, not a secret", k.Alg)
		}
		return jwt.ParseRSAPublicKeyFromPEM(pem)
	case *jwt.SigningMethodECDSA:
		if k.Secret != "" {
			return nil, fmt.Errorf("%s takes a PEM public key, not a secret", k.Alg)
		}
		key, err := jwt.ParseECPublicKeyFromPEM(pem)
		if err == nil && key.Curve.Params().BitSize != m.(*jwt.SigningMethodECDSA).CurveBits {
			err = fmt.Errorf("a %d-bit curve's key cannot verify %s", key.Curve.Params().BitSize, k.Alg)
		}
		return key, err
	case *jwt.SigningMethodEd25519:
		if k.Secret != "" {
			return nil, fmt.Errorf("%s takes a PEM public key, not a secret", k.Alg)
		}
		key, err := jwt.ParseEdPublicKeyFromPEM(pem)
		if err != nil {
			return nil, err
		}
		return key.(crypto.PublicKey), nil
	}
	return nil, fmt.Errorf("unsupported alg %q", k.Alg)
}

// keyFor is the jwt.Keyfunc: the key the token's kid names, which must be of the token's
// algorithm, or every key of that algorithm.
func (v *verifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if kid, ok := t.Header["kid"].(string); ok && kid != "" {
		k, ok := v.byID[kid]
		if !ok {
			return nil, fmt.Errorf("no key has id %q", kid)
		}
		if k.alg != alg {
			return nil, fmt.Errorf("key %q is for %s, not %s", kid, k.alg, alg)
		}
		return k.key, nil
	}
	set, ok := v.sets[alg]
	if !ok {
		return nil, fmt.Errorf("no key for %s", alg)
	}
	if len(set.Keys) == 1 {
		return set.Keys[0], nil
	}
	return set, nil
}

// errNoToken is the error of a request without a bearer token.
var errNoToken = errors.New("a bearer token is required")

// verify returns the claims of r's bearer token, or why it has none.
func (v *verifier) verify(r *http.Request) (jwt.MapClaims, error) {
	tok, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return nil, errNoToken
	}
	if claims, ok := v.cache.get(tok); ok {
		if err := v.validator.Validate(claims); err != nil {
			return nil, fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, err)
		}
		return claims, nil
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(tok, claims, v.keyFor); err != nil {
		return nil, err
	}
	v.cache.add(tok, claims)
	return claims, nil
}

// bearer returns the token of an Authorization header of the Bearer scheme (RFC 6750; the
// scheme's name is case-insensitive).
func bearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	t := strings.TrimSpace(h[len(scheme):])
	return t, t != ""
}

// challenge is the WWW-Authenticate header of a 401 for err (RFC 6750, section 3).
func challenge(err error) string {
	if errors.Is(err, errNoToken) {
		return `Bearer realm="gateway"`
	}
	return `Bearer realm="gateway", error="invalid_token", error_description="` + quoteSafe(tokenProblem(err)) + `"`
}

// tokenProblem says what is wrong with a token, in the words a client acts on.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, errNoToken):
		return err.Error()
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token is expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token is for another audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token is from another issuer"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "the token's signature is invalid"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim (exp)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	}
	return "the token is invalid: " + err.Error()
}

// quoteSafe drops what may not stand in a quoted-string of a header.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
