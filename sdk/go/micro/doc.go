// Package micro is the root of configd's embedded RPC core, in the style of go-micro v1: a
// Service is a server and a client over one registry, transport and selector.
//
//	svc := micro.NewService(micro.Name("greeter"), micro.Version("v1"), micro.WrapCall(wrapper.Retry()))
//	if err := svc.Init(); err != nil { ... }     // parses --registry, --server-address, ... and MICRO_*
//	svc.Handle(&Greeter{})                      // endpoints Greeter.Hello, ...; Debug.Health and Debug.Stats are built in
//	svc.HandleDesc(&pb.Config_ServiceDesc, impl) // or generated grpc-go code, unchanged: Config.Get, ...
//	err := svc.Run()                            // start, register, wait for SIGINT/SIGTERM, stop gracefully
//
// # Precedence
//
// Options resolve as defaults < options in code < environment (MICRO_*) < command line,
// whatever the order of NewService and Init calls. Options in code apply in the order given
// (NewService's, then each Init's); a flag or variable always wins over them, even over an
// option passed to an Init after the command line was parsed; and nothing given before Init is
// lost, because each Init resolves every option again from the start. (go-micro v1 parsed the
// command line in Init and applied it over whatever was set at that moment: options given
// before Init could be replaced by a server or client rebuilt from flags, and options given
// after Init silently beat the flags.) An option that would change a part already built — the
// server once a handler is registered, the client once handed out, the registry, transport
// or selector under either — makes Init fail with ErrBuilt instead of being ignored. The first
// Init parses the command line (Args, default os.Args[1:]); a service that never calls Init
// reads the environment only.
//
// # Flags and environment
//
// RegisterFlags adds the same flags to any flag.FlagSet (pflag's AddGoFlagSet works too) and
// FlagValues.Config / FromEnv read them, so other binaries choose parts the same way; they are
// declared once with package setting, and Config.Settings returns them for a binary that lays
// them into its own settings (configd takes those of the registration, with config-file keys);
// NewParts builds the registry, transport and selector they name from a catalog.Catalog.
// Settings lists them: --registry (memory, mdns, remote, consul, etcd; default memory),
// --registry-address, --registry-timeout, --transport (tcp, memory, grpc; default tcp),
// --transport-tls-ca, --transport-tls-cert, --transport-tls-key (TLS, and mutual TLS with all
// three, on tcp and grpc), --selector
// (cache), --selector-strategy (roundrobin, random, p2c; default roundrobin), --server-name,
// --server-version, --server-id, --server-address, --server-advertise, --server-metadata,
// --register-ttl, --register-interval, --client-request-timeout; each with its MICRO_ variable
// (MICRO_REGISTRY, MICRO_REGISTRY_ADDRESS, ...: the flag upper-cased, dashes as underscores).
//
// The parts live in their own packages, each a small interface whose implementations are plugin
// modules (package plugin: a config struct per implementation, under a namespaced ID such as
// micro.registry.etcd) held by name in an explicit catalog rather than in mutable package
// globals:
//
//   - registry: where services announce their nodes (memory, mdns, remote, consul, etcd).
//   - selector: List → Filter → Strategy over a watch-fed cache with a TTL fallback.
//   - codec: message codecs chosen by content type (JSON, protobuf, raw bytes).
//   - transport: message sockets (memory, tcp with length-prefixed frames, grpc streams).
//   - server, client: handlers from a Go type's methods or a protoc-gen-go-grpc ServiceDesc;
//     Call through the selector; streams (Client.Stream, handlers func(ctx, server.Stream) error
//     and func(ctx, *Req, server.Stream) error), one socket each; wrappers
//     around handlers (HandlerWrapper), attempts (CallWrapper) and the whole client
//     (ClientWrapper).
//   - wrapper: retry with a budget, circuit breaker, rate limit, Prometheus metrics.
//   - debug: the Debug.Health and Debug.Stats endpoints every Service answers.
//   - catalog: the built-in registries, transports, selectors and strategies by name; a binary
//     adds its own module to the catalog it passes (micro.Catalog).
package micro
