// Package wrapper holds the built-in call and handler wrappers: retry with backoff and a retry
// budget, a circuit breaker per service+endpoint, rate limits (wait or fail fast) and
// Prometheus metrics.
//
// Order matters. The recommended client chain, outermost first, is
//
//	client.Wrap(metrics.CallWrapper(), limiter.CallWrapper(false), breaker.Wrapper(), wrapper.Retry())
//
// so metrics see one outcome per Call, the breaker counts a call once however many attempts it
// took, and each retry picks a node again (another one, while there is one).
package wrapper
