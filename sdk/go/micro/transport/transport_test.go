package transport_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/transport"
	"github.com/configd/configd/sdk/go/micro/transport/memory"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/transport/transporttest"
)

var impls = map[string]func(...transport.Option) transport.Transport{"memory": memory.NewTransport, "tcp": tcp.NewTransport}

func TestEcho(t *testing.T) {
	for name, f := range impls {
		t.Run(name, func(t *testing.T) {
			tr := f(transport.MaxFrameSize(1 << 16))
			addr, _ := transporttest.EchoServer(t, tr)
			s, err := tr.Dial(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, body := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{7}, 60000)} {
				in := &transport.Message{Header: map[string]string{"Micro-Endpoint": "Greeter.Hello", "": "empty key"}, Body: body}
				if err := s.Send(in); err != nil {
					t.Fatal(err)
				}
				var out transport.Message
				if err := s.Recv(&out); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Body, body) || out.Header["Micro-Endpoint"] != "Greeter.Hello" || out.Header[""] != "empty key" {
					t.Fatalf("echo of %d bytes came back as %d bytes, headers %v", len(body), len(out.Body), out.Header)
				}
			}
			err = s.Send(&transport.Message{Body: make([]byte, 1<<16+1)})
			if !errors.Is(err, transport.ErrFrameTooLarge) {
				t.Fatalf("oversize Send: err = %v, want ErrFrameTooLarge", err)
			}
		})
	}
}

func TestCloseUnblocksRecv(t *testing.T) {
	for name, f := range impls {
		t.Run(name, func(t *testing.T) {
			tr := f()
			addr, _ := transporttest.EchoServer(t, tr)
			s, err := tr.Dial(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { var m transport.Message; errc <- s.Recv(&m) }()
			s.Close()
			if err := transporttest.Within(t, errc, "a value"); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("Recv after Close: err = %v, want ErrClosed", err)
			}
		})
	}
}

func TestDialNobody(t *testing.T) {
	for name, f := range impls {
		t.Run(name, func(t *testing.T) {
			tr := f()
			l, err := tr.Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr()
			l.Close()
			if s, err := tr.Dial(context.Background(), addr); err == nil {
				s.Close()
				t.Fatalf("dial of a closed listener at %s succeeded", addr)
			}
		})
	}
}

// TestTCPBadFramesCloseOnlyThatConnection writes bytes no client would, straight to the socket.
func TestTCPBadFramesCloseOnlyThatConnection(t *testing.T) {
	tr := tcp.New(transport.MaxFrameSize(1024))
	addr, errs := transporttest.EchoServer(t, tr)
	frame := func(payload []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
	}
	for _, tc := range []struct {
		name  string
		bytes []byte
		want  error
	}{
		{"oversize length", binary.BigEndian.AppendUint32(nil, 1<<30), transport.ErrFrameTooLarge},
		{"header count beyond frame", frame([]byte{0x7f}), transport.ErrMalformedFrame},
		{"key overruns", frame([]byte{1, 50, 'a'}), transport.ErrMalformedFrame},
		{"value overruns", frame([]byte{1, 1, 'k', 9, 'v'}), transport.ErrMalformedFrame},
		{"bad varint", frame([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), transport.ErrMalformedFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			err = transporttest.Within(t, errs, "a value")
			for errors.Is(err, transport.ErrClosed) { // the previous subtest's clean close
				err = transporttest.Within(t, errs, "a value")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("server Recv: err = %v, want %v", err, tc.want)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 || strings.Contains(err.Error(), "timeout") {
				t.Fatalf("connection not closed by the server: n=%d err=%v", n, err)
			}
			// The server is unaffected: a well-behaved client still gets its echo.
			s, err := tr.Dial(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Send(&transport.Message{Body: []byte("ok")}); err != nil {
				t.Fatal(err)
			}
			var m transport.Message
			if err := s.Recv(&m); err != nil || string(m.Body) != "ok" {
				t.Fatalf("after a bad frame: %q, %v", m.Body, err)
			}
		})
	}
}

func TestPoolReusesHealthySocketsOnly(t *testing.T) {
	tr := memory.New()
	addr, _ := transporttest.EchoServer(t, tr)
	p := transport.NewPool(tr, 1)
	defer p.Close()
	ctx := context.Background()
	s1, reused, err := p.Get(ctx, addr)
	if err != nil || reused {
		t.Fatalf("first Get: reused=%v err=%v", reused, err)
	}
	p.Put(addr, s1, true)
	s2, reused, _ := p.Get(ctx, addr)
	if !reused || s2 != s1 {
		t.Fatal("healthy socket was not reused")
	}
	p.Put(addr, s2, false)
	s3, reused, _ := p.Get(ctx, addr)
	if reused || s3 == s1 {
		t.Fatal("a socket returned as unhealthy was reused")
	}
	if err := s1.Send(&transport.Message{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("unhealthy socket not closed: Send err = %v", err)
	}
	p.Put(addr, s3, true)
	p.Close()
	if err := s3.Send(&transport.Message{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("idle socket not closed by pool Close: %v", err)
	}
	if _, _, err := p.Get(ctx, addr); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestCatalog(t *testing.T) {
	c, err := transport.NewCatalog(memory.Config{}, tcp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Add(tcp.Config{}); err == nil {
		t.Fatal("adding tcp twice succeeded")
	}
	m, err := c.New("tcp")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := m.NewTransport()
	if err != nil || tr.String() != "tcp" {
		t.Fatalf("New(tcp) = %v, %v", tr, err)
	}
	if _, err := c.New("utp"); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("New(utp): err = %v, want one listing the known names", err)
	}
}
