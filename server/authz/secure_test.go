package authz

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

func TestSecureGRPC(t *testing.T) {
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 4000}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"no peer", context.Background(), false},
		{"loopback", peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}), true},
		{"loopback v6", peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv6loopback}}), true},
		{"remote plain", peer.NewContext(context.Background(), &peer.Peer{Addr: remote}), false},
		{"remote TLS", peer.NewContext(context.Background(), &peer.Peer{Addr: remote, AuthInfo: credentials.TLSInfo{}}), true},
	} {
		if got := SecureGRPC(tc.ctx); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
