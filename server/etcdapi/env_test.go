package etcdapi_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/etcdapi"
)

// etcdEnv is a configd (its store, hub and APIs, as the daemon serves
// them) on a data dir of its own, which a test can restart.
type etcdEnv struct {
	t       *testing.T
	path    string
	c       *core.Core
	cfg     server.APIConfig
	serving *configdtest.Serving
	Addr    string
}

// startConfigd serves a configd without authentication.
func startConfigd(t *testing.T, opts ...audit.Option) *etcdEnv {
	t.Helper()
	return serveConfigd(t, server.APIConfig{}, opts...)
}

// prefixedConfigd serves a configd without authentication whose etcd API
// has the key prefix prefix (--etcd-api-prefix).
func prefixedConfigd(t *testing.T, prefix string) *etcdEnv {
	t.Helper()
	return serveConfigd(t, server.APIConfig{Etcd: []etcdapi.Option{etcdapi.WithKeyPrefix(prefix)}})
}

// serveConfigd serves a configd with cfg, its store opened with opts.
func serveConfigd(t *testing.T, cfg server.APIConfig, opts ...audit.Option) *etcdEnv {
	t.Helper()
	e := &etcdEnv{t: t, path: filepath.Join(t.TempDir(), "configd.db"), cfg: cfg}
	e.open(opts...)
	e.serving = configdtest.Serve(t, e.c, e.cfg)
	e.Addr = e.serving.Addr
	t.Cleanup(func() {
		e.serving.Stop()
		e.c.Close()
	})
	return e
}

func (e *etcdEnv) open(opts ...audit.Option) {
	e.t.Helper()
	c, err := core.Open(context.Background(), e.path, core.WithStoreOptions(append([]audit.Option{audit.WithLogger(configdtest.Discard())}, opts...)...))
	if err != nil {
		e.t.Fatal(err)
	}
	e.c = c
}

// restart stops configd (every connection cut), closes its store and
// serves it again from the same data dir at the same address.
func (e *etcdEnv) restart() {
	e.t.Helper()
	e.serving.Stop()
	if err := e.c.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
	e.serving.Restart(e.c, e.cfg)
}

// authConfigd serves configdtest.AuthEnv's store (its tokens, app/x and
// db/x) with authentication on, its etcd API with opts.
func authConfigd(t *testing.T, opts ...etcdapi.Option) (*configdtest.Env, string) {
	t.Helper()
	env := configdtest.AuthEnv(t)
	s := configdtest.Serve(t, &core.Core{Store: env.Store, Hub: env.Hub}, server.APIConfig{Auth: env.Auth, Etcd: opts})
	return env, s.Addr
}

// client is etcd's Go client of addr, with cfg's user and password.
func client(t *testing.T, addr string, cfg ...clientv3.Config) *clientv3.Client {
	t.Helper()
	var c clientv3.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	c.Endpoints, c.DialTimeout, c.Logger = []string{addr}, 5*time.Second, zap.NewNop()
	cli, err := clientv3.New(c)
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
