// Package loopback tells whether a host names this machine, for the rule
// that a token or a secret's value travels in clear text only to a
// loopback address.
package loopback

import "net"

// Host reports whether host (a name or an IP, without port or brackets)
// is a loopback address: "localhost", 127.0.0.0/8 or ::1.
func Host(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
