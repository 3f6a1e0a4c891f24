package tcp_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/configd/configd/sdk/go/micro/transport"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/transport/transporttest"
)

func listen(t *testing.T, tr transport.Transport, fn func(transport.Socket)) transport.Listener {
	t.Helper()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); l.Accept(fn) }()
	t.Cleanup(func() { l.Close(); <-done })
	return l
}

// Many calls in flight over one connection, answered in the reverse order of arrival: each
// socket gets its own answer.
func TestSharedSocketsOutOfOrderOverOneConnection(t *testing.T) {
	const n = 64
	tr := tcp.New(transport.Connections(1))
	type call struct {
		s transport.Socket
		m transport.Message
	}
	arrived := make(chan call, n)
	l := listen(t, tr, func(s transport.Socket) {
		defer s.Close()
		for {
			var m transport.Message
			if err := s.Recv(&m); err != nil {
				return
			}
			arrived <- call{s, m}
		}
	})
	errs := make(chan error, n)
	for i := range n {
		go func() {
			s, err := tr.DialShared(context.Background(), l.Addr())
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			want := strconv.Itoa(i)
			if err := s.Send(&transport.Message{Header: map[string]string{"i": want}, Body: []byte("req " + want)}); err != nil {
				errs <- err
				return
			}
			var m transport.Message
			if err := s.Recv(&m); err != nil {
				errs <- err
				return
			}
			if m.Header["i"] != want || string(m.Body) != "rsp "+want {
				errs <- fmt.Errorf("call %s got %v %q", want, m.Header, m.Body)
				return
			}
			errs <- nil
		}()
	}
	var calls []call
	remotes := map[string]bool{}
	for range n {
		c := transporttest.Within(t, arrived, "request")
		calls = append(calls, c)
		remotes[c.s.Remote()] = true
	}
	if len(remotes) != 1 {
		t.Fatalf("%d sockets came over %d connections, want 1: %v", n, len(remotes), remotes)
	}
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		if err := c.s.Send(&transport.Message{Header: map[string]string{"i": c.m.Header["i"]}, Body: []byte("rsp " + c.m.Header["i"])}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if err := transporttest.Within(t, errs, "answer"); err != nil {
			t.Fatal(err)
		}
	}
}

// A stream's frames arrive in the order sent while other sockets write to the same
// connection: coalescing batches frames, it does not reorder them.
func TestSharedWritesKeepEachSocketsOrder(t *testing.T) {
	const senders, frames = 8, 500
	tr := tcp.New(transport.Connections(1))
	l := listen(t, tr, func(s transport.Socket) {
		defer s.Close()
		for {
			var m transport.Message
			if err := s.Recv(&m); err != nil {
				return
			}
			if err := s.Send(&m); err != nil {
				return
			}
		}
	})
	errs := make(chan error, senders)
	for range senders {
		go func() {
			s, err := tr.DialShared(context.Background(), l.Addr())
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			recvd := make(chan error, 1)
			go func() {
				for i := range frames {
					var m transport.Message
					if err := s.Recv(&m); err != nil {
						recvd <- err
						return
					}
					if string(m.Body) != strconv.Itoa(i) {
						recvd <- fmt.Errorf("frame %d arrived as %q", i, m.Body)
						return
					}
				}
				recvd <- nil
			}()
			for i := range frames { // without waiting: frames queue up and are written together
				if err := s.Send(&transport.Message{Body: []byte(strconv.Itoa(i))}); err != nil {
					errs <- err
					return
				}
			}
			errs <- <-recvd
		}()
	}
	for range senders {
		if err := transporttest.Within(t, errs, "sender"); err != nil {
			t.Fatal(err)
		}
	}
}

