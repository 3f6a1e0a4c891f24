package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/configd/configd/sdk/go/micro/registry"
)

// The endpoint metadata keys a service declares a route with, as go-micro's api package
// writes them: "handler" (rpc, http; rpc when absent), "method" and "path" (comma-separated
// lists: each method with each path is a route; every method when "method" is absent). An
// endpoint without "path" declares no route.
const (
	MetaHandler = "handler"
	MetaMethod  = "method"
	MetaPath    = "path"
)

// WebAddressKey is the node metadata key of a node's HTTP address, for a node whose Address
// is its RPC server's: the http and web handlers proxy to it rather than to Address.
const WebAddressKey = "web"

// DeclaredRoutes returns the routes s declares in its endpoints' metadata, and an error for
// each declaration that is not a valid route (left out).
func DeclaredRoutes(s *registry.Service) ([]Route, []error) {
	var out []Route
	var errs []error
	for _, ep := range s.Endpoints {
		paths := splitList(ep.Metadata[MetaPath])
		if len(paths) == 0 {
			continue
		}
		methods := splitList(ep.Metadata[MetaMethod])
		if len(methods) == 0 {
			methods = []string{""}
		}
		for _, m := range methods {
			for _, p := range paths {
				rt := Route{Method: strings.ToUpper(m), Path: p, Service: s.Name, Endpoint: ep.Name, Handler: ep.Metadata[MetaHandler]}
				if err := rt.validate(); err != nil {
					errs = append(errs, fmt.Errorf("endpoint %s: %w", ep.Name, err))
					continue
				}
				if !slices.Contains(out, rt) {
					out = append(out, rt)
				}
			}
		}
	}
	return out, errs
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// validate says what is wrong with rt, if anything.
func (rt Route) validate() error {
	switch {
	case !strings.HasPrefix(rt.Path, "/"):
		return fmt.Errorf("path %q does not start with /", rt.Path)
	case rt.Service == "":
		return fmt.Errorf("path %s: no service", rt.Path)
	case rt.Method != "" && !validMethod.MatchString(rt.Method):
		return fmt.Errorf("path %s: bad method %q", rt.Path, rt.Method)
	}
	switch rt.Handler {
	case "", HandlerRPC:
		if !strings.Contains(rt.Endpoint, ".") {
			return fmt.Errorf("path %s: the rpc handler needs an endpoint Type.Method, got %q", rt.Path, rt.Endpoint)
		}
	case HandlerHTTP, HandlerWeb:
	default:
		return fmt.Errorf("path %s: unknown handler %q (want %s, %s or %s)", rt.Path, rt.Handler, HandlerRPC, HandlerHTTP, HandlerWeb)
	}
	return handle(http.NewServeMux(), rt, http.NotFoundHandler())
}

var validMethod = regexp.MustCompile(`^[A-Z]+$`)

// pattern is rt's ServeMux pattern.
func (rt Route) pattern() string {
	if rt.Method == "" {
		return rt.Path
	}
	return rt.Method + " " + rt.Path
}

// params returns the names of rt's path parameters ("{id}", "{path...}").
func (rt Route) params() []string {
	var out []string
	for seg := range strings.SplitSeq(rt.Path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name := strings.TrimSuffix(strings.TrimSuffix(seg[1:len(seg)-1], "..."), "$")
			if name != "" {
				out = append(out, name)
			}
		}
	}
	return out
}

func (g *Gateway) routeHandler(rt Route) http.Handler {
	switch rt.Handler {
	case HandlerHTTP:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.proxy(w, r, rt.Service, r.URL.Path) })
	case HandlerWeb:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, rest := firstElement(r.URL.Path)
			g.proxy(w, r, rt.Service, rest)
		})
	}
	params := rt.params()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := make(map[string]string, len(params))
		for _, p := range params {
			fields[p] = r.PathValue(p)
		}
		g.call(w, r, rt.Service, rt.Endpoint, fields)
	})
}

// pathRule serves a request no route matched, by Options.PathHandler.
func (g *Gateway) pathRule(w http.ResponseWriter, r *http.Request) {
	switch g.opts.PathHandler {
	case HandlerWeb:
		name, rest := firstElement(r.URL.Path)
		switch {
		case name == "":
			g.index(w, r)
		case rest == "/" && !strings.HasSuffix(r.URL.Path, "/"):
			// the service's page links relative to its root
			http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
		default:
			g.proxy(w, r, g.namespaced(name), rest)
		}
		return
	case HandlerHTTP:
		name, _ := firstElement(r.URL.Path)
		if name == "" {
			writeError(w, http.StatusNotFound, "", "", fmt.Sprintf("no route for %s", r.URL.Path))
			return
		}
		g.proxy(w, r, g.namespaced(name), r.URL.Path)
		return
	}
	service, endpoint, err := PathRoute(r.URL.Path)
	if err != nil {
		writeError(w, http.StatusNotFound, "", "", err.Error())
		return
	}
	g.call(w, r, g.namespaced(service), endpoint, nil)
}

func (g *Gateway) namespaced(name string) string {
	if g.opts.Namespace == "" {
		return name
	}
	return g.opts.Namespace + "." + name
}

// firstElement splits "/name/rest" into "name" and "/rest".
func firstElement(p string) (name, rest string) {
	p = strings.TrimPrefix(p, "/")
	name, rest, _ = strings.Cut(p, "/")
	return name, "/" + rest
}

// ErrNoRoute: a path the path rule cannot turn into a service and an endpoint.
var ErrNoRoute = errors.New("gateway: no route")

var versionElement = regexp.MustCompile(`^v[0-9]+$`)

// PathRoute is go-micro's rpc path rule (its api handler's resolver), before the namespace is
// prefixed:
//
//	/foo/bar          → foo        Foo.Bar
//	/foo/bar/baz      → foo        Bar.Baz
//	/foo/bar/baz/cat  → foo.bar    Baz.Cat
//	/v1/foo/bar       → v1.foo     Foo.Bar
//
// Elements with dashes become camel case (/foo/say-hello → Foo.SayHello). A path of fewer
// than two elements has no route.
func PathRoute(p string) (service, endpoint string, err error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	if len(parts) < 2 || slices.Contains(parts, "") {
		return "", "", fmt.Errorf("%w for %s: want /service/method", ErrNoRoute, p)
	}
	switch {
	case len(parts) == 2:
		return parts[0], methodName(parts), nil
	case len(parts) == 3 && versionElement.MatchString(parts[0]):
		return parts[0] + "." + parts[1], methodName(parts[1:]), nil
	}
	n := len(parts)
	return strings.Join(parts[:n-2], "."), methodName(parts[n-2:]), nil
}

func methodName(parts []string) string {
	out := make([]string, len(parts))
	for i, part := range parts {
		var b strings.Builder
		for w := range strings.SplitSeq(part, "-") {
			if w != "" {
				b.WriteString(strings.ToUpper(w[:1]) + w[1:])
			}
		}
		out[i] = b.String()
	}
	return strings.Join(out, ".")
}
