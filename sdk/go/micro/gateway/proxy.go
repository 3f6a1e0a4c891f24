package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"

	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/selector"
)

// proxyAttempts bounds the nodes an idempotent proxied request is tried on.
const proxyAttempts = 3

// httpAddress is where node serves HTTP: its WebAddressKey metadata, else its Address.
func httpAddress(n *registry.Node) string {
	if a := n.Metadata[WebAddressKey]; a != "" {
		return a
	}
	return n.Address
}

// proxy is the http and web handlers: r goes, with its path replaced by path, to a node of
// service the selector picks. A node that cannot be reached is left for the next one; a node
// that fails after the request reached it is left for the next one only when the method is
// idempotent (the request body is then kept, within the body limit, to be sent again), else
// the answer is 502.
func (g *Gateway) proxy(w http.ResponseWriter, r *http.Request, service, path string) {
	next, err := g.opts.Selector.Select(service, selector.WithFilter(g.opts.Filters...))
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, selector.ErrNotFound) {
			code = http.StatusNotFound
		}
		writeError(w, code, service, "", fmt.Sprintf("service %s: %v", service, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.opts.Timeout)
	defer cancel()
	retry := idempotent(r.Method)
	var body []byte
	if retry && r.Body != nil && r.Body != http.NoBody {
		if body, err = io.ReadAll(r.Body); err != nil {
			writeBodyError(w, service, "", err)
			return
		}
	}
	var last error
	for attempt := 0; attempt < proxyAttempts; attempt++ {
		node, err := next()
		if err != nil {
			break
		}
		out := r.Clone(ctx)
		if retry {
			out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		var failed error
		target := httpAddress(node)
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL.Scheme, pr.Out.URL.Host = "http", target
				pr.Out.URL.Path, pr.Out.URL.RawPath = path, ""
				pr.SetXForwarded()
				pr.Out.Host = pr.In.Host
			},
			Transport:    g.transport,
			ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { failed = err },
		}
		rp.ServeHTTP(w, out)
		g.opts.Selector.Mark(service, node, failed)
		if failed == nil {
			return
		}
		last = failed
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(failed, &tooLarge):
			g.opts.Selector.Mark(service, node, nil) // the node is not to blame
			writeBodyError(w, service, "", failed)
			return
		case ctx.Err() != nil:
			writeError(w, http.StatusGatewayTimeout, service, "", fmt.Sprintf("service %s did not answer within %v", service, g.opts.Timeout))
			return
		case !retry && !unsent(failed):
			writeError(w, http.StatusBadGateway, service, "", fmt.Sprintf("node %s of %s failed mid-request: %v", node.Id, service, failed))
			return
		}
		g.opts.Logger.Warn("gateway: proxied request failed; trying another node", "service", service, "node", node.Id, "err", failed)
	}
	code := http.StatusServiceUnavailable
	if last != nil && !unsent(last) {
		code = http.StatusBadGateway
	}
	writeError(w, code, service, "", fmt.Sprintf("no node of %s answered: %v", service, last))
}

// unsent reports whether err happened before the request could reach the node (a failed
// dial), so that sending it elsewhere is safe for any method.
func unsent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
