package consulapi_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	consul "github.com/hashicorp/consul/api"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/consulapi"
	"github.com/configd/configd/server/core"
)

// door is configd's Consul door served over a real store and hub on a
// loopback port.
type door struct {
	c    *core.Core
	auth *authz.Auth
	srv  *httptest.Server
	// addr is host:port, as CONSUL_HTTP_ADDR takes it.
	addr string
}

type doorOption func(*doorConfig)

type doorConfig struct {
	auth bool
	core []core.Option
	more []consulapi.Option
}

// withOptions passes more options to the door.
func withOptions(opts ...consulapi.Option) doorOption {
	return func(c *doorConfig) { c.more = append(c.more, opts...) }
}

// withAuth turns authentication on.
func withAuth() doorOption { return func(c *doorConfig) { c.auth = true } }

// withCore passes options to the store.
func withCore(opts ...core.Option) doorOption {
	return func(c *doorConfig) { c.core = append(c.core, opts...) }
}

func newDoor(t *testing.T, opts ...doorOption) *door {
	t.Helper()
	var cfg doorConfig
	for _, o := range opts {
		o(&cfg)
	}
	d := &door{c: configdtest.Core(t, cfg.core...)}
	copts := []consulapi.Option{consulapi.WithLogger(configdtest.Discard()), consulapi.WithVersion("test")}
	if cfg.auth {
		a, err := authz.New(context.Background(), d.c.Store)
		if err != nil {
			t.Fatal(err)
		}
		d.auth = a
		copts = append(copts, consulapi.WithAuth(a))
	}
	d.srv = httptest.NewServer(consulapi.New(d.c.Store, d.c.Hub, append(copts, cfg.more...)...))
	t.Cleanup(d.srv.Close)
	d.addr = strings.TrimPrefix(d.srv.URL, "http://")
	return d
}

// token creates a token with grants ("read:app/") and returns its secret.
func (d *door) token(t *testing.T, name string, grants ...string) string {
	t.Helper()
	var gs []api.Grant
	for _, g := range grants {
		perm, prefix, _ := strings.Cut(g, ":")
		gs = append(gs, api.Grant{Permission: perm, Prefix: prefix})
	}
	secret, _, err := d.auth.CreateToken(context.Background(), name, gs)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// client is Consul's Go client of the door, with token (may be empty).
func (d *door) client(t *testing.T, token string) *consul.KV {
	t.Helper()
	c, err := consul.NewClient(&consul.Config{Address: d.addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c.KV()
}

// put writes key through configd's store directly.
func (d *door) put(t *testing.T, key, value string) audit.Revision {
	t.Helper()
	rev, err := d.c.Store.Commit(context.Background(), audit.Txn{Actor: "test", Ops: []audit.Op{audit.Put(key, []byte(value), "")}})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// value is key's value in the store ("" and false when it has none).
func (d *door) value(t *testing.T, key string) (string, bool) {
	t.Helper()
	kv, err := d.c.Store.Get(context.Background(), key)
	if err != nil {
		return "", false
	}
	return string(kv.Value), true
}

// last is the store's newest revision.
func (d *door) last(t *testing.T) audit.Revision {
	t.Helper()
	rev, err := d.c.Store.Revision(context.Background(), d.c.Store.Rev())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}
