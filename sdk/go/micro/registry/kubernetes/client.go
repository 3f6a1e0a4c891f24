package kubernetes

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// client is the little of the Kubernetes REST API the registry needs: list, get, merge-patch
// and watch pods of one namespace. It is plain net/http, so importing the registry does not pull
// client-go into a service.
type client struct {
	base      *url.URL
	hc        *http.Client
	token     string // a fixed token, or
	tokenFile string // a file read on every request (projected tokens are rotated)
	namespace string
}

// apiError is an answer of the API server other than 2xx: its Status object, when it sent one.
type apiError struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("%d %s: %s", e.Code, e.Reason, e.Message)
}

// isStatus reports whether err is an API answer with the given HTTP status.
func isStatus(err error, code int) bool {
	var e *apiError
	return errors.As(err, &e) && e.Code == code
}

// newClient resolves where the API server is and how to authenticate: the explicit address,
// token and CA first, then the pod's service account (in-cluster config).
func newClient(cfg Config, addrs []string, timeout time.Duration) (*client, error) {
	sa := cfg.ServiceAccountDir
	if sa == "" {
		sa = DefaultServiceAccountDir
	}
	c := &client{token: cfg.Token, tokenFile: cfg.TokenFile, namespace: cfg.Namespace}
	addr := ""
	if len(addrs) > 0 {
		addr = addrs[0]
	}
	if addr == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("no API server: set registry.Addrs, or run in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT unset)")
		}
		addr = net.JoinHostPort(host, port)
	}
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("API server address %q: want https://host:port", addr)
	}
	c.base = u
	if c.token == "" && c.tokenFile == "" {
		if f := filepath.Join(sa, "token"); fileExists(f) {
			c.tokenFile = f
		}
	}
	if c.namespace == "" {
		if b, err := os.ReadFile(filepath.Join(sa, "namespace")); err == nil {
			c.namespace = strings.TrimSpace(string(b))
		}
	}
	if c.namespace == "" {
		c.namespace = "default"
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	caFile := cfg.CAFile
	if caFile == "" {
		if f := filepath.Join(sa, "ca.crt"); fileExists(f) {
			caFile = f
		}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	c.hc = &http.Client{Transport: tr}
	return c, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

func (c *client) close() { c.hc.CloseIdleConnections() }

func (c *client) podsPath(name string) string {
	p := "/api/v1/namespaces/" + url.PathEscape(c.namespace) + "/pods"
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// do sends one request and returns the response of a 2xx answer; any other answer is an
// *apiError (its body closed).
func (c *client) do(ctx context.Context, method, path string, q url.Values, contentType string, body []byte) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	tok := c.token
	if tok == "" && c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &apiError{}
	if json.Unmarshal(b, e) != nil || e.Code == 0 {
		e = &apiError{Message: strings.TrimSpace(string(b))}
	}
	e.Code = resp.StatusCode
	return nil, e
}

// pod is the part of a Pod the registry reads.
type pod struct {
	Metadata struct {
		Name              string            `json:"name"`
		ResourceVersion   string            `json:"resourceVersion"`
		DeletionTimestamp *string           `json:"deletionTimestamp,omitempty"`
		Labels            map[string]string `json:"labels,omitempty"`
		Annotations       map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

type podList struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []pod `json:"items"`
}

// maxListBytes bounds a listing's answer, maxEventBytes one watch event.
const (
	maxListBytes  = 64 << 20
	maxEventBytes = 16 << 20
)

// list returns the pods matching selector and the listing's resource version.
func (c *client) list(ctx context.Context, selector string) (*podList, error) {
	resp, err := c.do(ctx, http.MethodGet, c.podsPath(""), url.Values{"labelSelector": {selector}}, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var l podList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxListBytes)).Decode(&l); err != nil {
		return nil, fmt.Errorf("decode pod list: %w", err)
	}
	return &l, nil
}

// patch merge-patches the pod's metadata (RFC 7386: a null value removes a key).
func (c *client) patch(ctx context.Context, name string, labels, annotations map[string]*string) error {
	meta := map[string]any{} // a map left out is left alone: "labels": null would remove them all
	if labels != nil {
		meta["labels"] = labels
	}
	if annotations != nil {
		meta["annotations"] = annotations
	}
	body, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPatch, c.podsPath(name), nil, "application/merge-patch+json", body)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxListBytes))
	return resp.Body.Close()
}

// watchEvent is one line of a watch stream.
type watchEvent struct {
	Type   string          `json:"type"` // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
	Object json.RawMessage `json:"object"`
}

// watch opens a watch of the pods matching selector from resourceVersion rv. The stream ends
// after timeout (the API server closes it), or with ctx.
func (c *client) watch(ctx context.Context, selector, rv string, timeout time.Duration) (io.ReadCloser, error) {
	q := url.Values{
		"watch":               {"1"},
		"labelSelector":       {selector},
		"resourceVersion":     {rv},
		"allowWatchBookmarks": {"true"},
		"timeoutSeconds":      {fmt.Sprint(int(timeout / time.Second))},
	}
	resp, err := c.do(ctx, http.MethodGet, c.podsPath(""), q, "", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
