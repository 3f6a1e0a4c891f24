package client_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

// proxy forwards tcp connections to target until kill cuts every one of them.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	t.Cleanup(func() { l.Close(); p.kill() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *proxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

type Blocker struct {
	started chan struct{}
	release chan struct{}
}

func (b *Blocker) Wait(ctx context.Context, req *Msg, rsp *Msg) error {
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

// Calls in flight on a shared connection that dies each end Unavailable; the idempotent ones
// are retryable (they may have run, and may run again), the others not.
func TestConnectionLossFailsEveryCallInFlight(t *testing.T) {
	const n = 16
	b := &Blocker{started: make(chan struct{}, n), release: make(chan struct{})}
	srv, err := server.New(server.Name("blocker"), server.Transport(tcp.New()), server.GracePeriod(0), server.DrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(b); err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(Echo{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, srv.Addr())
	defer srv.Stop(context.Background())
	defer close(b.release) // before Stop: deferred calls run last-in first-out
	c, err := client.New(client.Transport(tcp.New(transport.Connections(1))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			opts := []client.CallOption{client.WithAddress(p.l.Addr().String()), client.WithRequestTimeout(time.Minute)}
			if i%2 == 0 {
				opts = append(opts, client.Idempotent())
			}
			var rsp Msg
			err := c.Call(context.Background(), "blocker", "Blocker.Wait", &Msg{}, &rsp, opts...)
			if i%2 == 0 {
				errs <- retryable{err, true}
			} else {
				errs <- retryable{err, false}
			}
		}()
	}
	for range n {
		select {
		case <-b.started:
		case <-time.After(10 * time.Second):
			t.Fatal("calls did not all reach the handler")
		}
	}
	p.kill()
	for range n {
		var e error
		select {
		case e = <-errs:
		case <-time.After(10 * time.Second):
			t.Fatal("a call in flight did not end when its connection died")
		}
		r := e.(retryable)
		se, ok := status.From(r.err)
		if !ok || se.Code != status.Unavailable || se.Retryable != r.want {
			t.Fatalf("call ended with %#v, want Unavailable with Retryable %v", r.err, r.want)
		}
	}
	// The client dials anew.
	var rsp Msg
	if err := c.Call(context.Background(), "blocker", "Echo.Say", &Msg{Text: "again"}, &rsp, client.WithAddress(p.l.Addr().String())); err != nil || rsp.Text != "again" {
		t.Fatalf("call after the connection loss: %+v, %v", rsp, err)
	}
}

type retryable struct {
	err  error
	want bool
}

func (r retryable) Error() string { return "" }
