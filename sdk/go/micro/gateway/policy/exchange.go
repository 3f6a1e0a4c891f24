package policy

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// exchange is what the policy's middleware know of one request: the Config it is judged by,
// its token's claims, its route, and the answer. The first of the middleware a request meets
// makes it; it stands in for the ResponseWriter from there on.
type exchange struct {
	w      http.ResponseWriter
	c      *compiled
	start  time.Time
	claims jwt.MapClaims // nil: no token
	route  string
	code   int
	bytes  int64
	// refused: the policy answered, with code.
	refused bool
}

type exchangeKey struct{}

// begin returns r's exchange, with the ResponseWriter and request to pass on: ctx (r's
// context, or one made from it) with a new exchange when r has none yet.
func (p *Policy) begin(w http.ResponseWriter, r *http.Request, ctx context.Context) (*exchange, http.ResponseWriter, *http.Request) {
	if x, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
		if ctx != r.Context() {
			r = r.WithContext(ctx)
		}
		return x, w, r
	}
	x := &exchange{w: w, c: p.cur.Load(), start: time.Now()}
	return x, x, r.WithContext(context.WithValue(ctx, exchangeKey{}, x))
}

// SetRoute names the route a request took, for the metrics, the access log and the span
// (http.route): the gateway's handler calls it with the route's pattern once it has routed
// the request, from the goroutine that serves it. Without it a request is named by the first
// element of its path ("/example"), or "none" when the policy refused it or it was answered
// 404, so that made-up paths do not make up series.
func SetRoute(ctx context.Context, route string) {
	if x, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
		x.route = route
	}
}

// Claims returns the claims of the request's verified token, or nil when it had none. The map
// is shared with the other requests of the same token: read it, do not modify it.
func Claims(ctx context.Context) map[string]any {
	if x, ok := ctx.Value(exchangeKey{}).(*exchange); ok && x.claims != nil {
		return x.claims
	}
	return nil
}

// routeOf is the request's route, as SetRoute says.
func (x *exchange) routeOf(r *http.Request) string {
	if x.route != "" {
		return x.route
	}
	if x.refused || x.code == http.StatusNotFound {
		return "none"
	}
	p := r.URL.Path
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			return p[:i]
		}
	}
	if p == "" {
		return "/"
	}
	return p
}

// client names the request's client: the subject of its token, else its IP address.
func (x *exchange) client(r *http.Request) clientKey {
	if sub, ok := x.claims["sub"].(string); ok && sub != "" {
		return clientKey{subject: true, id: sub}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return clientKey{id: host}
}

// status is the answer's status code: 200 when the handler wrote nothing.
func (x *exchange) status() int {
	if x.code == 0 {
		return http.StatusOK
	}
	return x.code
}

// Header implements http.ResponseWriter.
func (x *exchange) Header() http.Header { return x.w.Header() }

// WriteHeader implements http.ResponseWriter.
func (x *exchange) WriteHeader(code int) {
	if x.code == 0 && code >= 200 { // 1xx are interim answers
		x.code = code
	}
	x.w.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (x *exchange) Write(b []byte) (int, error) {
	if x.code == 0 {
		x.code = http.StatusOK
	}
	n, err := x.w.Write(b)
	x.bytes += int64(n)
	return n, err
}

// Flush flushes what was written, for a streaming handler that asserts http.Flusher.
func (x *exchange) Flush() { _ = http.NewResponseController(x.w).Flush() }

// Unwrap returns the ResponseWriter x stands in for, for http.ResponseController.
func (x *exchange) Unwrap() http.ResponseWriter { return x.w }
