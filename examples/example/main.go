// Command example is the talk's example service on configd's embedded RPC core: the endpoint
// Example.Call ({"name":"hobo"} → {"msg":"Hello hobo"}), which it declares to the gateway
// (GET and POST on /example/call and /example/hello/{name}, under its --server-name), and a web page for `micro web`
// on a second listener, advertised in its node's metadata ("web").
//
//	example --registry consul --registry-address 127.0.0.1:8500      # run several
//	micro --registry consul api                                      # then:
//	curl http://127.0.0.1:8080/example/call?name=hobo
//
// It takes micro's flags and MICRO_* variables (micro.Settings), plus --web-address. It prints
// "ready RPC-ADDRESS NODE-ID WEB-ADDRESS" once registered, and stops gracefully on SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/configd/configd/sdk/go/micro"
	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// endpointRoutes are the routes Example.Call declares, in go-micro's api metadata keys, for
// an instance registered as name: GET and POST on /NAME/call and /NAME/hello/{name}.
func endpointRoutes(name string) map[string]string {
	return map[string]string{
		gateway.MetaHandler: gateway.HandlerRPC,
		gateway.MetaMethod:  "GET,POST",
		gateway.MetaPath:    "/" + name + "/call,/" + name + "/hello/{name}",
	}
}

// run serves until ctx ends.
func run(ctx context.Context, args []string, out io.Writer) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var webAddr *string
	var web net.Listener
	var svc *micro.Service
	svc = micro.NewService(
		micro.Name("example"), micro.Version("latest"), micro.RegisterTTL(10*time.Second),
		micro.Logger(logger), micro.Context(ctx), micro.Args(args...),
		micro.Flags(func(fs *flag.FlagSet) {
			webAddr = fs.String("web-address", "127.0.0.1:0", "listen `address` of the web page")
		}),
		micro.Action(func(*flag.FlagSet) error {
			var err error
			if web, err = net.Listen("tcp", *webAddr); err != nil {
				return fmt.Errorf("web listener: %w", err)
			}
			return svc.Init(micro.Metadata(map[string]string{gateway.WebAddressKey: web.Addr().String()}))
		}),
	)
	if err := svc.Init(); err != nil {
		if web != nil {
			web.Close()
		}
		return err
	}
	defer web.Close()
	srv := svc.Server()
	if srv == nil {
		return errors.New("the server could not be built (see the log)")
	}
	ex := &Example{Node: srv.ID(), Logger: logger}
	if err := svc.Handle(ex, server.EndpointMetadata("Example.Call", endpointRoutes(svc.Options().Name))); err != nil {
		return err
	}
	hs := &http.Server{Handler: webPage(ex), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(web)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := svc.Init(micro.AfterStart(func() error {
		_, err := fmt.Fprintf(out, "ready %s %s %s\n", srv.Addr(), srv.ID(), web.Addr())
		return err
	})); err != nil {
		return err
	}
	return svc.Run()
}
