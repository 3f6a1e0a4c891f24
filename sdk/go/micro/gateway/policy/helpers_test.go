package policy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/configd/configd/sdk/go/micro/gateway/policy"
	"github.com/configd/configd/sdk/go/micro/status"
)

const secret = "0123456789abcdef0123456789abcdef" // 32 bytes: HS256's least

// sign signs claims with key (an HMAC secret or a private key) by method, naming kid when set.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims are valid claims of subject sub for an hour, with more.
func claims(sub string, more ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix(), "iss": "issuer", "aud": "gateway"}
	for i := 0; i+1 < len(more); i += 2 {
		c[more[i].(string)] = more[i+1]
	}
	return c
}

// hs256 is a JWT section with one HS256 key, issuer and audience.
func hs256() policy.JWT {
	return policy.JWT{Keys: []policy.Key{{Alg: "HS256", Secret: secret}}, Issuer: "issuer", Audience: "gateway"}
}

// echo answers 200 "ok <sub>" with the subject of the request's token.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	sub, _ := policy.Claims(r.Context())["sub"].(string)
	io.WriteString(w, "ok "+sub)
})

// newPolicy returns a policy in force with cfg, that logs nothing.
func newPolicy(t testing.TB, cfg policy.Config, opts ...policy.Option) *policy.Policy {
	t.Helper()
	p, err := policy.New(cfg, append([]policy.Option{policy.WithLogger(discard)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serve serves h behind p's whole chain until the test ends.
func serve(t testing.TB, p *policy.Policy, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(p.Handler(h))
	t.Cleanup(srv.Close)
	return srv
}

// answer is what a test reads of an answer.
type answer struct {
	code   int
	header http.Header
	body   string
	err    struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
}

// get sends method path to srv with token as a bearer token (none when empty).
func get(t testing.TB, srv *httptest.Server, method, path, token string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rsp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	a := answer{code: rsp.StatusCode, header: rsp.Header, body: string(b)}
	if rsp.StatusCode >= 400 {
		var body status.HTTPError
		if err := json.Unmarshal(b, &body); err != nil || body.Status == "" {
			t.Fatalf("%s %s: %d with a body that is not a JSON error: %q", method, path, rsp.StatusCode, b)
		}
		a.err.Code, a.err.Message = body.Code, body.Detail
		if a.err.Code != rsp.StatusCode || rsp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s %s: status %d, error %s, content type %q", method, path, rsp.StatusCode, b, rsp.Header.Get("Content-Type"))
		}
	}
	return a
}

// want fails the test unless a has code and, for an error, a message containing msg.
func (a answer) want(t testing.TB, what string, code int, msg string) {
	t.Helper()
	if a.code != code || !strings.Contains(a.err.Message+a.body, msg) {
		t.Fatalf("%s: %d %q, want %d with %q", what, a.code, a.body, code, msg)
	}
}

// httpHandler answers each path with the route and status f gives it (route "": none set).
func httpHandler(f func(path string) (string, int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, code := f(r.URL.Path)
		if route != "" {
			policy.SetRoute(r.Context(), route)
		}
		if code >= 400 {
			status.WriteHTTP(w, code, status.New(status.Code(code), "no route"))
			return
		}
		w.WriteHeader(code)
	})
}
