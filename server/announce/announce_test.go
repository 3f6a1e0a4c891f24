package announce

import (
	"net"
	"testing"
	"time"
)

func TestTimingDefaults(t *testing.T) {
	for _, tc := range []struct{ ttl, interval, wantTTL, wantInterval time.Duration }{
		{0, 0, DefaultRegisterTTL, DefaultRegisterTTL / 3},
		{9 * time.Second, 0, 9 * time.Second, 3 * time.Second},
		{9 * time.Second, time.Second, 9 * time.Second, time.Second},
	} {
		if ttl, interval := Timing(tc.ttl, tc.interval); ttl != tc.wantTTL || interval != tc.wantInterval {
			t.Errorf("Timing(%v, %v) = %v, %v; want %v, %v", tc.ttl, tc.interval, ttl, interval, tc.wantTTL, tc.wantInterval)
		}
	}
}

// A listener on every interface registers an address another host can
// dial: a private IPv4 first, then any private, then a global one, else
// loopback.
func TestPickIPPrefersAPrivateIPv4(t *testing.T) {
	ip := net.ParseIP
	for _, tc := range []struct {
		ips  []net.IP
		want string
	}{
		{[]net.IP{ip("127.0.0.1"), ip("203.0.113.7"), ip("fd00::1"), ip("10.1.2.3")}, "10.1.2.3"},
		{[]net.IP{ip("127.0.0.1"), ip("203.0.113.7"), ip("fd00::1")}, "fd00::1"},
		{[]net.IP{ip("127.0.0.1"), ip("203.0.113.7")}, "203.0.113.7"},
		{[]net.IP{ip("127.0.0.1")}, "127.0.0.1"},
	} {
		if got := pickIP(tc.ips); got != tc.want {
			t.Errorf("pickIP(%v) = %s, want %s", tc.ips, got, tc.want)
		}
	}
	if got := advertiseAddr(&net.TCPAddr{IP: ip("192.0.2.1"), Port: 7700}); got != "192.0.2.1:7700" {
		t.Errorf("a bound address is registered as it is: %s", got)
	}
}
