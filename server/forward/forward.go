// Package forward sends a replica's writes to the replica that takes the
// cluster's writes (docs/ha.md, "One writer at a time").
//
// Every replica of a cluster on etcd may commit: a batch is one etcd
// transaction that compares the log's head, so two replicas that write at
// once never both succeed, and the loser decides its batch again on the new
// head. That keeps the log right whoever writes, but replicas that write
// at once spend their round trips losing races. So one replica at a time
// (the writer, chosen through etcd) takes the writes, and the others
// forward the write requests they receive to it over HTTP, as they came:
// the writer authenticates and authorizes them itself, with the same
// token, and its single writer batches them all.
//
// When the replicas serve TLS, a replica forwards over HTTPS, trusting the
// writer's certificate with the CAs it is given (WithTLS, --peer-ca); the
// client's token travels inside that connection as it came.
//
// Forwarding is an optimisation, never a condition of being right: a
// replica that does not know the writer, cannot reach it, or gets a
// request it cannot forward (a client certificate proves who sent it, and
// the certificate stays on this connection) commits the write itself; so
// does one that does not follow the log (its etcd is away), which could
// not read the write back.
// Once the writer answered, the forwarding replica waits until it has
// applied the revision the answer names before it relays the answer, so a
// client reads its own write on the replica it wrote to.
package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
)

// HeaderForwarded marks a request a replica forwarded: the writer commits
// it itself, never forwards it again. Its value is the forwarding
// replica's name.
const HeaderForwarded = "X-Configd-Forwarded-By"

// HeaderForwardedTo, on an answer a replica relays, is the address
// (host:port) of the writer that answered it.
const HeaderForwardedTo = "X-Configd-Forwarded-To"

// Writer tells which replica takes the cluster's writes.
type Writer interface {
	// WriterURL returns the base URL (http://host:port or https://host:port) of the replica
	// that takes the writes, or "" when that is this replica or no replica
	// is known to be the writer.
	WriterURL() string
}

// Applier is the local store: it waits until a revision is applied here,
// and says whether it follows the cluster's log.
type Applier interface {
	WaitRev(ctx context.Context, rev int64) error
	Replication() audit.Replication
}

// Forwarder forwards write requests to the writer. Make it with New.
type Forwarder struct {
	writer  Writer
	applier Applier
	client  *http.Client
	name    string
	actor   func(*http.Request) string
	maxBody int64
	wait    time.Duration
	logger  *slog.Logger
}

// Option configures a Forwarder.
type Option func(*Forwarder)

// WithName is this replica's name, sent in HeaderForwarded.
func WithName(name string) Option { return func(f *Forwarder) { f.name = name } }

// WithActor tells who this replica found the request comes from (its
// identity middleware's actor). When the client named no actor, the
// forwarded request names this one, so that the writer records the same
// actor as this replica would: without authentication, an anonymous
// client is anonymous@<its IP>, not the forwarding replica's.
func WithActor(fn func(*http.Request) string) Option { return func(f *Forwarder) { f.actor = fn } }

// WithMaxBody bounds the body of a request that is forwarded (default 4
// MiB); a larger one is committed here, where the handler refuses it with
// its usual answer.
func WithMaxBody(n int64) Option { return func(f *Forwarder) { f.maxBody = n } }

// WithTimeout bounds a forwarded request, and the wait for its revision
// to be applied here afterwards (default 10 s each).
func WithTimeout(d time.Duration) Option {
	return func(f *Forwarder) { f.client.Timeout = d; f.wait = d }
}

// WithTLS makes the Forwarder speak HTTPS to the writer, trusting the
// certificate authorities of c.RootCAs (the replicas' serving
// certificates: --peer-ca); the writer's address must be in its
// certificate. The Writer's URLs must then be https:// ones (TrackOldest's
// WithHTTPS). A writer whose certificate is not trusted is not sent the
// request: the write is committed here, and a warning says why.
func WithTLS(c *tls.Config) Option {
	return func(f *Forwarder) { f.client.Transport.(*http.Transport).TLSClientConfig = c }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(f *Forwarder) { f.logger = l } }

