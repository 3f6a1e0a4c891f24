package config

import (
	"crypto/tls"
	"fmt"

	"github.com/configd/configd/internal/pemfile"
)

// LoadTLS builds the client TLS configuration for a configd that serves
// TLS (configd --tls-cert/--tls-key) from PEM files:
//
//   - caFile: the CA certificates that sign configd's certificate; empty
//     trusts the system's roots.
//   - certFile and keyFile: the client certificate and its key, for a
//     configd that requires one (--tls-client-ca, mutual TLS); both or
//     neither.
//
// Errors name the file at fault. The result is for WithTLS, and is also
// what configctl and package client use.
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := pemfile.CertPool("CA", caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile == "" && keyFile == "":
	case certFile == "":
		return nil, fmt.Errorf("client key %s given without its certificate", keyFile)
	case keyFile == "":
		return nil, fmt.Errorf("client certificate %s given without its key", certFile)
	default:
		cert, err := pemfile.KeyPair("client certificate", certFile, "client key", keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
