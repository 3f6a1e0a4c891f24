// Package adaptertest gives the adapters' tests a real configd: the binary
// built from this repository (internal/configdtest.Main) running on a
// fresh data dir and a loopback port, and a client of its HTTP API to
// write keys with.
package adaptertest

import (
	"context"
	"net"
	"os/exec"
	"testing"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/sdk/go/apiclient"
)

var bin string

// Main builds configd, runs the tests and exits: call it from TestMain.
func Main(m *testing.M) {
	configdtest.Main(m, map[*string]string{&bin: "github.com/configd/configd/cmd/configd"})
}

// Daemon is a configd process for one test, killed when the test ends.
type Daemon struct {
	*configdtest.Process
	api *apiclient.Client
}

// Start runs configd for the test, authentication off, and returns once
// it listens.
func Start(t *testing.T) *Daemon { return start(t, "") }

// StartAuth runs configd with authentication on and token as its admin
// token (CONFIGD_BOOTSTRAP_TOKEN, 16 characters or more); Put and Delete
// send it.
func StartAuth(t *testing.T, token string) *Daemon { return start(t, token) }

func start(t *testing.T, token string) *Daemon {
	t.Helper()
	args := []string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0"}
	env := configdtest.CleanEnv()
	var opts []apiclient.Option
	if token != "" {
		args = append(args, "--auth")
		env = append(env, "CONFIGD_BOOTSTRAP_TOKEN="+token)
		opts = append(opts, apiclient.WithToken(token))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	p := configdtest.Spawn(t, cmd)
	p.Listening()
	api, err := apiclient.New(p.Addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &Daemon{p, api}
}

// Put writes key with its content type through PUT /v1/kv/<key>.
func (d *Daemon) Put(t *testing.T, key, contentType, value string) {
	t.Helper()
	if _, err := d.api.Put(context.Background(), key, []byte(value), apiclient.WithContentType(contentType)); err != nil {
		t.Fatal(err)
	}
}

// Delete deletes key through DELETE /v1/kv/<key>.
func (d *Daemon) Delete(t *testing.T, key string) {
	t.Helper()
	if _, err := d.api.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

// DeadAddr returns a loopback address nothing listens on.
func DeadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
