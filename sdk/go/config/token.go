package config

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/loopback"
)

// EnvToken is the environment variable the client reads its bearer token
// from when WithToken is not given.
const EnvToken = api.EnvToken

// WithToken authenticates the client to a configd that requires tokens
// (see configctl token create). The token is sent with every call as
// "authorization: Bearer <token>" metadata. The token needs read on the
// client's scope (WithPrefix, WithKeys; the whole keyspace without them),
// or configd refuses the client (see Client.Err). Over a plaintext
// connection it is sent only to a loopback address: to reach another host,
// use WithTLS. Without this option the client reads CONFIGD_TOKEN.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// tokenCreds sends a bearer token with each RPC.
type tokenCreds struct{ token string }

var _ credentials.PerRPCCredentials = tokenCreds{}

// GetRequestMetadata refuses to put the token on the wire in clear text
// unless the server is on this machine.
func (c tokenCreds) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	if credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity) != nil {
		host := ""
		if len(uri) > 0 {
			if u, err := url.Parse(uri[0]); err == nil {
				host = u.Hostname()
			}
		}
		if !loopback.Host(host) {
			return nil, plainTokenError(host)
		}
	}
	return map[string]string{"authorization": "Bearer " + c.token}, nil
}

// RequireTransportSecurity is false so that loopback connections may be
// plaintext; GetRequestMetadata enforces the rest.
func (tokenCreds) RequireTransportSecurity() bool { return false }

// checkTokenTransport refuses to open a connection to addr that would
// carry the client's token in clear text to another host.
func (c *Client) checkTokenTransport(addr string) error {
	if c.opts.token == "" || c.opts.tls != nil {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if !loopback.Host(host) {
		return plainTokenError(host)
	}
	return nil
}

func tokenDialOptions(token string) []grpc.DialOption {
	if token == "" {
		return nil
	}
	return []grpc.DialOption{grpc.WithPerRPCCredentials(tokenCreds{token: token})}
}
