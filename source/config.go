package source

import (
	"crypto/tls"
	"fmt"
	"regexp"
	"strings"

	"github.com/configd/configd/internal/pemfile"
	"github.com/configd/configd/keyspace"
)

// Config is one entry of the sources: list of configd.yaml. Which fields a
// type uses is listed on each; setting a field that the type does not use is
// an error, so a misplaced setting cannot go unnoticed.
//
//	sources:
//	  - name: shared
//	    type: consul
//	    address: 127.0.0.1:8500
//	    prefix: micro/config/
//	    mount: app/
type Config struct {
	// Name identifies the source in configd's audit trail ("source:<name>"),
	// logs and status. Letters, digits, '.', '_' and '-'; required.
	Name string `yaml:"name" json:"name"`
	// Type selects the implementation: file, env, consul, etcd.
	Type string `yaml:"type" json:"type"`
	// Mount is the key prefix under which the source's keys appear. ""
	// mounts at the root. Must be a valid prefix (keyspace.Prefix).
	Mount string `yaml:"mount" json:"mount,omitempty"`

	// Path (file) is a file, or a directory of .yaml, .yml and .json files.
	Path string `yaml:"path" json:"path,omitempty"`
	// Address (consul) is host:port of the Consul HTTP API, optionally with
	// a scheme: http://, https:// (implied by tls).
	Address string `yaml:"address" json:"address,omitempty"`
	// Endpoints (etcd) are the etcd client URLs or host:port pairs.
	Endpoints []string `yaml:"endpoints" json:"endpoints,omitempty"`
	// Prefix is what the source reads: a Consul KV prefix (consul), an etcd
	// key prefix, which may start with '/' (etcd), or the start of the
	// environment variables' names, such as APP_ (env). The prefix is
	// stripped from the keys.
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// Datacenter (consul) to read from; empty is the agent's own.
	Datacenter string `yaml:"datacenter" json:"datacenter,omitempty"`
	// Token (consul) is the ACL token. When empty, Consul's usual
	// CONSUL_HTTP_TOKEN environment variable applies.
	Token string `yaml:"token" json:"-"`
	// Username and Password (etcd) authenticate to etcd.
	Username string `yaml:"username" json:"username,omitempty"`
	Password string `yaml:"password" json:"-"`
	// TLS (consul, etcd) turns on TLS to the server.
	TLS *TLSConfig `yaml:"tls" json:"tls,omitempty"`
}

// TLSConfig is how a source connects to its server over TLS. Without CAFile
// the system's roots are used.
type TLSConfig struct {
	CAFile   string `yaml:"ca_file" json:"ca_file,omitempty"`
	CertFile string `yaml:"cert_file" json:"cert_file,omitempty"` // client certificate, with KeyFile
	KeyFile  string `yaml:"key_file" json:"key_file,omitempty"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// InsecureSkipVerify turns off verification of the server's
	// certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks what every source type shares: a name, a type and a
// mount that is a valid key prefix. The type's own fields are checked by its
// factory, which New calls.
func (c Config) Validate() error {
	if c.Name == "" {
		return c.errorf("name is required")
	}
	if !nameRE.MatchString(c.Name) {
		return c.errorf("name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", c.Name)
	}
	if c.Type == "" {
		return c.errorf("type is required (one of %s)", strings.Join(Types(), ", "))
	}
	if _, err := keyspace.Prefix(c.Mount); err != nil {
		return c.errorf("mount %q is not a valid key prefix: %w", c.Mount, err)
	}
	if c.TLS != nil {
		if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
			return c.errorf("tls: cert_file and key_file go together")
		}
	}
	return nil
}

// MountPrefix returns the canonical mount prefix ("" or ending in '/').
// It is only meaningful once Validate has passed.
func (c Config) MountPrefix() string {
	p, _ := keyspace.Prefix(c.Mount)
	return p
}

// Errorf returns an error about this config, wrapping ErrConfig and naming
// the source, for the factories' own checks.
func (c Config) Errorf(format string, args ...any) error {
	return c.errorf(format, args...)
}

func (c Config) errorf(format string, args ...any) error {
	who := "source"
	if c.Name != "" {
		who = fmt.Sprintf("source %q", c.Name)
	}
	if c.Type != "" {
		who += fmt.Sprintf(" (type %s)", c.Type)
	}
	return fmt.Errorf("%w: %s: %w", ErrConfig, who, fmt.Errorf(format, args...))
}

// OnlyFields returns an error naming the first field that is set but not
// among the YAML names given (name, type and mount are always allowed).
// Factories call it so that, say, endpoints on a consul source is refused.
func (c Config) OnlyFields(allowed ...string) error {
	set := map[string]bool{
		"path":       c.Path != "",
		"address":    c.Address != "",
		"endpoints":  len(c.Endpoints) > 0,
		"prefix":     c.Prefix != "",
		"datacenter": c.Datacenter != "",
		"token":      c.Token != "",
		"username":   c.Username != "",
		"password":   c.Password != "",
		"tls":        c.TLS != nil,
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for _, f := range []string{"path", "address", "endpoints", "prefix", "datacenter", "token", "username", "password", "tls"} {
		if set[f] && !ok[f] {
			return c.errorf("%s is not used by type %s (it uses %s)", f, c.Type, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// ClientTLS builds the *tls.Config that TLS describes, reading its files.
// It returns nil for a nil TLSConfig.
func (t *TLSConfig) ClientTLS() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // documented as tests only
		MinVersion:         tls.VersionTLS12,
	}
	if t.CAFile != "" {
		pool, err := pemfile.CertPool("tls: ca_file", t.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := pemfile.KeyPair("tls: cert_file", t.CertFile, "tls: key_file", t.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
