package authz

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/watcher"
)

// A secret's value goes out only on a connection that may carry it: over
// TLS, or to a client on a loopback address (the same host). Every door
// asks its protocol's function below, and refuses with PlainSecretMessage.

// SecureRequest reports whether a secret's value may be sent on r's
// connection.
func SecureRequest(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SecureGRPC reports whether a secret's value may be sent on the stream
// of ctx, a gRPC call's.
func SecureGRPC(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	if _, tls := p.AuthInfo.(credentials.TLSInfo); tls {
		return true
	}
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		return a.IP.IsLoopback()
	}
	return false
}

// PlainSecretMessage refuses key's value to a connection that is neither.
func PlainSecretMessage(key string) string {
	return fmt.Sprintf("key %q is secret: its value is served only over TLS or to a loopback address, and this connection is neither", key)
}

// checkPlain refuses b on a connection that may not carry secrets when it
// holds a secret's value.
func checkPlain(b watcher.Batch) error {
	if k, ok := b.SecretKey(); ok {
		return apierror.New(api.CodeForbidden, "%s", PlainSecretMessage(k))
	}
	return nil
}
