package grpc_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/transport"
	tgrpc "github.com/configd/configd/sdk/go/micro/transport/grpc"
	"github.com/configd/configd/sdk/go/micro/transport/transporttest"
)

// echoServer listens on tr and echoes every message until the socket fails; the error that
// ended each socket goes to errs. The listener is closed at cleanup.
func echoServer(t *testing.T, tr transport.Transport) (transport.Listener, chan error) {
	t.Helper()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	done := make(chan error, 1)
	go func() {
		done <- l.Accept(func(s transport.Socket) {
			defer s.Close()
			for {
				var m transport.Message
				if err := s.Recv(&m); err != nil {
					errs <- err
					return
				}
				if err := s.Send(&m); err != nil {
					errs <- err
					return
				}
			}
		})
	}()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("Accept returned %v after Close, want nil", err)
		}
	})
	return l, errs
}

func dial(t *testing.T, tr transport.Transport, addr string) transport.Socket {
	t.Helper()
	s, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestEcho(t *testing.T) {
	tr := tgrpc.New(transport.MaxFrameSize(1 << 17))
	defer tr.Close()
	l, _ := echoServer(t, tr)
	s := dial(t, tr, l.Addr())
	if s.Remote() != l.Addr() || s.Local() == "" {
		t.Fatalf("addresses: local %q remote %q, listener %q", s.Local(), s.Remote(), l.Addr())
	}
	for _, in := range []*transport.Message{
		{Header: map[string]string{"Micro-Endpoint": "Greeter.Hello", "": "empty key", "k": ""}, Body: []byte("hello")},
		{Header: map[string]string{}, Body: nil},
		{Header: map[string]string{"a": "b"}, Body: bytes.Repeat([]byte{7}, 100000)},
	} {
		if err := s.Send(in); err != nil {
			t.Fatal(err)
		}
		var out transport.Message
		if err := s.Recv(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Body, in.Body) || len(out.Header) != len(in.Header) {
			t.Fatalf("sent %d headers, %d bytes; got %v, %d bytes", len(in.Header), len(in.Body), out.Header, len(out.Body))
		}
		for k, v := range in.Header {
			if out.Header[k] != v {
				t.Fatalf("header %q = %q, want %q", k, out.Header[k], v)
			}
		}
	}
}

// TestManySocketsOneConnection runs concurrent sockets (streams) with concurrent messages.
func TestManySocketsOneConnection(t *testing.T) {
	tr := tgrpc.New()
	defer tr.Close()
	l, _ := echoServer(t, tr)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			s, err := tr.Dial(context.Background(), l.Addr())
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			for j := range 50 {
				body := []byte(strings.Repeat(string(rune('a'+i)), j))
				if err := s.Send(&transport.Message{Body: body}); err != nil {
					errs <- err
					return
				}
				var out transport.Message
				if err := s.Recv(&out); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(out.Body, body) {
					errs <- errors.New("crossed messages: " + string(out.Body))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestFrameTooLarge(t *testing.T) {
	tr := tgrpc.New(transport.MaxFrameSize(1000))
	defer tr.Close()
	l, serverErrs := echoServer(t, tr)
	s := dial(t, tr, l.Addr())
	// Refused before writing: the socket is still good.
	err := s.Send(&transport.Message{Body: make([]byte, 1001)})
	if !errors.Is(err, transport.ErrFrameTooLarge) {
		t.Fatalf("Send of 1001 bytes: %v, want ErrFrameTooLarge", err)
	}
	if err := s.Send(&transport.Message{Body: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	var out transport.Message
	if err := s.Recv(&out); err != nil || string(out.Body) != "ok" {
		t.Fatalf("after a refused send: %q, %v", out.Body, err)
	}

	// A client with a bigger limit: the server's Recv refuses the message.
	big := tgrpc.New(transport.MaxFrameSize(1 << 20))
	defer big.Close()
	s2 := dial(t, big, l.Addr())
	if err := s2.Send(&transport.Message{Body: make([]byte, 5000)}); err != nil {
		t.Fatal(err)
	}
	if err := transporttest.Within(t, serverErrs, "a value"); !errors.Is(err, transport.ErrFrameTooLarge) {
		t.Fatalf("server Recv: %v, want ErrFrameTooLarge", err)
	}
	// gRPC ends the stream with ResourceExhausted: the client learns why.
	if err := s2.Recv(&out); !errors.Is(err, transport.ErrFrameTooLarge) || !strings.Contains(err.Error(), "5003 vs. 1000") {
		t.Fatalf("client Recv after the server refused its message: %v, want ErrFrameTooLarge with the sizes", err)
	}
}

// TestCloseUnblocksRecv: closing either end ends a pending Recv on both.
func TestCloseUnblocksRecv(t *testing.T) {
	tr := tgrpc.New()
	defer tr.Close()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	server := make(chan transport.Socket, 1)
	go l.Accept(func(s transport.Socket) { server <- s })

	c := dial(t, tr, l.Addr())
	if err := c.Send(&transport.Message{Body: []byte("hi")}); err != nil { // the server sees a stream once something is sent
		t.Fatal(err)
	}
	srv := transporttest.Within(t, server, "a value")
	var m transport.Message
	if err := srv.Recv(&m); err != nil {
		t.Fatal(err)
	}
	serverRecv := make(chan error, 1)
	go func() { serverRecv <- srv.Recv(&transport.Message{}) }()
	clientRecv := make(chan error, 1)
	go func() { clientRecv <- c.Recv(&transport.Message{}) }()
	srv.Close()
	if err := transporttest.Within(t, clientRecv, "a value"); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("client Recv after the server closed: %v, want ErrClosed", err)
	}
	if err := transporttest.Within(t, serverRecv, "a value"); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("server Recv after Close: %v, want ErrClosed", err)
	}
	if err := srv.Send(&transport.Message{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("server Send after Close: %v, want ErrClosed", err)
	}
}

// TestListenerClose: open sockets go on; new sockets are refused; Accept returns nil.
func TestListenerClose(t *testing.T) {
	tr := tgrpc.New()
	defer tr.Close()
	l, _ := echoServer(t, tr)
	s := dial(t, tr, l.Addr())
	if err := s.Send(&transport.Message{Body: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	var m transport.Message
	if err := s.Recv(&m); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := s.Send(&transport.Message{Body: []byte("2")}); err != nil {
		t.Fatalf("open socket after listener Close: %v", err)
	}
	if err := s.Recv(&m); err != nil || string(m.Body) != "2" {
		t.Fatalf("open socket after listener Close: %q, %v", m.Body, err)
	}
	// A new stream on the same connection is refused.
	s2 := dial(t, tr, l.Addr())
	s2.Send(&transport.Message{Body: []byte("3")})
	if err := s2.Recv(&m); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("new stream after listener Close: %v, want ErrClosed", err)
	}
}

func TestDialNothing(t *testing.T) {
	tr := tgrpc.New(transport.DialTimeout(3 * time.Second))
	defer tr.Close()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr()
	l.Close()
	start := time.Now()
	_, err = tr.Dial(context.Background(), addr)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("dial to a closed port: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("dial to a closed port took %v: it should fail fast, not wait for the timeout", time.Since(start))
	}
	tr.Close()
	if _, err := tr.Dial(context.Background(), addr); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Dial after Close: %v, want ErrClosed", err)
	}
}
