package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Config is the whole policy of a gateway, as it is stored in configd (each section under a key
// of its own: see sdk/go/config/gatewayconfig) and decoded from JSON. The zero Config lets every
// request through: no authentication, no access rule, no rate limit.
type Config struct {
	// JWT authenticates requests; off when it has no key.
	JWT JWT `json:"jwt"`
	// Access allows or denies requests by method and path.
	Access Access `json:"access"`
	// Limits limit the rate of requests by client and by route.
	Limits Limits `json:"limits"`
}

// JWT is the authentication of requests by a bearer token (Authorization: Bearer <JWT>).
type JWT struct {
	// Keys verify the tokens' signatures. A token whose header names a key id (kid) is
	// verified with that key only; one without, with each key of its algorithm. No key: no
	// authentication.
	Keys []Key `json:"keys,omitempty"`
	// Issuer, when set, is the iss a token must have.
	Issuer string `json:"issuer,omitempty"`
	// Audience, when set, must be among a token's aud.
	Audience string `json:"audience,omitempty"`
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway Duration `json:"leeway,omitempty"`
	// Public are the requests that need no token, as access rules match them.
	Public []Match `json:"public,omitempty"`
}

// Key is a key that verifies tokens.
type Key struct {
	// ID is the key id a token's header names (kid); optional.
	ID string `json:"kid,omitempty"`
	// Alg is the algorithm of the tokens it verifies: HS256, HS384, HS512 (Secret); RS256,
	// RS384, RS512, PS256, PS384, PS512 (an RSA public key); ES256, ES384, ES512 (an ECDSA
	// public key); EdDSA (an Ed25519 public key).
	Alg string `json:"alg"`
	// Secret is an HMAC key, at least as long as the hash (32 bytes for HS256).
	Secret string `json:"secret,omitempty"`
	// PEM is a public key (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY", or a certificate).
	PEM string `json:"pem,omitempty"`
}

// Match names requests by method and path.
type Match struct {
	// Method is an HTTP method, or empty for every method (GET matches HEAD too).
	Method string `json:"method,omitempty"`
	// Path is a pattern in net/http's ServeMux syntax, as gateway.Route's: "/admin/",
	// "/users/{id}", "/files/{path...}", "/{$}". Of the patterns that match a request, the
	// most specific wins, as in a ServeMux; two patterns that could match the same request
	// with neither more specific are refused.
	Path string `json:"path"`
}

// Access is the access rules.
type Access struct {
	// Default is what happens to a request no rule matches: "allow" (the default) or
	// "deny".
	Default string `json:"default,omitempty"`
	// Rules match requests; the most specific that matches decides.
	Rules []Rule `json:"rules,omitempty"`
}

// Actions of access rules.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Rule allows or denies the requests it matches.
type Rule struct {
	Match
	// Action is Allow (the default) or Deny.
	Action string `json:"action,omitempty"`
	// Claims are claims an allowed request's token must have, with these values (a claim
	// that is a list must hold the value).
	Claims map[string]string `json:"claims,omitempty"`
	// Scopes are scopes an allowed request's token must have, all of them: in its scope
	// claim (space-separated, OAuth 2.0) or its scp claim (a list, or space-separated).
	Scopes []string `json:"scopes,omitempty"`
}

// Limits are the rate limits.
type Limits struct {
	// Client limits each client: the subject (sub) of its token, or its IP address when the
	// request has no token.
	Client *Limit `json:"client,omitempty"`
	// MaxClients is how many clients' buckets are kept (default DefaultMaxClients): past it
	// the least recently seen client's is dropped, so a flood of client ids cannot grow the
	// memory. Keep it above the number of clients active at once.
	MaxClients int `json:"max_clients,omitempty"`
	// Routes limit the requests that match them, all clients together; the most specific
	// route that matches counts a request.
	Routes []RouteLimit `json:"routes,omitempty"`
}

// DefaultMaxClients is the default of Limits.MaxClients.
const DefaultMaxClients = 10000

// Limit is a token bucket.
type Limit struct {
	// Rate is the requests a second; > 0.
	Rate float64 `json:"rate"`
	// Burst is how many may come at once; default Rate rounded up, at least 1.
	Burst int `json:"burst,omitempty"`
	// Wait is how long a request may wait for its turn; 0 (the default) fails it at once.
	// A refused request is answered 429 with Retry-After.
	Wait Duration `json:"wait,omitempty"`
}

// RouteLimit is the limit of the requests that match it.
type RouteLimit struct {
	Match
	Limit
}

// Duration is a time.Duration written in JSON as a string ("250ms", "1m").
type Duration time.Duration

// String is d as time.Duration writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string that time.ParseDuration takes.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"250ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Decode decodes a policy document (a Config), or one of its sections, from JSON into dst
// strictly: one document, no member dst does not have (a typo makes it bad). Empty b (a
// missing configd key) leaves dst as it is. It is the one way a gateway reads its policy,
// from a file (micro api --policy) or from configd (gatewayconfig).
func Decode(b []byte, dst any) error {
	if b == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("not a valid JSON value of this section: %w", err)
	}
	if dec.More() {
		return errors.New("not a valid JSON value of this section: more than one document")
	}
	return nil
}

// Validate reports everything wrong in c, or nil: what Update refuses.
func (c Config) Validate() error {
	_, err := compile(c, nil, time.Now)
	return err
}

// validate checks a Limit; what names it in the error.
func (l Limit) validate(what string) error {
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
		return fmt.Errorf("%s: rate must be a number > 0, got %v", what, l.Rate)
	}
	if l.Burst < 0 {
		return fmt.Errorf("%s: burst must be >= 0, got %d", what, l.Burst)
	}
	if l.Wait < 0 {
		return fmt.Errorf("%s: wait must be >= 0, got %v", what, time.Duration(l.Wait))
	}
	return nil
}

// burst is l's burst with its default.
func (l Limit) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(1, int(math.Ceil(l.Rate)))
}

// errs joins the errors of a validation.
type errs []error

func (e *errs) add(err error) {
	if err != nil {
		*e = append(*e, err)
	}
}

func (e errs) err() error { return errors.Join(e...) }
