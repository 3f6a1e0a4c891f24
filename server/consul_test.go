package server_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	consul "github.com/hashicorp/consul/api"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server"
)

var consulListeningRE = regexp.MustCompile(`msg="listening \(Consul KV API\)" addr=(\S+)`)

// consulAddr is the address the daemon's Consul door listens on.
func consulAddr(t *testing.T, d *configdtest.Daemon) string {
	t.Helper()
	m, err := d.Log.Wait(consulListeningRE, d.Done())
	if err != nil {
		t.Fatal(err)
	}
	return m[1]
}

func TestConsulAddrServesConsulKVBesideTheAPI(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.ConsulAddr = "127.0.0.1:0"
	d := configdtest.Run(t, cfg)
	c, err := consul.NewClient(&consul.Config{Address: consulAddr(t, d)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.KV().Put(&consul.KVPair{Key: "app/db/host", Value: []byte("db2")}, nil); err != nil {
		t.Fatal(err)
	}
	// configd's own API sees the write, made through the Consul door.
	resp, err := http.Get("http://" + d.Addr + "/v1/kv/app/db/host?raw=true")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "db2" {
		t.Fatalf("configd's API reads %q", b)
	}
	// The door's requests are counted with the daemon's metrics.
	resp, err = http.Get("http://" + d.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `configd_consul_requests_total{code="200",endpoint="kv",method="PUT"} 1`) {
		t.Fatal("/metrics does not count the Consul door's PUT")
	}
}

func TestConsulAddrServesTLSWhenTheAPIDoes(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	cfg := configdtest.TLS(files.ServerCert, files.ServerKey, "")
	cfg.ConsulAddr = "127.0.0.1:0"
	d := configdtest.Run(t, cfg)
	addr := consulAddr(t, d)
	c, err := consul.NewClient(&consul.Config{Address: addr, Scheme: "https", TLSConfig: consul.TLSConfig{CAFile: files.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.KV().Put(&consul.KVPair{Key: "app/k", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	// Plain HTTP is not served on it.
	if resp, err := http.Get("http://" + addr + "/v1/kv/app/k"); err == nil && resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		t.Fatal("the Consul door answered plain HTTP with TLS on")
	}
}

func TestAConsulAddrOffLoopbackTurnsAuthOn(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.ConsulAddr = "127.0.0.1:8500"
	if cfg.AuthOn() {
		t.Fatal("auth on with every address on loopback")
	}
	cfg.ConsulAddr = ":8500"
	if !cfg.AuthOn() {
		t.Fatal("auth off with the Consul door on every interface")
	}
}
