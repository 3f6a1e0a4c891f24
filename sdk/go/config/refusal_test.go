package config

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/server/authz"
)

// startAuthConfigd is startConfigd with authentication on, and the secret
// of a token that may read app/ and nothing else.
func startAuthConfigd(t *testing.T) (*testConfigd, string) {
	t.Helper()
	ctx := context.Background()
	d := startConfigd(t)
	a, err := authz.New(ctx, d.st)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := a.CreateToken(ctx, "app-reader", []api.Grant{{Permission: "read", Prefix: "app/"}})
	if err != nil {
		t.Fatal(err)
	}
	d.stop()
	d.auth = a
	d.restart(false)
	return d, secret
}

// TestAScopedTokenWatchesItsKeyAndItsPrefix: with a token that may read
// app/ only, a client of one key (WithKeys) and a client of the prefix
// both get their changes, over both transports, and the client of a key
// holds that key only.
func TestAScopedTokenWatchesItsKeyAndItsPrefix(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			opts := tr.opts
			d, secret := startAuthConfigd(t)
			d.put("app/x", "1", "app/y", "1", "other/z", "1")

			key := connect(t, []string{d.addr}, append([]Option{WithToken(secret), WithKeys("app/x")}, opts...)...)
			if got := key.Get("app/x").String(""); got != "1" || key.Get("app/y").Exists() {
				t.Fatalf("client of app/x: app/x = %q, app/y exists %v; want 1, false", got, key.Get("app/y").Exists())
			}
			wk, err := key.Watch("app/x")
			if err != nil {
				t.Fatal(err)
			}
			defer wk.Stop()

			prefix := connect(t, []string{d.addr}, append([]Option{WithToken(secret), WithPrefix("app")}, opts...)...)
			wp, err := prefix.Watch()
			if err != nil {
				t.Fatal(err)
			}
			defer wp.Stop()

			d.put("app/y", "2")
			rev := d.put("app/x", "2")
			if u := next(t, wk); u.Rev != rev || !slices.Equal(keysOf(u), []string{"app/x=2"}) {
				t.Fatalf("client of app/x: update rev %d %v, want rev %d [app/x=2]", u.Rev, keysOf(u), rev)
			}
			if u := next(t, wp); !slices.Equal(keysOf(u), []string{"y=2"}) {
				t.Fatalf("client of app/: first update %v, want [y=2]", keysOf(u))
			}
			if u := next(t, wp); u.Rev != rev || !slices.Equal(keysOf(u), []string{"x=2"}) {
				t.Fatalf("client of app/: second update rev %d %v, want rev %d [x=2]", u.Rev, keysOf(u), rev)
			}
			waitRev(t, key, rev)
			if key.Get("app/y").Exists() {
				t.Fatal("the client of app/x got app/y")
			}
		})
	}
}

// TestARefusedTokenFailsNewAtOnce: no token, or a token that may not read
// the scope, is refused by configd; New returns the refusal (configd's
// message, ErrUnauthenticated or ErrForbidden) without waiting for its
// timeout, over both transports.
func TestARefusedTokenFailsNewAtOnce(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			opts := tr.opts
			d, secret := startAuthConfigd(t)
			for _, tc := range []struct {
				name string
				opts []Option
				want error
				msg  []string
			}{
				{"no token", []Option{WithToken(""), WithPrefix("app")}, ErrUnauthenticated, []string{"authentication required"}},
				{"unknown token", []Option{WithToken("cfd_nobody"), WithPrefix("app")}, ErrUnauthenticated, []string{"not known"}},
				{"another prefix", []Option{WithToken(secret), WithPrefix("other")}, ErrForbidden,
					[]string{`token "app-reader" lacks read on key or prefix "other/"`, "read:app/"}},
				{"the whole keyspace", []Option{WithToken(secret)}, ErrForbidden, []string{"lacks read on every key", "read:app/"}},
				{"a key outside", []Option{WithToken(secret), WithKeys("app/x", "other/x")}, ErrForbidden, []string{`"other/x"`}},
			} {
				// The timeout is far longer than the test waits (see waitLimit):
				// New must not wait for it.
				all := append([]Option{WithAddress(d.addr), WithLogger(discard()), WithTimeout(time.Hour)}, opts...)
				ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
				_, err := New(ctx, append(all, tc.opts...)...)
				cancel()
				if !errors.Is(err, tc.want) || errors.Is(err, ErrUnavailable) {
					t.Errorf("%s: New = %v, want %v", tc.name, err, tc.want)
					continue
				}
				for _, m := range tc.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("%s: error %q does not say %q", tc.name, err, m)
					}
				}
			}
		})
	}
}

// TestARefusalMidStreamEndsTheClient: configd cancels a running watch with
// code forbidden (as when a token's grants shrink): the watchers end with
// the refusal, Watch and WaitRev return it, Err reports it, the stream is
// not opened again, and Get keeps the last copy.
func TestARefusalMidStreamEndsTheClient(t *testing.T) {
	for _, code := range []string{api.CodeForbidden, api.CodeUnauthenticated} {
		t.Run(code, func(t *testing.T) {
			c, _, w1 := startOnFake(t, 5, "k", "a")
			w, err := c.Watch("k")
			if err != nil {
				t.Fatal(err)
			}
			w1.cancel(t, 5, code)
			checkHalted(t, c, w, map[string]error{api.CodeForbidden: ErrForbidden, api.CodeUnauthenticated: ErrUnauthenticated}[code])
			if c.Get("k").String("") != "a" {
				t.Fatal("the copy was lost")
			}
		})
	}
}

