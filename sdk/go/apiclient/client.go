// Package apiclient is the Go client of configd's HTTP API (version 1).
//
// A Client is made once with New and shared; it is safe for concurrent use.
// Every method takes a context first and returns the wire types of package
// api. Errors that configd answers are *Error values, checked with
// errors.Is against the sentinels of this package (ErrNotFound,
// ErrConflict, ...); a configd that cannot be reached gives an error that
// matches ErrUnreachable.
//
//	c, err := apiclient.New(api.DefaultAddr, apiclient.WithActor("deploy-bot"))
//	...
//	wr, err := c.Put(ctx, "app/db/timeout", []byte("5s"), apiclient.WithReason("slower disks"))
//	kv, err := c.Get(ctx, "app/db/timeout")
//	if errors.Is(err, apiclient.ErrNotFound) { ... }
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/configd/configd/api"
)

// DefaultUserAgent is the User-Agent a Client sends unless WithUserAgent
// sets another.
const DefaultUserAgent = "configd-go-client/1"

// maxErrorBody bounds how much of an error answer is read: enough for any
// api.ErrorResponse, little enough that a misdirected request to some large
// page costs nothing.
const maxErrorBody = 64 << 10

// Option configures a Client.
type Option func(*options)

type options struct {
	httpClient *http.Client
	actor      string
	token      string
	userAgent  string
	timeout    time.Duration
	tls        *tls.Config
}

// WithHTTPClient makes the Client send its requests through hc (for TLS
// settings, proxies, or a test server's client). The default is a client of
// its own with http.DefaultTransport's settings.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithTLS makes the Client talk HTTPS with cfg: the CAs to trust and, for
// a configd that requires one (mutual TLS), the client certificate. See
// config.LoadTLS (package sdk/go/config) to build cfg from PEM files. An
// address without a scheme then means https; an http:// address is an
// error. It cannot be combined with WithHTTPClient (set TLS on that
// client's transport instead). Without it, an https:// address uses the
// system's roots.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithActor names who makes the writes of this Client; configd records it
// in every revision the Client creates. It is sent in the api.HeaderActor
// header. Without it configd records its own default.
func WithActor(actor string) Option { return func(o *options) { o.actor = actor } }

// WithToken authenticates the Client's requests with a bearer token
// (configctl token create, or configd's bootstrap admin token), sent as
// "Authorization: Bearer <token>". configd then records the token's name
// as the actor; WithActor counts only for a token with admin on every key.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithUserAgent sets the User-Agent header (default DefaultUserAgent).
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithTimeout bounds each call of the Client, on top of the deadline of its
// context. Zero (the default) means only the context bounds a call.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Client talks to one configd. Make it with New.
type Client struct {
	base *url.URL // scheme, host and optional path prefix, no trailing '/'
	addr string   // as the caller named it, for messages
	opts options
}

// New returns a Client of the configd at addr, which is either host:port
// (such as api.DefaultAddr, scheme http, or https with WithTLS) or an http or https URL
// ("https://configd.internal:7700", optionally with a path prefix when
// configd sits behind a proxy). New does not contact configd.
func New(addr string, opts ...Option) (*Client, error) {
	o := options{userAgent: DefaultUserAgent}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout < 0 {
		return nil, fmt.Errorf("client: negative timeout %v", o.timeout)
	}
	defaultScheme := "http"
	if o.tls != nil {
		if o.httpClient != nil {
			return nil, errors.New("client: WithTLS and WithHTTPClient together: set TLS on the http.Client's transport")
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = o.tls.Clone()
		o.httpClient = &http.Client{Transport: t}
		defaultScheme = "https"
	}
	if o.httpClient == nil {
		o.httpClient = &http.Client{Transport: http.DefaultTransport}
	}
	base, err := parseAddr(addr, defaultScheme)
	if err != nil {
		return nil, err
	}
	if o.tls != nil && base.Scheme != "https" {
		return nil, fmt.Errorf("client: configd address %q is http:// but TLS is set: use https://", addr)
	}
	return &Client{base: base, addr: strings.TrimSpace(addr), opts: o}, nil
}

// parseAddr turns host:port (with scheme defaultScheme) or an http(s) URL
// into a base URL.
func parseAddr(addr, defaultScheme string) (*url.URL, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return nil, errors.New("client: empty configd address")
	}
	raw := addr
	if !strings.Contains(addr, "://") {
		raw = defaultScheme + "://" + addr
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("client: bad configd address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: bad configd address %q: scheme must be http or https", addr)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: bad configd address %q: no host", addr)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: bad configd address %q: want host:port or scheme://host:port[/path]", addr)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Addr returns the address the Client was made with.
func (c *Client) Addr() string { return c.addr }

// request describes one call.
type request struct {
	method string
	path   string // already escaped, starting with "/v1/"
	query  url.Values
	header http.Header
	body   []byte
	// jsonBody marks body as JSON for the Content-Type header when no other
	// was set.
	jsonBody bool
}

// do sends req and decodes a 2xx JSON answer into out (when out is not nil).
// Every error it returns is an *Error, an unreachable error or a context
// error, wrapped with what was being done.
func (c *Client) do(ctx context.Context, req request, out any) error {
	if c.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.opts.timeout, errTimeout)
		defer cancel()
	}
	u := c.base.String() + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return fmt.Errorf("client: building request: %w", err)
	}
	for k, vs := range req.header {
		hreq.Header[k] = vs
	}
	if req.jsonBody && hreq.Header.Get("Content-Type") == "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("Accept", "application/json")
	if c.opts.userAgent != "" {
		hreq.Header.Set("User-Agent", c.opts.userAgent)
	}
	if c.opts.actor != "" && hreq.Header.Get(api.HeaderActor) == "" {
		hreq.Header.Set(api.HeaderActor, c.opts.actor)
	}
	c.authorize(hreq)

	resp, err := c.opts.httpClient.Do(hreq)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return c.transportError(ctx, err)
		}
		return fmt.Errorf("client: decoding the answer of configd at %s to %s %s: %w", c.addr, req.method, req.path, err)
	}
	return nil
}

// authorize adds the bearer token, if the Client has one.
func (c *Client) authorize(hreq *http.Request) {
	if c.opts.token != "" {
		hreq.Header.Set(api.HeaderAuthorization, "Bearer "+c.opts.token)
	}
}

// kvPath returns the escaped path of key under /v1/kv/. Each segment is
// escaped on its own so that the '/' between segments stays a separator and
// a '?', '#' or '%' inside a segment cannot change the URL's meaning.
func kvPath(key string) string { return pathUnder("/v1/kv/", key) }

// pathUnder returns the escaped path of key (or prefix) under base, as
// kvPath.
func pathUnder(base, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return base + strings.Join(segs, "/")
}
