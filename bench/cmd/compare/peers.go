package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/bench/internal/daemon"
	"github.com/configd/configd/bench/internal/servers"
	"github.com/configd/configd/sdk/go/config"
)

// peer is one server under test, as the benchmark's clients see it.
type peer interface {
	Name() string
	Version() string
	// WriteModes are the doors Writer takes ("" for the peer's only or
	// usual one, which every workload but the writes' uses).
	WriteModes() []string
	// Writer returns a durable-write function for up to conc concurrent
	// callers through the door mode, and a cleanup.
	Writer(conc int, mode string) (put func(ctx context.Context, key string, val []byte) error, done func())
	// ReadModes are the consistency levels Reader takes ("" for the peer's only one).
	ReadModes() []string
	Reader(conc int, mode string) (get func(ctx context.Context, key string) error, done func())
	// Watch opens a client on its own connection watching key (or every key
	// under it with prefix) and calls fn from one goroutine for each change
	// it is told of. It returns once the watch is in place; stop closes the
	// client and waits for its goroutine.
	// addr is the server's host:port or a proxy's.
	Watch(ctx context.Context, addr, key string, prefix bool, fn func(key string, val []byte)) (stop func(), err error)
	// Addr is the server's client endpoint, host:port.
	Addr() string
	RSS() int64
	// CPU is the CPU time the server process has used so far (0 when it
	// cannot be read).
	CPU() time.Duration
	// Restart replaces the server with a fresh one (new data dir and
	// ports), so that a workload's memory figure and state are its own.
	Restart() error
	Stop()
}

func httpClient(conc int) *http.Client {
	tr := &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func do(ctx context.Context, hc *http.Client, method, url string, body []byte, hdr ...string) ([]byte, http.Header, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode/100 != 2 {
		return b, resp.Header, fmt.Errorf("%s %s: %s: %.200s", method, url, resp.Status, b)
	}
	return b, resp.Header, nil
}

// ---- configd -------------------------------------------------------------

// configdProc is one configd process: what its two peers (its own API and
// its etcd door) share.
type configdProc struct {
	d       *daemon.Daemon
	name    string
	bin     string
	version string
}

type configdPeer struct{ *configdProc }

// buildConfigd returns bin and its version, or, when bin is empty, a
// configd built from this tree (../cmd/configd) into a temporary
// directory, so that a run never measures a stale binary.
// root is the repository's root, relative to the working directory.
func buildConfigd(bin, root string) (path, version string, err error) {
	if bin != "" {
		return bin, bin, nil
	}
	dir, err := os.MkdirTemp("", "configd-bench-bin-*")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "configd")
	progress("building configd from %s", filepath.Join(root, "cmd/configd"))
	// From the repository's root: cmd/configd is in the product module,
	// not this one.
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/configd")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("build configd: %w", err)
	}
	v := "built from this tree"
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		v += " at " + strings.TrimSpace(string(out))
	}
	return bin, v, nil
}

// startConfigd runs bin (see buildConfigd). configd serves pprof profiles
// on a loopback port of its own (--debug-addr) for the profiles in the
// report.
func startConfigd(bin, version string) (*configdPeer, error) {
	p, err := startConfigdProc("configd", bin, version)
	if err != nil {
		return nil, err
	}
	return &configdPeer{p}, nil
}

