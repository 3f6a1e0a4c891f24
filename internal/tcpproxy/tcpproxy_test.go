package tcpproxy

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The proxy forwards, cuts live connections, refuses while cut, and
// notes the first connection after Restore.
func TestProxyCutAndRestore(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	px, err := New(echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	roundTrip := func() error {
		c, err := net.DialTimeout("tcp", px.Addr(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("hi")); err != nil {
			return err
		}
		b := make([]byte, 2)
		_, err = io.ReadFull(c, b)
		return err
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	live, err := net.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// One echo through it: the proxy holds the connection before the cut.
	live.SetDeadline(time.Now().Add(time.Second))
	if _, err := live.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(live, make([]byte, 2)); err != nil {
		t.Fatalf("echo on the live connection: %v", err)
	}
	px.Cut()
	live.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := live.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("a live connection survived the cut: %v", err)
	}
	if err := roundTrip(); err == nil {
		t.Fatal("a round trip while cut")
	}
	px.Restore()
	if !px.Reconnected().IsZero() {
		t.Fatal("reconnected before any connection")
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("after Restore: %v", err)
	}
	if px.Reconnected().IsZero() {
		t.Fatal("Reconnected not set")
	}
}
