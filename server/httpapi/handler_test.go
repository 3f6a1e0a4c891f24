package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/httpapi"
)

func TestStatusReportsRevisionAndVersion(t *testing.T) {
	e := newEnv(t, httpapi.WithVersion("v9.9.9"))
	e.put("k", "v", "")
	var st api.Status
	r := e.decode(http.StatusOK, &st, http.MethodGet, "/v1/status", nil)
	if st.Rev != 1 || st.Version != "v9.9.9" || r.rev() != "1" {
		t.Errorf("status %+v header %q", st, r.rev())
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var notReady error
	e := newEnv(t, httpapi.WithReadiness(func(context.Context) error { return notReady }))
	if r := e.do(http.MethodGet, "/healthz", nil); r.status != http.StatusOK {
		t.Errorf("healthz %d", r.status)
	}
	if r := e.do(http.MethodGet, "/readyz", nil); r.status != http.StatusOK {
		t.Errorf("readyz %d %s", r.status, r.body)
	}
	notReady = errors.New("draining")
	if r := e.do(http.MethodGet, "/readyz", nil); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "draining") {
		t.Errorf("readyz while not ready: %d %s", r.status, r.body)
	}
	notReady = nil
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	if r := e.do(http.MethodGet, "/readyz", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("readyz with the store closed: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodGet, "/healthz", nil); r.status != http.StatusOK {
		t.Errorf("healthz with the store closed: %d (the process is still up)", r.status)
	}
	r := e.do(http.MethodPut, "/v1/kv/k", []byte("v"))
	if r.status != http.StatusServiceUnavailable || r.errBody(t).Code != api.CodeUnavailable {
		t.Errorf("put with the store closed: %d %s, want 503 unavailable", r.status, r.body)
	}
}

func TestMetricsCountByRoutePattern(t *testing.T) {
	e := newEnv(t)
	e.put("a/b", "v", "")
	e.put("c", "v", "")
	e.do(http.MethodGet, "/v1/kv/missing", nil)
	e.do(http.MethodGet, "/no/such/route", nil)
	r := e.do(http.MethodGet, "/metrics", nil)
	if r.status != http.StatusOK {
		t.Fatalf("metrics %d", r.status)
	}
	body := string(r.body)
	for _, want := range []string{
		`configd_http_requests_total{code="200",method="PUT",route="/v1/kv/*"} 2`,
		`configd_http_requests_total{code="404",method="GET",route="/v1/kv/*"} 1`,
		`configd_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`configd_http_request_duration_seconds_count{method="PUT",route="/v1/kv/*"} 2`,
		"configd_revision 2",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if regexp.MustCompile(`route="/v1/kv/(a|c)`).MatchString(body) {
		t.Errorf("metrics label a raw path")
	}
	// A second handler in the same process has its own registry.
	e2 := newEnv(t)
	if r := e2.do(http.MethodGet, "/metrics", nil); strings.Contains(string(r.body), `method="PUT"`) {
		t.Errorf("second handler's metrics count the first one's requests")
	}
}

func TestIdentityMiddlewareIsReplaceable(t *testing.T) {
	e := newEnv(t, httpapi.WithIdentity(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer good" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r.WithContext(authz.WithActor(r.Context(), "token:ci")))
		})
	}))
	if r := e.do(http.MethodPut, "/v1/kv/k", []byte("v"), api.HeaderActor, "mallory"); r.status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated put: %d", r.status)
	}
	e.decode(http.StatusOK, nil, http.MethodPut, "/v1/kv/k", []byte("v"), "Authorization", "Bearer good", api.HeaderActor, "mallory")
	var rev api.Revision
	e.decode(http.StatusOK, &rev, http.MethodGet, "/v1/revisions/1", nil, "Authorization", "Bearer good")
	if rev.Actor != "token:ci" {
		t.Errorf("actor %q, want the middleware's token:ci", rev.Actor)
	}
}

func TestBadActorHeaderIsRefused(t *testing.T) {
	e := newEnv(t)
	for _, actor := range []string{strings.Repeat("a", authz.MaxActorLen+1), "a\tb", "\xff"} {
		r := e.do(http.MethodPut, "/v1/kv/k", []byte("v"), api.HeaderActor, actor)
		if r.status != http.StatusBadRequest || r.errBody(t).Code != api.CodeBadRequest {
			t.Errorf("actor %q: %d %s, want 400", actor, r.status, r.body)
		}
	}
	if e.st.Rev() != 0 {
		t.Errorf("refused actors wrote revision %d", e.st.Rev())
	}
}