func startConfigdProc(name, bin, version string) (*configdProc, error) {
	p := &configdProc{name: name, bin: bin, version: version}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *configdProc) start() error {
	d, err := daemon.Start(context.Background(), p.bin, "--debug-addr", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p.d = d
	return nil
}

func (p *configdProc) Restart() error {
	p.d.Stop()
	if err := p.start(); err != nil {
		return err
	}
	loaded[p.Name()] = false
	return nil
}

func (p *configdProc) Name() string       { return p.name }
func (p *configdProc) Version() string    { return p.version }
func (p *configdProc) Stop()              { p.d.Stop() }
func (p *configdProc) RSS() int64         { n, _ := p.d.RSS(); return n }
func (p *configdProc) CPU() time.Duration { t, _ := p.d.CPU(); return t }
func (p *configdProc) Addr() string       { return p.d.Addr }

// debugAddr is where the process serves pprof profiles ("" for none).
func (p *configdProc) debugAddr() string { return p.d.DebugAddr }

func (p *configdPeer) ReadModes() []string { return []string{""} }

// WriteModes: "" is HTTP/1.1, a connection per writer; "grpc" is the gRPC
// API's Put, every writer on one gRPC connection (as etcd's clients are).
func (p *configdPeer) WriteModes() []string { return []string{"", "grpc"} }

func (p *configdPeer) Writer(conc int, mode string) (func(context.Context, string, []byte) error, func()) {
	if mode == "grpc" {
		return p.grpcWriter()
	}
	hc := httpClient(conc)
	base := "http://" + p.d.Addr + "/v1/kv/"
	return func(ctx context.Context, key string, val []byte) error {
		_, _, err := do(ctx, hc, http.MethodPut, base+key, val, "X-Configd-Actor", "bench", "Content-Type", "text/plain")
		return err
	}, hc.CloseIdleConnections
}

// grpcWriter: one gRPC connection, Put multiplexed on it, answered after
// the same synced commit as HTTP's PUT.
func (p *configdPeer) grpcWriter() (func(context.Context, string, []byte) error, func()) {
	conn, err := grpc.NewClient(p.d.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return func(context.Context, string, []byte) error { return err }, func() {}
	}
	c := configdpb.NewConfigClient(conn)
	return func(ctx context.Context, key string, val []byte) error {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-configd-actor", "bench")
		_, err := c.Put(ctx, &configdpb.PutRequest{Key: key, Value: val, ContentType: "text/plain"})
		return err
	}, func() { conn.Close() }
}

func (p *configdPeer) Reader(conc int, _ string) (func(context.Context, string) error, func()) {
	hc := httpClient(conc)
	base := "http://" + p.d.Addr + "/v1/kv/"
	return func(ctx context.Context, key string) error {
		_, _, err := do(ctx, hc, http.MethodGet, base+key, nil)
		return err
	}, hc.CloseIdleConnections
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Watch: one SDK client (its own gRPC connection) mirroring only the
// watched key's parent prefix (or the prefix), so that it is not sent the
// other workloads' keys.
func (p *configdPeer) Watch(ctx context.Context, addr, key string, prefix bool, fn func(string, []byte)) (func(), error) {
	scope, rel := key, ""
	if !prefix {
		i := strings.LastIndexByte(key, '/')
		scope, rel = key[:i], key[i+1:]
	}
	// Without delivery reports (the SDK's default since issue 19): this
	// measures the fan-out alone, and thousands of clients in one process
	// would each hold a second connection for them (BENCHMARKS.md).
	c, err := config.New(ctx, config.WithAddress(addr), config.WithPrefix(scope),
		config.WithTimeout(time.Minute), config.WithLogger(quiet), config.WithoutReports())
	if err != nil {
		return nil, err
	}
	var w *config.Watcher
	if rel == "" {
		w, err = c.Watch()
	} else {
		w, err = c.Watch(rel)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			u, err := w.NextUpdate()
			if err != nil {
				return
			}
			for _, ch := range u.Changes {
				fn(ch.Key, ch.Value.Bytes())
			}
		}
	}()
	return func() { w.Stop(); c.Close(); <-done }, nil
}

// ---- etcd ----------------------------------------------------------------

// etcdClients drives a server through etcd's Go client (clientv3): etcd
// itself, or configd's etcd door (issue 20). It is the one home of the
// etcd client's side of every workload: the two peers differ only in the
// server behind addr.
type etcdClients struct{ addr func() string }

func (e etcdClients) client() (*clientv3.Client, error) { return e.clientAt(e.addr()) }

func (e etcdClients) clientAt(addr string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{"http://" + addr},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
}

func (e etcdClients) ReadModes() []string { return []string{"serializable", "linearizable"} }

// Writer: one etcd client (one gRPC connection, requests multiplexed on
// it), the way etcd is used; etcd answers Put after the WAL fsync, configd
// after its journal's.
func (e etcdClients) WriteModes() []string { return []string{""} }

func (e etcdClients) Writer(int, string) (func(context.Context, string, []byte) error, func()) {
	c, err := e.client()
	if err != nil {
		return func(context.Context, string, []byte) error { return err }, func() {}
	}
	return func(ctx context.Context, key string, val []byte) error {
		_, err := c.Put(ctx, key, string(val))
		return err
	}, func() { c.Close() }
}

func (e etcdClients) Reader(_ int, mode string) (func(context.Context, string) error, func()) {
	c, err := e.client()
	if err != nil {
		return func(context.Context, string) error { return err }, func() {}
	}
	var opts []clientv3.OpOption
	if mode == "serializable" {
		opts = append(opts, clientv3.WithSerializable())
	}
	return func(ctx context.Context, key string) error {
		r, err := c.Get(ctx, key, opts...)
		if err == nil && len(r.Kvs) == 0 {
			err = fmt.Errorf("%s not found", key)
		}
		return err
	}, func() { c.Close() }
}

// Watch: one etcd client per watcher, so each has its own connection.
func (e etcdClients) Watch(ctx context.Context, addr, key string, prefix bool, fn func(string, []byte)) (func(), error) {
	c, err := e.clientAt(addr)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
		key += "/"
	}
	wch := c.Watch(wctx, key, opts...)
	select {
	case r, ok := <-wch:
		if !ok || !r.Created {
			cancel()
			c.Close()
			return nil, fmt.Errorf("etcd watch not created: %v", r.Err())
		}
	case <-time.After(30 * time.Second):
		cancel()
		c.Close()
		return nil, errors.New("etcd watch not created within 30s")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range wch {
			for _, ev := range r.Events {
				fn(string(ev.Kv.Key), ev.Kv.Value)
			}
		}
	}()
	return func() { cancel(); c.Close(); <-done }, nil
}

