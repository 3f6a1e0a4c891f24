package config

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
)

// maxMessageSize bounds one message of the HTTP watch stream (a snapshot of
// the client's whole scope is one message).
const maxMessageSize = 256 << 20

// httpTransport watches over configd's HTTP watch stream: GET /v1/watch
// upgraded to api.WatchStreamProtocol, one connection per watch.
type httpTransport struct {
	client *http.Client
	base   string     // scheme://host:port
	scope  url.Values // key= or prefix=, see options.filter
	token  string
	id     http.Header // the client's identity headers (options.identityHeaders)
}

func (c *Client) newHTTPTransport(addr string) (transport, error) {
	if err := c.checkTokenTransport(addr); err != nil {
		return nil, err
	}
	connect := max(c.opts.timeout/time.Duration(len(c.opts.addrs)), time.Second)
	tr := &http.Transport{
		DialContext: (&net.Dialer{Timeout: connect, KeepAlive: keepaliveTime}).DialContext,
		// The upgrade needs HTTP/1.1: no HTTP/2 over TLS either.
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSHandshakeTimeout: connect,
		// A refused watch's answer comes at once; the 101 too.
		ResponseHeaderTimeout: max(c.opts.timeout, 10*time.Second),
	}
	scheme := "http"
	if c.opts.tls != nil {
		tr.TLSClientConfig = c.opts.tls.Clone()
		scheme = "https"
	}
	keys, prefixes := c.opts.filter()
	scope := url.Values{"key": keys, "prefix": prefixes}
	return &httpTransport{client: &http.Client{Transport: tr}, base: scheme + "://" + addr, scope: scope, token: c.opts.token,
		id: c.opts.identityHeaders()}, nil
}

func (t *httpTransport) close() { t.client.CloseIdleConnections() }

func (t *httpTransport) open(ctx context.Context, since int64) (watchStream, error) {
	q := maps.Clone(t.scope)
	q.Set("since", strconv.FormatInt(since, 10))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+"/v1/watch?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	maps.Copy(req.Header, t.id)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", api.WatchStreamProtocol)
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return refused(resp)
	}
	body, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, errors.New("configd switched protocols but the connection can't be used")
	}
	progress, err := time.ParseDuration(resp.Header.Get(api.HeaderProgressInterval))
	if err != nil || progress <= 0 {
		progress = 10 * time.Second
	}
	s := &httpStream{body: body, r: bufio.NewReaderSize(body, 4<<10), idle: 2*progress + 5*time.Second}
	// Nothing for twice the progress interval: the connection is dead.
	s.timer = time.AfterFunc(s.idle, s.Close)
	s.stop = context.AfterFunc(ctx, s.Close)
	return s, nil
}

// refused turns configd's answer to a watch it did not accept into the
// CANCELED message the gRPC API would send, or an error when it is not
// configd's JSON error: a refusal (see refusal) for a 401 or a 403 from
// whatever answered (a proxy), else one the client retries.
func refused(resp *http.Response) (watchStream, error) {
	var e api.ErrorResponse
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
		if err := refusal(statusCodes[resp.StatusCode], "HTTP "+resp.Status); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("watch refused: %s", resp.Status)
	}
	if resp.StatusCode >= 500 && e.Error.Code != api.CodeUnavailable {
		return nil, fmt.Errorf("watch refused: %s: %s", resp.Status, e.Error.Message)
	}
	rev, _ := strconv.ParseInt(resp.Header.Get(api.HeaderRev), 10, 64)
	return &oneMessage{m: &configdpb.WatchResponse{Kind: configdpb.WatchResponse_CANCELED, Rev: rev,
		Error: e.Error.Message, Code: e.Error.Code}}, nil
}

// statusCodes are the api error codes of the HTTP statuses that refuse a
// token, for answers without configd's JSON.
var statusCodes = map[int]string{
	http.StatusUnauthorized: api.CodeUnauthenticated,
	http.StatusForbidden:    api.CodeForbidden,
}

// httpStream reads the frames of one upgraded connection.
type httpStream struct {
	body  io.ReadWriteCloser
	r     *bufio.Reader
	idle  time.Duration
	timer *time.Timer
	stop  func() bool

	closeOnce sync.Once
}

func (s *httpStream) Recv() (*configdpb.WatchResponse, error) {
	m := &configdpb.WatchResponse{}
	err := protodelim.UnmarshalOptions{MaxSize: maxMessageSize}.UnmarshalFrom(s.r, m)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errStreamEnded
		}
		return nil, err
	}
	s.timer.Reset(s.idle)
	return m, nil
}

func (s *httpStream) Buffered() bool { return s.r.Buffered() > 0 }

func (s *httpStream) Close() {
	s.closeOnce.Do(func() {
		s.timer.Stop()
		s.stop()
		s.body.Close()
	})
}
