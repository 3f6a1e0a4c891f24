package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

type Echo struct{}

type Msg struct{ Text string }

func (Echo) Say(ctx context.Context, req *Msg, rsp *Msg) error { rsp.Text = req.Text; return nil }

func TestNewRejectsNonsense(t *testing.T) {
	if _, err := client.New(); err == nil {
		t.Fatal("New without a transport succeeded")
	}
	if _, err := client.New(client.Transport(tcp.New()), client.RequestTimeout(-time.Second)); err == nil {
		t.Fatal("New with a negative timeout succeeded")
	}
	c, err := client.New(client.Transport(tcp.New()))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Call(context.Background(), "echo", "Echo.Say", &Msg{}, &Msg{})
	if status.CodeOf(err) != status.Unavailable || !strings.Contains(err.Error(), "no selector") {
		t.Fatalf("call without selector or address: %v", err)
	}
}

func TestDeadNodeIsDemotedAfterOneFailure(t *testing.T) {
	tr := tcp.New()
	reg := memory.New()
	live, err := server.New(server.Name("echo"), server.ID("live"), server.Registry(reg), server.Transport(tr), server.GracePeriod(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Handle(Echo{}); err != nil {
		t.Fatal(err)
	}
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Stop(context.Background())
	// A node the registry still lists but whose process is gone: nothing listens there.
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := l.Addr()
	l.Close()
	if err := reg.Register(&registry.Service{Name: "echo", Nodes: []*registry.Node{{Id: "dead", Address: deadAddr}}}); err != nil {
		t.Fatal(err)
	}
	sel, err := selector.New(selector.Registry(reg), selector.DefaultStrategy(selector.RoundRobin()))
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Close()
	c, err := client.New(client.Selector(sel), client.Transport(tr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	failures := 0
	for i := range 10 {
		var rsp Msg
		err := c.Call(context.Background(), "echo", "Echo.Say", &Msg{Text: "hi"}, &rsp)
		if err != nil {
			failures++
			if status.CodeOf(err) != status.Unavailable || !status.IsRetryable(err) || !strings.Contains(err.Error(), deadAddr) {
				t.Fatalf("call %d: err = %v, want a retryable Unavailable naming %s", i, err, deadAddr)
			}
			continue
		}
		if rsp.Text != "hi" {
			t.Fatalf("echo %q", rsp.Text)
		}
	}
	if failures != 1 {
		t.Fatalf("%d calls failed; a dead node should cost one failure, then be demoted", failures)
	}
}
