package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/setting"
	"github.com/configd/configd/source"
)

// The store modes (--store).
const (
	// StoreSQLite is one configd on its own data dir (the default).
	StoreSQLite = "sqlite"
	// StoreEtcd makes configd a replica of a cluster whose commit log is in
	// etcd (docs/ha.md): every replica serves everything, any may die.
	StoreEtcd = "etcd"
)

// Defaults of the replicas' settings.
const (
	DefaultEtcdPrefix   = "/configd"
	DefaultEtcdLeaseTTL = 10 * time.Second
	DefaultReadWait     = core.DefaultReadWait
)

// EtcdConfig is how a replica (--store etcd) reaches its cluster's etcd
// and takes part in the cluster: the flags --etcd-*, the variables
// CONFIGD_ETCD_* and the config file's etcd: section.
type EtcdConfig struct {
	// Endpoints are etcd's client URLs (host:port, http:// or https://);
	// more than one lets the client fail over between members.
	Endpoints []string
	// Prefix holds the cluster's keys in etcd (default DefaultEtcdPrefix);
	// nothing else may live under it. Replicas of one cluster share it.
	Prefix string
	// Timeout bounds each request to etcd: a write etcd does not
	// acknowledge within it is answered 503 store_unavailable (default
	// audit.DefaultEtcdTimeout).
	Timeout time.Duration
	// CA, Cert and Key are PEM files: the CA that signs etcd's
	// certificate (set: TLS to etcd), and a client certificate and its key
	// for an etcd that asks for one.
	CA, Cert, Key string
	// Username is etcd's user; its password comes from the environment
	// only (CONFIGD_ETCD_PASSWORD, Password) or from PasswordFile, so that
	// it stays out of process lists and config files.
	Username, Password, PasswordFile string
	// LeaseTTL is the lease of the replica's registration and of the
	// sources it syncs: how long after a replica dies (or loses etcd) the
	// others stop listing it and take its sources over (default
	// DefaultEtcdLeaseTTL; whole seconds, at least 1s).
	LeaseTTL time.Duration
	// ForwardWrites sends the writes this replica receives to the
	// cluster's writer, the replica registered longest (package forward;
	// default on). Off, or with TLS on and no PeerCA, every replica
	// commits the writes it receives, racing the others for the log's
	// head: as right, slower.
	ForwardWrites bool
	// PeerCA is a PEM file of the CAs that sign the replicas' serving
	// certificates (--tls-cert): with TLS on, a replica forwards writes
	// to the writer over HTTPS, trusting it with these (flag --peer-ca).
	// Without it, replicas that serve TLS do not forward.
	PeerCA string
	// ReplicaName names the replica in the cluster's registry (GET
	// /v1/replicas); default its advertised address. Unique in the
	// cluster.
	ReplicaName string
}

