package apiclient_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/server/httpapi"
)

// newServer starts configd's HTTP API over a fresh store in a temporary
// directory and returns a client of it, acting as "tester".
func newServer(t *testing.T, opts ...apiclient.Option) *apiclient.Client {
	t.Helper()
	e := configdtest.NewEnv(t, configdtest.WithHandlerOptions(httpapi.WithVersion("test")))
	c, err := apiclient.New(e.URL, append([]apiclient.Option{apiclient.WithActor("tester")}, opts...)...)
	if err != nil {
		t.Fatalf("apiclient.New: %v", err)
	}
	return c
}

func TestNewParsesAddresses(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr string
	}{
		{addr: "127.0.0.1:7700"},
		{addr: "localhost:7700"},
		{addr: "http://127.0.0.1:7700"},
		{addr: "https://configd.example:443/"},
		{addr: "https://proxy.example/configd"},
		{addr: "[::1]:7700"},
		{addr: "", wantErr: "empty"},
		{addr: "ftp://h:21", wantErr: "scheme must be http or https"},
		{addr: "http://", wantErr: "no host"},
		{addr: "http://h:1/?x=1", wantErr: "want host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c, err := apiclient.New(tt.addr)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%q): %v", tt.addr, err)
				}
				if c.Addr() != tt.addr {
					t.Errorf("Addr() = %q, want %q", c.Addr(), tt.addr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New(%q) = %v, want an error containing %q", tt.addr, err, tt.wantErr)
			}
		})
	}
}

func TestPutGetRoundTripsValuesAndKeys(t *testing.T) {
	c := newServer(t)
	ctx := context.Background()
	tests := []struct {
		name, key   string
		value       []byte
		contentType string
		wantType    string
	}{
		{"text", "app/db/timeout", []byte("5s"), "", api.TypeText},
		{"empty", "app/empty", []byte{}, api.TypeText, api.TypeText},
		{"json", "app/features", []byte(`{"beta": true}`), api.TypeJSON, api.TypeJSON},
		{"yaml", "app/conf", []byte("a: 1\nb: [x, y]\n"), api.TypeYAML, api.TypeYAML},
		{"binary", "app/blob", []byte{0, 0xff, 0xfe, 'x', '\n'}, api.TypeBinary, api.TypeBinary},
		{"yaml alias type", "app/alias", []byte("a: 1\n"), "text/yaml", api.TypeYAML},
		{"type with charset", "app/charset", []byte("x"), "text/plain; charset=utf-8", api.TypeText},
		{"escaped segments", "app/a b/q?x=1#frag/100%/é", []byte("odd"), "", api.TypeText},
		{"plus and semicolon", "app/a+b;c", []byte("v"), "", api.TypeText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []apiclient.WriteOption
			if tt.contentType != "" {
				opts = append(opts, apiclient.WithContentType(tt.contentType))
			}
			wr, err := c.Put(ctx, tt.key, tt.value, opts...)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if !wr.Changed || wr.Rev < 1 {
				t.Fatalf("Put = %+v, want a new revision", wr)
			}
			kv, err := c.Get(ctx, tt.key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			got, err := kv.Bytes()
			if err != nil {
				t.Fatalf("Bytes: %v", err)
			}
			if string(got) != string(tt.value) || kv.Key != tt.key || kv.ContentType != tt.wantType || kv.ModRev != wr.Rev {
				t.Fatalf("Get = %+v (bytes %q), want key %q value %q type %q mod_rev %d",
					kv, got, tt.key, tt.value, tt.wantType, wr.Rev)
			}
		})
	}
}

func TestPutOfTheSameValueChangesNothing(t *testing.T) {
	c := newServer(t)
	ctx := context.Background()
	first, err := c.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed || again.Rev != first.Rev {
		t.Fatalf("second Put = %+v, want unchanged at rev %d", again, first.Rev)
	}
}

