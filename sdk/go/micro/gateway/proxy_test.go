package gateway_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/registry"
)

// backend is an HTTP node: a good one answers "hello from ID" with the path it saw; a dying
// one closes the connection once it has read the request.
func backend(t *testing.T, id string, dying bool) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.ReadAll(r.Body)
		if dying {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, "hello from "+id+" at "+r.URL.Path)
	}))
	t.Cleanup(ts.Close)
	return ts, &hits
}

func register(t *testing.T, reg registry.Registry, name string, nodes ...*registry.Node) {
	t.Helper()
	if err := reg.Register(&registry.Service{Name: name, Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPRouteProxiesAndTriesAnotherNodeOnlyForIdempotentMethods(t *testing.T) {
	for _, c := range []struct {
		method string
		want   int // of the request that reaches the dying node
	}{{"GET", 200}, {"PUT", 200}, {"DELETE", 200}, {"POST", 502}, {"PATCH", 502}} {
		t.Run(c.method, func(t *testing.T) {
			e := newEnv(t) // a selector of its own: the dying node is demoted once it failed
			good, _ := backend(t, "good", false)
			dying, hits := backend(t, "dying", true)
			register(t, e.reg, "site",
				&registry.Node{Id: "dying", Address: dying.Listener.Addr().String()},
				&registry.Node{Id: "good", Address: "127.0.0.1:1", Metadata: map[string]string{gateway.WebAddressKey: good.Listener.Addr().String()}})
			_, ts := e.gateway(t, gateway.WithRoutes([]gateway.Route{{Path: "/site/{path...}", Service: "site", Handler: gateway.HandlerHTTP}}))
			for hits.Load() == 0 { // round robin: within two requests one reaches the dying node
				code, body := do(t, c.method, ts.URL+"/site/page", "text/plain", "body")
				if hits.Load() == 0 {
					if code != 200 || body != "hello from good at /site/page" {
						t.Fatalf("from the good node: %d %s", code, body)
					}
					continue
				}
				if code != c.want || (code == 200) != (body == "hello from good at /site/page") || code == 502 && !strings.Contains(body, "mid-request") {
					t.Fatalf("the request that reached the dying node: %d %s, want %d", code, body, c.want)
				}
			}
		})
	}
}

func TestProxyToServicesWithoutALiveNodeIs503AndToUnknownOnes404(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there any more
	register(t, e.reg, "gone", &registry.Node{Id: "gone-1", Address: dead})
	_, ts := e.gateway(t, gateway.WithPathHandler(gateway.HandlerWeb))
	if code, body := do(t, "GET", ts.URL+"/gone/", "", ""); code != 503 || !strings.Contains(body, "gone") {
		t.Fatalf("no live node: %d %s", code, body)
	}
	if code, body := do(t, "GET", ts.URL+"/nosuch/", "", ""); code != 404 || !strings.Contains(body, "nosuch") {
		t.Fatalf("unknown service: %d %s", code, body)
	}
}

func TestWebIndexListsServicesAndLinksWebOnes(t *testing.T) {
	e := newEnv(t)
	site, _ := backend(t, "site", false)
	register(t, e.reg, "site", &registry.Node{Id: "s1", Address: "127.0.0.1:1", Metadata: map[string]string{gateway.WebAddressKey: site.Listener.Addr().String()}})
	register(t, e.reg, "<rpc-only>", &registry.Node{Id: "r1", Address: "127.0.0.1:1"})
	_, ts := e.gateway(t, gateway.WithPathHandler(gateway.HandlerWeb))
	code, body := do(t, "GET", ts.URL+"/", "", "")
	if code != 200 || !strings.Contains(body, `<a href="/site/">site</a>`) || !strings.Contains(body, "<li>&lt;rpc-only&gt;</li>") {
		t.Fatalf("index: %d %s", code, body)
	}
	if code, body := do(t, "GET", ts.URL+"/site/a/b?x=1", "", ""); code != 200 || body != "hello from site at /a/b" {
		t.Fatalf("proxied: %d %s", code, body)
	}
}

func TestHTTPPathHandlerProxiesByTheFirstElement(t *testing.T) {
	e := newEnv(t)
	site, _ := backend(t, "site", false)
	register(t, e.reg, "site", &registry.Node{Id: "s1", Address: site.Listener.Addr().String()})
	_, ts := e.gateway(t, gateway.WithPathHandler(gateway.HandlerHTTP))
	if code, body := do(t, "GET", ts.URL+"/site/a/b", "", ""); code != 200 || body != "hello from site at /site/a/b" {
		t.Fatalf("%d %s", code, body)
	}
	if code, _ := do(t, "GET", ts.URL+"/", "", ""); code != 404 {
		t.Fatalf("/: %d", code)
	}
}
