package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
	microserver "github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/wrapper"
	"github.com/configd/configd/server"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/env"
)

// promtool runs Prometheus' promtool (Debian's prometheus package; make
// test-deps installs it) in dir.
func promtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (make test-deps installs Debian's prometheus): %v", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestPrometheusConfigRulesAndTheirTests(t *testing.T) {
	promtool(t, "prometheus", "check", "config", "prometheus.yml")
	promtool(t, "prometheus", "check", "rules", "configd-rules.yml")
	promtool(t, "prometheus", "test", "rules", "configd-rules.test.yml")
}

// TestPromtoolCatchesABrokenRule shows the check above can fail: a rule
// whose alert the unit test expects but that never fires.
func TestPromtoolCatchesABrokenRule(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile("prometheus/configd-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(rules), "expr: configd_store_available == 0", "expr: configd_store_available == 2", 1)
	if broken == string(rules) {
		t.Fatal("the rule to break is not in configd-rules.yml")
	}
	tests, err := os.ReadFile("prometheus/configd-rules.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "configd-rules.yml"), []byte(broken), 0o644)
	os.WriteFile(filepath.Join(dir, "configd-rules.test.yml"), tests, 0o644)
	if out, err := exec.Command("promtool", "test", "rules", filepath.Join(dir, "configd-rules.test.yml")).CombinedOutput(); err == nil {
		t.Fatalf("promtool passed a rule that never fires:\n%s", out)
	}
}

// queries are the PromQL expressions of the rules and dashboards, by file.
func queries(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	b, err := os.ReadFile("prometheus/configd-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["prometheus/configd-rules.yml"] = append(out["prometheus/configd-rules.yml"], r.Expr)
		}
	}
	dashboards, err := filepath.Glob("grafana/*.json")
	if err != nil || len(dashboards) < 2 {
		t.Fatalf("dashboards %v: %v", dashboards, err)
	}
	for _, path := range dashboards {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID, Title string
			Panels     []struct {
				Title   string
				Targets []struct{ Expr string }
			}
			Templating struct {
				List []struct {
					Type  string
					Query any
				}
			}
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Fatalf("%s: a dashboard needs a uid, a title and panels", path)
		}
		for _, p := range d.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", path, p.Title)
			}
			for _, tg := range p.Targets {
				out[path] = append(out[path], tg.Expr)
			}
		}
		for _, v := range d.Templating.List {
			if q, ok := v.Query.(string); ok && v.Type == "query" {
				out[path] = append(out[path], q)
			}
		}
	}
	return out
}