func TestErrorsMatchSentinels(t *testing.T) {
	c := newServer(t)
	ctx := context.Background()
	if _, err := c.Put(ctx, "app/other", []byte("1")); err != nil {
		t.Fatal(err)
	}
	wr, err := c.Put(ctx, "app/x", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		call       func() error
		sentinel   error
		status     int
		code       string
		wantKey    string
		wantInText string
	}{
		{"get missing", func() error { _, err := c.Get(ctx, "app/missing"); return err },
			apiclient.ErrNotFound, 404, api.CodeNotFound, "app/missing", `key "app/missing" not found`},
		{"get before it existed", func() error { _, err := c.Get(ctx, "app/x", apiclient.AtRev(wr.Rev-1)); return err },
			apiclient.ErrNotFound, 404, api.CodeNotFound, "app/x", "not found"},
		{"delete missing", func() error { _, err := c.Delete(ctx, "app/missing"); return err },
			apiclient.ErrNotFound, 404, api.CodeNotFound, "app/missing", "not found"},
		{"put with a stale mod_rev", func() error {
			_, err := c.Put(ctx, "app/x", []byte("2"), apiclient.IfModRev(wr.Rev+7))
			return err
		}, apiclient.ErrConflict, 409, api.CodeConflict, "app/x", "mod_rev"},
		{"create of an existing key", func() error { _, err := c.Put(ctx, "app/x", []byte("2"), apiclient.IfModRev(0)); return err },
			apiclient.ErrConflict, 409, api.CodeConflict, "app/x", "already exists"},
		{"conditional delete with a stale mod_rev", func() error {
			_, err := c.Delete(ctx, "app/x", apiclient.IfModRev(wr.Rev+1))
			return err
		}, apiclient.ErrConflict, 409, api.CodeConflict, "app/x", "mod_rev"},
		{"revision gone", func() error { _, err := c.Revision(ctx, 0); return err },
			apiclient.ErrRevisionGone, 404, api.CodeRevisionGone, "", ""},
		{"future revision", func() error { _, err := c.Get(ctx, "app/x", apiclient.AtRev(999)); return err },
			apiclient.ErrBadRevision, 400, api.CodeBadRevision, "", ""},
		{"text that is not UTF-8", func() error {
			_, err := c.Put(ctx, "app/y", []byte{'c', 0xe9}, apiclient.WithContentType(api.TypeText))
			return err
		}, apiclient.ErrInvalidValue, 422, api.CodeInvalidValue, "app/y", "not valid UTF-8"},
		{"unknown content type", func() error {
			_, err := c.Put(ctx, "app/y", []byte("a,b"), apiclient.WithContentType("text/csv"))
			return err
		}, apiclient.ErrBadContentType, 415, api.CodeBadContentType, "app/y", "text/csv"},
		{"bad key", func() error { _, err := c.Put(ctx, "app/../x", []byte("1")); return err },
			apiclient.ErrBadKey, 400, api.CodeBadKey, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want it to match %v", err, tt.sentinel)
			}
			var ce *apiclient.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %T, want *apiclient.Error", err)
			}
			if ce.Status != tt.status || ce.Code != tt.code {
				t.Errorf("Error = %+v, want status %d code %s", ce, tt.status, tt.code)
			}
			if tt.wantKey != "" && ce.Key != tt.wantKey {
				t.Errorf("Error.Key = %q, want %q", ce.Key, tt.wantKey)
			}
			if tt.code == api.CodeConflict && ce.Rev != wr.Rev {
				t.Errorf("Error.Rev = %d, want the current revision %d", ce.Rev, wr.Rev)
			}
			if !strings.Contains(err.Error(), tt.wantInText) || strings.Contains(err.Error(), "\n") {
				t.Errorf("message %q: want one line containing %q", err.Error(), tt.wantInText)
			}
			for _, other := range []error{apiclient.ErrNotFound, apiclient.ErrConflict, apiclient.ErrUnreachable} {
				if other != tt.sentinel && errors.Is(err, other) {
					t.Errorf("err also matches %v", other)
				}
			}
		})
	}
}

