package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/configd/configd/api"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/sdk/go/micro"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/debug"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/status"
)

// svcFlags are the micro flags configctl svc takes: those that choose the
// registry, transport and selector (micro.RegisterFlags), not the server's.
var svcFlags = []string{"registry", "registry-address", "registry-timeout", "transport", "selector", "selector-strategy", "client-request-timeout"}

// configdAPI is the "api" metadata of configd's own nodes: they answer
// HTTP, not micro calls.
const configdAPI = api.NodeAPI

// svc is the state of one configctl svc command.
type svc struct {
	a     *app
	flags *micro.FlagValues
	parts *micro.Parts
	cli   *client.Client
	// wrappers wrap the client's calls (micro api's retry).
	wrappers []client.CallWrapper
}

func (a *app) svcCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "svc",
		Short: "List, inspect and call the services of a micro registry",
		Long: `List, inspect and call the services registered in a registry, configd's
own instances among them (see docs/registry.md).

The registry, transport and selector are chosen as in every micro binary:
--registry (MICRO_REGISTRY: mdns, remote, consul, etcd), --registry-address
(MICRO_REGISTRY_ADDRESS), --transport (MICRO_TRANSPORT), --selector
(MICRO_SELECTOR), ...; a flag wins over its variable. A registry must be
named.

Exit codes: 0 ok, 1 error (a node unhealthy, a call failed), 2 usage,
3 service or endpoint not found.`,
	}
	s := a.newSvc(cmd.PersistentFlags())
	cmd.AddCommand(s.lsCmd("ls"), s.getCmd("get NAME"), s.healthCmd(), s.statsCmd(), s.callCmd())
	return cmd
}

// newSvc returns the state of a svc command (configctl svc, or micro's list, get, health,
// stats and call), with the micro flags it takes added to pf.
func (a *app) newSvc(pf *pflag.FlagSet) *svc {
	s := &svc{a: a}
	gfs := flag.NewFlagSet("svc", flag.ContinueOnError)
	s.flags = micro.RegisterFlags(gfs)
	for _, name := range svcFlags {
		pf.AddFlag(pflag.PFlagFromGoFlag(gfs.Lookup(name)))
	}
	return s
}

func (s *svc) lsCmd(use string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: "List the services, their versions and node counts",
		Args:  cobra.NoArgs,
		RunE:  s.wrap(func(cmd *cobra.Command, _ []string) error { return s.ls(cmd.Context()) }),
	}
}

func (s *svc) getCmd(use string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: "Show a service's versions, nodes (id, address, metadata) and endpoints",
		Args:  cobra.ExactArgs(1),
		RunE:  s.wrap(func(cmd *cobra.Command, args []string) error { return s.get(cmd.Context(), args[0]) }),
	}
}

func (s *svc) healthCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "health NAME",
		Short: "Ask every node of a service for its health (Debug.Health; /readyz for configd)",
		Long: `Ask every node of a service for its health: Debug.Health for a micro
service, GET /readyz for configd's own nodes. Exits 1 when a node is not ok.`,
		Args: cobra.ExactArgs(1),
		RunE: s.wrap(func(cmd *cobra.Command, args []string) error { return s.health(cmd.Context(), args[0]) }),
	}
}

func (s *svc) statsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stats NAME",
		Short: "Show every node's Debug.Stats: uptime, requests, errors, in flight, goroutines, memory",
		Args:  cobra.ExactArgs(1),
		RunE:  s.wrap(func(cmd *cobra.Command, args []string) error { return s.stats(cmd.Context(), args[0]) }),
	}
}

func (s *svc) callCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "call NAME ENDPOINT [JSON]",
		Short: "Call a service's endpoint (Type.Method) with a JSON request (default {}) and print the answer",
		Args:  cobra.RangeArgs(2, 3),
		RunE: s.wrap(func(cmd *cobra.Command, args []string) error {
			body := "{}"
			if len(args) == 3 {
				body = args[2]
			}
			return s.call(cmd.Context(), args[0], args[1], body)
		}),
	}
}

// lookupEnv reads the environment through the app, an empty variable
// counting as unset.
func (a *app) lookupEnv(k string) (string, bool) {
	v := a.getenv(k)
	return v, v != ""
}