var (
	quoted   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchers = regexp.MustCompile(`\{[^}]*\}`)
	grouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	ranges   = regexp.MustCompile(`\[[^\]]*\]`)
	ident    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// metricNames returns the metric names a PromQL expression (or a Grafana
// label_values query) reads: its identifiers that are neither functions,
// keywords, labels in matchers or groupings, nor durations.
func metricNames(expr string) []string {
	if m := regexp.MustCompile(`^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)`).FindStringSubmatch(expr); m != nil {
		return []string{m[1]}
	}
	expr = quoted.ReplaceAllString(expr, `""`)
	expr = matchers.ReplaceAllString(expr, " ")
	expr = grouping.ReplaceAllString(expr, " ")
	expr = ranges.ReplaceAllString(expr, " ")
	expr = strings.ReplaceAll(expr, "$__rate_interval", " ")
	var names []string
	for _, m := range ident.FindAllString(expr, -1) {
		if strings.HasSuffix(m, "(") || slices.Contains(keywords, strings.ToLower(m)) {
			continue
		}
		names = append(names, m)
	}
	return names
}

func TestMetricNamesOfAQuery(t *testing.T) {
	got := metricNames(`sum by (code) (rate(configd_http_requests_total{instance=~"$instance",method=~"PUT|POST"}[$__rate_interval])) / on (instance) group_left configd_revision > bool 0.5`)
	if want := []string{"configd_http_requests_total", "configd_revision"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// exported is every metric family a running configd, and a service on the
// RPC core with the built-in wrappers, export once they have done some work.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{"up": true} // Prometheus' own
	add := func(r io.Reader) {
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(r)
		if err != nil {
			t.Fatal(err)
		}
		for name, mf := range mfs {
			names[name] = true
			if mf.GetType().String() == "HISTOGRAM" {
				names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
			}
		}
	}

	// configd as deployed (authentication on), with a source, a write, a
	// watch, a walk of its audit chain, and a request without a token.
	t.Setenv("DEPLOYTEST_GREETING", "hello")
	const token = "deploy-test-bootstrap-token-0123456789"
	cfg := server.DefaultConfig()
	cfg.Auth, cfg.BootstrapToken = true, token
	cfg.Sources = []source.Config{{Name: "env", Type: "env", Mount: "env/", TypeConfig: env.Config{Prefix: "DEPLOYTEST_"}}}
	d := configdtest.Run(t, cfg)
	base := "http://" + d.Addr
	do := func(method, path, body, token string, want int) io.Reader {
		t.Helper()
		code, b := send(t, method, base+path, body, token)
		if code != want {
			t.Fatalf("%s %s: %d, want %d", method, path, code, want)
		}
		return strings.NewReader(b)
	}
	do(http.MethodPut, "/v1/kv/app/a", "1", token, http.StatusOK)
	do(http.MethodGet, "/v1/watch?prefix=app/&since=0", "", token, http.StatusOK)
	do(http.MethodGet, "/v1/audit/verify", "", token, http.StatusOK)
	do(http.MethodGet, "/v1/kv/app/a", "", "", http.StatusUnauthorized)
	add(do(http.MethodGet, "/metrics", "", "", http.StatusOK)) // public, as Prometheus scrapes it

	// A service and a client on the RPC core: calls, a panic, a stream.
	reg := prometheus.NewRegistry()
	m, err := wrapper.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b := wrapper.NewBreaker()
	reg.MustRegister(b.Collector())
	mreg, tr := memory.New(), tcp.New()
	srv, err := microserver.New(microserver.Name("greeter"), microserver.Registry(mreg), microserver.Transport(tr),
		microserver.GracePeriod(0), microserver.WrapHandler(m.HandlerWrapper()))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(greeter{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	sel, err := selector.New(selector.Registry(mreg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sel.Close() })
	cl, err := client.New(client.Selector(sel), client.Transport(tr), client.Wrap(m.CallWrapper(), b.Wrapper()),
		client.WrapStream(m.StreamWrapper()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rsp2 Msg
	if err := cl.Call(ctx, "greeter", "greeter.Hello", &Msg{Text: "x"}, &rsp2); err != nil {
		t.Fatal(err)
	}
	if err := cl.Call(ctx, "greeter", "greeter.Panic", &Msg{}, &rsp2); err == nil {
		t.Fatal("a panicking handler answered without an error")
	}
	st, err := cl.Stream(ctx, "greeter", "greeter.Echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&Msg{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Recv(&rsp2); err != nil {
		t.Fatal(err)
	}
	st.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	add(strings.NewReader(text.String()))
	return names
}

// Msg is the greeter's message.
type Msg struct{ Text string }

type greeter struct{}

func (greeter) Hello(_ context.Context, req *Msg, rsp *Msg) error { rsp.Text = req.Text; return nil }
func (greeter) Panic(context.Context, *Msg, *Msg) error           { panic("on purpose") }
func (greeter) Echo(ctx context.Context, s microserver.Stream) error {
	var m Msg
	if err := s.Recv(&m); err != nil {
		return err
	}
	if err := s.Send(&m); err != nil {
		return err
	}
	var end Msg
	if err := s.Recv(&end); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func TestDashboardsAndRulesReadOnlyExportedMetrics(t *testing.T) {
	have := exported(t)
	for file, exprs := range queries(t) {
		for _, expr := range exprs {
			names := metricNames(expr)
			if len(names) == 0 {
				t.Errorf("%s: %q reads no metric", file, expr)
			}
			for _, n := range names {
				if !have[n] {
					t.Errorf("%s: %q reads %s, which nothing exports", file, expr, n)
				}
			}
		}
	}
}
