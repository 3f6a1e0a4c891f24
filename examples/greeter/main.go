// Command greeter is the seed's example service and its client, on configd's embedded RPC core.
// Three roles, each a sub-command:
//
//	greeter registry -addr 127.0.0.1:8000                 # a registry other processes share
//	MICRO_REGISTRY_ADDRESS=127.0.0.1:8000 greeter serve   # a greeter instance (run several)
//	MICRO_REGISTRY_ADDRESS=127.0.0.1:8000 greeter call -n 5 Alice
//
// The registry role serves an in-memory registry over the tcp transport (registry/remote), the
// default (-registry remote). With -registry consul or -registry etcd (or MICRO_REGISTRY) the
// instances use a Consul agent or etcd at -registry-address instead, and no registry role is
// needed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/registry/remote"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "greeter:", err)
		os.Exit(1)
	}
}

// run dispatches a role; it returns when ctx ends (server roles) or the calls are done.
func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: greeter registry|serve|call [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	regName := fs.String("registry", envOr("MICRO_REGISTRY", "remote"), "registry `name`: remote, consul or etcd ($MICRO_REGISTRY)")
	regAddr := fs.String("registry-address", os.Getenv("MICRO_REGISTRY_ADDRESS"), "`addresses` of the registry servers, comma-separated ($MICRO_REGISTRY_ADDRESS)")
	addr := fs.String("addr", "127.0.0.1:0", "listen `address`")
	id := fs.String("id", "", "node id (default: generated)")
	ttl := fs.Duration("ttl", 10*time.Second, "registration TTL: a crashed instance disappears after it")
	grace := fs.Duration("grace", 2*time.Second, "grace period between deregistering and closing the listener")
	n := fs.Int("n", 1, "calls to make")
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	tr := tcp.New()
	switch args[0] {
	case "registry":
		h, err := remote.NewHandler(memory.New())
		if err != nil {
			return err
		}
		srv, err := server.New(server.Name(remote.ServiceName), server.Transport(tr), server.Address(*addr),
			server.GracePeriod(0), server.Logger(logger))
		if err != nil {
			return err
		}
		return serveUntil(ctx, srv, h, out, h.Close)
	case "serve", "call":
		if *regAddr == "" {
			return errors.New("no registry address: set -registry-address or MICRO_REGISTRY_ADDRESS")
		}
		reg, err := catalog.Registries().New(*regName, registry.Addrs(strings.Split(*regAddr, ",")...))
		if err != nil {
			return err
		}
		if c, ok := reg.(io.Closer); ok {
			defer c.Close()
		}
		if args[0] == "serve" {
			srv, err := server.New(server.Name("greeter"), server.Version("v1"), server.ID(*id), server.Address(*addr),
				server.Registry(reg), server.Transport(tr), server.RegisterTTL(*ttl), server.GracePeriod(*grace), server.Logger(logger))
			if err != nil {
				return err
			}
			return serveUntil(ctx, srv, &Greeter{Node: srv.ID()}, out, nil)
		}
		sel, err := selector.New(selector.Registry(reg), selector.Logger(logger))
		if err != nil {
			return err
		}
		defer sel.Close()
		cli, err := client.New(client.Selector(sel), client.Transport(tr), client.Logger(logger),
			client.Wrap(wrapper.Retry()))
		if err != nil {
			return err
		}
		defer cli.Close()
		name := fs.Arg(0)
		for range *n {
			var rsp Response
			cctx := metadata.NewContext(ctx, metadata.Metadata{"Greeting": "Hello"})
			if err := cli.Call(cctx, "greeter", "Greeter.Hello", &Request{Name: name}, &rsp, client.Idempotent()); err != nil {
				return err
			}
			fmt.Fprintf(out, "%s (from %s)\n", rsp.Msg, rsp.Node)
		}
		return nil
	}
	return fmt.Errorf("unknown role %q: want registry, serve or call", args[0])
}

// serveUntil starts srv with handler, prints "ready ADDR ID", and stops gracefully when ctx ends.
func serveUntil(ctx context.Context, srv *server.Server, handler any, out io.Writer, beforeStop func() error) error {
	opts := []server.HandlerOption{}
	if _, ok := handler.(*remote.Handler); ok {
		opts = append(opts, server.HandlerName("Registry"))
	}
	if err := srv.Handle(handler, opts...); err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	fmt.Fprintf(out, "ready %s %s\n", srv.Addr(), srv.ID())
	<-ctx.Done()
	if beforeStop != nil {
		beforeStop()
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Stop(stopCtx)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
