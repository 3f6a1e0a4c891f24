package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
	tgrpc "github.com/configd/configd/sdk/go/micro/transport/grpc"
	tmem "github.com/configd/configd/sdk/go/micro/transport/memory"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

type Request struct {
	Name string `json:"name"`
	ID   string `json:"id,omitempty"`
}

type Response struct {
	Msg string `json:"msg"`
}

// Example is the talk's example service, with a slow endpoint and one answering protobuf.
type Example struct{}

func (Example) Call(_ context.Context, req *Request, rsp *Response) error {
	if req.Name == "" {
		return status.New(status.BadRequest, "no name")
	}
	rsp.Msg = "Hello " + req.Name + req.ID
	return nil
}

func (Example) Slow(ctx context.Context, _ *Request, _ *Response) error {
	<-ctx.Done()
	return ctx.Err()
}

func (Example) Upper(_ context.Context, req, rsp *wrapperspb.StringValue) error {
	rsp.Value = strings.ToUpper(req.Value)
	return nil
}

type env struct {
	reg *memory.Registry
	tr  transport.Transport
	cli *client.Client
	sel *selector.Cache
}

func newEnv(t *testing.T) *env { return newEnvOn(t, tmem.New()) }

// newEnvOn is newEnv with services and the gateway's client on tr.
func newEnvOn(t *testing.T, tr transport.Transport) *env {
	t.Helper()
	e := &env{reg: memory.New(), tr: tr}
	var err error
	if e.sel, err = selector.New(selector.Registry(e.reg)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sel.Close() })
	if e.cli, err = client.New(client.Selector(e.sel), client.Transport(e.tr), client.Wrap(wrapper.Retry())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cli.Close() })
	return e
}

// serve starts a service named name on e's registry and transport.
func (e *env) serve(t *testing.T, name string, rcvr any, opts ...server.HandlerOption) *server.Server {
	t.Helper()
	return e.serveWith(t, nil, name, rcvr, opts...)
}