// open builds the registry, transport, selector and client the flags and
// MICRO_* variables name.
func (s *svc) open() error {
	if s.parts != nil {
		return nil
	}
	cfg, err := s.flags.Config(s.a.lookupEnv)
	if err != nil {
		return usageError{errors.New(strings.TrimPrefix(err.Error(), "micro: "))}
	}
	if cfg.Registry == "" {
		return usagef("no registry: set --registry or MICRO_REGISTRY (mdns, remote, consul, etcd) and --registry-address or MICRO_REGISTRY_ADDRESS")
	}
	logger := slog.New(slog.NewTextHandler(s.a.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	p, err := micro.NewParts(cfg, micro.Parts{}, nil, logger)
	if err != nil {
		return usageError{errors.New(strings.TrimPrefix(err.Error(), "micro: "))}
	}
	timeout := cfg.RequestTimeout
	if timeout == 0 {
		timeout = s.a.timeout
	}
	if timeout == 0 {
		timeout = time.Hour // --timeout 0: no limit
	}
	c, err := client.New(client.Selector(p.Selector), client.Transport(p.Transport), client.RequestTimeout(timeout), client.Logger(logger), client.Wrap(s.wrappers...))
	if err != nil {
		p.Close()
		return err
	}
	s.parts, s.cli = p, c
	return nil
}

// wrap runs f, then releases what open built.
func (s *svc) wrap(f func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		return errors.Join(err, s.close())
	}
}

func (s *svc) close() error {
	if s.parts == nil {
		return nil
	}
	s.cli.Close()
	err := s.parts.Close()
	s.parts = nil
	return err
}

// ctx bounds a command by --timeout.
func (s *svc) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.a.timeout > 0 {
		return context.WithTimeout(ctx, s.a.timeout)
	}
	return context.WithCancel(ctx)
}

// notFound makes err exit with code 3 (ExitNotFound).
type notFound struct{ err error }

func (e notFound) Error() string        { return e.err.Error() }
func (e notFound) Unwrap() error        { return e.err }
func (e notFound) Is(target error) bool { return target == apiclient.ErrNotFound }

// svcEntry is one line of svc ls.
type svcEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Nodes   int    `json:"nodes"`
}

func (s *svc) ls(ctx context.Context) error {
	if err := s.open(); err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	svcs, err := s.parts.Registry.ListServices(registry.ListContext(ctx))
	if err != nil {
		return fmt.Errorf("list services in %s: %w", s.parts.Registry, err)
	}
	out := []svcEntry{}
	for _, v := range svcs {
		out = append(out, svcEntry{Name: v.Name, Version: v.Version, Nodes: len(v.Nodes)})
	}
	slices.SortFunc(out, func(a, b svcEntry) int {
		return cmpJoin(strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version))
	})
	if ok, err := s.a.structured(out); ok {
		return err
	}
	tw := newTable(s.a.stdout)
	fmt.Fprintln(tw, "NAME\tVERSION\tNODES")
	for _, e := range out {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", e.Name, e.Version, e.Nodes)
	}
	return tw.Flush()
}

func cmpJoin(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// lookup returns the versions of name, sorted, their nodes sorted by id.
func (s *svc) lookup(ctx context.Context, name string) ([]*registry.Service, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	svcs, err := s.parts.Registry.GetService(name, registry.GetContext(ctx))
	if errors.Is(err, registry.ErrNotFound) || (err == nil && len(svcs) == 0) {
		return nil, notFound{fmt.Errorf("service %s: not found in the %s registry", name, s.parts.Registry)}
	}
	if err != nil {
		return nil, fmt.Errorf("get service %s from %s: %w", name, s.parts.Registry, err)
	}
	slices.SortFunc(svcs, func(a, b *registry.Service) int { return strings.Compare(a.Version, b.Version) })
	for _, v := range svcs {
		slices.SortFunc(v.Nodes, func(a, b *registry.Node) int { return strings.Compare(a.Id, b.Id) })
	}
	return svcs, nil
}

func (s *svc) get(ctx context.Context, name string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	svcs, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	if ok, err := s.a.structured(svcs); ok {
		return err
	}
	w := s.a.stdout
	for i, v := range svcs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "service  %s\nversion  %s\n", v.Name, v.Version)
		if len(v.Metadata) > 0 {
			fmt.Fprintf(w, "metadata %s\n", kvs(v.Metadata))
		}
		if eps := v.EndpointNames(); len(eps) > 0 {
			fmt.Fprintf(w, "endpoints %s\n", strings.Join(eps, ", "))
		}
		fmt.Fprintln(w)
		tw := newTable(w)
		fmt.Fprintln(tw, "ID\tADDRESS\tMETADATA")
		for _, n := range v.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Id, n.Address, kvs(n.Metadata))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// kvs prints metadata as k=v pairs, sorted.