type etcdPeer struct {
	*serverProc
	etcdClients
}

func startEtcd() (*etcdPeer, error) {
	proc, err := startServerProc("etcd", servers.Etcd)
	if err != nil {
		return nil, err
	}
	return &etcdPeer{serverProc: proc, etcdClients: etcdClients{addr: proc.Addr}}, nil
}

// serverProc is a server the harness runs from servers (etcd, Consul):
// what their peers share.
type serverProc struct {
	s     *servers.Server
	name  string
	start func() (*servers.Server, error)
}

func startServerProc(name string, start func() (*servers.Server, error)) (*serverProc, error) {
	s, err := start()
	if err != nil {
		return nil, err
	}
	return &serverProc{s: s, name: name, start: start}, nil
}

func (p *serverProc) Restart() error {
	p.s.Stop()
	s, err := p.start()
	if err != nil {
		return err
	}
	p.s = s
	loaded[p.Name()] = false
	return nil
}

func (p *serverProc) Name() string       { return p.name }
func (p *serverProc) Version() string    { return p.s.Version }
func (p *serverProc) Stop()              { p.s.Stop() }
func (p *serverProc) RSS() int64         { n, _ := p.s.RSS(); return n }
func (p *serverProc) CPU() time.Duration { t, _ := p.s.CPU(); return t }
func (p *serverProc) Addr() string       { return p.s.Addr }

// ---- configd through its etcd door (issue 20) ------------------------------

// configdEtcdPeer is a configd process of its own (the same binary as the
// configd peer's) driven through etcd's Go client on configd's port, which
// serves etcd's v3 API (server/etcdapi): the etcd peer's workloads with
// configd behind them.
type configdEtcdPeer struct {
	*configdProc
	etcdClients
}

// etcdAPIPeer is the name of configd through its etcd door.
const etcdAPIPeer = "configd-etcdapi"