// replicaSettings are the settings of --store and of the replicas, in the
// table of Config.Settings.
func (c *Config) replicaSettings() setting.Table {
	e := &c.Etcd
	return setting.Table{
		setting.String(&c.Store, "store", "where the store's commit log lives: sqlite (this data dir only) or etcd (a replica of a configd cluster; see docs/ha.md)",
			checkStore).Expect("sqlite or etcd").Also(func() error { return checkStoreMode(c) }),
		setting.List(&e.Endpoints, "etcd-endpoints", "with --store etcd: etcd's client URLs, comma-separated (host:port, http:// or https://)",
			checkEndpoints).WithKey("etcd.endpoints"),
		setting.String(&e.Prefix, "etcd-prefix", "with --store etcd: the etcd prefix of the cluster's keys (one per cluster; nothing else may live under it)",
			checkEtcdPrefix).WithKey("etcd.prefix"),
		setting.Duration(&e.Timeout, "etcd-timeout", "with --store etcd: bound on each request to etcd; a write not acknowledged by then is answered 503 store_unavailable",
			setting.MoreThan(time.Duration(0))).WithKey("etcd.timeout"),
		setting.File(&e.CA, "etcd-ca", "with --store etcd: PEM file of the CA of etcd's certificate: talk TLS to etcd").WithKey("etcd.ca"),
		setting.File(&e.Cert, "etcd-cert", "with --store etcd: PEM file of the client certificate etcd asks for; needs --etcd-key").
			WithKey("etcd.cert").Also(func() error { return checkEtcdPair(e) }),
		setting.File(&e.Key, "etcd-key", "with --store etcd: PEM file of the key of --etcd-cert").WithKey("etcd.key"),
		setting.String(&e.Username, "etcd-username", "with --store etcd: etcd's user; the password from "+EnvPrefix+"ETCD_PASSWORD or --etcd-password-file").
			WithKey("etcd.username").Also(func() error { return checkEtcdPassword(e) }),
		setting.String(&e.Password, "etcd-password", "the password of --etcd-username; from the environment only").NoFlag().NoFile(),
		setting.File(&e.PasswordFile, "etcd-password-file", "file holding the password of --etcd-username (content trimmed)").WithKey("etcd.password_file"),
		setting.Duration(&e.LeaseTTL, "etcd-lease-ttl", "with --store etcd: lease of the replica's registration and of the sources it syncs: "+
			"how long after it dies the others take its sources over (whole seconds)", checkLeaseTTL).WithKey("etcd.lease_ttl"),
		setting.Bool(&e.ForwardWrites, "forward-writes", "with --store etcd: send the writes this replica receives to the cluster's writer "+
			"(the replica registered longest), whose one writer batches them; off, or with TLS on and no --peer-ca, each replica commits its own").WithKey("etcd.forward_writes"),
		setting.File(&e.PeerCA, "peer-ca", "with --store etcd and --tls-cert: PEM file of the CAs of the replicas' certificates: forward writes to the writer over HTTPS, trusting it with these").
			WithKey("etcd.peer_ca").Also(func() error { return checkPeerCA(c) }),
		setting.String(&e.ReplicaName, "replica-name", "with --store etcd: the replica's name in the cluster (GET /v1/replicas); default its advertised address").
			WithKey("etcd.replica_name"),
		setting.Duration(&c.ReadWait, "read-wait", "how long a read that names a revision (X-Configd-Rev, min_rev=) or asks to be linearizable (consistent=true) "+
			"waits for this replica to catch up before it is answered 503", setting.MoreThan(time.Duration(0))),
		setting.Duration(&c.ClientExpiry, "client-expiry", "how long configd keeps an SDK client that stopped reporting (delivery tracking: GET /v1/clients); "+
			"clients report every third of it", setting.MoreThan(time.Duration(0))),
	}
}

// checkPeerCA: the peer CA verifies the replicas' serving certificates,
// so it needs them.
func checkPeerCA(c *Config) error {
	if c.Etcd.PeerCA != "" && !c.TLSOn() {
		return errors.New("--peer-ca trusts the replicas' TLS certificates, and this replica serves no TLS: set --tls-cert and --tls-key too, or remove it (without TLS, replicas forward over HTTP)")
	}
	return nil
}

func checkStore(s string) error {
	if s != StoreSQLite && s != StoreEtcd {
		return fmt.Errorf("%q: want sqlite or etcd", s)
	}
	return nil
}

// checkStoreMode relates --store to the etcd settings: a replica needs
// endpoints, and endpoints without --store etcd are a forgotten flag, not
// something to ignore (the daemon would run alone, on a data dir of its
// own).
func checkStoreMode(c *Config) error {
	e := c.Etcd
	switch {
	case c.Store == StoreEtcd && len(e.Endpoints) == 0:
		return errors.New("--store etcd needs the cluster's etcd: set --etcd-endpoints (" + EnvPrefix + "ETCD_ENDPOINTS, etcd.endpoints), e.g. 10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379")
	case c.Store != StoreEtcd && (len(e.Endpoints) > 0 || e.CA != "" || e.Cert != "" || e.Username != "" || e.ReplicaName != "" || e.PeerCA != ""):
		return errors.New("the etcd settings are set but the store is " + c.Store + ": add --store etcd (" + EnvPrefix + "STORE=etcd, store: etcd) to run a replica, or remove them")
	}
	return nil
}

