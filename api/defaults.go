package api

// Where configd is and what its clients read, shared by the daemon, configctl and the SDKs;
// each is defined here only.
const (
	// DefaultAddr is the address configd listens on, and the one configctl and the SDK
	// talk to, when nothing names another.
	DefaultAddr = "127.0.0.1:7700"
	// EnvAddr is the environment variable that names configd's address for configctl
	// (--addr's default) and the SDK (when no WithAddress is given; several, comma-separated,
	// to fail over).
	EnvAddr = "CONFIGD_ADDR"
	// EnvToken is the environment variable of a client's bearer token (configctl --token's
	// default; the SDK's when no WithToken is given).
	EnvToken = "CONFIGD_TOKEN"
	// EnvCA, EnvCert and EnvKey are the environment variables of a client's TLS files:
	// the CA that signs configd's certificate, and the client's own certificate and key
	// (configctl --ca, --cert, --key).
	EnvCA   = "CONFIGD_CA"
	EnvCert = "CONFIGD_CERT"
	EnvKey  = "CONFIGD_KEY"
)

// ServiceName is the service configd registers under in a service registry, and the one the
// SDK looks for there, unless configd --server-name names another (docs/registry.md).
const ServiceName = "configd"

// NodeAPI is the "api" metadata of configd's registered nodes: they answer configd's HTTP
// API and gRPC on the registered address, not micro calls.
const NodeAPI = "http+grpc"

// DefaultMaxValueSize is the largest value configd accepts unless --max-value-size
// (max_value_size) says otherwise: 1 MiB.
const DefaultMaxValueSize = 1 << 20
