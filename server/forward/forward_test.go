package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
)

type writerURL string

func (u writerURL) WriterURL() string { return string(u) }

// applier records the revisions waited for.
type applier struct {
	mu   sync.Mutex
	revs []int64
	err  error // Replication().Err
}

func (a *applier) Replication() audit.Replication { return audit.Replication{Err: a.err} }

func (a *applier) WaitRev(_ context.Context, rev int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revs = append(a.revs, rev)
	return nil
}

func (a *applier) waited() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int64(nil), a.revs...)
}

// local is the handler that commits here; it counts its requests.
type local struct {
	mu    sync.Mutex
	n     int
	bodys []string
}

func (l *local) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.n++
	l.bodys = append(l.bodys, string(b))
	l.mu.Unlock()
	w.Header().Set(api.HeaderRev, "1")
	io.WriteString(w, `{"rev":1,"here":true}`)
}

func (l *local) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func quiet() Option { return WithLogger(slog.New(slog.DiscardHandler)) }

func TestForwardsAWriteAndWaitsForItsRevisionHere(t *testing.T) {
	var got *http.Request
	var gotBody string
	writer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set(api.HeaderRev, "42")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"rev":42,"changed":true}`)
	}))
	defer writer.Close()
	a, l := &applier{}, &local{}
	f := New(writerURL(writer.URL), a, WithName("r2"), WithActor(func(*http.Request) string { return "anonymous@192.0.2.7" }), quiet())
	front := httptest.NewServer(f.Middleware(l))
	defer front.Close()

	req, _ := http.NewRequest(http.MethodPut, front.URL+"/v1/kv/app/x?type=json", strings.NewReader(`{"a":1}`))
	req.Header.Set(api.HeaderAuthorization, "Bearer tok")
	req.Header.Set(api.HeaderReason, "because")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"rev":42,"changed":true}` || resp.Header.Get(api.HeaderRev) != "42" {
		t.Fatalf("answer %d %s rev %q, want the writer's", resp.StatusCode, b, resp.Header.Get(api.HeaderRev))
	}
	if l.count() != 0 {
		t.Fatal("the local handler served a forwarded write")
	}
	if to := resp.Header.Get(HeaderForwardedTo); to != strings.TrimPrefix(writer.URL, "http://") {
		t.Errorf("%s: %q, want the writer's address", HeaderForwardedTo, to)
	}
	if got.Method != http.MethodPut || got.URL.RequestURI() != "/v1/kv/app/x?type=json" || gotBody != `{"a":1}` {
		t.Fatalf("the writer got %s %s %q", got.Method, got.URL.RequestURI(), gotBody)
	}
	for h, want := range map[string]string{api.HeaderAuthorization: "Bearer tok", api.HeaderReason: "because", HeaderForwarded: "r2", "X-Forwarded-For": "127.0.0.1",
		api.HeaderActor: "anonymous@192.0.2.7"} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("the writer got %s %q, want %q", h, v, want)
		}
	}
	if w := a.waited(); len(w) != 1 || w[0] != 42 {
		t.Fatalf("waited for %v before answering, want [42]", w)
	}
}

func TestRefusalsComeBackAsTheWriterSentThem(t *testing.T) {
	writer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.HeaderRev, "9")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":{"code":"conflict"}}`)
	}))
	defer writer.Close()
	a := &applier{}
	front := httptest.NewServer(New(writerURL(writer.URL), a, quiet()).Middleware(&local{}))
	defer front.Close()
	resp, err := http.Post(front.URL+"/v1/txn", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "conflict") {
		t.Fatalf("answer %d %s, want the writer's 409", resp.StatusCode, b)
	}
	if w := a.waited(); len(w) != 0 {
		t.Fatalf("waited for %v after a refusal", w)
	}
}

