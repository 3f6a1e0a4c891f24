package micro_test

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/debug"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	tmem "github.com/configd/configd/sdk/go/micro/transport/memory"
)

func env(kv map[string]string) micro.Option {
	return micro.Env(func(k string) (string, bool) { v, ok := kv[k]; return v, ok })
}

var quiet = micro.Logger(slog.New(slog.DiscardHandler))

// TestPrecedence proves defaults < code < environment < command line, whatever the order of
// NewService and Init calls: the two go-micro pitfalls were a flag parsed in Init being beaten
// by (or beating, depending on order) code options, and options given before Init being lost.
func TestPrecedence(t *testing.T) {
	addr := micro.Address
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		newOpts  []micro.Option
		inits    [][]micro.Option // each an Init call; nil: Init never called
		wantAddr string
		wantTTL  time.Duration
	}{
		{name: "default", inits: [][]micro.Option{{}}, wantAddr: "127.0.0.1:0", wantTTL: 30 * time.Second},
		{name: "default without Init", wantAddr: "127.0.0.1:0", wantTTL: 30 * time.Second},
		{name: "code in NewService", newOpts: []micro.Option{addr("code:1")}, inits: [][]micro.Option{{}}, wantAddr: "code:1", wantTTL: 30 * time.Second},
		{name: "code before Init is kept", newOpts: []micro.Option{addr("code:1"), micro.RegisterTTL(time.Minute)}, inits: [][]micro.Option{{}, {}}, wantAddr: "code:1", wantTTL: time.Minute},
		{name: "later code beats earlier code", newOpts: []micro.Option{addr("code:1")}, inits: [][]micro.Option{{addr("code:2")}, {addr("code:3")}}, wantAddr: "code:3", wantTTL: 30 * time.Second},
		{name: "env beats code", env: map[string]string{"MICRO_SERVER_ADDRESS": "env:1", "MICRO_REGISTER_TTL": "7s"}, newOpts: []micro.Option{addr("code:1"), micro.RegisterTTL(time.Minute)}, inits: [][]micro.Option{{}}, wantAddr: "env:1", wantTTL: 7 * time.Second},
		{name: "env beats code without Init", env: map[string]string{"MICRO_SERVER_ADDRESS": "env:1"}, newOpts: []micro.Option{addr("code:1")}, wantAddr: "env:1", wantTTL: 30 * time.Second},
		{name: "empty env is unset", env: map[string]string{"MICRO_SERVER_ADDRESS": ""}, newOpts: []micro.Option{addr("code:1")}, inits: [][]micro.Option{{}}, wantAddr: "code:1", wantTTL: 30 * time.Second},
		{name: "flag beats env and code", env: map[string]string{"MICRO_SERVER_ADDRESS": "env:1"}, args: []string{"--server-address", "flag:1"}, newOpts: []micro.Option{addr("code:1")}, inits: [][]micro.Option{{}}, wantAddr: "flag:1", wantTTL: 30 * time.Second},
		{name: "code after Init does not beat a flag", args: []string{"--server-address=flag:1", "--register-ttl=9s"}, inits: [][]micro.Option{{}, {addr("code:2"), micro.RegisterTTL(time.Hour)}}, wantAddr: "flag:1", wantTTL: 9 * time.Second},
		{name: "code in the parsing Init does not beat a flag", args: []string{"--server-address=flag:1"}, inits: [][]micro.Option{{addr("code:2")}}, wantAddr: "flag:1", wantTTL: 30 * time.Second},
		{name: "flag for one field, code for another", args: []string{"--register-ttl=9s"}, newOpts: []micro.Option{addr("code:1")}, inits: [][]micro.Option{{}}, wantAddr: "code:1", wantTTL: 9 * time.Second},
		{name: "flags are not parsed without Init", args: []string{"--server-address=flag:1"}, newOpts: []micro.Option{addr("code:1")}, wantAddr: "code:1", wantTTL: 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := []micro.Option{micro.Name("svc"), quiet, env(tc.env), micro.Args(tc.args...), micro.Transport(tmem.New())}
			svc := micro.NewService(append(base, tc.newOpts...)...)
			for _, opts := range tc.inits {
				if err := svc.Init(opts...); err != nil {
					t.Fatalf("Init: %v", err)
				}
			}
			o := svc.Options()
			if o.Address != tc.wantAddr || o.RegisterTTL != tc.wantTTL {
				t.Fatalf("Address %q, RegisterTTL %v; want %q, %v", o.Address, o.RegisterTTL, tc.wantAddr, tc.wantTTL)
			}
		})
	}
}