func TestConditionalWrites(t *testing.T) {
	c := newServer(t)
	ctx := context.Background()
	created, err := c.Put(ctx, "k", []byte("1"), apiclient.IfModRev(0))
	if err != nil {
		t.Fatalf("create with IfModRev(0): %v", err)
	}
	updated, err := c.Put(ctx, "k", []byte("2"), apiclient.IfModRev(created.Rev))
	if err != nil {
		t.Fatalf("update with the right mod_rev: %v", err)
	}
	if _, err := c.Delete(ctx, "k", apiclient.IfModRev(created.Rev)); !errors.Is(err, apiclient.ErrConflict) {
		t.Fatalf("delete with a stale mod_rev = %v, want a conflict", err)
	}
	del, err := c.Delete(ctx, "k", apiclient.IfModRev(updated.Rev))
	if err != nil || !del.Changed {
		t.Fatalf("delete with the right mod_rev = %+v, %v", del, err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, apiclient.ErrNotFound) {
		t.Fatalf("Get after delete = %v, want not found", err)
	}
}

func TestActorAndReasonAreRecorded(t *testing.T) {
	c := newServer(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		write  func() (api.WriteResponse, error)
		reason string
	}{
		{"put", func() (api.WriteResponse, error) {
			return c.Put(ctx, "k", []byte("1"), apiclient.WithReason("first value"))
		}, "first value"},
		{"put with a multi-line reason", func() (api.WriteResponse, error) {
			return c.Put(ctx, "k", []byte("2"), apiclient.WithReason("line one\nline two"))
		}, "line one\nline two"},
		{"delete", func() (api.WriteResponse, error) {
			return c.Delete(ctx, "k", apiclient.WithReason("not needed"))
		}, "not needed"},
		{"txn", func() (api.WriteResponse, error) {
			return c.Txn(ctx, api.TxnRequest{Reason: "batch", Ops: []api.TxnOp{{Op: "put", Key: "k", Value: "3"}}})
		}, "batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wr, err := tt.write()
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Revision(ctx, wr.Rev)
			if err != nil {
				t.Fatal(err)
			}
			if r.Actor != "tester" || r.Reason != tt.reason {
				t.Fatalf("revision %d: actor %q reason %q, want tester and %q", r.Rev, r.Actor, r.Reason, tt.reason)
			}
		})
	}
}