func kvs(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// nodeHealth is one node's answer to svc health.
type nodeHealth struct {
	Service string `json:"service"`
	Version string `json:"version"`
	ID      string `json:"id"`
	Address string `json:"address"`
	Status  string `json:"status"`
	Error   string `json:"error,omitempty"`
}

func (s *svc) health(ctx context.Context, name string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	svcs, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	var out []nodeHealth
	bad := 0
	for _, v := range svcs {
		for _, n := range v.Nodes {
			h := nodeHealth{Service: v.Name, Version: v.Version, ID: n.Id, Address: n.Address}
			var err error
			if n.Metadata["api"] == configdAPI {
				h.Status, err = s.configdHealth(ctx, n)
			} else {
				var rsp debug.HealthResponse
				err = s.cli.Call(ctx, v.Name, debug.Name+".Health", &debug.HealthRequest{}, &rsp, client.WithAddress(n.Address))
				h.Status = rsp.Status
			}
			if err != nil {
				h.Status, h.Error = "error", oneLine(err.Error())
			}
			if h.Status != debug.StatusOK {
				bad++
			}
			out = append(out, h)
		}
	}
	if ok, err := s.a.structured(out); ok {
		if err != nil {
			return err
		}
	} else {
		tw := newTable(s.a.stdout)
		fmt.Fprintln(tw, "ID\tADDRESS\tVERSION\tSTATUS")
		for _, h := range out {
			st := h.Status
			if h.Error != "" {
				st += ": " + h.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.ID, h.Address, h.Version, st)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d nodes of %s are not ok", bad, len(out), name)
	}
	return nil
}

// configdHealth asks one of configd's own nodes GET /readyz: "ok", or
// "draining" with configd's reason.
func (s *svc) configdHealth(ctx context.Context, n *registry.Node) (string, error) {
	tc, err := s.a.tlsConfig()
	if err != nil {
		return "", err
	}
	scheme := "http"
	if n.Metadata["tls"] == "on" {
		scheme = "https"
	}
	if scheme == "https" && tc == nil {
		return "", fmt.Errorf("configd serves TLS: set --ca (and --cert, --key for mutual TLS)")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+n.Address+"/readyz", nil)
	if err != nil {
		return "", err
	}
	rsp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer rsp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(rsp.Body, 4096))
	if rsp.StatusCode == http.StatusOK {
		return debug.StatusOK, nil
	}
	return debug.StatusDraining, fmt.Errorf("/readyz: %s: %s", rsp.Status, oneLine(string(body)))
}

// nodeStats is one node's answer to svc stats.
type nodeStats struct {
	ID      string               `json:"id"`
	Address string               `json:"address"`
	Version string               `json:"version"`
	Stats   *debug.StatsResponse `json:"stats,omitempty"`
	Error   string               `json:"error,omitempty"`
}

func (s *svc) stats(ctx context.Context, name string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	svcs, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	var out []nodeStats
	failed := 0
	for _, v := range svcs {
		for _, n := range v.Nodes {
			ns := nodeStats{ID: n.Id, Address: n.Address, Version: v.Version}
			if n.Metadata["api"] == configdAPI {
				ns.Error = "configd answers no micro calls: see its /metrics"
			} else {
				var rsp debug.StatsResponse
				if err := s.cli.Call(ctx, v.Name, debug.Name+".Stats", &debug.StatsRequest{}, &rsp, client.WithAddress(n.Address)); err != nil {
					ns.Error = oneLine(err.Error())
				} else {
					ns.Stats = &rsp
				}
			}
			if ns.Error != "" {
				failed++
			}
			out = append(out, ns)
		}
	}
	if ok, err := s.a.structured(out); ok {
		if err != nil {
			return err
		}
	} else {
		tw := newTable(s.a.stdout)
		fmt.Fprintln(tw, "ID\tADDRESS\tUPTIME\tREQUESTS\tERRORS\tINFLIGHT\tGOROUTINES\tHEAP")
		for _, ns := range out {
			if ns.Stats == nil {
				fmt.Fprintf(tw, "%s\t%s\terror: %s\n", ns.ID, ns.Address, ns.Error)
				continue
			}
			st := ns.Stats
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", ns.ID, ns.Address, time.Duration(st.Uptime)*time.Second,
				st.Requests, st.Errors, st.InFlight, st.Goroutines, bytesHuman(st.Memory))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d nodes of %s gave no stats", failed, len(out), name)
	}
	return nil
}

func bytesHuman(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (s *svc) call(ctx context.Context, name, endpoint, body string) error {
	if !json.Valid([]byte(body)) {
		return usagef("the request %q is not JSON", body)
	}
	if err := s.open(); err != nil {
		return err
	}
	var rsp json.RawMessage
	err := s.cli.Call(ctx, name, endpoint, json.RawMessage(body), &rsp)
	if err != nil {
		if status.CodeOf(err) == status.NotFound {
			return notFound{err}
		}
		return err
	}
	if len(rsp) == 0 {
		rsp = json.RawMessage("null")
	}
	var v any
	if err := json.Unmarshal(rsp, &v); err != nil {
		return fmt.Errorf("the answer is not JSON: %w", err)
	}
	if s.a.output == "yaml" {
		return writeYAML(s.a.stdout, v)
	}
	return writeJSON(s.a.stdout, rsp)
}