// New returns a Forwarder to the writer w that waits on a.
func New(w Writer, a Applier, opts ...Option) *Forwarder {
	f := &Forwarder{writer: w, applier: a, name: "replica", maxBody: 4 << 20, wait: 10 * time.Second,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		}}, logger: slog.Default()}
	// The writer's redirects, if any, go back to the client as they are.
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, o := range opts {
		o(f)
	}
	return f
}

// hopHeaders are the headers of one connection, not of the request
// (RFC 9110, 7.6.1), and the client's own Host.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host"}

// Middleware forwards the requests of next to the writer when this replica
// is not the writer and the request can be forwarded; otherwise next
// serves them here.
func (f *Forwarder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := f.writer.WriterURL()
		// A replica that does not follow the log could not read the write
		// back: it commits here, which refuses with store_unavailable.
		if target == "" || r.Header.Get(HeaderForwarded) != "" || (r.TLS != nil && len(r.TLS.PeerCertificates) > 0) ||
			f.applier.Replication().Err != nil {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, f.maxBody+1))
		if err != nil {
			// The body could not be read: the handler answers that, with
			// what is left of it.
			r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
			next.ServeHTTP(w, r)
			return
		}
		if int64(len(body)) > f.maxBody {
			r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
			next.ServeHTTP(w, r)
			return
		}
		resp, err := f.send(r, target, body)
		if err != nil {
			if notSent(err) {
				// Nothing reached the writer: commit here.
				if handshakeFailed(err) {
					f.logger.Warn("forward: no TLS with the writer (is its certificate signed by --peer-ca, for its address?), committing here", "writer", target, "err", err)
				} else {
					f.logger.Debug("forward: the writer is unreachable, committing here", "writer", target, "err", err)
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				next.ServeHTTP(w, r)
				return
			}
			// The writer may have committed it: doing it here could do it
			// twice. The client decides, as after any timeout.
			f.logger.Warn("forward: the writer did not answer", "writer", target, "method", r.Method, "path", r.URL.Path, "err", err)
			apierror.Write(w, api.ErrorBody{Code: api.CodeUnavailable, Message: fmt.Sprintf(
				"the cluster's writer (%s) did not answer: the write may or may not have been applied (read it back, or retry a compare-and-set)", target)})
			return
		}
		defer resp.Body.Close()
		if rev, err := strconv.ParseInt(resp.Header.Get(api.HeaderRev), 10, 64); err == nil && resp.StatusCode/100 == 2 {
			ctx, cancel := context.WithTimeout(r.Context(), f.wait)
			err := f.applier.WaitRev(ctx, rev)
			cancel()
			if err != nil {
				f.logger.Warn("forward: the write's revision is not applied here yet", "rev", rev, "err", err)
			}
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.Header().Set(HeaderForwardedTo, strings.TrimPrefix(strings.TrimPrefix(target, "http://"), "https://"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
}

// send forwards r, with body, to the writer at target.
func (f *Forwarder) send(r *http.Request, target string, body []byte) (*http.Response, error) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		out.Header[k] = vs
	}
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	out.Header.Set(HeaderForwarded, f.name)
	if f.actor != nil && out.Header.Get(api.HeaderActor) == "" {
		if a := f.actor(r); a != "" {
			out.Header.Set(api.HeaderActor, a)
		}
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.Header.Add("X-Forwarded-For", ip)
	}
	return f.client.Do(out)
}

// notSent reports whether err says the request never reached the writer:
// the connection could not be made, or its TLS handshake failed (the
// request is sent only once the handshake is done).
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || handshakeFailed(err)
}

// handshakeFailed reports whether err is a failed TLS handshake with the
// writer: its certificate not trusted, or the writer refused ours or the
// protocol.
func handshakeFailed(err error) bool {
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	var header tls.RecordHeaderError
	return errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &header)
}

type readCloser struct {
	io.Reader
	io.Closer
}
