package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
	tmem "github.com/configd/configd/sdk/go/micro/transport/memory"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/transport/transporttest"
)

type HelloRequest struct{ Name string }
type HelloResponse struct {
	Msg         string
	HadDeadline bool
}

// Greeter is the seed's example service, with a few extra endpoints for faults.
type Greeter struct {
	block   chan struct{} // Slow waits on it
	started chan struct{} // Slow signals here when it begins
}

func (g *Greeter) Hello(ctx context.Context, req *HelloRequest, rsp *HelloResponse) error {
	md, _ := metadata.FromContext(ctx)
	metadata.SetResponse(ctx, "Served-By", "greeter")
	_, rsp.HadDeadline = ctx.Deadline()
	rsp.Msg = "Hello " + req.Name + md["Tenant"]
	return nil
}

func (g *Greeter) Panic(ctx context.Context, req *HelloRequest, rsp *HelloResponse) error {
	panic("boom " + req.Name)
}

func (g *Greeter) Fail(ctx context.Context, req *HelloRequest, rsp *HelloResponse) error {
	return status.New(status.BadRequest, "no %s here", req.Name)
}

func (g *Greeter) Slow(ctx context.Context, req *HelloRequest, rsp *HelloResponse) error {
	g.started <- struct{}{}
	select {
	case <-g.block:
		rsp.Msg = "finally"
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Greeter) Upper(ctx context.Context, req *wrapperspb.StringValue, rsp *wrapperspb.StringValue) error {
	rsp.Value = strings.ToUpper(req.Value)
	return nil
}

// notAHandler has no method of the handler shape.
type notAHandler struct{}

func (notAHandler) Hello(string) error { return nil }

type env struct {
	reg *memory.Registry
	tr  transport.Transport
	srv *server.Server
	sel *selector.Cache
	cli *client.Client
	g   *Greeter
}

func start(t *testing.T, tr transport.Transport, opts ...server.Option) *env {
	t.Helper()
	e := &env{reg: memory.New(), tr: tr, g: &Greeter{block: make(chan struct{}), started: make(chan struct{}, 4)}}
	var err error
	e.srv, err = server.New(append([]server.Option{server.Name("greeter"), server.Registry(e.reg), server.Transport(tr),
		server.GracePeriod(0), server.DrainTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Handle(e.g); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.srv.Stop(context.Background()) }) // "not running" when a test stopped it
	e.sel, err = selector.New(selector.Registry(e.reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sel.Close() })
	e.cli, err = client.New(client.Selector(e.sel), client.Transport(tr), client.RequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cli.Close() })
	return e
}

var transports = map[string]func() transport.Transport{
	"memory": func() transport.Transport { return tmem.New() },
	"tcp":    func() transport.Transport { return tcp.New() },
}

func TestCallWithMetadataBothWays(t *testing.T) {
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			e := start(t, tr())
			ctx := metadata.NewContext(context.Background(), metadata.Metadata{"Tenant": " of acme"})
			var rsp HelloResponse
			var md metadata.Metadata
			if err := e.cli.Call(ctx, "greeter", "Greeter.Hello", &HelloRequest{Name: "bob"}, &rsp, client.WithResponseMetadata(&md)); err != nil {
				t.Fatal(err)
			}
			if rsp.Msg != "Hello bob of acme" || !rsp.HadDeadline || md["Served-By"] != "greeter" {
				t.Fatalf("rsp %+v, response metadata %v", rsp, md)
			}
			var up wrapperspb.StringValue
			if err := e.cli.Call(context.Background(), "greeter", "Greeter.Upper", wrapperspb.String("abc"), &up); err != nil || up.Value != "ABC" {
				t.Fatalf("protobuf call: %q, %v", up.Value, err)
			}
		})
	}
}

