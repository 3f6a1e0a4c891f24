package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRewriteSectionKeepsTheRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(path, []byte("# B\n\nintro\n\n"+beginMarker+"\nold\n"+endMarker+"\n\n## rest\n"), 0o644)
	if err := rewriteSection(path, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# B\n\nintro\n\n" + beginMarker + "\nnew\n" + endMarker + "\n\n## rest\n"
	if string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	os.WriteFile(path, []byte("no markers"), 0o644)
	if err := rewriteSection(path, "x"); err == nil {
		t.Fatal("no error without markers")
	}
}

func TestNumbers(t *testing.T) {
	for x, want := range map[float64]string{1234567: "1,234,567", 999: "999", 0: "0"} {
		if got := num(x); got != want {
			t.Errorf("num(%v) = %q, want %q", x, got, want)
		}
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
	if plural(1, "writer") != "1 writer" || plural(10000, "watcher") != "10,000 watchers" {
		t.Error("plural")
	}
}

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
	px, err := newProxy(echo.Addr().String())
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
