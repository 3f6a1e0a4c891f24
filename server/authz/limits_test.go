package authz_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/grpcapi"
	"github.com/configd/configd/server/httpapi"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestLimits(perSecond float64, burst, watches int) (*authz.Limits, *fakeClock) {
	l := authz.NewLimits(perSecond, burst, watches)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l.SetNow(clk.now)
	return l, clk
}

// limitedEnv is an AuthEnv's store and tokens behind a handler with limits.
func limitedEnv(t *testing.T, l *authz.Limits) (*configdtest.Env, *httptest.Server) {
	t.Helper()
	e := configdtest.AuthEnv(t)
	return e, e.Serve(e.Handler(httpapi.WithLimits(l)))
}

func getAs(t *testing.T, ts *httptest.Server, secret, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func errorCodeOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var e api.ErrorResponse
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("status %d: no error body: %v", resp.StatusCode, err)
	}
	return e.Error.Code
}

func TestRateLimitPerTokenAnswers429WithRetryAfter(t *testing.T) {
	l, clk := newTestLimits(1, 2, 0)
	e, ts := limitedEnv(t, l)
	for i := range 2 {
		resp := getAs(t, ts, e.Secrets["reader-app"], "/v1/kv/app/x")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: status %d", i, resp.StatusCode)
		}
	}
	resp := getAs(t, ts, e.Secrets["reader-app"], "/v1/kv/app/x")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the burst: status %d, Retry-After %q; want 429, 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := errorCodeOf(t, resp); code != api.CodeRateLimited {
		t.Errorf("code %q, want %q", code, api.CodeRateLimited)
	}
	// Another token has its own bucket.
	if resp := getAs(t, ts, e.Secrets["reader-db"], "/v1/kv/db/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("another token: status %d, want 200", resp.StatusCode)
	}
	// A second later the bucket holds one request again.
	clk.add(time.Second)
	resp = getAs(t, ts, e.Secrets["reader-app"], "/v1/kv/app/x")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after a second: status %d, want 200", resp.StatusCode)
	}
	if got := l.Refused(api.CodeRateLimited); got != 1 {
		t.Errorf("configd_limited_total{reason=rate_limited} = %v, want 1", got)
	}
	// Public routes are not limited, and the counter is exposed.
	for range 3 {
		resp := getAs(t, ts, "", "/metrics")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `configd_limited_total{reason="rate_limited"} 1`) {
			t.Fatalf("/metrics: status %d, counter missing", resp.StatusCode)
		}
	}
}

