package authz

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc/peer"
)

// TestPeerIPOfEachKindOfAddress: the gRPC caller's IP, the client identity
// of limits and anonymous actors, whatever the address's kind.
func TestPeerIPOfEachKindOfAddress(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5000}, "127.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 5000}, "::1"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 5000, Zone: "eth0"}, "fe80::1%eth0"},
		{&net.UnixAddr{Name: "/run/configd.sock", Net: "unix"}, "/run/configd.sock"},
	} {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: c.addr})
		if got := peerIP(ctx); got != c.want {
			t.Errorf("peerIP(%v) = %q, want %q", c.addr, got, c.want)
		}
		if got, want := ctxIdentity(ctx), "ip:"+c.want; got != want {
			t.Errorf("ctxIdentity(%v) = %q, want %q", c.addr, got, want)
		}
	}
	if got := ctxIdentity(context.Background()); got != "ip:unknown" {
		t.Errorf("ctxIdentity without a peer = %q, want ip:unknown", got)
	}
}