// checkHalted checks that c stopped for a refusal matching want.
func checkHalted(t *testing.T, c *Client, w *Watcher, want error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { _, err := w.Next(); errc <- err }()
	select {
	case err := <-errc:
		if !errors.Is(err, want) {
			t.Fatalf("Next = %v, want %v", err, want)
		}
	case <-time.After(waitLimit):
		t.Fatal("the watcher did not end")
	}
	// The stream goroutine has returned: nothing is retried.
	select {
	case <-c.done:
	case <-time.After(waitLimit):
		t.Fatal("the client still follows configd")
	}
	if err := c.Err(); !errors.Is(err, want) {
		t.Fatalf("Err = %v, want %v", err, want)
	}
	if _, err := c.Watch("k"); !errors.Is(err, want) {
		t.Fatalf("Watch after the refusal = %v, want %v", err, want)
	}
	if err := c.WaitRev(context.Background(), c.Rev()+1); !errors.Is(err, want) {
		t.Fatalf("WaitRev after the refusal = %v, want %v", err, want)
	}
	c.Close()
	if err := c.Err(); !errors.Is(err, want) {
		t.Fatalf("Err after Close = %v, want the refusal still", err)
	}
}

// statusConfigd is a gRPC configd whose Watch fails with a status.
type statusConfigd struct {
	configdpb.UnimplementedConfigServer
	code  codes.Code
	calls atomic.Int32
	seen  chan struct{}
}

func (s *statusConfigd) Watch(configdpb.Config_WatchServer) error {
	s.calls.Add(1)
	select {
	case s.seen <- struct{}{}:
	default:
	}
	return status.Error(s.code, "told by the test")
}

// TestGRPCRefusalsEndTheClientAndOtherStatusesAreRetried: a Watch that
// fails with Unauthenticated or PermissionDenied fails New at once; one
// that fails with Unavailable or ResourceExhausted is retried.
func TestGRPCRefusalsEndTheClientAndOtherStatusesAreRetried(t *testing.T) {
	for code, want := range map[codes.Code]error{
		codes.Unauthenticated: ErrUnauthenticated, codes.PermissionDenied: ErrForbidden,
		codes.Unavailable: nil, codes.ResourceExhausted: nil, codes.Internal: nil,
	} {
		t.Run(code.String(), func(t *testing.T) {
			s := &statusConfigd{code: code, seen: make(chan struct{}, 1)}
			gs := grpc.NewServer()
			configdpb.RegisterConfigServer(gs, s)
			lis := listen(t)
			go gs.Serve(lis)
			t.Cleanup(gs.Stop)
			checkRetried(t, want, s.seen, WithAddress(lis.Addr().String()), WithGRPC())
		})
	}
}

// TestHTTPRefusalsEndTheClientAndOtherStatusesAreRetried: answers that are
// not configd's (a proxy in front of it): 401 and 403 fail New at once,
// 429 and 5xx are retried.
func TestHTTPRefusalsEndTheClientAndOtherStatusesAreRetried(t *testing.T) {
	for code, want := range map[int]error{
		http.StatusUnauthorized: ErrUnauthenticated, http.StatusForbidden: ErrForbidden,
		http.StatusTooManyRequests: nil, http.StatusBadGateway: nil, http.StatusServiceUnavailable: nil,
	} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			seen := make(chan struct{}, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case seen <- struct{}{}:
				default:
				}
				http.Error(w, "told by the test", code)
			}))
			t.Cleanup(srv.Close)
			checkRetried(t, want, seen, WithAddress(strings.TrimPrefix(srv.URL, "http://")))
		})
	}
}

// checkRetried makes a client with opts, whose server signals seen on each
// watch. want nil: the watch is retried (three attempts are seen while New
// waits); else New fails at once with want.
func checkRetried(t *testing.T, want error, seen chan struct{}, opts ...Option) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		c, err := New(ctx, append([]Option{WithLogger(discard()), WithTimeout(time.Hour)}, opts...)...)
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	if want == nil {
		for i := range 3 {
			select {
			case <-seen:
			case err := <-errc:
				t.Fatalf("New returned %v after %d attempts; want it to keep trying", err, i)
			case <-time.After(waitLimit):
				t.Fatalf("attempt %d never came", i+1)
			}
		}
		cancel()
	}
	select {
	case err := <-errc:
		switch {
		case want == nil && (isRefusal(err) || !errors.Is(err, context.Canceled)):
			t.Fatalf("New = %v, want the context's end after retries", err)
		case want != nil && !errors.Is(err, want):
			t.Fatalf("New = %v, want %v", err, want)
		}
	case <-time.After(waitLimit):
		t.Fatal("New did not return")
	}
}

// TestInitWithARefusedTokenLeavesNoDefaultClient: unlike an unreachable
// configd, a refusal leaves no default client trying in the background;
// the package-level Watch returns the refusal.
func TestInitWithARefusedTokenLeavesNoDefaultClient(t *testing.T) {
	resetDefault(t)
	d, secret := startAuthConfigd(t)
	d.put("other/x", "1")
	err := Init(WithAddress(d.addr), WithToken(secret), WithPrefix("other"), WithLogger(discard()), WithTimeout(time.Hour))
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("Init = %v, want ErrForbidden", err)
	}
	if _, err := Watch("x"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Watch = %v, want ErrForbidden", err)
	}
	if Get("x").Exists() {
		t.Fatal("Get answered a key the token may not read")
	}
}
