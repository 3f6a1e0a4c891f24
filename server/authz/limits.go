package authz

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/apierror"
)

// DefaultMaxWatchesPerIdentity is the default of --max-watches-per-identity.
const DefaultMaxWatchesPerIdentity = 1000

// limitSweepEvery is how often idle rate buckets are dropped.
const limitSweepEvery = time.Minute

// Limits are the per-identity limits of the HTTP and gRPC APIs: a token
// bucket of requests (rate and burst) and a cap on open watches. An
// identity is the token's name when authentication is on, and the client's
// IP address when it is off. One Limits is shared by the HTTP API and the
// gRPC server, so that a watch counts the same over either. A nil *Limits
// limits nothing. It is safe for concurrent use.
type Limits struct {
	rate       rate.Limit
	burst      int
	maxWatches int
	now        func() time.Time

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
	watches   map[string]int

	refused *prometheus.CounterVec
}

// NewLimits returns limits of perSecond requests per identity (0: no rate
// limit) in bursts of up to burst (0: twice the rate, at least 1), and of
// maxWatches open watches per identity (0: no limit).
func NewLimits(perSecond float64, burst, maxWatches int) *Limits {
	if perSecond < 0 || burst < 0 || maxWatches < 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
		panic("authz: NewLimits with a negative or infinite limit")
	}
	if burst == 0 {
		burst = max(1, int(math.Ceil(2*perSecond)))
	}
	l := &Limits{
		rate: rate.Limit(perSecond), burst: burst, maxWatches: maxWatches, now: time.Now,
		buckets: map[string]*rate.Limiter{}, watches: map[string]int{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "configd_limited_total",
			Help: "Requests and watches refused by a per-identity limit, by reason (rate_limited, too_many_watches).",
		}, []string{"reason"}),
	}
	for _, r := range []string{api.CodeRateLimited, api.CodeTooManyWatches} {
		l.refused.WithLabelValues(r)
	}
	return l
}

type limitKey struct{}

// allow takes one request from id's bucket; when it is empty it returns
// false and how long until it holds a request again.
func (l *Limits) allow(id string) (time.Duration, bool) {
	if !l.rated() {
		return 0, true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= limitSweepEvery {
		// A full bucket is the same as a new one: forget it, so that the
		// map does not grow with every client ever seen.
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b := l.buckets[id]
	if b == nil {
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[id] = b
	}
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// rated reports whether requests are limited (--rate-limit above 0).
func (l *Limits) rated() bool { return l != nil && l.rate > 0 }

// rateLimitedMessage says who went over the limit and when to come back.
func (l *Limits) rateLimitedMessage(id string, retry int) string {
	return fmt.Sprintf("rate limit exceeded for %s: %s requests/s in bursts of %d (--rate-limit, --rate-burst); retry in %d s",
		displayIdentity(id), strconv.FormatFloat(float64(l.rate), 'g', -1, 64), l.burst, retry)
}

// retryAfter is d in whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// Middleware applies the rate limit to HTTP requests, after the identity
// middleware: over the limit it answers 429 rate_limited with Retry-After.
// It also notes the request's identity for OpenWatch. A nil *Limits
// passes every request.
func (l *Limits) Middleware(next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := httpIdentity(r)
		if d, ok := l.allow(id); !ok {
			l.refused.WithLabelValues(api.CodeRateLimited).Inc()
			secs := retryAfter(d)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			apierror.Write(w, api.ErrorBody{Code: api.CodeRateLimited, Message: l.rateLimitedMessage(id, secs)})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), limitKey{}, id)))
	})
}

// OpenWatch counts a watch of the identity of ctx, or refuses it with 429
// too_many_watches when the identity has the maximum open. The caller
// calls release (once or more) when the watch closes; on refusal release
// does nothing.
func (l *Limits) OpenWatch(ctx context.Context) (release func(), err error) {
	if l == nil || l.maxWatches <= 0 {
		return func() {}, nil
	}
	id := ctxIdentity(ctx)
	l.mu.Lock()
	if l.watches[id] >= l.maxWatches {
		l.mu.Unlock()
		l.refused.WithLabelValues(api.CodeTooManyWatches).Inc()
		return func() {}, apierror.New(api.CodeTooManyWatches,
			"%s has %d watches open, the most allowed (--max-watches-per-identity); close one first", displayIdentity(id), l.maxWatches)
	}
	l.watches[id]++
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.watches[id]--; l.watches[id] <= 0 {
				delete(l.watches, id)
			}
		})
	}, nil
}

// OpenWatchUntilDone is OpenWatch, released at the latest when ctx ends:
// for the watches of a gRPC stream, which all end with it.
func (l *Limits) OpenWatchUntilDone(ctx context.Context) (release func(), err error) {
	rel, err := l.OpenWatch(ctx)
	if err != nil || l == nil || l.maxWatches <= 0 {
		return rel, err
	}
	stop := context.AfterFunc(ctx, rel)
	return func() { stop(); rel() }, nil
}

// openWatches is how many watches id has open (tests).
func (l *Limits) openWatches(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watches[id]
}

// Identities are "token:NAME" or "ip:ADDRESS".
func httpIdentity(r *http.Request) string {
	if p := PrincipalFrom(r.Context()); p != nil {
		return "token:" + p.Name
	}
	return "ip:" + RemoteIP(r)
}

// ctxIdentity is the identity the HTTP middleware noted, else the token of
// ctx, else the gRPC peer's address.
func ctxIdentity(ctx context.Context) string {
	if id, ok := ctx.Value(limitKey{}).(string); ok {
		return id
	}
	if p := PrincipalFrom(ctx); p != nil {
		return "token:" + p.Name
	}
	if ip := peerIP(ctx); ip != "" {
		return "ip:" + ip
	}
	return "ip:unknown"
}

func displayIdentity(id string) string {
	if name, ok := strings.CutPrefix(id, "token:"); ok {
		return fmt.Sprintf("token %q", name)
	}
	return "client " + strings.TrimPrefix(id, "ip:")
}

// Collector is configd_limited_total, for a Prometheus registry.
func (l *Limits) Collector() prometheus.Collector { return l.refused }
