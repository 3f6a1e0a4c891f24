// Command greeter is the seed's example service and its client, on configd's embedded RPC core.
// Three roles, each a sub-command:
//
//	greeter registry -addr 127.0.0.1:8000                 # a registry other processes share
//	MICRO_REGISTRY_ADDRESS=127.0.0.1:8000 greeter serve   # a greeter instance (run several)
//	MICRO_REGISTRY_ADDRESS=127.0.0.1:8000 greeter call -n 5 Alice
//
// The registry role serves an in-memory registry over the tcp transport (registry/remote), the
// greeter's default (--registry remote). The serve and call roles are micro.NewService
// services, so they take micro's flags and MICRO_* variables (micro.Settings): with
// --registry consul or etcd and --registry-address the instances use a Consul agent or etcd,
// with --registry mdns they find each other on the local link, and no registry role is needed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/configd/configd/sdk/go/micro"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/registry/remote"
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
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], out, logger)
	case "call":
		return call(ctx, args[1:], out, logger)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen `address`")
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
	}
	return fmt.Errorf("unknown role %q: want registry, serve or call", args[0])
}

// serve runs a greeter instance with micro.NewService: the registry, transport and server
// settings come from micro's flags and MICRO_* variables (micro.Settings), plus -grace.
func serve(ctx context.Context, args []string, out io.Writer, logger *slog.Logger) error {
	var grace *time.Duration
	var svc *micro.Service
	svc = micro.NewService(
		micro.Name("greeter"), micro.Version("v1"), micro.RegisterTTL(10*time.Second),
		micro.Logger(logger), micro.Context(ctx), micro.Args(args...), micro.Env(greeterEnv),
		micro.Flags(func(fs *flag.FlagSet) {
			grace = fs.Duration("grace", 2*time.Second, "grace period between deregistering and closing the listener")
		}),
		micro.Action(func(*flag.FlagSet) error { return svc.Init(micro.GracePeriod(*grace)) }),
		micro.AfterStart(func() error {
			srv := svc.Server()
			_, err := fmt.Fprintf(out, "ready %s %s\n", srv.Addr(), srv.ID())
			return err
		}),
	)
	if err := svc.Init(); err != nil {
		return err
	}
	srv := svc.Server()
	if srv == nil {
		return errors.New("greeter: the server could not be built (see the log)")
	}
	if err := svc.Handle(&Greeter{Node: srv.ID()}); err != nil {
		return err
	}
	return svc.Run()
}

// call calls Greeter.Hello -n times through a client-only service.
func call(ctx context.Context, args []string, out io.Writer, logger *slog.Logger) error {
	var n *int
	var name string
	svc := micro.NewService(micro.Logger(logger), micro.Args(args...), micro.Env(greeterEnv),
		micro.WrapCall(wrapper.Retry()),
		micro.Flags(func(fs *flag.FlagSet) { n = fs.Int("n", 1, "calls to make") }),
		micro.Action(func(fs *flag.FlagSet) error { name = fs.Arg(0); return nil }))
	if err := svc.Init(); err != nil {
		return err
	}
	defer svc.Close()
	cli := svc.Client()
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

// greeterEnv is the environment with the greeter's default registry, "remote" (a greeter
// registry role), when MICRO_REGISTRY is not set.
func greeterEnv(name string) (string, bool) {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v, true
	}
	if name == "MICRO_REGISTRY" {
		return "remote", true
	}
	return "", false
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