func checkEndpoints(eps []string) error {
	for _, ep := range eps {
		host := ep
		if u, err := url.Parse(ep); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			host = u.Host
		} else if strings.Contains(ep, "://") {
			return fmt.Errorf("%q: want host:port, http://host:port or https://host:port", ep)
		}
		if !strings.Contains(host, ":") {
			return fmt.Errorf("%q: want host:port (etcd's client port, usually 2379)", ep)
		}
	}
	return nil
}

func checkEtcdPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || len(strings.Trim(p, "/")) == 0 {
		return fmt.Errorf("%q: want an absolute prefix other than /, e.g. %s", p, DefaultEtcdPrefix)
	}
	return nil
}

func checkEtcdPair(e *EtcdConfig) error {
	if (e.Cert == "") != (e.Key == "") {
		return errors.New("--etcd-cert and --etcd-key go together")
	}
	return nil
}

func checkEtcdPassword(e *EtcdConfig) error {
	switch {
	case e.Password != "" && e.PasswordFile != "":
		return errors.New("give etcd's password in " + EnvPrefix + "ETCD_PASSWORD or in --etcd-password-file, not both")
	case e.Username == "" && (e.Password != "" || e.PasswordFile != ""):
		return errors.New("etcd's password needs its user: set --etcd-username")
	}
	return nil
}

func checkLeaseTTL(d time.Duration) error {
	if d < time.Second || d%time.Second != 0 {
		return fmt.Errorf("%s: want whole seconds, at least 1s (etcd's leases count in seconds)", d)
	}
	return nil
}

// newEtcdClient returns a client of the etcd that e names. It does not
// connect yet: audit.Open says whether etcd answers.
func newEtcdClient(e EtcdConfig) (*clientv3.Client, error) {
	cc := clientv3.Config{
		Endpoints:   e.Endpoints,
		DialTimeout: e.Timeout,
		Username:    e.Username,
		Password:    e.Password,
		Logger:      zap.NewNop(),
		// gRPC's default waits up to 2 minutes between attempts to
		// reconnect; a replica should take writes again within a couple of
		// seconds of etcd's quorum coming back.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: e.Timeout,
		})},
	}
	if e.PasswordFile != "" {
		b, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("etcd password file: %w", err)
		}
		if cc.Password = strings.TrimSpace(string(b)); cc.Password == "" {
			return nil, fmt.Errorf("etcd password file %s is empty", e.PasswordFile)
		}
	}
	if e.CA != "" || e.Cert != "" || hasHTTPS(e.Endpoints) {
		tc, err := (&source.TLSConfig{CAFile: e.CA, CertFile: e.Cert, KeyFile: e.Key}).ClientTLS()
		if err != nil {
			return nil, fmt.Errorf("TLS to etcd (--etcd-ca, --etcd-cert, --etcd-key): %w", err)
		}
		cc.TLS = tc
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(e.Endpoints, ","), err)
	}
	return cli, nil
}

func hasHTTPS(eps []string) bool {
	for _, ep := range eps {
		if strings.HasPrefix(strings.ToLower(ep), "https://") {
			return true
		}
	}
	return false
}

// etcdStoreOptions are the store's options of a replica: its
// compactions wait for the replicas registered (horizonFloor).
func etcdStoreOptions(cfg Config, cli *clientv3.Client, onTokens func(), logger *slog.Logger) []audit.Option {
	return []audit.Option{audit.WithEtcd(cli, cfg.Etcd.Prefix), audit.WithEtcdTimeout(cfg.Etcd.Timeout), audit.WithTokenHook(onTokens),
		audit.WithHorizonFloor(horizonFloor(cli, cfg.Etcd.Prefix, cfg.Etcd.Timeout, logger))}
}