// serveWith is serve with the server's options sopts besides.
func (e *env) serveWith(t *testing.T, sopts []server.Option, name string, rcvr any, opts ...server.HandlerOption) *server.Server {
	t.Helper()
	srv, err := server.New(append([]server.Option{server.Name(name), server.Registry(e.reg), server.Transport(e.tr), server.GracePeriod(0)}, sopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(rcvr, opts...); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv
}

func (e *env) gateway(t *testing.T, opts ...gateway.Option) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	g, err := gateway.New(append([]gateway.Option{gateway.WithClient(e.cli), gateway.WithRegistry(e.reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ts := httptest.NewServer(g)
	t.Cleanup(ts.Close)
	return g, ts
}

func do(t *testing.T, method, url, contentType, body string) (int, string) {
	t.Helper()
	code, b := doRaw(t, method, url, contentType, body)
	return code, strings.TrimSpace(b)
}

// doRaw is do with the answer's body as it came.
func doRaw(t *testing.T, method, url, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	return rsp.StatusCode, string(b)
}

func TestTheTalksThreeRequests(t *testing.T) {
	e := newEnv(t)
	e.serve(t, "example", Example{})
	_, ts := e.gateway(t)
	for name, c := range map[string]struct{ method, path, ct, body string }{
		"query": {"GET", "/example/call?name=hobo", "", ""},
		"form":  {"POST", "/example/call", "application/x-www-form-urlencoded", "name=hobo"},
		"json":  {"POST", "/example/call", "application/json", `{"name":"hobo"}`},
	} {
		t.Run(name, func(t *testing.T) {
			code, body := do(t, c.method, ts.URL+c.path, c.ct, c.body)
			if code != 200 || body != `{"msg":"Hello hobo"}` {
				t.Fatalf("%d %s", code, body)
			}
		})
	}
}

// The gateway calls through its client, so every transport of the core carries its calls: JSON
// and protobuf bodies alike.
func TestEveryTransportCarriesTheGatewaysCalls(t *testing.T) {
	for name, tr := range map[string]func() transport.Transport{
		"tcp":  func() transport.Transport { return tcp.New() },
		"grpc": func() transport.Transport { return tgrpc.New() },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, tr())
			e.serve(t, "example", Example{})
			_, ts := e.gateway(t)
			if code, body := do(t, "POST", ts.URL+"/example/call", "application/json", `{"name":"hobo"}`); code != 200 || body != `{"msg":"Hello hobo"}` {
				t.Fatalf("JSON: %d %s", code, body)
			}
			in, _ := proto.Marshal(wrapperspb.String("hobo"))
			code, body := doRaw(t, "POST", ts.URL+"/example/upper", "application/protobuf", string(in))
			var out wrapperspb.StringValue
			if err := proto.Unmarshal([]byte(body), &out); code != 200 || err != nil || out.Value != "HOBO" {
				t.Fatalf("protobuf: %d %q %v", code, body, err)
			}
		})
	}
}

// hey, the talk's load generator, sends Content-Type: text/html with its GETs: without a body
// the type does not matter.
func TestAContentTypeWithoutABodyIsIgnored(t *testing.T) {
	e := newEnv(t)
	e.serve(t, "example", Example{})
	_, ts := e.gateway(t)
	if code, body := do(t, "GET", ts.URL+"/example/call?name=hobo", "text/html", ""); code != 200 || body != `{"msg":"Hello hobo"}` {
		t.Fatalf("%d %s", code, body)
	}
}

func TestNamespaceIsPrefixedToThePathsService(t *testing.T) {
	e := newEnv(t)
	e.serve(t, "go.micro.api.example", Example{})
	_, ts := e.gateway(t, gateway.WithNamespace("go.micro.api"))
	if code, body := do(t, "GET", ts.URL+"/example/call?name=hobo", "", ""); code != 200 || body != `{"msg":"Hello hobo"}` {
		t.Fatalf("%d %s", code, body)
	}
}

func TestPathRoute(t *testing.T) {
	for path, want := range map[string][2]string{
		"/example/call":            {"example", "Example.Call"},
		"/foo/bar/baz":             {"foo", "Bar.Baz"},
		"/foo/bar/baz/cat":         {"foo.bar", "Baz.Cat"},
		"/v1/foo/bar":              {"v1.foo", "Foo.Bar"},
		"/v1/foo/bar/baz":          {"v1.foo", "Bar.Baz"},
		"/greeter/say-hello":       {"greeter", "Greeter.SayHello"},
		"/example/call/":           {"example", "Example.Call"},
		"/greeter/hello/../hello2": {"greeter", "Greeter.Hello2"},
	} {
		svc, ep, err := gateway.PathRoute(path)
		if err != nil || svc != want[0] || ep != want[1] {
			t.Errorf("PathRoute(%s) = %s, %s, %v; want %s, %s", path, svc, ep, err, want[0], want[1])
		}
	}
	for _, path := range []string{"/", "/example", ""} {
		if _, _, err := gateway.PathRoute(path); err == nil {
			t.Errorf("PathRoute(%q) found a route", path)
		}
	}
}

func TestDeclaredRouteWinsOverThePathRuleAndTakesPathParameters(t *testing.T) {
	e := newEnv(t)
	e.serve(t, "example", Example{}, server.EndpointMetadata("Example.Call", map[string]string{
		"handler": "rpc", "method": "GET,POST", "path": "/hello/{name},/example/slow"}))
	_, ts := e.gateway(t)
	if code, body := do(t, "GET", ts.URL+"/hello/hobo?id=7", "", ""); code != 200 || body != `{"msg":"Hello hobo7"}` {
		t.Fatalf("declared route with a parameter: %d %s", code, body)
	}
	// /example/slow would be Example.Slow by the path rule: the declared route wins.
	if code, body := do(t, "POST", ts.URL+"/example/slow", "application/json", `{"name":"x"}`); code != 200 || body != `{"msg":"Hello x"}` {
		t.Fatalf("declared route over the path rule: %d %s", code, body)
	}
}

func TestDeclaredRoutesFollowTheRegistry(t *testing.T) {
	e := newEnv(t)
	g, ts := e.gateway(t)
	if code, _ := do(t, "GET", ts.URL+"/hi/hobo", "", ""); code != 404 {
		t.Fatalf("before the service: %d", code)
	}
	declared := gateway.Route{Path: "/hi/{name}", Service: "example", Endpoint: "Example.Call"}
	srv := e.serve(t, "example", Example{}, server.EndpointMetadata("Example.Call", map[string]string{"path": declared.Path}))
	waitRoutes(t, g, func(rs []gateway.Route) bool { return slices.Contains(rs, declared) })
	if code, body := do(t, "GET", ts.URL+"/hi/hobo", "", ""); code != 200 || body != `{"msg":"Hello hobo"}` {
		t.Fatalf("declared: %d %s", code, body)
	}
	srv.Stop(context.Background())
	waitRoutes(t, g, func(rs []gateway.Route) bool { return !slices.Contains(rs, declared) })
	if code, _ := do(t, "GET", ts.URL+"/hi/hobo", "", ""); code != 404 {
		t.Fatalf("after the service: %d", code)
	}
}

// waitRoutes waits until the routes g uses satisfy ok.
func waitRoutes(t *testing.T, g *gateway.Gateway, ok func([]gateway.Route) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		changed := g.Changed()
		if ok(g.Routes()) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("routes %+v, not the wanted ones within 5s", g.Routes())
		}
	}
}