func startConfigdEtcd(bin, version string) (*configdEtcdPeer, error) {
	proc, err := startConfigdProc(etcdAPIPeer, bin, version+", through clientv3 "+moduleVersion("go.etcd.io/etcd/client/v3"))
	if err != nil {
		return nil, err
	}
	return &configdEtcdPeer{configdProc: proc, etcdClients: etcdClients{addr: proc.Addr}}, nil
}

// moduleVersion is the version of the module path this binary was built
// with ("" when the build information does not say).
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			return m.Version
		}
	}
	return ""
}

// ---- Consul --------------------------------------------------------------

type consulPeer struct{ *serverProc }

func startConsul() (*consulPeer, error) {
	proc, err := startServerProc("consul", servers.Consul)
	if err != nil {
		return nil, err
	}
	return &consulPeer{proc}, nil
}

func (p *consulPeer) ReadModes() []string { return []string{"default", "stale"} }

// Writer: KV PUT over HTTP keep-alive connections; Consul answers after the
// raft log entry is committed (synced to its raft.db).
func (p *consulPeer) WriteModes() []string { return []string{""} }

func (p *consulPeer) Writer(conc int, _ string) (func(context.Context, string, []byte) error, func()) {
	hc := httpClient(conc)
	base := "http://" + p.s.Addr + "/v1/kv/"
	return func(ctx context.Context, key string, val []byte) error {
		b, _, err := do(ctx, hc, http.MethodPut, base+key, val)
		if err == nil && string(bytes.TrimSpace(b)) != "true" {
			err = fmt.Errorf("consul PUT %s: %s", key, b)
		}
		return err
	}, hc.CloseIdleConnections
}

func (p *consulPeer) Reader(conc int, mode string) (func(context.Context, string) error, func()) {
	hc := httpClient(conc)
	base, q := "http://"+p.s.Addr+"/v1/kv/", ""
	if mode == "stale" {
		q = "?stale"
	}
	return func(ctx context.Context, key string) error {
		_, _, err := do(ctx, hc, http.MethodGet, base+key+q, nil)
		return err
	}, hc.CloseIdleConnections
}

type consulKV struct {
	Key         string
	Value       []byte // base64 in JSON
	ModifyIndex uint64
}

// Watch: a blocking query loop with its own http.Transport (its own
// connection). A prefix watch (recurse) gets the whole prefix back each
// time and reports the keys whose ModifyIndex moved: changes between two
// answers are merged, which is how Consul works.
func (p *consulPeer) Watch(ctx context.Context, addr, key string, prefix bool, fn func(string, []byte)) (func(), error) {
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	wctx, cancel := context.WithCancel(ctx)
	url := "http://" + addr + "/v1/kv/" + key
	if prefix {
		url += "/?recurse"
	} else {
		url += "?"
	}
	seen := map[string]uint64{}
	fetch := func(index uint64) (uint64, []consulKV, error) {
		u := url
		if index > 0 {
			u += "&wait=10m&index=" + strconv.FormatUint(index, 10)
		}
		req, _ := http.NewRequestWithContext(wctx, http.MethodGet, u, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, nil, err
		}
		idx, _ := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
		var kvs []consulKV
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &kvs); err != nil {
				return 0, nil, err
			}
		} else if resp.StatusCode != http.StatusNotFound {
			return 0, nil, fmt.Errorf("consul GET %s: %s", u, resp.Status)
		}
		return idx, kvs, nil
	}
	index, kvs, err := fetch(0)
	if err != nil {
		cancel()
		return nil, err
	}
	for _, kv := range kvs {
		seen[kv.Key] = kv.ModifyIndex
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for wctx.Err() == nil {
			idx, kvs, err := fetch(index)
			if err != nil {
				if wctx.Err() == nil {
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
			if idx < index {
				idx = 0 // index went backwards: start over, as Consul's docs say
			}
			index = idx
			for _, kv := range kvs {
				if seen[kv.Key] != kv.ModifyIndex {
					seen[kv.Key] = kv.ModifyIndex
					fn(kv.Key, kv.Value)
				}
			}
		}
	}()
	return func() { cancel(); hc.CloseIdleConnections(); <-done }, nil
}