func TestErrorsNameWhatIsWrong(t *testing.T) {
	e := start(t, tmem.New())
	ctx := context.Background()
	var rsp HelloResponse
	for _, tc := range []struct {
		name     string
		call     func() error
		code     status.Code
		contains string
	}{
		{"unknown endpoint", func() error { return e.cli.Call(ctx, "greeter", "Greeter.Nope", &HelloRequest{}, &rsp) }, status.NotFound, "Greeter.Nope"},
		{"unknown service", func() error { return e.cli.Call(ctx, "nosuch", "Greeter.Hello", &HelloRequest{}, &rsp) }, status.NotFound, "nosuch"},
		{"service not on this node", func() error {
			return e.cli.Call(ctx, "elsewhere", "Greeter.Hello", &HelloRequest{}, &rsp, client.WithAddress(e.srv.Addr()))
		}, status.NotFound, `"elsewhere"`},
		{"handler error kept", func() error { return e.cli.Call(ctx, "greeter", "Greeter.Fail", &HelloRequest{Name: "x"}, &rsp) }, status.BadRequest, "no x here"},
		{"client codec mismatch", func() error {
			return e.cli.Call(ctx, "greeter", "Greeter.Hello", &HelloRequest{}, &rsp, client.WithContentType(codec.ProtoContentType))
		}, status.BadRequest, "proto.Message"},
		{"server cannot decode", func() error {
			var out []byte
			return e.cli.Call(ctx, "greeter", "Greeter.Upper", []byte(`{"not":"proto"}`), &out, client.WithContentType(codec.RawContentType))
		}, status.BadRequest, "application/octet-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			se, ok := status.From(err)
			if !ok || se.Code != tc.code || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("err = %v, want code %d mentioning %q", err, tc.code, tc.contains)
			}
		})
	}
}

func TestServerWithoutTheCodecSaysSo(t *testing.T) {
	e := start(t, tmem.New(), server.Codecs(codec.NewSet(codec.Proto{})))
	var rsp HelloResponse
	err := e.cli.Call(context.Background(), "greeter", "Greeter.Hello", &HelloRequest{}, &rsp)
	if status.CodeOf(err) != status.BadRequest || !strings.Contains(err.Error(), `"application/json"`) {
		t.Fatalf("err = %v, want BadRequest naming application/json", err)
	}
}

func TestPanickingHandlerReturnsErrorAndServerSurvives(t *testing.T) {
	var panics atomic.Int64
	count := func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req *server.Request, rsp any) error {
			err := next(ctx, req, rsp)
			if errors.Is(err, server.ErrPanic) {
				panics.Add(1)
			}
			return err
		}
	}
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			panics.Store(0)
			e := start(t, tr(), server.WrapHandler(count))
			var rsp HelloResponse
			for range 3 {
				err := e.cli.Call(context.Background(), "greeter", "Greeter.Panic", &HelloRequest{Name: "x"}, &rsp)
				if status.CodeOf(err) != status.Internal || !strings.Contains(err.Error(), "boom x") {
					t.Fatalf("err = %v, want Internal with the panic value", err)
				}
			}
			if err := e.cli.Call(context.Background(), "greeter", "Greeter.Hello", &HelloRequest{Name: "a"}, &rsp); err != nil || rsp.Msg != "Hello a" {
				t.Fatalf("after panics: %+v, %v", rsp, err)
			}
			if panics.Load() != 3 {
				t.Fatalf("wrapper saw %d panics, want 3", panics.Load())
			}
		})
	}
}