// muxServer speaks just enough mux1 to answer the preface, then reports every data frame's
// stream id; closing the returned conns channel's connection kills the connection.
func muxServer(t *testing.T) (addr string, conns <-chan net.Conn, ids <-chan uint64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cc, ic := make(chan net.Conn, 4), make(chan uint64, 256)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				r := bufio.NewReader(c)
				pre := make([]byte, 8)
				if _, err := io.ReadFull(r, pre); err != nil {
					return
				}
				c.Write(pre)
				cc <- c
				for {
					var hdr [4]byte
					if _, err := io.ReadFull(r, hdr[:]); err != nil {
						return
					}
					frame := make([]byte, binary.BigEndian.Uint32(hdr[:]))
					if _, err := io.ReadFull(r, frame); err != nil {
						return
					}
					id, k := binary.Uvarint(frame)
					if frame[k] == 0 {
						ic <- id
					}
				}
			}()
		}
	}()
	return l.Addr().String(), cc, ic
}

// A connection that dies with calls in flight ends every one of them with ErrClosed, and the
// next socket gets a new connection.
func TestSharedConnectionDeathEndsEverySocket(t *testing.T) {
	const n = 16
	addr, conns, ids := muxServer(t)
	tr := tcp.New(transport.Connections(1))
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := tr.DialShared(context.Background(), addr)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			if err := s.Send(&transport.Message{Body: []byte("x")}); err != nil {
				errs <- err
				return
			}
			var m transport.Message
			errs <- s.Recv(&m)
		}()
	}
	c := transporttest.Within(t, conns, "connection")
	seen := map[uint64]bool{}
	for range n {
		seen[transporttest.Within(t, ids, "request")] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct stream ids for %d sockets", len(seen), n)
	}
	c.Close()
	for range n {
		if err := transporttest.Within(t, errs, "call end"); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("in-flight Recv: err = %v, want ErrClosed", err)
		}
	}
	s, err := tr.DialShared(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	transporttest.Within(t, conns, "a new connection after the first died")
}

// A server from before mux1 closes the connection on the preface: the client falls back to
// plain connections.
func TestSharedFallsBackToPlainConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { // the old server: rejects a frame announcing 4 GiB, echoes plain frames
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var hdr [4]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil || binary.BigEndian.Uint32(hdr[:]) > 1<<20 {
				c.Close()
				continue
			}
			body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			io.ReadFull(c, body)
			c.Write(append(hdr[:], body...))
			c.Close()
			return
		}
	}()
	tr := tcp.New()
	s, err := tr.DialShared(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send(&transport.Message{Body: []byte("plain")}); err != nil {
		t.Fatal(err)
	}
	var m transport.Message
	if err := s.Recv(&m); err != nil || string(m.Body) != "plain" {
		t.Fatalf("echo over the fallback: %q, %v", m.Body, err)
	}
}

// After the listener closes, a stream opened on a shared connection is refused, not handed
// over: nothing of it ran.
func TestSharedSocketRefusedAfterListenerClose(t *testing.T) {
	tr := tcp.New(transport.Connections(1))
	opened := make(chan transport.Socket, 4)
	l := listen(t, tr, func(s transport.Socket) { opened <- s })
	first, err := tr.DialShared(context.Background(), l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := first.Send(&transport.Message{Body: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	held := transporttest.Within(t, opened, "first stream")
	// The second socket opens before the client learns of the go-away.
	second, err := tr.DialShared(context.Background(), l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	l.Close()
	second.Send(&transport.Message{Body: []byte("b")})
	var m transport.Message
	err = second.Recv(&m)
	if err == nil {
		t.Fatal("a stream opened after the listener closed was served")
	}
	if !errors.Is(err, transport.ErrRefused) || !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("second stream: err = %v, want ErrRefused and ErrClosed", err)
	}
	select {
	case s := <-opened:
		t.Fatalf("stream %v handed over after Close", s)
	default:
	}
	// The held stream still works until it closes; then the connection ends.
	if err := held.Send(&transport.Message{Body: []byte("still")}); err != nil {
		t.Fatal(err)
	}
	if err := first.Recv(&m); err != nil || string(m.Body) != "still" {
		t.Fatalf("held stream after Close: %q, %v", m.Body, err)
	}
	held.Close()
	if err := first.Recv(&m); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("after the server closed the last stream: %v", err)
	}
}
