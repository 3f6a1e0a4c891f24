package configdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/delivery"
	"github.com/configd/configd/server/grpcapi"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/watcher"
)

// Env is a live store and hub (Core) with, when authentication is on, the
// Auth of its tokens, and the HTTP API (with the web UI) serving them on a
// loopback port.
type Env struct {
	t     testing.TB
	Store *audit.Store
	Hub   *watcher.Hub
	// Auth is nil with authentication off.
	Auth *authz.Auth
	// Secrets holds the secret of every token the Env created, by name;
	// authz.BootstrapTokenName is the admin's.
	Secrets map[string]string
	// HTTP serves the HTTP API over the Env (Handler with the Env's
	// options), and URL is its address.
	HTTP *httptest.Server
	URL  string
	// Clients is the delivery tracking table the HTTP API serves (GET
	// /v1/clients, POST /v1/clients/report).
	Clients *delivery.Table

	handlerOpts []httpapi.Option
}

// EnvOption configures an Env.
type EnvOption func(*envOptions)

type envOptions struct {
	core          []core.Option
	auth          bool
	tokens        map[string][]api.Grant
	handler       []httpapi.Option
	seed          []audit.Op
	replicaTokens *authz.TokenHook // WithReplicaOf
	clients       []delivery.Option
}

// WithClientOptions configures the Env's delivery tracking table (its
// expiry, its clock).
func WithClientOptions(opts ...delivery.Option) EnvOption {
	return func(o *envOptions) { o.clients = append(o.clients, opts...) }
}

// WithCore configures the store and hub (core.Open's options).
func WithCore(opts ...core.Option) EnvOption {
	return func(o *envOptions) { o.core = append(o.core, opts...) }
}

// WithAuth turns authentication on: the bootstrap admin token and a token
// for each of tokens, by name with its grants.
func WithAuth(tokens map[string][]api.Grant) EnvOption {
	return func(o *envOptions) { o.auth, o.tokens = true, tokens }
}

// WithHandlerOptions adds options to the Env's HTTP API.
func WithHandlerOptions(opts ...httpapi.Option) EnvOption {
	return func(o *envOptions) { o.handler = append(o.handler, opts...) }
}

// WithReplicaOf makes the Env's store a replica of the configd cluster
// under prefix in the etcd cli reaches (audit.WithEtcd), whose Auth
// reloads the tokens other replicas change, as the daemon's does
// (authz.TokenHook). Give every Env of a cluster the same prefix; the
// bootstrap admin token is the first Env's (copy its Secrets).
func WithReplicaOf(cli *clientv3.Client, prefix string) EnvOption {
	return func(o *envOptions) {
		o.replicaTokens = &authz.TokenHook{}
		o.core = append(o.core, core.WithStoreOptions(audit.WithEtcd(cli, prefix), audit.WithTokenHook(o.replicaTokens.Changed)))
	}
}

// WithSeed commits ops, as one revision, before the Env serves.
func WithSeed(ops ...audit.Op) EnvOption {
	return func(o *envOptions) { o.seed = append(o.seed, ops...) }
}

// NewEnv starts an Env; everything stops when the test ends.
func NewEnv(t testing.TB, opts ...EnvOption) *Env {
	t.Helper()
	var o envOptions
	for _, opt := range opts {
		opt(&o)
	}
	c := Core(t, o.core...)
	e := &Env{t: t, Store: c.Store, Hub: c.Hub, Secrets: map[string]string{}, handlerOpts: o.handler,
		Clients: delivery.New("test", c.Store, o.clients...)}
	ctx := context.Background()
	if o.auth {
		a, err := authz.New(ctx, c.Store)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := a.Bootstrap(ctx, "", "the bootstrap token")
		if err != nil {
			t.Fatal(err)
		}
		e.Auth, e.Secrets[authz.BootstrapTokenName] = a, admin
		if o.replicaTokens != nil {
			o.replicaTokens.Attach(ctx, a, Discard())
		}
		for name, grants := range o.tokens {
			e.Token(name, grants...)
		}
	}
	if len(o.seed) > 0 {
		e.Commit(o.seed...)
	}
	e.HTTP = e.Serve(e.Handler())
	e.URL = e.HTTP.URL
	return e
}

// Token creates a token named name with grants, keeps its secret in
// Secrets and returns it.
func (e *Env) Token(name string, grants ...api.Grant) string {
	e.t.Helper()
	secret, _, err := e.Auth.CreateToken(context.Background(), name, grants)
	if err != nil {
		e.t.Fatal(err)
	}
	e.Secrets[name] = secret
	return secret
}

// Commit commits ops as one revision by "t" and returns it.
func (e *Env) Commit(ops ...audit.Op) int64 {
	e.t.Helper()
	return Commit(e.t, e.Store, audit.Txn{Actor: "t", Origin: "test", Ops: ops})
}

