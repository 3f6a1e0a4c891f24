package testserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// PrometheusServer is a real Prometheus server on loopback (Debian's
// prometheus package, or any prometheus in PATH) that scrapes the targets
// it was started with every 200ms.
type PrometheusServer struct {
	// URL is the server's base URL (http://127.0.0.1:port), the address a
	// client of its HTTP API is given.
	URL string

	p *process
}

// PrometheusScrapeInterval is how often the server scrapes its targets.
const PrometheusScrapeInterval = 200 * time.Millisecond

// Prometheus starts a Prometheus server that scrapes each target (a
// host:port serving /metrics) as job "test", and waits until it is ready
// (/-/ready). Its data is in the test's temporary directory; it is stopped
// when the test ends.
func Prometheus(t testing.TB, targets ...string) *PrometheusServer {
	t.Helper()
	bin := Binary(t, "prometheus")
	dir := t.TempDir()
	port := FreePorts(t, 1)[0]
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: test
    static_configs:
      - targets: [%[2]s]
`, PrometheusScrapeInterval, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	s := &PrometheusServer{URL: "http://" + hostPort(port)}
	s.p = &process{t: t, name: "prometheus", bin: bin, dir: dir, args: []string{
		"--config.file", cfgPath,
		"--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", hostPort(port),
		"--log.level", "warn",
	}}
	t.Cleanup(s.Stop)
	s.p.start()
	s.p.waitReady(s.ready)
	return s
}

// Stop stops the server.
func (s *PrometheusServer) Stop() { s.p.stop() }

// ready: /-/ready answers 200 once the server has loaded its storage and
// serves queries.
func (s *PrometheusServer) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /-/ready: %s: %s", resp.Status, body)
	}
	return nil
}
