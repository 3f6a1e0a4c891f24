package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
		pem, err := readPEMFile("CA", caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
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
		certPEM, err := readPEMFile("client certificate", certFile)
		if err != nil {
			return nil, err
		}
		keyPEM, err := readPEMFile("client key", keyFile)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s and key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// readPEMFile reads a file of PEM text, with an error that says what the
// file was for and why it cannot be read.
func readPEMFile(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s file %s: %w", what, path, err)
	}
	return b, nil
}