func TestTwoVersionsDeclaringTheSameRouteShareIt(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	md := map[string]string{"path": "/hi/{name}"}
	for _, v := range []string{"v1", "v2"} {
		srv, err := server.New(server.Name("example"), server.Version(v), server.Registry(e.reg), server.Transport(e.tr), server.GracePeriod(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Handle(Example{}, server.EndpointMetadata("Example.Call", md)); err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Stop(context.Background()) })
	}
	_, ts := e.gateway(t, gateway.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if code, body := do(t, "GET", ts.URL+"/hi/hobo", "", ""); code != 200 || body != `{"msg":"Hello hobo"}` {
		t.Fatalf("%d %s", code, body)
	}
	if strings.Contains(logs.String(), "left out") {
		t.Fatalf("the same route of two versions reported as a conflict:\n%s", &logs)
	}
}

func TestConfiguredRoutesWinAndABadSetKeepsTheOldOnes(t *testing.T) {
	e := newEnv(t)
	e.serve(t, "example", Example{}, server.EndpointMetadata("Example.Call", map[string]string{"path": "/hi/{name}"}))
	g, ts := e.gateway(t, gateway.WithRoutes([]gateway.Route{{Method: "GET", Path: "/hi/{id}", Service: "example", Endpoint: "Example.Call"}}))
	// The configured route names the parameter id, the declared one name.
	if code, body := do(t, "GET", ts.URL+"/hi/hobo?name=x", "", ""); code != 200 || body != `{"msg":"Hello xhobo"}` {
		t.Fatalf("configured route: %d %s", code, body)
	}
	for _, bad := range [][]gateway.Route{
		{{Path: "no-slash", Service: "example", Endpoint: "Example.Call"}},
		{{Path: "/x", Endpoint: "Example.Call"}},
		{{Path: "/x", Service: "example"}},
		{{Path: "/x", Service: "example", Handler: "ftp"}},
		{{Path: "/x/{", Service: "example", Endpoint: "Example.Call"}},
		{{Path: "/x", Service: "example", Endpoint: "Example.Call"}, {Path: "/x", Service: "other", Endpoint: "Other.Call"}},
	} {
		if err := g.SetRoutes(bad); err == nil {
			t.Errorf("SetRoutes(%+v) accepted", bad)
		}
	}
	if code, body := do(t, "GET", ts.URL+"/hi/hobo?name=x", "", ""); code != 200 || body != `{"msg":"Hello xhobo"}` {
		t.Fatalf("after bad sets: %d %s", code, body)
	}
	if err := g.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, "GET", ts.URL+"/hi/hobo", "", ""); code != 200 || body != `{"msg":"Hello hobo"}` {
		t.Fatalf("without configured routes the declared one: %d %s", code, body)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.serve(t, "example", Example{})
	_, ts := e.gateway(t, gateway.WithMaxBody(64), gateway.WithTimeout(200*time.Millisecond))
	for name, c := range map[string]struct {
		method, path, ct, body string
		code                   int
		detail                 string
	}{
		"unknown service":     {"GET", "/nosuch/call", "", "", 404, "nosuch"},
		"unknown endpoint":    {"GET", "/example/nope", "", "", 404, "Example.Nope"},
		"path outside routes": {"GET", "/", "", "", 404, "no route"},
		"one element":         {"GET", "/example", "", "", 404, "no route"},
		"malformed json":      {"POST", "/example/call", "application/json", `{"name":`, 400, "malformed JSON"},
		"malformed form":      {"POST", "/example/call", "application/x-www-form-urlencoded", "name=%zz", 400, "invalid URL escape"},
		"unsupported type":    {"POST", "/example/call", "text/csv", "a,b", 415, "text/csv"},
		"body over the limit": {"POST", "/example/call", "application/json", `{"name":"` + strings.Repeat("x", 100) + `"}`, 413, "limit"},
		"handler bad request": {"GET", "/example/call", "", "", 400, "no name"},
		"timeout":             {"GET", "/example/slow", "", "", 504, "deadline exceeded"},
	} {
		t.Run(name, func(t *testing.T) {
			code, body := do(t, c.method, ts.URL+c.path, c.ct, c.body)
			var ge gateway.Error
			if err := json.Unmarshal([]byte(body), &ge); err != nil {
				t.Fatalf("%d %s: not a JSON error: %v", code, body, err)
			}
			if code != c.code || ge.Code != c.code || !strings.Contains(ge.Detail, c.detail) {
				t.Fatalf("%d %s; want %d with %q", code, body, c.code, c.detail)
			}
		})
	}
}

func TestABodyOverTheLimitWithoutContentLengthIs413(t *testing.T) {
	e := newEnv(t)
	e.serve(t, "example", Example{})
	_, ts := e.gateway(t, gateway.WithMaxBody(64))
	for _, ct := range []string{"application/json", "application/x-www-form-urlencoded", "application/protobuf"} {
		body := io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("x", 100)+`"}`))
		req, _ := http.NewRequest("POST", ts.URL+"/example/call", body) // a reader of unknown length: chunked
		req.Header.Set("Content-Type", ct)
		rsp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rsp.Body.Close()
		if rsp.ContentLength == 0 || rsp.StatusCode != 413 {
			t.Errorf("%s: %d, want 413", ct, rsp.StatusCode)
		}
	}
}

