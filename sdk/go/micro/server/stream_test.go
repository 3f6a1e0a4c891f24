package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
	"github.com/configd/configd/sdk/go/micro/transport/transporttest"
)

type CountRequest struct{ N int }
type CountReply struct{ I int }

// Streamer has stream handlers of both shapes.
type Streamer struct {
	started chan struct{} // Block signals here when it begins
	ended   chan error    // Block sends its context's error here
}

// Echo sends back every message, in order, until the client's CloseSend.
func (s *Streamer) Echo(ctx context.Context, st server.Stream) error {
	md, _ := metadata.FromContext(ctx)
	metadata.SetResponse(ctx, "Tenant-Seen", md["Tenant"])
	for {
		var m HelloRequest
		err := st.Recv(&m)
		if err == io.EOF {
			metadata.SetResponse(ctx, "Trailer", "done")
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Send(&HelloResponse{Msg: m.Name}); err != nil {
			return err
		}
	}
}

// Count streams N replies: a server-streaming handler.
func (s *Streamer) Count(ctx context.Context, req *CountRequest, st server.Stream) error {
	for i := range req.N {
		if err := st.Send(&CountReply{I: i}); err != nil {
			return err
		}
	}
	return nil
}

// Fail sends one message, then fails.
func (s *Streamer) Fail(ctx context.Context, st server.Stream) error {
	if err := st.Send(&HelloResponse{Msg: "one"}); err != nil {
		return err
	}
	return status.New(status.BadRequest, "no more for you")
}

// Block waits for its context to end.
func (s *Streamer) Block(ctx context.Context, st server.Stream) error {
	s.started <- struct{}{}
	<-ctx.Done()
	s.ended <- ctx.Err()
	return ctx.Err()
}

type streamEnv struct {
	srv *server.Server
	cli *client.Client
	s   *Streamer
}

func startStreams(t *testing.T, tr transport.Transport, opts ...server.Option) *streamEnv {
	t.Helper()
	if c, ok := tr.(io.Closer); ok {
		t.Cleanup(func() { c.Close() })
	}
	reg := memory.New()
	e := &streamEnv{s: &Streamer{started: make(chan struct{}, 1), ended: make(chan error, 1)}}
	var err error
	e.srv, err = server.New(append([]server.Option{server.Name("streams"), server.Registry(reg), server.Transport(tr),
		server.GracePeriod(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Handle(e.s); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.HandleDesc(&configdpb.Config_ServiceDesc, &fakeConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Handle(&Greeter{}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.srv.Stop(context.Background()) })
	sel, err := selector.New(selector.Registry(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sel.Close() })
	e.cli, err = client.New(client.Selector(sel), client.Transport(tr), client.RequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cli.Close() })
	return e
}
func TestStreamBidiEchoInOrderWithMetadataBothWays(t *testing.T) {
	const n = 200
	for name, tr := range withGRPC() {
		t.Run(name, func(t *testing.T) {
			e := startStreams(t, tr())
			ctx := metadata.NewContext(context.Background(), metadata.Metadata{"Tenant": "acme"})
			st, err := e.cli.Stream(ctx, "streams", "Streamer.Echo")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			sent := make(chan error, 1)
			go func() {
				for i := range n {
					if err := st.Send(&HelloRequest{Name: fmt.Sprint(i)}); err != nil {
						sent <- err
						return
					}
				}
				sent <- st.CloseSend()
			}()
			for i := range n {
				var m HelloResponse
				if err := st.Recv(&m); err != nil {
					t.Fatalf("Recv %d: %v", i, err)
				}
				if m.Msg != fmt.Sprint(i) {
					t.Fatalf("message %d is %q: out of order", i, m.Msg)
				}
			}
			if err := st.Recv(&HelloResponse{}); err != io.EOF {
				t.Fatalf("after the last message: %v, want io.EOF", err)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if md := st.Metadata(); md["Tenant-Seen"] != "acme" || md["Trailer"] != "done" {
				t.Fatalf("response metadata %v", md)
			}
		})
	}
}

func TestStreamServerStreaming(t *testing.T) {
	for name, tr := range withGRPC() {
		t.Run(name, func(t *testing.T) {
			e := startStreams(t, tr())
			st, err := e.cli.Stream(context.Background(), "streams", "Streamer.Count", client.WithContentType("application/json"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Send(&CountRequest{N: 50}); err != nil {
				t.Fatal(err)
			}
			var got []int
			for {
				var r CountReply
				err := st.Recv(&r)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, r.I)
			}
			if len(got) != 50 || got[0] != 0 || got[49] != 49 {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestStreamHandlerErrorReachesRecv(t *testing.T) {
	for name, tr := range withGRPC() {
		t.Run(name, func(t *testing.T) {
			e := startStreams(t, tr())
			st, err := e.cli.Stream(context.Background(), "streams", "Streamer.Fail")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var m HelloResponse
			if err := st.Recv(&m); err != nil || m.Msg != "one" {
				t.Fatalf("first Recv: %+v, %v", m, err)
			}
			for range 2 { // the end stays the answer
				err := st.Recv(&m)
				se, ok := status.From(err)
				if !ok || se.Code != status.BadRequest || se.Message != "no more for you" || se.Endpoint != "Streamer.Fail" {
					t.Fatalf("Recv after the handler failed: %v", err)
				}
			}
			if err := st.Send(&HelloRequest{}); err == nil {
				t.Fatal("Send on an ended stream succeeded")
			}
		})
	}
}

func TestStreamClientCancelEndsServerContext(t *testing.T) {
	for name, tr := range withGRPC() {
		t.Run(name, func(t *testing.T) {
			e := startStreams(t, tr())
			ctx, cancel := context.WithCancel(context.Background())
			st, err := e.cli.Stream(ctx, "streams", "Streamer.Block")
			if err != nil {
				t.Fatal(err)
			}
			transporttest.Within(t, e.s.started, "the handler to start")
			recvd := make(chan error, 1)
			go func() { recvd <- st.Recv(&HelloResponse{}) }()
			cancel()
			if err := transporttest.Within(t, e.s.ended, "the handler's context to end"); !errors.Is(err, context.Canceled) {
				t.Fatalf("handler context: %v", err)
			}
			if err := transporttest.Within(t, recvd, "Recv to return"); !errors.Is(err, context.Canceled) || status.CodeOf(err) != status.Canceled {
				t.Fatalf("client Recv after cancel: %v", err)
			}
		})
	}
}

func TestStreamCloseEndsServerContext(t *testing.T) {
	e := startStreams(t, transports["tcp"]())
	st, err := e.cli.Stream(context.Background(), "streams", "Streamer.Block")
	if err != nil {
		t.Fatal(err)
	}
	transporttest.Within(t, e.s.started, "the handler to start")
	st.Close()
	if err := transporttest.Within(t, e.s.ended, "the handler's context to end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("handler context: %v", err)
	}
}

func TestStreamDeadlineReachesHandler(t *testing.T) {
	e := startStreams(t, transports["tcp"]())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	st, err := e.cli.Stream(ctx, "streams", "Streamer.Block")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	transporttest.Within(t, e.s.started, "the handler to start")
	if err := transporttest.Within(t, e.s.ended, "the handler's deadline"); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Fatalf("handler context: %v", err)
	}
	if err := st.Recv(&HelloResponse{}); status.CodeOf(err) != status.Timeout {
		t.Fatalf("Recv past the deadline: %v, want Timeout", err)
	}
}

func TestStreamStopDrainsOpenStream(t *testing.T) {
	for name, tr := range withGRPC() {
		t.Run(name, func(t *testing.T) {
			phases := make(chan server.Phase, 8)
			e := startStreams(t, tr(), server.OnPhase(func(p server.Phase) { phases <- p }))
			st, err := e.cli.Stream(context.Background(), "streams", "Streamer.Echo")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var m HelloResponse
			if err := st.Send(&HelloRequest{Name: "before"}); err != nil {
				t.Fatal(err)
			}
			if err := st.Recv(&m); err != nil || m.Msg != "before" {
				t.Fatalf("%+v, %v", m, err)
			}
			stopped := make(chan error, 1)
			go func() { stopped <- e.srv.Stop(context.Background()) }()
			for p := server.Phase(""); p != server.PhaseListenerClosed; {
				p = transporttest.Within(t, phases, "the listener to close")
			}
			// Draining: the open stream still works, and ends normally.
			if err := st.Send(&HelloRequest{Name: "during"}); err != nil {
				t.Fatal(err)
			}
			if err := st.Recv(&m); err != nil || m.Msg != "during" {
				t.Fatalf("during the drain: %+v, %v", m, err)
			}
			select {
			case err := <-stopped:
				t.Fatalf("Stop returned with a stream open: %v", err)
			default:
			}
			st.CloseSend()
			if err := st.Recv(&m); err != io.EOF {
				t.Fatalf("end: %v", err)
			}
			if err := transporttest.Within(t, stopped, "Stop"); err != nil {
				t.Fatalf("Stop: %v", err)
			}
		})
	}
}

func TestStreamStopCutsOffAfterDrainTimeout(t *testing.T) {
	for name, tr := range withGRPC() {
		t.Run(name, func(t *testing.T) {
			e := startStreams(t, tr(), server.DrainTimeout(100*time.Millisecond))
			st, err := e.cli.Stream(context.Background(), "streams", "Streamer.Block")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			transporttest.Within(t, e.s.started, "the handler to start")
			if err := e.srv.Stop(context.Background()); !errors.Is(err, server.ErrDrainTimeout) {
				t.Fatalf("Stop: %v, want ErrDrainTimeout", err)
			}
			if err := transporttest.Within(t, e.s.ended, "the handler's context to end"); !errors.Is(err, context.Canceled) {
				t.Fatalf("handler context: %v", err)
			}
			if err := st.Recv(&HelloResponse{}); status.CodeOf(err) != status.Unavailable {
				t.Fatalf("Recv of a stream cut off: %v, want Unavailable", err)
			}
		})
	}
}

func TestStreamOpenErrors(t *testing.T) {
	e := startStreams(t, transports["tcp"]())
	ctx := context.Background()
	if _, err := e.cli.Stream(ctx, "streams", "Streamer.Nope"); status.CodeOf(err) != status.NotFound {
		t.Fatalf("unknown endpoint: %v", err)
	}
	if _, err := e.cli.Stream(ctx, "nobody", "Streamer.Echo"); status.CodeOf(err) != status.NotFound {
		t.Fatalf("unknown service: %v", err)
	}
	if _, err := e.cli.Stream(ctx, "streams", "Greeter.Hello"); status.CodeOf(err) != status.BadRequest {
		t.Fatalf("a unary endpoint as a stream: %v", err)
	}
	if err := e.cli.Call(ctx, "streams", "Streamer.Echo", &HelloRequest{}, &HelloResponse{}); status.CodeOf(err) != status.BadRequest {
		t.Fatalf("a stream endpoint called: %v", err)
	}
	if _, err := e.cli.Stream(ctx, "streams", "Streamer.Echo", client.WithContentType("text/nope")); status.CodeOf(err) != status.BadRequest {
		t.Fatalf("an unknown codec: %v", err)
	}
	// Calls still work on the same server, and after streams.
	var rsp HelloResponse
	if err := e.cli.Call(ctx, "streams", "Greeter.Hello", &HelloRequest{Name: "x"}, &rsp); err != nil || rsp.Msg != "Hello x" {
		t.Fatalf("call: %+v, %v", rsp, err)
	}
}

// Many streams at once, each on its own connection, from many goroutines.
func TestStreamsConcurrently(t *testing.T) {
	e := startStreams(t, transports["tcp"]())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			st, err := e.cli.Stream(context.Background(), "streams", "Streamer.Echo")
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			for i := range 20 {
				want := fmt.Sprint(g, "-", i)
				var m HelloResponse
				if err := st.Send(&HelloRequest{Name: want}); err != nil {
					errs <- err
					return
				}
				if err := st.Recv(&m); err != nil || m.Msg != want {
					errs <- fmt.Errorf("%q: %+v, %v", want, m, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Opening goes through the node list like a call: a node that cannot be reached is skipped.
func TestStreamOpenTriesAnotherNode(t *testing.T) {
	e := startStreams(t, transports["tcp"]())
	dead := func() string {
		l, err := transports["tcp"]().Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr()
	}()
	st, err := e.cli.Stream(context.Background(), "streams", "Streamer.Echo", client.WithAddress(dead, e.srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var m HelloResponse
	if err := st.Send(&HelloRequest{Name: "hi"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Recv(&m); err != nil || m.Msg != "hi" {
		t.Fatalf("%+v, %v", m, err)
	}
	if _, err := e.cli.Stream(context.Background(), "streams", "Streamer.Echo", client.WithAddress(dead)); status.CodeOf(err) != status.Unavailable {
		t.Fatalf("only a dead node: %v", err)
	}
}
