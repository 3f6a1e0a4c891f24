package gomicro

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"go-micro.dev/v4/broker"
	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"
	"go-micro.dev/v4/server"
	"go-micro.dev/v4/transport"
	"go-micro.dev/v4/transport/headers"

	"github.com/configd/configd/bench/internal/examplepb"
)

// Greeter answers "Hello NAME"; the call named "first" waits for hold to close.
type Greeter struct{ hold chan struct{} }

func (g Greeter) Call(_ context.Context, req *examplepb.Request, rsp *examplepb.Response) error {
	if req.Name == "first" {
		<-g.hold
	}
	rsp.Msg = "Hello " + req.Name
	return nil
}

// backToBack starts go-micro's rpc server on tr and sends it two calls on one connection
// without waiting for the first answer, "first", which its handler holds until hold closes,
// then "second": the second arrives while the first call's pseudo-socket is still in use,
// as a pooled connection's next call sometimes does before it is released. The answers come
// on the channel (an error ends them).
func backToBack(t *testing.T, tr transport.Transport, hold chan struct{}) <-chan string {
	t.Helper()
	logger.DefaultLogger = logger.NewLogger(logger.WithLevel(logger.ErrorLevel), logger.WithOutput(io.Discard))
	srv := server.NewRPCServer(server.Name("example"), server.Address("127.0.0.1:0"),
		server.Registry(registry.NewMemoryRegistry()), server.Transport(tr), server.Broker(broker.NewMemoryBroker()))
	if err := srv.Handle(srv.NewHandler(Greeter{hold: hold})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	c, err := transport.NewHTTPTransport().Dial(srv.Options().Address, transport.WithStream())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i, name := range []string{"first", "second"} {
		if err := c.Send(&transport.Message{Header: map[string]string{
			headers.ID: fmt.Sprint(i), headers.Request: "example", headers.Endpoint: "Greeter.Call",
			headers.Method: "Greeter.Call", "Content-Type": "application/json",
		}, Body: []byte(`{"name":"` + name + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	answers := make(chan string, 2)
	go func() {
		defer close(answers)
		for {
			var m transport.Message
			if err := c.Recv(&m); err != nil {
				return
			}
			var rsp examplepb.Response
			if err := json.Unmarshal(m.Body, &rsp); err != nil {
				answers <- fmt.Sprintf("unreadable answer %q: %v", m.Body, err)
				return
			}
			answers <- rsp.Msg
		}
	}()
	return answers
}

// next is the next answer, or a note that none came within d.
func next(answers <-chan string, d time.Duration) string {
	select {
	case a, ok := <-answers:
		if !ok {
			return "(the connection ended)"
		}
		return a
	case <-time.After(d):
		return fmt.Sprintf("(no answer in %v)", d)
	}
}

func TestHTTPTransportAnswersBackToBackCalls(t *testing.T) {
	hold := make(chan struct{})
	answers := backToBack(t, HTTPTransport(), hold)
	if got := next(answers, 10*time.Second); got != "Hello second" {
		close(hold)
		t.Fatalf("while the first call is held: %s, want the second call's answer", got)
	}
	close(hold)
	if got := next(answers, 10*time.Second); got != "Hello first" {
		t.Fatalf("once the first call is let go: %s, want its answer", got)
	}
}

// TestPlainHTTPTransportLosesTheSecondCall pins the fault the mend is for: on go-micro's own
// http transport the second call goes to the first call's pseudo-socket and is never
// answered. When a go-micro release fixes it, this fails, and HTTPTransport can go.
func TestPlainHTTPTransportLosesTheSecondCall(t *testing.T) {
	hold := make(chan struct{})
	answers := backToBack(t, transport.NewHTTPTransport(), hold)
	got := next(answers, time.Second)
	close(hold)
	if got == "Hello second" {
		t.Fatal("go-micro's plain http transport answered the second call: the fault HTTPTransport mends is gone")
	}
	if got := next(answers, 10*time.Second); got != "Hello first" {
		t.Fatalf("once the first call is let go: %s, want its answer", got)
	}
	if got := next(answers, time.Second); got == "Hello second" {
		t.Fatal("go-micro's plain http transport answered the second call late: the fault HTTPTransport mends is gone")
	}
}

func TestRequestIDSocketRestoresTheServersHeaderName(t *testing.T) {
	s := requestIDSocket{headerSocket{"Micro-Id": "7"}}
	var m transport.Message
	if err := s.Recv(&m); err != nil {
		t.Fatal(err)
	}
	if m.Header[headers.ID] != "7" {
		t.Fatalf("header %q = %q, want 7 (headers %v)", headers.ID, m.Header[headers.ID], m.Header)
	}
}

// headerSocket receives one message with its headers.
type headerSocket map[string]string

func (h headerSocket) Recv(m *transport.Message) error {
	m.Header = map[string]string{}
	for k, v := range h {
		m.Header[k] = v
	}
	return nil
}
func (headerSocket) Send(*transport.Message) error { return nil }
func (headerSocket) Close() error                  { return nil }
func (headerSocket) Local() string                 { return "" }
func (headerSocket) Remote() string                { return "" }