// Put commits key, value pairs (text/plain) as one revision.
func (e *Env) Put(kvs ...string) int64 {
	e.t.Helper()
	return e.Commit(Puts(kvs...)...)
}

// Commit commits txn to st and returns its revision; an error fails the
// test.
func Commit(t testing.TB, st *audit.Store, txn audit.Txn) int64 {
	t.Helper()
	r, err := st.Commit(context.Background(), txn)
	if err != nil {
		t.Fatal(err)
	}
	return r.Rev
}

// Puts are the puts (text/plain) of key, value pairs.
func Puts(kvs ...string) []audit.Op {
	var ops []audit.Op
	for i := 0; i+1 < len(kvs); i += 2 {
		ops = append(ops, audit.Put(kvs[i], []byte(kvs[i+1]), ""))
	}
	return ops
}

// Handler returns the HTTP API over the Env: its hub, its Auth when
// authentication is on, a logger that logs nothing, the Env's options
// and opts.
func (e *Env) Handler(opts ...httpapi.Option) http.Handler {
	all := []httpapi.Option{httpapi.WithLogger(Discard()), httpapi.WithHub(e.Hub), httpapi.WithVersion(server.Version()), httpapi.WithClients(e.Clients)}
	if e.Auth != nil {
		all = append(all, httpapi.WithAuth(e.Auth))
	}
	all = append(append(all, e.handlerOpts...), opts...)
	return httpapi.NewHandler(e.Store, all...)
}

// Serve serves h on a loopback port until the test ends.
func (e *Env) Serve(h http.Handler) *httptest.Server {
	ts := httptest.NewServer(h)
	e.t.Cleanup(func() {
		e.Hub.Close() // ends the watches, so that Close returns
		ts.Close()
	})
	return ts
}

// Request sends a request to the Env's HTTP API (path as it is,
// unnormalised; a nil body sends none) with headers as "Name", "value"
// pairs, and returns the status, the header and the body. Redirects are
// followed.
func (e *Env) Request(method, path string, body []byte, headers ...string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.t.Fatalf("new request %s %s: %v", method, path, err)
	}
	return e.send(req, true, headers...)
}

// Do sends a request to the Env's HTTP API with token's secret as bearer
// token (none for ""), headers as "Name", "value" pairs, and returns the
// status and body; redirects are not followed. A body is sent as JSON,
// but to PUT.
func (e *Env) Do(method, path, body, token string, headers ...string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" && method != http.MethodPut {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set(api.HeaderAuthorization, "Bearer "+e.Secrets[token])
	}
	status, _, b := e.send(req, false, headers...)
	return status, b
}

func (e *Env) send(req *http.Request, follow bool, headers ...string) (int, http.Header, []byte) {
	e.t.Helper()
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	hc := *e.HTTP.Client()
	if !follow {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read the body: %v", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// GRPC serves the gRPC API over the Env (its Auth when authentication is
// on, and opts) until the test ends, and returns a client that sends
// token's secret as bearer token (none for "").
func (e *Env) GRPC(token string, opts ...grpcapi.Option) configdpb.ConfigClient {
	e.t.Helper()
	return configdpb.NewConfigClient(e.GRPCConn(token, opts...))
}

// GRPCConn is GRPC's connection, for the other services (health).
func (e *Env) GRPCConn(token string, opts ...grpcapi.Option) *grpc.ClientConn {
	e.t.Helper()
	all := []grpcapi.Option{grpcapi.WithLogger(Discard())}
	if e.Auth != nil {
		all = append(all, grpcapi.WithAuth(e.Auth))
	}
	gs := grpcapi.New(e.Store, e.Hub, append(all, opts...)...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go gs.Serve(lis)
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer(e.Secrets[token])))
	}
	conn, err := grpc.NewClient(lis.Addr().String(), dial...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close(); gs.Stop() })
	return conn
}

// bearer sends a bearer token with every gRPC call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// Tokens are the tokens of AuthEnv, by name, with their grants.
var Tokens = map[string][]api.Grant{
	"reader-app": {{Permission: api.PermissionRead, Prefix: "app/"}},
	"reader-db":  {{Permission: api.PermissionRead, Prefix: "db/"}},
	"writer-app": {{Permission: api.PermissionWrite, Prefix: "app/"}},
	"reader-all": {{Permission: api.PermissionRead, Prefix: ""}},
	"writer-all": {{Permission: api.PermissionWrite, Prefix: ""}},
}

// AuthEnv is an Env with authentication on, the admin and Tokens, and
// app/x and db/x written.
func AuthEnv(t testing.TB, opts ...EnvOption) *Env {
	t.Helper()
	return NewEnv(t, append([]EnvOption{WithAuth(Tokens),
		WithSeed(audit.Put("app/x", []byte("1"), ""), audit.Put("db/x", []byte("1"), ""))}, opts...)...)
}

// JSON is v marshalled, for a request's body.
func JSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