func TestPanicIsA500AndTheServerStaysUp(t *testing.T) {
	e := newEnv(t, httpapi.WithIdentity(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Has("boom") {
				panic("boom")
			}
			next.ServeHTTP(w, r.WithContext(authz.WithActor(r.Context(), "x")))
		})
	}))
	r := e.do(http.MethodGet, "/v1/status?boom=1", nil)
	if r.status != http.StatusInternalServerError || r.errBody(t).Code != api.CodeInternal {
		t.Errorf("panic: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "boom") {
		t.Errorf("500 leaks the panic: %s", r.body)
	}
	if r := e.do(http.MethodGet, "/v1/status", nil); r.status != http.StatusOK {
		t.Errorf("after a panic: %d", r.status)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/v2/kv/a", 404},
		{http.MethodGet, "/v1/nothing", 404},
		{http.MethodPost, "/v1/kv/a", 405},
		{http.MethodGet, "/v1/txn", 405},
		{http.MethodGet, "/v1/status?verbose=1", 400},
	} {
		r := e.do(tc.method, tc.path, nil)
		if r.status != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, r.status, tc.status)
			continue
		}
		r.errBody(t)
	}
}

func TestNewHandlerRefusesNonsense(t *testing.T) {
	for name, fn := range map[string]func(){
		"nil store": func() { httpapi.NewHandler(nil) },
		"zero body": func() { httpapi.NewHandler(newEnv(t).st, httpapi.WithMaxRequestBody(0)) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			fn()
		})
	}
}

// The HTTP API serves no gRPC, even to an HTTP/2 client: gRPC has one
// server, the daemon's (server.APIs), which the port mux hands gRPC
// connections to.
func TestTheHandlerServesNoGRPC(t *testing.T) {
	e := configdtest.NewEnv(t)
	e.Put("app/a", "1")
	srv := httptest.NewUnstartedServer(e.Handler())
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	conn, err := grpc.NewClient(srv.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := configdpb.NewConfigClient(conn).Get(ctx, &configdpb.GetRequest{Key: "app/a"})
	if err == nil {
		t.Fatalf("a gRPC Get over the HTTP handler answered %v: it serves gRPC", kv)
	}
}

// statuses are sources as the pump reports them.
type statuses []api.SourceStatus

func (s statuses) Statuses() []api.SourceStatus { return s }

func TestMetricsOfSourcesDiskAndTheAuditChain(t *testing.T) {
	synced := time.Unix(1700000000, 0)
	e := newEnv(t, httpapi.WithDataDir(t.TempDir()), httpapi.WithSources(statuses{
		{Name: "consul", Type: "consul", State: "degraded", Keys: 3, LastSync: &synced},
		{Name: "store", Type: "store", State: "ok", Keys: 1},
	}))
	e.put("k", "v", "")
	metrics := func() string {
		r := e.do(http.MethodGet, "/metrics", nil)
		if r.status != http.StatusOK {
			t.Fatalf("metrics %d", r.status)
		}
		return string(r.body)
	}
	body := metrics()
	for _, want := range []string{
		`configd_source_state{source="consul",state="degraded",type="consul"} 1`,
		`configd_source_state{source="consul",state="ok",type="consul"} 0`,
		`configd_source_state{source="store",state="ok",type="store"} 1`,
		`configd_source_keys{source="consul",type="consul"} 3`,
		`configd_source_last_sync_timestamp_seconds{source="consul",type="consul"} 1.7e+09`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, `configd_source_last_sync_timestamp_seconds{source="store"`) {
		t.Error("a source that never synced has a last-sync time")
	}
	free := regexp.MustCompile(`(?m)^configd_data_dir_free_bytes (\S+)$`).FindStringSubmatch(body)
	size := regexp.MustCompile(`(?m)^configd_data_dir_size_bytes (\S+)$`).FindStringSubmatch(body)
	if free == nil || size == nil || free[1] == "0" || size[1] == "0" {
		t.Errorf("data dir metrics: free %q size %q", free, size)
	}
	if strings.Contains(body, "configd_audit_verify_ok") {
		t.Error("a verdict on the audit chain before any walk of it")
	}
	e.decode(http.StatusOK, nil, http.MethodGet, "/v1/audit/verify", nil)
	body = metrics()
	if !strings.Contains(body, "configd_audit_verify_ok 1") || !strings.Contains(body, "configd_audit_verify_timestamp_seconds ") {
		t.Errorf("after a walk of an intact chain, metrics lack its verdict:\n%s", grepLines(body, "configd_audit"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
