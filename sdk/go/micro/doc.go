// Package micro is the root of configd's embedded RPC core, in the style of go-micro v1.
//
// The parts live in their own packages, each a small interface with implementations registered by
// name in an explicit catalog rather than in mutable package globals:
//
//   - registry: where services announce their nodes (memory; mdns, consul and etcd to come).
//   - selector: List → Filter → Strategy over a watch-fed cache with a TTL fallback.
//   - codec: message codecs chosen by content type (JSON, protobuf, raw bytes).
//   - transport: message sockets (memory, tcp with length-prefixed frames).
//   - server, client: handlers from a Go type's methods; Call through the selector.
//   - wrapper: retry with a budget, circuit breaker, Prometheus metrics.
package micro
