// Package pemfile reads the PEM files of TLS configurations (CA bundles,
// certificates and keys), with errors that name the file and what it was
// for. configd's server side and its clients (the SDK, configctl) share it.
package pemfile

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Read reads a file of PEM text; what says what the file is for ("CA",
// "TLS key", ...) in the error.
func Read(what, path string) ([]byte, error) {
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

// CertPool reads a bundle of CA certificates.
func CertPool(what, path string) (*x509.CertPool, error) {
	pem, err := Read(what, path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s file %s: no PEM certificate in it", what, path)
	}
	return pool, nil
}

// KeyPair reads a certificate and its key; what names the certificate
// ("client certificate", "TLS certificate"), whatKey the key.
func KeyPair(what, certFile, whatKey, keyFile string) (tls.Certificate, error) {
	certPEM, err := Read(what, certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := Read(whatKey, keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s %s and key %s: %w", what, certFile, keyFile, err)
	}
	return cert, nil
}
