package source

import (
	"crypto/tls"
	"errors"

	"github.com/configd/configd/internal/pemfile"
)

// TLSConfig is how a source connects to its server over TLS: the tls field
// of the types that talk to a server (consul, etcd). Without CAFile the
// system's roots are used.
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

// Validate checks the fields without reading the files: ClientTLS reads
// them. A nil TLSConfig is valid (no TLS).
func (t *TLSConfig) Validate() error {
	if t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("tls: cert_file and key_file go together")
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
