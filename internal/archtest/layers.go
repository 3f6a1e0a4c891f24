// Package archtest holds configd's layers, bottom to top, and its test
// fails when a package imports one from a higher layer, or is in no layer.
// The data flows up the table: sources feed the store, the store feeds
// the watch hub, the doors serve both, and clients (the SDK, configctl)
// read what the doors serve. ARCHITECTURE.md draws the same picture: keep
// both true.
package archtest

// Module is the import path of configd's module.
const Module = "github.com/configd/configd"

// Layer is a set of packages at one height: a package may import any
// package of its own layer or of a lower one.
type Layer struct {
	Name string
	// Packages are import paths below Module; one ending in "/..." is
	// that package and every package under it.
	Packages []string
}

// Layers are configd's layers, bottom first.
var Layers = []Layer{
	{"wire and rules: the API's types and constants, key rules, rollouts' records and membership, secrets, migrations, settings, plugin registration", []string{
		"api/...", "keyspace", "rollout", "secrets", "migrations", "setting", "plugin", "internal/yamlnode",
		"internal/pemfile", "internal/syncbuf", "internal/loopback", "internal/tcpproxy", "internal/textdiff/...", "internal/testserver", "internal/tampertest", "internal/gctune"}},
	{"plugins: source types, registries, transports and selectors", []string{
		"source/...", "sdk/go/micro/..."}},
	{"store: the audited, versioned store (its rooms, audit/internal/..., order themselves)", []string{"audit/..."}},
	{"watch hub: revisions fanned out to watches", []string{"watcher"}},
	{"the rules every door shares: errors, the store and hub wired together, the checks of a write, change requests and rollouts, rollouts' Prometheus alarm", []string{
		"server/apierror/...", "server/core", "server/writeops", "server/requests", "server/rollouts", "server/alarm"}},
	{"rooms of the daemon: the web UI, authorisation, watch encodings, the source pump and its elections, the announcer, write forwarding, shared UI sessions, delivery tracking, keys kept under an etcd lease", []string{
		"web", "server/authz", "server/watchwire", "server/pump", "server/sourcelead", "server/announce", "server/forward", "server/uisessions", "server/delivery", "server/leasedkey"}},
	{"doors: the HTTP and gRPC APIs, etcd's v3 API, Consul's KV API", []string{"server/httpapi", "server/grpcapi", "server/etcdapi", "server/consulapi"}},
	{"the daemon: configuration and the composition root", []string{"server"}},
	{"commands, clients and test helpers", []string{
		"server/offline", "cmd/...", "sdk/go/apiclient", "sdk/go/client", "sdk/go/config", "sdk/go/config/gatewayconfig", "internal/cli", "examples/...",
		"internal/configdtest", "internal/archtest", "adapters/..."}},
}
