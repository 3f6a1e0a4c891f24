package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server"
)

func testConfig(t *testing.T) server.Config {
	cfg := server.DefaultConfig()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.HTTPAddr = "127.0.0.1:0"
	return cfg
}

func TestRunServesUntilItsContextEnds(t *testing.T) {
	cfg := testConfig(t)
	r := configdtest.Run(t, cfg)
	addr := r.Addr
	for _, want := range []string{"version=", "data_dir=" + cfg.DataDir} {
		if !strings.Contains(r.Log.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, r.Log)
		}
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readyz: %d", resp.StatusCode)
	}
	if fi, err := os.Stat(cfg.DataDir); err != nil {
		t.Errorf("data dir not created: %v", err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
	r.Stop()
	if err := r.Err(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(r.Log.String(), "msg=stopped") {
		t.Errorf("no stopped line:\n%s", r.Log)
	}
	// The store is closed: another can open it.
	st, err := audit.Open(context.Background(), filepath.Join(cfg.DataDir, server.DBFile))
	if err != nil {
		t.Fatalf("reopen after Run: %v", err)
	}
	st.Close()
}

func TestRunRefusesADataDirInUse(t *testing.T) {
	cfg := testConfig(t)
	first := configdtest.Run(t, cfg)

	err := server.Run(context.Background(), cfg, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	want := "data dir " + cfg.DataDir + " is in use by another configd"
	if err == nil || err.Error() != want {
		t.Errorf("second Run: %v, want %q", err, want)
	}
	first.Stop()
	if err := first.Err(); err != nil {
		t.Errorf("first Run: %v", err)
	}
}

func TestRunClosesTheStoreWhenItCannotListen(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig(t)
	cfg.HTTPAddr = taken.Addr().String()
	err = server.Run(context.Background(), cfg, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err == nil || !strings.HasPrefix(err.Error(), "listen on "+cfg.HTTPAddr) {
		t.Fatalf("Run on a taken port: %v", err)
	}
	st, err := audit.Open(context.Background(), filepath.Join(cfg.DataDir, server.DBFile))
	if err != nil {
		t.Fatalf("the failed Run left the store open: %v", err)
	}
	st.Close()
}

func TestRunRefusesAnInvalidConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogFormat = "xml"
	err := server.Run(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "log_format") {
		t.Errorf("Run with log format xml: %v", err)
	}
	if _, serr := os.Stat(cfg.DataDir); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("an invalid config created the data dir (%v)", serr)
	}
}

// --debug-addr serves pprof on its own listener, not on the API port.
func TestRunServesPprofOnTheDebugAddrOnly(t *testing.T) {
	cfg := testConfig(t)
	cfg.DebugAddr = "127.0.0.1:0"
	r := configdtest.Run(t, cfg)
	debug := r.WaitLog(regexp.MustCompile(`msg="serving pprof profiles" addr=(\S+)`))[1]
	api := r.Addr
	for _, tc := range []struct {
		addr string
		want int
	}{{debug, http.StatusOK}, {api, http.StatusNotFound}} {
		resp, err := http.Get("http://" + tc.addr + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s/debug/pprof/goroutine: %d, want %d", tc.addr, resp.StatusCode, tc.want)
		}
	}
}