// With authentication off the identity is the client's address: the actor
// header a client chooses does not give it a new bucket.
func TestRateLimitWithAuthOffIsPerClientAddress(t *testing.T) {
	l, _ := newTestLimits(1, 1, 0)
	h := configdtest.NewEnv(t).Handler(httpapi.WithLimits(l))
	get := func(addr, actor string) int {
		req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
		req.RemoteAddr = addr
		req.Header.Set(api.HeaderActor, actor)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if c := get("192.0.2.1:1000", "a"); c != http.StatusOK {
		t.Fatalf("first: %d", c)
	}
	if c := get("192.0.2.1:2000", "b"); c != http.StatusTooManyRequests {
		t.Errorf("same address, other port and actor: %d, want 429", c)
	}
	if c := get("192.0.2.2:1000", "a"); c != http.StatusOK {
		t.Errorf("other address: %d, want 200", c)
	}
}

func TestRateLimitOnGRPCIsResourceExhausted(t *testing.T) {
	l, _ := newTestLimits(1, 1, 0)
	e := configdtest.AuthEnv(t)
	c := e.GRPC("reader-app", grpcapi.WithLimits(l))
	ctx := context.Background()
	if _, err := c.Get(ctx, &configdpb.GetRequest{Key: "app/x"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Get(ctx, &configdpb.GetRequest{Key: "app/x"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), `token "reader-app"`) {
		t.Errorf("second Get: %v, want ResourceExhausted naming the token", err)
	}
}

// A watch takes one request from the bucket when it is created; what it
// receives afterwards is not limited.
func TestRateLimitDoesNotLimitWatchMessages(t *testing.T) {
	l, _ := newTestLimits(1, 1, 0)
	e, ts := limitedEnv(t, l)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/watch?prefix=app/&since="+itoa(e.Store.Rev()), nil)
	req.Header.Set("Authorization", "Bearer "+e.Secrets["reader-app"])
	req.Header.Set("Accept", "text/event-stream")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: status %d", resp.StatusCode)
	}
	const n = 5
	for i := range n {
		if _, err := e.Store.Commit(context.Background(), audit.Txn{Actor: "t", Origin: "test",
			Ops: []audit.Op{audit.Put("app/k", []byte(itoa(int64(i))), "")}}); err != nil {
			t.Fatal(err)
		}
	}
	sc := bufio.NewScanner(resp.Body)
	got := 0
	for got < n && sc.Scan() {
		if sc.Text() == "event: changes" {
			got++
		}
	}
	if got != n {
		t.Fatalf("received %d changes events, want %d (%v)", got, n, sc.Err())
	}
}

// Watches count per identity across long poll, server-sent events, the
// watch stream and gRPC; closing one frees its place.
func TestMaxWatchesPerIdentityAcrossTransports(t *testing.T) {
	l := authz.NewLimits(0, 0, 3)
	e, ts := limitedEnv(t, l)
	secret := e.Secrets["reader-app"]
	const id = "token:reader-app"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// 1: server-sent events.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/watch?prefix=app/", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Accept", "text/event-stream")
	sse, err := ts.Client().Do(req)
	if err != nil || sse.StatusCode != http.StatusOK {
		t.Fatalf("SSE watch: %v %v", sse, err)
	}
	defer sse.Body.Close()
	// 2: the watch stream.
	stream := configdtest.OpenWatchStream(t, ts.Listener.Addr().String(), "prefix=app/", secret)
	stream.NextOf(configdpb.WatchResponse_CREATED)
	// 3: a gRPC watch, on a gRPC server sharing the limits (as in Run).
	gc := e.GRPC("reader-app", grpcapi.WithLimits(l))
	gs, err := gc.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	create := func(id int64) *configdpb.WatchResponse {
		t.Helper()
		if err := gs.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: &configdpb.WatchCreate{
			WatchId: id, Prefixes: []string{"app/"}, Since: e.Store.Rev()}}}); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := gs.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if m.GetWatchId() == id && (m.GetKind() == configdpb.WatchResponse_CREATED || m.GetKind() == configdpb.WatchResponse_CANCELED) {
				return m
			}
		}
	}
	if m := create(1); m.GetKind() != configdpb.WatchResponse_CREATED {
		t.Fatalf("gRPC watch 1: %v", m)
	}
	if n := l.OpenWatches(id); n != 3 {
		t.Fatalf("%d watches counted, want 3", n)
	}

	// The fourth is refused on every transport.
	if m := create(2); m.GetKind() != configdpb.WatchResponse_CANCELED || m.GetCode() != api.CodeTooManyWatches {
		t.Errorf("gRPC watch 2: %v, want CANCELED too_many_watches", m)
	}
	resp := getAs(t, ts, secret, "/v1/watch?prefix=app/&wait=0s")
	if resp.StatusCode != http.StatusTooManyRequests || errorCodeOf(t, resp) != api.CodeTooManyWatches {
		t.Errorf("long poll: status %d, want 429 too_many_watches", resp.StatusCode)
	}
	if _, st, body := configdtest.DialWatchStream(t, ts.Listener.Addr().String(), "prefix=app/", secret); st != http.StatusTooManyRequests || !strings.Contains(body, api.CodeTooManyWatches) {
		t.Errorf("watch stream: status %d %s, want 429 too_many_watches", st, body)
	}
	// Another token is not affected.
	resp = getAs(t, ts, e.Secrets["reader-all"], "/v1/watch?prefix=app/&wait=0s")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("another token's long poll: status %d, want 200", resp.StatusCode)
	}
	if got := l.Refused(api.CodeTooManyWatches); got != 3 {
		t.Errorf("configd_limited_total{reason=too_many_watches} = %v, want 3", got)
	}

	// Closing the stream and cancelling the gRPC watch free two places;
	// a refused create took none.
	stream.Conn.Close()
	if err := gs.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Cancel{Cancel: &configdpb.WatchCancel{WatchId: 1}}}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := configdtest.WaitFor(wctx, func() bool { return l.OpenWatches(id) == 1 }); err != nil {
		t.Fatalf("after closing two: %d watches counted, want 1", l.OpenWatches(id))
	}
	if m := create(3); m.GetKind() != configdpb.WatchResponse_CREATED {
		t.Errorf("gRPC watch 3 after closing: %v, want CREATED", m)
	}
	// A long poll holds its place only while it waits.
	resp = getAs(t, ts, secret, "/v1/watch?prefix=app/&wait=0s")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("long poll: status %d, want 200", resp.StatusCode)
	}
	// Ending the gRPC stream and the SSE request releases everything.
	cancel()
	sse.Body.Close()
	wctx2, wcancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel2()
	if err := configdtest.WaitFor(wctx2, func() bool { return l.OpenWatches(id) == 0 }); err != nil {
		t.Fatalf("after the client left: %d watches counted, want 0", l.OpenWatches(id))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