func TestServedHere(t *testing.T) {
	writer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("forwarded: %s %s", r.Method, r.URL)
	}))
	defer writer.Close()
	// A port nothing listens on: a request there is never sent.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String()
	ln.Close()

	cert := &x509.Certificate{}
	for _, tc := range []struct {
		name   string
		writer string
		req    func() *http.Request
	}{
		{"this replica is the writer", "", func() *http.Request {
			return httptest.NewRequest(http.MethodPut, "/v1/kv/a", strings.NewReader("v"))
		}},
		{"forwarded already", writer.URL, func() *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/v1/kv/a", strings.NewReader("v"))
			r.Header.Set(HeaderForwarded, "r1")
			return r
		}},
		{"a client certificate", writer.URL, func() *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/v1/kv/a", strings.NewReader("v"))
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
			return r
		}},
		{"a body over the bound", writer.URL, func() *http.Request {
			return httptest.NewRequest(http.MethodPut, "/v1/kv/a", strings.NewReader(strings.Repeat("v", 11)))
		}},
		{"this replica does not follow the log", writer.URL, func() *http.Request {
			return httptest.NewRequest(http.MethodPut, "/v1/kv/a", strings.NewReader("v"))
		}},
		{"the writer is unreachable", down, func() *http.Request {
			return httptest.NewRequest(http.MethodPut, "/v1/kv/a", strings.NewReader("v"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &local{}
			a := &applier{}
			if tc.name == "this replica does not follow the log" {
				a.err = audit.ErrStoreUnavailable
			}
			h := New(writerURL(tc.writer), a, WithMaxBody(10), quiet()).Middleware(l)
			req := tc.req()
			want, _ := io.ReadAll(req.Body)
			req = tc.req()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if l.count() != 1 || rec.Code != 200 || !strings.Contains(rec.Body.String(), `"here":true`) {
				t.Fatalf("served here %d times, answer %d %s", l.count(), rec.Code, rec.Body)
			}
			if l.bodys[0] != string(want) {
				t.Fatalf("the local handler read %q, want the whole body %q", l.bodys[0], want)
			}
		})
	}
}

// A writer that took the request and did not answer may have committed
// it: the replica must not commit it a second time.
func TestAWriterThatTookTheRequestAndFellSilentIsNotRetriedHere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.ReadAll(io.LimitReader(c, 1)) // read some of the request, then hang up
				c.Close()
			}()
		}
	}()
	l := &local{}
	h := New(writerURL("http://"+ln.Addr().String()), &applier{}, WithTimeout(5*time.Second), quiet()).Middleware(l)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/txn", strings.NewReader(`{}`)))
	if l.count() != 0 {
		t.Fatal("committed here after the writer took the request")
	}
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"code":"unavailable"`) ||
		!strings.Contains(rec.Body.String(), "may or may not have been applied") {
		t.Fatalf("answer %d %s, want 503 unavailable saying the write may have been applied", rec.Code, rec.Body)
	}
}

// An actor the client named goes to the writer as it is.
func TestTheClientsActorIsKept(t *testing.T) {
	var got string
	writer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get(api.HeaderActor)
		w.Header().Set(api.HeaderRev, "1")
	}))
	defer writer.Close()
	f := New(writerURL(writer.URL), &applier{}, WithActor(func(*http.Request) string { return "anonymous@192.0.2.7" }), quiet())
	req := httptest.NewRequest(http.MethodPut, "/v1/kv/a", strings.NewReader("v"))
	req.Header.Set(api.HeaderActor, "alice")
	rec := httptest.NewRecorder()
	f.Middleware(&local{}).ServeHTTP(rec, req)
	if rec.Code != 200 || got != "alice" {
		t.Fatalf("answer %d, the writer got actor %q, want alice", rec.Code, got)
	}
}

// Replicas that serve TLS forward over HTTPS, trusting the writer with the
// CA they are given, the client's token inside; a writer whose
// certificate that CA did not sign is not sent the request, which is
// committed here, as is a request whose client presented a certificate.
func TestForwardsOverTLSToATrustedWriter(t *testing.T) {
	var got []string
	writer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set(api.HeaderRev, "7")
		io.WriteString(w, `{"rev":7}`)
	}))
	defer writer.Close()
	trusted := x509.NewCertPool()
	trusted.AddCert(writer.Certificate())
	target := strings.TrimPrefix(writer.URL, "https://")

	for _, tc := range []struct {
		name       string
		roots      *x509.CertPool
		clientCert bool
		forwarded  bool
	}{
		{"trusted", trusted, false, true},
		{"another CA", x509.NewCertPool(), false, false},
		{"a client certificate", trusted, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			l := &local{}
			h := New(writerURL(writer.URL), &applier{}, WithTLS(&tls.Config{RootCAs: tc.roots, MinVersion: tls.VersionTLS12}), quiet()).Middleware(l)
			req := httptest.NewRequest(http.MethodPut, "/v1/kv/a", strings.NewReader("v"))
			req.Header.Set("Authorization", "Bearer tok")
			if tc.clientCert {
				req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{writer.Certificate()}}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("answer %d %s", rec.Code, rec.Body)
			}
			if tc.forwarded {
				if l.count() != 0 || len(got) != 1 || got[0] != "Bearer tok" || rec.Header().Get(HeaderForwardedTo) != target {
					t.Fatalf("served here %d times, the writer saw %q, forwarded to %q; want forwarded to %s with the token",
						l.count(), got, rec.Header().Get(HeaderForwardedTo), target)
				}
				return
			}
			if l.count() != 1 || len(got) != 0 || rec.Header().Get(HeaderForwardedTo) != "" {
				t.Fatalf("served here %d times, the writer saw %q: want it served here, the writer untouched", l.count(), got)
			}
		})
	}
}
