package alarm_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server/alarm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// awaitFiring queries until the alarm's answer is want, or fails the test
// after a deadline: Prometheus sees a change of the exporter at its next
// scrape.
func awaitFiring(t *testing.T, a *alarm.Prometheus, url, query string, want bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fired, why, err := a.Firing(context.Background(), url, query)
		if err == nil && fired == want {
			return why
		}
		if time.Now().After(deadline) {
			t.Fatalf("Firing(%q) = %v, %q, %v; want %v by now", query, fired, why, err, want)
		}
		time.Sleep(testserver.PrometheusScrapeInterval / 4) // polling with a deadline: Prometheus has no push
	}
}

func TestFiringAgainstPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	failing := prometheus.NewGauge(prometheus.GaugeOpts{Name: "demo_failing", Help: "1 when the demo service fails."})
	reg.MustRegister(failing)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer exporter.Close()

	prom := testserver.Prometheus(t, strings.TrimPrefix(exporter.URL, "http://"))
	a := alarm.New()
	ctx := context.Background()

	// The first scrape is in.
	awaitFiring(t, a, prom.URL, `demo_failing`, true)

	t.Run("a false condition does not fire", func(t *testing.T) {
		fired, why, err := a.Firing(ctx, prom.URL, `demo_failing > 0`)
		if err != nil || fired || why != "" {
			t.Fatalf("Firing = %v, %q, %v; want false, \"\", nil", fired, why, err)
		}
	})
	t.Run("scalars fire when not 0", func(t *testing.T) {
		if fired, why, err := a.Firing(ctx, prom.URL, `0`); err != nil || fired {
			t.Fatalf("Firing(0) = %v, %q, %v; want not firing", fired, why, err)
		}
		if fired, why, err := a.Firing(ctx, prom.URL, `scalar(vector(2))`); err != nil || !fired || why != "scalar = 2" {
			t.Fatalf("Firing(2) = %v, %q, %v; want firing, \"scalar = 2\"", fired, why, err)
		}
	})
	t.Run("a string is not an alarm", func(t *testing.T) {
		fired, _, err := a.Firing(ctx, prom.URL, `"up"`)
		if err == nil || fired || !strings.Contains(err.Error(), `unreadable answer: unexpected value type "string"`) {
			t.Fatalf("Firing = %v, %v; want an error saying a string is not an alarm", fired, err)
		}
	})

	failing.Set(1)
	t.Run("the flipped gauge fires, naming the series", func(t *testing.T) {
		why := awaitFiring(t, a, prom.URL, `demo_failing > 0`, true)
		if !strings.HasPrefix(why, `demo_failing{`) || !strings.Contains(why, `job="test"`) || !strings.HasSuffix(why, " = 1") {
			t.Fatalf("why = %q; want the series demo_failing{...job=\"test\"} = 1", why)
		}
	})
	t.Run("a matrix with samples fires", func(t *testing.T) {
		fired, why, err := a.Firing(ctx, prom.URL, `demo_failing[1m]`)
		if err != nil || !fired || !strings.HasPrefix(why, "demo_failing{") {
			t.Fatalf("Firing = %v, %q, %v; want firing on the range", fired, why, err)
		}
	})
	t.Run("a bad query is an error with Prometheus' message", func(t *testing.T) {
		fired, _, err := a.Firing(ctx, prom.URL, `demo_failing >`)
		if err == nil || fired {
			t.Fatalf("Firing = %v, %v; want an error", fired, err)
		}
		if msg := err.Error(); !strings.Contains(msg, prom.URL) || !strings.Contains(msg, "parse error") {
			t.Fatalf("error %q; want the URL and Prometheus' parse error", msg)
		}
	})

	prom.Stop()
	t.Run("Prometheus down is an error, not firing", func(t *testing.T) {
		fired, _, err := a.Firing(ctx, prom.URL, `demo_failing > 0`)
		if err == nil || fired || !strings.Contains(err.Error(), prom.URL) {
			t.Fatalf("Firing = %v, %v; want an error naming %s", fired, err, prom.URL)
		}
	})
}

func TestFiringRefusesWhatIsNotPrometheus(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>secret intranet page</html>"))
	}))
	defer html.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "secret proxy page", http.StatusBadGateway)
	}))
	defer bad.Close()
	a := alarm.New()
	for _, c := range []struct{ name, url, want string }{
		{"a non-JSON answer", html.URL, "unreadable answer: invalid character"},
		{"an HTTP error", bad.URL, "not a Prometheus API answer: server error: 502"},
		{"a URL that is not http", "ftp://example.com", "want an http:// or https:// URL"},
		{"no URL", "", "want an http:// or https:// URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fired, _, err := a.Firing(context.Background(), c.url, `up`)
			if err == nil || fired || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("Firing = %v, %v; want an error with %q and not the page's body", fired, err, c.want)
			}
		})
	}
}

func TestFiringTimesOut(t *testing.T) {
	// A server that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	a := alarm.New(alarm.WithTimeout(200 * time.Millisecond))
	start := time.Now()
	fired, _, err := a.Firing(context.Background(), "http://"+l.Addr().String(), `up`)
	if err == nil || fired || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("Firing = %v, %v; want a timeout naming the address", fired, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Firing took %v with a 200ms timeout", d)
	}
	t.Log(err)
}
