package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"

	"github.com/configd/configd/internal/pemfile"
)

// ALPN protocol names.
const (
	alpnHTTP1 = "http/1.1"
	alpnH2    = "h2"
)

// serverTLS returns the TLS configuration of cfg, or nil when TLS is off.
// Errors name the file at fault and why.
//
// The server prefers http/1.1 to h2 (Go's TLS server picks by its own
// order): browsers, curl and Go's HTTP client offer both and get
// HTTP/1.1, the HTTP API; gRPC clients offer only h2 and get it. The mux
// routes on the result (see portMux.routeTLS).
func serverTLS(cfg Config) (*tls.Config, error) {
	if !cfg.TLSOn() {
		return nil, nil
	}
	cert, err := pemfile.KeyPair("TLS certificate", cfg.TLSCert, "TLS key", cfg.TLSKey)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{alpnHTTP1, alpnH2},
		MinVersion:   tls.VersionTLS12,
	}
	if cfg.TLSClientCA != "" {
		pool, err := pemfile.CertPool("TLS client CA", cfg.TLSClientCA)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// peerTLS returns the TLS configuration a replica forwards writes to the
// cluster's writer with (--peer-ca: the CAs of the replicas' serving
// certificates), or nil when it has none.
func peerTLS(cfg Config) (*tls.Config, error) {
	if cfg.Etcd.PeerCA == "" {
		return nil, nil
	}
	pool, err := pemfile.CertPool("peer CA (--peer-ca)", cfg.Etcd.PeerCA)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// handshakenTLS are the gRPC server's transport credentials when configd
// serves TLS. The port mux has already done the TLS handshake (it must, to
// learn from ALPN whether the client speaks gRPC), so the connection the
// gRPC server gets is a *tls.Conn past its handshake: ServerHandshake only
// reports it as TLS, with its state (peer certificates, ALPN), so that
// peer.AuthInfo and credentials.CheckSecurityLevel see what the client
// sees: a connection with privacy and integrity. A connection that did not
// come through TLS is refused.
type handshakenTLS struct{}

var _ credentials.TransportCredentials = handshakenTLS{}

func (handshakenTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok || !tc.ConnectionState().HandshakeComplete {
		return nil, nil, errors.New("configd: gRPC connection without a completed TLS handshake")
	}
	return tc, credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (handshakenTLS) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("configd: handshakenTLS is for the server only")
}

func (handshakenTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (c handshakenTLS) Clone() credentials.TransportCredentials { return c }

func (handshakenTLS) OverrideServerName(string) error { return nil }
