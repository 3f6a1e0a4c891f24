// Package policy is a gateway's policy middleware, each a func(http.Handler) http.Handler
// for gateway.WithMiddleware: JWT authentication, access rules, rate limits by client and by
// route, an access log, Prometheus metrics and OpenTelemetry server spans.
//
// One Config drives them all. It is JSON (it lives in configd, under the keys
// sdk/go/config/gatewayconfig reads) and Policy.Update replaces it while requests are served:
// a Config with anything wrong is refused whole and the one in force stays.
//
//	p, err := policy.New(cfg, policy.WithRegisterer(reg), policy.WithLogger(log),
//		policy.WithTracing(wrapper.NewTracing(wrapper.WithSampler(
//			sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))))
//	gw := gateway.New(..., gateway.WithMiddleware(p.Chain()...))
//
// # Errors
//
// A request the policy refuses is answered with a JSON error, the shape of every error of the
// gateway (status.WriteHTTP, go-micro's shape):
//
//	HTTP/1.1 401 Unauthorized
//	WWW-Authenticate: Bearer realm="gateway", error="invalid_token", error_description="the token is expired"
//	Content-Type: application/json
//
//	{"code":401,"detail":"the token is expired","status":"Unauthorized"}
//
// 401 (with WWW-Authenticate) for a missing or invalid token, 403 for a denied request, 429
// (with Retry-After, in seconds) for a rate limited one.
package policy