func TestProtobufBodiesPassThrough(t *testing.T) {
	e := newEnv(t)
	e.serve(t, "example", Example{})
	_, ts := e.gateway(t)
	in, _ := proto.Marshal(wrapperspb.String("hobo"))
	rsp, err := http.Post(ts.URL+"/example/upper", "application/protobuf", bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	var out wrapperspb.StringValue
	if rsp.StatusCode != 200 || rsp.Header.Get("Content-Type") != "application/protobuf" {
		t.Fatalf("%d %s %s", rsp.StatusCode, rsp.Header.Get("Content-Type"), b)
	}
	if err := proto.Unmarshal(b, &out); err != nil || out.Value != "HOBO" {
		t.Fatalf("answer %q: %v", out.Value, err)
	}
	// JSON reaches a protobuf handler too: the server decodes it with protojson.
	if code, body := do(t, "POST", ts.URL+"/example/upper", "application/json", `"hobo"`); code != 200 || body != `"HOBO"` {
		t.Fatalf("JSON to a protobuf handler: %d %s", code, body)
	}
}

func TestMiddlewareRunsOutermostFirst(t *testing.T) {
	e := newEnv(t)
	e.serve(t, "example", Example{})
	var order []string
	mw := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	deny := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("name") == "mallory" {
				http.Error(w, "denied", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	_, ts := e.gateway(t, gateway.WithMiddleware(mw("a"), mw("b")), gateway.WithMiddleware(deny))
	if code, _ := do(t, "GET", ts.URL+"/example/call?name=hobo", "", ""); code != 200 {
		t.Fatal(code)
	}
	if code, _ := do(t, "GET", ts.URL+"/example/call?name=mallory", "", ""); code != 403 {
		t.Fatal(code)
	}
	if strings.Join(order, ",") != "a,b,a,b" {
		t.Fatalf("order %v", order)
	}
}

func TestDeclaredRoutes(t *testing.T) {
	rs, errs := gateway.DeclaredRoutes(&registry.Service{Name: "example", Endpoints: []*registry.Endpoint{
		{Name: "Example.Call", Metadata: map[string]string{"method": "get, post", "path": "/a/{id},/b"}},
		{Name: "Example.Web", Metadata: map[string]string{"handler": "http", "path": "/web/{path...}"}},
		{Name: "Example.None"},
		{Name: "Example.Bad", Metadata: map[string]string{"path": "nope"}},
	}})
	want := []gateway.Route{
		{Method: "GET", Path: "/a/{id}", Service: "example", Endpoint: "Example.Call"},
		{Method: "GET", Path: "/b", Service: "example", Endpoint: "Example.Call"},
		{Method: "POST", Path: "/a/{id}", Service: "example", Endpoint: "Example.Call"},
		{Method: "POST", Path: "/b", Service: "example", Endpoint: "Example.Call"},
		{Path: "/web/{path...}", Service: "example", Endpoint: "Example.Web", Handler: "http"},
	}
	if len(rs) != len(want) || len(errs) != 1 {
		t.Fatalf("routes %+v errs %v", rs, errs)
	}
	for i := range want {
		if rs[i] != want[i] {
			t.Errorf("route %d = %+v, want %+v", i, rs[i], want[i])
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	e := newEnv(t)
	for name, opts := range map[string][]gateway.Option{
		"no registry":   {gateway.WithClient(e.cli)},
		"no client":     {gateway.WithRegistry(e.reg)},
		"bad handler":   {gateway.WithClient(e.cli), gateway.WithRegistry(e.reg), gateway.WithPathHandler("ftp")},
		"bad max body":  {gateway.WithClient(e.cli), gateway.WithRegistry(e.reg), gateway.WithMaxBody(-1)},
		"bad timeout":   {gateway.WithClient(e.cli), gateway.WithRegistry(e.reg), gateway.WithTimeout(-1)},
		"bad route":     {gateway.WithClient(e.cli), gateway.WithRegistry(e.reg), gateway.WithRoutes([]gateway.Route{{Path: "x"}})},
		"web, selector": {gateway.WithRegistry(e.reg), gateway.WithPathHandler(gateway.HandlerWeb)},
	} {
		if g, err := gateway.New(opts...); err == nil {
			g.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// versioned answers with its version, to tell which node a call reached.
type versioned string

func (v versioned) Call(_ context.Context, req *Request, rsp *Response) error {
	rsp.Msg = string(v) + ":" + req.Name
	return nil
}

func TestFiltersKeepTheNodesTheyName(t *testing.T) {
	e := newEnv(t)
	for _, v := range []string{"v1", "v2"} {
		e.serveWith(t, []server.Option{server.Version(v), server.Metadata(map[string]string{"zone": "z-" + v})},
			"example", versioned(v), server.HandlerName("Example"))
	}
	seen := func(ts *httptest.Server) map[string]int {
		got := map[string]int{}
		for range 20 {
			code, body := do(t, "GET", ts.URL+"/example/call?name=x", "", "")
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			got[body]++
		}
		return got
	}
	_, all := e.gateway(t)
	if got := seen(all); len(got) != 2 {
		t.Fatalf("without a filter, answers %v: want both versions", got)
	}
	_, v2 := e.gateway(t, gateway.WithFilter(selector.FilterVersion("v2")))
	if got := seen(v2); len(got) != 1 || got[`{"msg":"v2:x"}`] != 20 {
		t.Fatalf("with version v2 only, answers %v", got)
	}
	_, z1 := e.gateway(t, gateway.WithFilter(selector.FilterLabel("zone", "z-v1")))
	if got := seen(z1); len(got) != 1 || got[`{"msg":"v1:x"}`] != 20 {
		t.Fatalf("with label zone=z-v1 only, answers %v", got)
	}
	_, none := e.gateway(t, gateway.WithFilter(selector.FilterVersion("v3")))
	if code, body := do(t, "GET", none.URL+"/example/call?name=x", "", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("no node passes the filter: %d %s, want 503", code, body)
	}
}
