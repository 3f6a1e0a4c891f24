// Package alarm asks a Prometheus whether a rollout's alarm fires: the
// driver of rollouts (server/rollouts) aborts a rollout whose abort query
// returns a result.
package alarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// DefaultTimeout bounds one query, connection included, when the caller's
// context does not bound it sooner.
const DefaultTimeout = 10 * time.Second

// maxAnswer bounds the bytes read of one answer: an alarm's answer is a
// verdict, and a URL that points elsewhere must not make configd read
// without end.
const maxAnswer = 4 << 20

// Prometheus runs alarm queries against Prometheus servers. It is safe for
// concurrent use.
type Prometheus struct {
	timeout time.Duration
	client  *http.Client
}

// Option configures a Prometheus.
type Option func(*Prometheus)

// WithTimeout bounds each query by d instead of DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(p *Prometheus) { p.timeout = d }
}

// New returns a Prometheus that queries with opts.
func New(opts ...Option) *Prometheus {
	p := &Prometheus{timeout: DefaultTimeout}
	for _, o := range opts {
		o(p)
	}
	p.client = &http.Client{Transport: limitedTransport{api.DefaultRoundTripper}}
	return p
}

// Firing runs query as an instant query on the Prometheus at prometheusURL
// and reports whether it fires: a non-empty vector, a scalar other than 0
// (and NaN), or a matrix with samples. why names the first series and its
// value, such as `up{job="orders"} = 0`. An error (the server down or slow,
// a bad query, an answer that is not Prometheus') names the URL and
// Prometheus' message; it says nothing about the alarm, and fired is false.
func (p *Prometheus) Firing(ctx context.Context, prometheusURL, query string) (fired bool, why string, err error) {
	u, err := url.Parse(prometheusURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false, "", fmt.Errorf("prometheus %q: want an http:// or https:// URL", prometheusURL)
	}
	c, err := api.NewClient(api.Config{Address: prometheusURL, Client: p.client})
	if err != nil {
		return false, "", fmt.Errorf("prometheus %s: %w", prometheusURL, err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, _, _, err := promv1.NewAPI(c).Query(ctx, query, time.Time{})
	if err != nil {
		return false, "", fmt.Errorf("prometheus %s: query %q: %w", prometheusURL, query, describe(err))
	}
	fired, why, err = verdict(v)
	if err != nil {
		return false, "", fmt.Errorf("prometheus %s: query %q: %w", prometheusURL, query, err)
	}
	return fired, why, nil
}

// verdict reads an instant query's result as an alarm.
func verdict(v model.Value) (bool, string, error) {
	switch v := v.(type) {
	case model.Vector:
		if len(v) == 0 {
			return false, "", nil
		}
		sort.Slice(v, func(i, j int) bool { return v[i].Metric.Before(v[j].Metric) })
		return true, series(v[0].Metric.String(), v[0].Value.String(), len(v)), nil
	case *model.Scalar:
		f := float64(v.Value)
		if f == 0 || math.IsNaN(f) {
			return false, "", nil
		}
		return true, "scalar = " + v.Value.String(), nil
	case model.Matrix:
		var withSamples model.Matrix
		for _, s := range v {
			if len(s.Values) > 0 {
				withSamples = append(withSamples, s)
			}
		}
		if len(withSamples) == 0 {
			return false, "", nil
		}
		sort.Slice(withSamples, func(i, j int) bool { return withSamples[i].Metric.Before(withSamples[j].Metric) })
		first := withSamples[0]
		return true, series(first.Metric.String(), first.Values[len(first.Values)-1].Value.String(), len(withSamples)), nil
	case nil:
		return false, "", errors.New("no result in the answer")
	default:
		return false, "", fmt.Errorf("a %s result is not an alarm: want a vector, a scalar or a matrix", v.Type())
	}
}

func series(metric, value string, n int) string {
	s := metric + " = " + value
	if n > 1 {
		s += fmt.Sprintf(" (and %d more series)", n-1)
	}
	return s
}

// describe keeps Prometheus' own message of an API error, and only the
// status of an answer that is not one: the body of whatever else answers
// at the URL does not go into a rollout's log.
func describe(err error) error {
	var apiErr *promv1.Error
	if !errors.As(err, &apiErr) {
		return err
	}
	switch apiErr.Type {
	case promv1.ErrBadResponse:
		return fmt.Errorf("unreadable answer: %s", apiErr.Msg)
	case promv1.ErrServer, promv1.ErrClient:
		if apiErr.Detail != "" { // an HTTP error without Prometheus' JSON
			return fmt.Errorf("not a Prometheus API answer: %s", apiErr.Msg)
		}
	}
	return apiErr
}

// limitedTransport fails an answer longer than maxAnswer.
type limitedTransport struct{ next http.RoundTripper }

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	read int64
}

// Read reads at most one byte past maxAnswer, so that an answer of
// exactly maxAnswer bytes ends with the body's own EOF.
func (b *limitedBody) Read(p []byte) (int, error) {
	if b.read > maxAnswer {
		return 0, fmt.Errorf("answer longer than %d bytes", int64(maxAnswer))
	}
	if room := maxAnswer + 1 - b.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.rc.Read(p)
	b.read += int64(n)
	if b.read > maxAnswer {
		return n, fmt.Errorf("answer longer than %d bytes", int64(maxAnswer))
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