// The parts follow the same rule: a registry named by a flag or variable replaces the one in
// code.
func TestFlagsAndEnvChooseParts(t *testing.T) {
	codeReg := memory.New()
	svc := micro.NewService(micro.Name("svc"), quiet, micro.Registry(codeReg),
		env(map[string]string{"MICRO_TRANSPORT": "memory", "MICRO_SELECTOR_STRATEGY": "random"}),
		micro.Args("--registry=memory", "--selector-strategy=p2c", "--server-metadata=zone=a,rack=2"))
	if err := svc.Init(); err != nil {
		t.Fatal(err)
	}
	o := svc.Options()
	if o.Registry == registry.Registry(codeReg) || o.Registry.String() != "memory" {
		t.Fatalf("registry %v: the flag should have replaced the code's", o.Registry)
	}
	if o.Transport.String() != "memory" || o.Selector.String() != "cache" {
		t.Fatalf("transport %v, selector %v", o.Transport, o.Selector)
	}
	if o.Metadata["zone"] != "a" || o.Metadata["rack"] != "2" {
		t.Fatalf("metadata %v", o.Metadata)
	}
}

func TestBadPartsFailInit(t *testing.T) {
	cases := map[string][]micro.Option{
		"unknown registry":             {micro.Args("--registry=nope")},
		"unknown transport":            {env(map[string]string{"MICRO_TRANSPORT": "nope"})},
		"unknown strategy":             {micro.Args("--selector-strategy=nope")},
		"address without a name":       {micro.Args("--registry-address=127.0.0.1:1")},
		"bad duration":                 {micro.Args("--register-ttl=soon")},
		"bad env duration":             {env(map[string]string{"MICRO_REGISTER_TTL": "-1s"})},
		"unknown flag":                 {micro.Args("--nope")},
		"code selector, flag registry": {micro.Selector(mustSelector(t)), micro.Args("--registry=memory")},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			svc := micro.NewService(append([]micro.Option{micro.Name("svc"), quiet, env(nil)}, opts...)...)
			if err := svc.Init(); err == nil {
				t.Fatal("Init: no error")
			}
		})
	}
}

