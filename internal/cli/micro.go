package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/configd/configd/sdk/go/micro/debug"
	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// Default listen addresses of micro api and micro web, the talk's.
const (
	DefaultAPIAddress = ":8080"
	DefaultWebAddress = ":8082"
)

// MicroMain runs the micro command with args (without the program name) and returns its exit
// code (configctl's codes). ctx ending (SIGTERM in cmd/micro) stops api and web gracefully.
func MicroMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, output: "table", timeout: 10 * time.Second}
	return a.run(ctx, a.microCmd(), args)
}

func (a *app) microCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "micro",
		Short: "micro runs the gateways of the RPC core and inspects its registry",
		Long: `micro runs the talk's gateways in front of the services of the RPC core
(sdk/go/micro), found through a registry, and inspects that registry.

  micro --registry=consul api       HTTP → RPC on :8080 (/example/call → example Example.Call)
  micro --registry=consul web       a page listing services on :8082; /NAME/ proxies to NAME
  micro --registry=consul list services
  micro --registry=consul get service NAME
  micro health NAME ; micro stats NAME ; micro call NAME Type.Method '{"json":1}'

The registry, transport and selector flags (global, before the sub-command) and their MICRO_*
variables are every micro binary's; a registry must be named. list, get, health, stats and
call are configctl svc's ls, get, health, stats and call.

` + exitCodeHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			a.ran = true
			switch a.output {
			case "table", "json", "yaml":
				return nil
			}
			return usagef("-o %q: want table, json or yaml", a.output)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVarP(&a.output, "output", "o", "table", "output format of list, get, health, stats: table, json or yaml")
	s := a.newSvc(pf)
	list := &cobra.Command{Use: "list", Short: "List items in the registry"}
	list.AddCommand(s.lsCmd("services"))
	get := &cobra.Command{Use: "get", Short: "Get an item from the registry"}
	get.AddCommand(s.getCmd("service NAME"))
	root.AddCommand(s.gatewayCmd("api"), s.gatewayCmd("web"), list, get, s.healthCmd(), s.statsCmd(), s.callCmd())
	return root
}

// gatewayCmd is micro api (HTTP → RPC) or micro web (a proxy to web services and their index).
func (s *svc) gatewayCmd(kind string) *cobra.Command {
	addr, short, handler := DefaultAPIAddress, "Serve HTTP → RPC: /example/call calls Example.Call of service example", gateway.HandlerRPC
	if kind == "web" {
		addr, short, handler = DefaultWebAddress, "Serve a page listing the services; /NAME/... proxies to NAME's web nodes", gateway.HandlerWeb
	}
	name := "go.micro." + kind
	var namespace, contentType, filterVersion string
	var filterLabels []string
	var timeout time.Duration
	var maxBody int64
	var pf policyFlags
	cmd := &cobra.Command{
		Use:   kind,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: s.wrap(func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 || maxBody <= 0 {
				return usagef("--timeout and --max-body must be > 0")
			}
			var filters []selector.Filter
			if filterVersion != "" {
				filters = append(filters, selector.FilterVersion(filterVersion))
			}
			for _, kv := range filterLabels {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("--filter-label %q: want key=value", kv)
				}
				filters = append(filters, selector.FilterLabel(k, v))
			}
			return s.serveGateway(cmd.Context(), name, addr, pf, gateway.WithPathHandler(handler), gateway.WithNamespace(namespace),
				gateway.WithTimeout(timeout), gateway.WithMaxBody(maxBody), gateway.WithContentType(contentType), gateway.WithFilter(filters...))
		}),
	}
	f := cmd.Flags()
	pf.register(f)
	f.StringVar(&filterVersion, "filter-version", "", "send only to nodes of this service version")
	f.StringArrayVar(&filterLabels, "filter-label", nil, "send only to nodes with this metadata key=value (repeat: every one must match)")
	f.StringVar(&addr, "address", addr, "listen address")
	f.StringVar(&name, "name", name, "the service the gateway registers as (its node answers Debug.Health and Debug.Stats; metadata "+HTTPAddressKey+" is the listen address)")
	f.StringVar(&namespace, "namespace", "", "prefixed with a dot to the service a path names (go-micro's go.micro.api)")
	f.DurationVar(&timeout, "timeout", gateway.DefaultTimeout, "bound of each call or proxied request (504 at it)")
	f.Int64Var(&maxBody, "max-body", gateway.DefaultMaxBody, "largest request body, in bytes (413 above it)")
	f.StringVar(&contentType, "content-type", gateway.DefaultContentType, "codec of the rpc handler's calls: JSON requests go in it when it is application/json, application/json-rpc or application/grpc+json, protobuf bodies when application/protobuf, application/proto-rpc or application/grpc+proto")
	return cmd
}

// HTTPAddressKey is the node metadata key where micro api and web advertise their HTTP
// address (not gateway.WebAddressKey: micro web would list, and proxy to, the gateways).
const HTTPAddressKey = "http"

// serveGateway serves a Gateway on addr until ctx ends, registered as the service name, then
// shuts down gracefully: it deregisters, stops accepting, and lets requests in flight finish
// (at most the gateway's timeout).
func (s *svc) serveGateway(ctx context.Context, name, addr string, pf policyFlags, opts ...gateway.Option) error {
	logger := slog.New(slog.NewTextHandler(s.a.stderr, nil))
	pol, err := pf.build(logger)
	if err != nil {
		return err
	}
	// Outermost first: metrics and traces see each attempt's retries as one call; an
	// idempotent call goes to another node.
	s.wrappers = append(pol.wrappers, wrapper.Retry())
	if err := s.open(); err != nil {
		return err
	}
	g, err := gateway.New(append([]gateway.Option{gateway.WithClient(s.cli), gateway.WithRegistry(s.parts.Registry),
		gateway.WithSelector(s.parts.Selector), gateway.WithLogger(logger), gateway.WithMiddleware(pol.policy.Chain()...)}, opts...)...)
	if err != nil {
		return usageError{err}
	}
	defer g.Close()
	live, err := pf.follow(ctx, g, pol.policy, logger)
	if err != nil {
		return err
	}
	if live != nil {
		defer live.Close()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: pol.serve(g), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(l) }()
	srv, err := s.register(name, l.Addr().String(), logger)
	if err != nil {
		hs.Close()
		return err
	}
	fmt.Fprintf(s.a.stdout, "listening on %s\n", l.Addr())
	select {
	case err := <-done:
		srv.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	logger.Info("micro: shutting down", "addr", l.Addr().String())
	sctx, cancel := context.WithTimeout(context.Background(), gateway.DefaultTimeout+time.Second)
	defer cancel()
	stopErr := srv.Stop(sctx) // deregistered first: nobody is sent here any more
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return stopErr
}

// register starts the gateway's own node on the RPC core, as go-micro's gateways registered
// themselves: it answers Debug.Health and Debug.Stats (micro health go.micro.api), and its
// metadata gives the HTTP address.
func (s *svc) register(name, httpAddr string, logger *slog.Logger) (*server.Server, error) {
	dbg := debug.New()
	srv, err := server.New(server.Name(name), server.Registry(s.parts.Registry), server.Transport(s.parts.Transport),
		server.Metadata(map[string]string{HTTPAddressKey: httpAddr}), server.GracePeriod(0),
		server.WrapHandler(dbg.Wrapper()), server.Logger(logger))
	if err != nil {
		return nil, err
	}
	if err := srv.Handle(dbg, server.HandlerName(debug.Name)); err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("register as %s: %w", name, err)
	}
	return srv, nil
}