func TestListTreeAndTxn(t *testing.T) {
	c := newServer(t)
	ctx := context.Background()
	wr, err := c.Txn(ctx, api.TxnRequest{Ops: []api.TxnOp{
		{Op: "put", Key: "app/db/timeout", Value: "5s"},
		{Op: "put", Key: "app/db/pool", Value: `{"max": 10}`, ContentType: api.TypeJSON},
		{Op: "put", Key: "apple", Value: "not under app/"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !wr.Changed || wr.Rev != 1 {
		t.Fatalf("Txn = %+v, want rev 1", wr)
	}
	for _, prefix := range []string{"app", "app/"} {
		lr, err := c.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, kv := range lr.KVs {
			keys = append(keys, kv.Key)
		}
		if got := strings.Join(keys, ","); got != "app/db/pool,app/db/timeout" || lr.Rev != 1 || lr.Prefix != "app/" {
			t.Fatalf("List(%q) = rev %d prefix %q keys %s", prefix, lr.Rev, lr.Prefix, got)
		}
	}
	tr, err := c.Tree(ctx, "app/")
	if err != nil {
		t.Fatal(err)
	}
	db, _ := tr.Tree["db"].(map[string]any)
	pool, _ := db["pool"].(map[string]any)
	if db["timeout"] != "5s" || pool["max"] != float64(10) {
		t.Fatalf("Tree = %#v", tr.Tree)
	}
	if _, err := c.Put(ctx, "app/db/timeout", []byte("9s")); err != nil {
		t.Fatal(err)
	}
	old, err := c.List(ctx, "app/", apiclient.AtRev(1))
	if err != nil {
		t.Fatal(err)
	}
	if old.KVs[1].Value != "5s" {
		t.Fatalf("List at rev 1 = %+v, want timeout 5s", old.KVs)
	}
}

func TestHistoryPagesWithCursors(t *testing.T) {
	c := newServer(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := c.Put(ctx, "k", []byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, "other", []byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	var revs []int64
	q := apiclient.HistoryQuery{Key: "k", Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("cursor never ends")
		}
		page, err := c.History(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Revisions {
			revs = append(revs, r.Rev)
			if len(r.Changes) != 1 || r.Changes[0].Key != "k" {
				t.Fatalf("revision %d changes %+v, want only k", r.Rev, r.Changes)
			}
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	if got := len(revs); got != 5 || revs[0] != 9 || revs[4] != 1 {
		t.Fatalf("history of k = %v, want 9 7 5 3 1", revs)
	}
	page, err := c.History(ctx, apiclient.HistoryQuery{Actor: "nobody"})
	if err != nil || len(page.Revisions) != 0 {
		t.Fatalf("history of another actor = %+v, %v", page, err)
	}
	page, err = c.History(ctx, apiclient.HistoryQuery{Prefix: "oth"})
	if err != nil || len(page.Revisions) != 0 {
		t.Fatalf("history of prefix oth/ = %+v, %v (prefixes match whole segments)", page, err)
	}
}

func TestDiffRollbackAndStatus(t *testing.T) {
	c := newServer(t)
	ctx := context.Background()
	mustPut := func(key, value string) {
		t.Helper()
		if _, err := c.Put(ctx, key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	mustPut("app/a", "1") // rev 1
	mustPut("app/b", "1") // rev 2
	mustPut("app/a", "2") // rev 3
	mustPut("web/a", "1") // rev 4

	dr, err := c.Diff(ctx, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if dr.From != 1 || dr.To != 3 || len(dr.Changes) != 2 || dr.Changes[0].Key != "app/a" || dr.Changes[0].Old.Value != "1" || dr.Changes[0].New.Value != "2" || dr.Changes[1].Old != nil {
		t.Fatalf("Diff(1, 3) = %+v", dr)
	}
	dr, err = c.Diff(ctx, 1, 0, apiclient.Prefix("web/"))
	if err != nil || dr.To != 4 || len(dr.Changes) != 1 || dr.Changes[0].Key != "web/a" {
		t.Fatalf("Diff(1, now, web/) = %+v, %v", dr, err)
	}
	dr, err = c.Diff(ctx, 1, 0, apiclient.Key("app/b"))
	if err != nil || len(dr.Changes) != 1 || dr.Changes[0].New.Value != "1" {
		t.Fatalf("Diff(1, now, app/b) = %+v, %v", dr, err)
	}
	if _, err := c.Diff(ctx, 3, 1); !errors.Is(err, apiclient.ErrBadRevision) {
		t.Fatalf("Diff(3, 1) = %v, want a bad revision", err)
	}

	dry, err := c.Rollback(ctx, api.RollbackRequest{Prefix: "app/", To: 1, DryRun: true})
	if err != nil || len(dry.Changes) != 2 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if st, _ := c.Status(ctx); st.Rev != 4 {
		t.Fatalf("a dry run committed: rev %d", st.Rev)
	}
	rr, err := c.Rollback(ctx, api.RollbackRequest{Prefix: "app/", To: 1, Reason: "bad deploy"})
	if err != nil || !rr.Changed || rr.Rev != 5 {
		t.Fatalf("Rollback = %+v, %v", rr, err)
	}
	lr, err := c.List(ctx, "app/")
	if err != nil || len(lr.KVs) != 1 || lr.KVs[0].Value != "1" {
		t.Fatalf("app/ after rollback to 1 = %+v, %v", lr.KVs, err)
	}
	again, err := c.Rollback(ctx, api.RollbackRequest{Prefix: "app/", To: 1})
	if err != nil || again.Changed || again.Rev != 5 {
		t.Fatalf("second Rollback = %+v, %v, want unchanged at 5", again, err)
	}
	if _, err := c.Rollback(ctx, api.RollbackRequest{Key: "web/a", To: 1, ExpectRev: 3}); !errors.Is(err, apiclient.ErrConflict) {
		t.Fatalf("rollback with a stale ExpectRev = %v, want a conflict", err)
	}
	r, err := c.Revision(ctx, 5)
	if err != nil || r.RollbackTo != 1 || !strings.Contains(r.Reason, "bad deploy") {
		t.Fatalf("Revision(5) = %+v, %v", r, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Rev != 5 || st.Version != "test" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

func TestUnreachableConfigd(t *testing.T) {
	// A port that was just free: nothing listens on it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	c, err := apiclient.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(context.Background())
	if !errors.Is(err, apiclient.ErrUnreachable) {
		t.Fatalf("Status = %v, want ErrUnreachable", err)
	}
	want := "cannot reach configd at " + addr + ": "
	if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "/v1/status") {
		t.Fatalf("message %q: want it to start with %q, without the URL", err, want)
	}
	var ne net.Error
	if !errors.As(err, &ne) {
		t.Fatalf("err %v does not wrap the network error", err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-block:
		}
	}))
	defer srv.Close()

	c, err := apiclient.New(srv.URL, apiclient.WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer within 50ms") {
		t.Fatalf("Status = %v, want a timeout", err)
	}
	if errors.Is(err, apiclient.ErrUnreachable) {
		t.Errorf("a timeout also matches ErrUnreachable")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, _ = apiclient.New(srv.URL)
	if _, err := c.Status(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Status with a cancelled context = %v", err)
	}
}

func TestAnswerThatIsNotConfigd(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/status":
			http.Error(w, "<html>\n<h1>Bad Gateway</h1>\n</html>", http.StatusBadGateway)
		default:
			w.Write([]byte("not json"))
		}
	}))
	defer srv.Close()
	c, _ := apiclient.New(srv.URL)
	_, err := c.Status(context.Background())
	var ce *apiclient.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadGateway || ce.Code != "" {
		t.Fatalf("Status = %#v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "HTTP 502") || !strings.Contains(msg, "Bad Gateway") || strings.Contains(msg, "\n") {
		t.Fatalf("message %q", msg)
	}
	if _, err := c.Get(context.Background(), "k"); err == nil || !strings.Contains(err.Error(), "decoding the answer") {
		t.Fatalf("Get of a non-JSON answer = %v", err)
	}
}

// TestStoreUnavailableAlsoMatchesUnavailable: a replica whose etcd does
// not answer refuses a write with store_unavailable, which a client that
// checks only for ErrUnavailable still recognises.
func TestStoreUnavailableAlsoMatchesUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"store_unavailable","message":"etcd is unreachable"}}`))
	}))
	defer srv.Close()
	c, _ := apiclient.New(srv.URL)
	_, err := c.Put(context.Background(), "app/x", []byte("1"))
	if !errors.Is(err, apiclient.ErrStoreUnavailable) || !errors.Is(err, apiclient.ErrUnavailable) {
		t.Fatalf("Put = %v: want it to match ErrStoreUnavailable and ErrUnavailable", err)
	}
	if errors.Is(err, apiclient.ErrInternal) || errors.Is(err, apiclient.ErrUnreachable) {
		t.Errorf("Put = %v also matches another sentinel", err)
	}
}

func TestSendsActorAndUserAgent(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.Write([]byte(`{"rev": 3, "version": "x"}`))
	}))
	defer srv.Close()
	c, _ := apiclient.New(srv.URL, apiclient.WithActor("alice@laptop"), apiclient.WithUserAgent("tool/2"),
		apiclient.WithHTTPClient(srv.Client()))
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := <-got
	if h.Get(api.HeaderActor) != "alice@laptop" || h.Get("User-Agent") != "tool/2" {
		t.Fatalf("headers %v", h)
	}
}