func mustSelector(t *testing.T) selector.Selector {
	s, err := selector.New(selector.Registry(memory.New()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFlagsAndAction(t *testing.T) {
	var n *int
	var got []string
	var svc *micro.Service
	svc = micro.NewService(micro.Name("svc"), quiet, env(nil),
		micro.Flags(func(fs *flag.FlagSet) { n = fs.Int("n", 1, "calls") }),
		micro.Action(func(fs *flag.FlagSet) error {
			got = fs.Args()
			// An action may turn its own flags into options.
			return svc.Init(micro.GracePeriod(time.Duration(*n) * time.Second))
		}),
		micro.Args("-n", "3", "--server-name", "other", "Alice"))
	if err := svc.Init(); err != nil {
		t.Fatal(err)
	}
	if o := svc.Options(); *n != 3 || !slices.Equal(got, []string{"Alice"}) || o.Name != "other" || o.GracePeriod != 3*time.Second {
		t.Fatalf("n %d, args %v, name %q, grace %v", *n, got, o.Name, o.GracePeriod)
	}
	if err := svc.Init(micro.Flags(func(fs *flag.FlagSet) {})); !errors.Is(err, micro.ErrBuilt) {
		t.Fatalf("Flags after parsing: %v, want ErrBuilt", err)
	}
	failing := micro.NewService(micro.Name("svc"), quiet, env(nil), micro.Args(),
		micro.Action(func(*flag.FlagSet) error { return errors.New("action failed") }))
	if err := failing.Init(); err == nil || err.Error() != "action failed" {
		t.Fatalf("Init with a failing action: %v", err)
	}
}

func TestRegisterFlagsOnOwnFlagSet(t *testing.T) {
	fs := flag.NewFlagSet("configctl", flag.ContinueOnError)
	verbose := fs.Bool("v", false, "the binary's own flag")
	fv := micro.RegisterFlags(fs)
	if err := fs.Parse([]string{"-v", "--registry-address", "a:1, b:2", "--transport=tcp"}); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"MICRO_REGISTRY": "etcd", "MICRO_TRANSPORT": "memory", "MICRO_CLIENT_REQUEST_TIMEOUT": "2s"}[k]
		return v, ok
	}
	cfg, err := fv.Config(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if !*verbose || cfg.Registry != "etcd" || !slices.Equal(cfg.RegistryAddress, []string{"a:1", "b:2"}) ||
		cfg.Transport != "tcp" || cfg.RequestTimeout != 2*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	envOnly, err := micro.FromEnv(lookup)
	if err != nil || envOnly.Transport != "memory" || envOnly.RegistryAddress != nil {
		t.Fatalf("FromEnv = %+v, %v", envOnly, err)
	}
	if err := fs.Parse([]string{"--register-ttl=x"}); err == nil {
		t.Fatal("a bad duration parsed")
	}
	for _, s := range micro.Settings() {
		if fs.Lookup(s.Flag) == nil || !strings.HasPrefix(s.Env, "MICRO_") {
			t.Fatalf("setting %+v not registered", s)
		}
	}
	// The parts it names, for a binary that is only a client.
	parts, err := micro.NewParts(micro.Config{Registry: "memory", Transport: "memory", SelectorStrategy: "random"}, micro.Parts{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer parts.Close()
	if parts.Registry.String() != "memory" || parts.Transport.String() != "memory" || parts.Selector.String() != "cache" {
		t.Fatalf("parts %+v", parts)
	}
}

// Greeter is the test service.
type Greeter struct{}

type Req struct{ Name string }
type Rsp struct{ Msg string }

func (Greeter) Hello(_ context.Context, req *Req, rsp *Rsp) error {
	rsp.Msg = "Hello " + req.Name
	return nil
}

func (Greeter) Fail(context.Context, *Req, *Rsp) error {
	return status.New(status.BadRequest, "no")
}

// running starts svc.Run in the background and waits for AfterStart; stop ends Run and
// returns its error.
func running(t *testing.T, opts ...micro.Option) (svc *micro.Service, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	svc = micro.NewService(append([]micro.Option{quiet, env(nil), micro.Args(), micro.Context(ctx),
		micro.AfterStart(func() error { close(started); return nil })}, opts...)...)
	if err := svc.Init(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Handle(Greeter{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return svc, stop
}

func TestRunServesDebugHealthAndStats(t *testing.T) {
	reg := memory.New()
	var health debug.HealthResponse
	var healthErr error
	var svc *micro.Service
	svc, stop := running(t, micro.Name("greeter"), micro.Registry(reg), micro.Transport(tmem.New()),
		micro.GracePeriod(0),
		// The stop has begun (Health says draining) while the server still serves.
		micro.BeforeStop(func() error {
			healthErr = svc.Client().Call(context.Background(), "greeter", "Debug.Health", &debug.HealthRequest{}, &health,
				client.WithAddress(svc.Server().Addr()))
			return nil
		}))
	cli := svc.Client()
	ctx := context.Background()

	var h debug.HealthResponse
	if err := cli.Call(ctx, "greeter", "Debug.Health", &debug.HealthRequest{}, &h); err != nil || h.Status != debug.StatusOK {
		t.Fatalf("Health = %+v, %v", h, err)
	}
	for range 2 {
		var rsp Rsp
		if err := cli.Call(ctx, "greeter", "Greeter.Hello", &Req{Name: "Alice"}, &rsp); err != nil || rsp.Msg != "Hello Alice" {
			t.Fatalf("Hello = %+v, %v", rsp, err)
		}
	}
	if err := cli.Call(ctx, "greeter", "Greeter.Fail", &Req{}, &Rsp{}); status.CodeOf(err) != status.BadRequest {
		t.Fatalf("Fail: %v", err)
	}
	var st debug.StatsResponse
	if err := cli.Call(ctx, "greeter", "Debug.Stats", &debug.StatsRequest{}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Requests != 3 || st.Errors != 1 || st.InFlight != 0 || st.Goroutines == 0 || st.Memory == 0 ||
		st.Started == 0 || st.Started > time.Now().Unix() || st.Uptime < 0 {
		t.Fatalf("Stats = %+v, want 3 requests, 1 error", st)
	}
	eps, err := reg.GetService("greeter")
	if err != nil || !slices.Contains(eps[0].EndpointNames(), "Debug.Health") || !slices.Contains(eps[0].EndpointNames(), "Debug.Stats") {
		t.Fatalf("registered endpoints %v, %v", eps, err)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if healthErr != nil || health.Status != debug.StatusDraining {
		t.Fatalf("Health while stopping = %+v, %v; want draining", health, healthErr)
	}
	if _, err := reg.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("after Run: GetService = %v, want deregistered", err)
	}
	if err := svc.Run(); !errors.Is(err, micro.ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
}

// WrapClient sees each call once, WrapCall each attempt, WrapHandler each handled call, in
// the order given; wrappers given in Init after NewService apply too.
func TestWrappers(t *testing.T) {
	var mu sync.Mutex
	var trace []string
	log := func(s string) { mu.Lock(); trace = append(trace, s); mu.Unlock() }
	cw := func(name string) client.ClientWrapper {
		return func(next client.Caller) client.Caller {
			return client.CallerFunc(func(ctx context.Context, service, endpoint string, req, rsp any, opts ...client.CallOption) error {
				log(name + " " + endpoint)
				return next.Call(ctx, service, endpoint, req, rsp, opts...)
			})
		}
	}
	call := func(name string) client.CallWrapper {
		return func(next client.CallFunc) client.CallFunc {
			return func(ctx context.Context, req *client.Request, rsp any) error {
				log(name)
				return next(ctx, req, rsp)
			}
		}
	}
	hw := func(name string) server.HandlerWrapper {
		return func(next server.HandlerFunc) server.HandlerFunc {
			return func(ctx context.Context, req *server.Request, rsp any) error {
				log(name + " " + req.Endpoint)
				return next(ctx, req, rsp)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc := micro.NewService(micro.Name("greeter"), quiet, env(nil), micro.Args(), micro.Transport(tmem.New()), micro.GracePeriod(0),
		micro.Context(ctx), micro.WrapClient(cw("client1")), micro.WrapHandler(hw("handler1")))
	if err := svc.Init(micro.WrapClient(cw("client2")), micro.WrapCall(call("call")), micro.WrapHandler(hw("handler2"))); err != nil {
		t.Fatal(err)
	}
	// The server exists; wrappers may still be added until a handler is registered.
	if svc.Server() == nil {
		t.Fatal("no server")
	}
	if err := svc.Init(micro.WrapHandler(hw("handler3"))); err != nil {
		t.Fatal(err)
	}
	if err := svc.Handle(Greeter{}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Init(micro.WrapHandler(hw("late"))); !errors.Is(err, micro.ErrBuilt) {
		t.Fatalf("handler wrapper after Handle: %v, want ErrBuilt", err)
	}
	if err := svc.Server().Start(); err != nil {
		t.Fatal(err)
	}
	defer svc.Server().Stop(context.Background())
	var rsp Rsp
	if err := svc.Client().Call(ctx, "greeter", "Greeter.Hello", &Req{Name: "A"}, &rsp); err != nil {
		t.Fatal(err)
	}
	want := []string{"client1 Greeter.Hello", "client2 Greeter.Hello", "call", "handler1 Greeter.Hello", "handler2 Greeter.Hello", "handler3 Greeter.Hello"}
	if !slices.Equal(trace, want) {
		t.Fatalf("trace %v\nwant  %v", trace, want)
	}
	if err := svc.Init(micro.WrapClient(cw("late"))); !errors.Is(err, micro.ErrBuilt) {
		t.Fatalf("client wrapper after Client: %v, want ErrBuilt", err)
	}
	if err := svc.Init(micro.Address("127.0.0.1:1")); !errors.Is(err, micro.ErrBuilt) {
		t.Fatalf("address after the server was built: %v, want ErrBuilt", err)
	}
	if err := svc.Init(micro.Name("greeter")); err != nil {
		t.Fatalf("an option that changes nothing: %v", err)
	}
}

func TestNoName(t *testing.T) {
	svc := micro.NewService(quiet, env(nil))
	if err := svc.Handle(Greeter{}); err == nil || !strings.Contains(err.Error(), "MICRO_SERVER_NAME") {
		t.Fatalf("Handle without a name: %v", err)
	}
	if err := svc.Run(); err == nil {
		t.Fatal("Run without a name: no error")
	}
}