func TestHandleRejectsNonHandlers(t *testing.T) {
	s, err := server.New(server.Name("x"), server.Transport(tmem.New()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(notAHandler{}); err == nil {
		t.Fatal("a type without handler methods was accepted")
	}
	if err := s.Handle(&Greeter{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(&Greeter{}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate endpoints: err = %v", err)
	}
	if got := s.Endpoints(); len(got) != 5 || got[0] != "Greeter.Fail" {
		t.Fatalf("endpoints %v", got)
	}
}

func TestNewRejectsNonsense(t *testing.T) {
	for name, opts := range map[string][]server.Option{
		"no name":            {server.Transport(tmem.New())},
		"no transport":       {server.Name("x")},
		"interval above ttl": {server.Name("x"), server.Transport(tmem.New()), server.RegisterTTL(time.Second), server.RegisterInterval(2 * time.Second)},
	} {
		if _, err := server.New(opts...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStopDeregistersThenDrainsInOrder(t *testing.T) {
	phases := make(chan server.Phase, 8)
	tr := tcp.New()
	e := start(t, tr, server.GracePeriod(time.Second), server.OnPhase(func(p server.Phase) { phases <- p }))
	w, _ := e.reg.Watch(registry.WatchService("greeter"))
	defer w.Stop()
	addr := e.srv.Addr()

	slow := make(chan error, 1)
	var slowRsp HelloResponse
	go func() {
		slow <- e.cli.Call(context.Background(), "greeter", "Greeter.Slow", &HelloRequest{}, &slowRsp)
	}()
	transporttest.Within(t, e.g.started, "slow handler started")

	stopped := make(chan error, 1)
	go func() { stopped <- e.srv.Stop(context.Background()) }()

	if p := transporttest.Within(t, phases, "deregistered"); p != server.PhaseDeregistered {
		t.Fatalf("first phase %s", p)
	}
	ev := make(chan *registry.Result, 1)
	go func() { r, _ := w.Next(); ev <- r }()
	if r := transporttest.Within(t, ev, "delete event"); r == nil || r.Action != registry.Delete {
		t.Fatalf("registry event %+v, want delete", r)
	}
	// Grace period: deregistered, yet still answering, on a new connection too.
	var rsp HelloResponse
	if err := e.cli.Call(context.Background(), "greeter", "Greeter.Hello", &HelloRequest{Name: "late"}, &rsp,
		client.WithAddress(addr)); err != nil {
		t.Fatalf("call during the grace period: %v", err)
	}
	for _, want := range []server.Phase{server.PhaseGraceOver, server.PhaseListenerClosed} {
		if p := transporttest.Within(t, phases, string(want)); p != want {
			t.Fatalf("phase %s, want %s", p, want)
		}
	}
	if s, err := tr.Dial(context.Background(), addr); err == nil {
		s.Close()
		t.Fatal("dial succeeded after the listener closed")
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with a call in flight", err)
	default:
	}
	close(e.g.block)
	if err := transporttest.Within(t, slow, "slow call result"); err != nil || slowRsp.Msg != "finally" {
		t.Fatalf("in-flight call: %+v, %v; want it drained to completion", slowRsp, err)
	}
	for _, want := range []server.Phase{server.PhaseDrained, server.PhaseClosed} {
		if p := transporttest.Within(t, phases, string(want)); p != want {
			t.Fatalf("phase %s, want %s", p, want)
		}
	}
	if err := transporttest.Within(t, stopped, "Stop returned"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestStopCutsOffCallsAfterDrainTimeout(t *testing.T) {
	e := start(t, tcp.New(), server.DrainTimeout(100*time.Millisecond))
	slow := make(chan error, 1)
	go func() {
		var rsp HelloResponse
		slow <- e.cli.Call(context.Background(), "greeter", "Greeter.Slow", &HelloRequest{}, &rsp)
	}()
	transporttest.Within(t, e.g.started, "slow handler started")
	if err := e.srv.Stop(context.Background()); !errors.Is(err, server.ErrDrainTimeout) {
		t.Fatalf("Stop: err = %v, want ErrDrainTimeout", err)
	}
	if err := transporttest.Within(t, slow, "slow call result"); err == nil {
		t.Fatal("a call cut off by Stop succeeded")
	}
}

func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	e := start(t, tcp.New(transport.MaxFrameSize(1<<16)))
	for name, raw := range map[string][]byte{
		"oversize":  {0x40, 0, 0, 0},              // announces 1 GiB
		"malformed": {0, 0, 0, 3, 0x7f, 'x', 'y'}, // 127 headers in 3 bytes
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", e.srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(raw); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadAll(c); err != nil {
				t.Fatalf("server did not close the connection: %v", err)
			}
			var rsp HelloResponse
			if err := e.cli.Call(context.Background(), "greeter", "Greeter.Hello", &HelloRequest{Name: "b"}, &rsp); err != nil || rsp.Msg != "Hello b" {
				t.Fatalf("server affected by a bad frame: %+v, %v", rsp, err)
			}
		})
	}
	// An oversize request is refused on the client side before anything is sent.
	var rsp HelloResponse
	big := &HelloRequest{Name: strings.Repeat("x", 1<<17)}
	if err := e.cli.Call(context.Background(), "greeter", "Greeter.Hello", big, &rsp); status.CodeOf(err) != status.BadRequest || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversize request: err = %v, want BadRequest", err)
	}
	if n := e.sel.Outstanding("greeter", e.srv.ID()); n != 0 {
		t.Fatalf("%d calls still outstanding on the node after an oversize request", n)
	}
	next, err := e.sel.Select("greeter")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := next(); n.Id != e.srv.ID() {
		t.Fatal("node missing")
	}
}
