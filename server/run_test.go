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
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server"
)

// logSink is a log destination that a test can wait on.
type logSink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{}
}

func newLogSink() *logSink { return &logSink{notify: make(chan struct{})} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	close(s.notify)
	s.notify = make(chan struct{})
	return len(p), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// wait returns the first match of re in the log, waiting for it until
// done is closed or a minute passes.
func (s *logSink) wait(t *testing.T, re *regexp.Regexp, done <-chan struct{}) []string {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		s.mu.Lock()
		m := re.FindStringSubmatch(s.buf.String())
		more := s.notify
		s.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-more:
		case <-done:
			t.Fatalf("Run returned before logging %s; log:\n%s", re, s)
		case <-deadline:
			t.Fatalf("no %s in the log; log:\n%s", re, s)
		}
	}
}

// running is one Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	log    *logSink
	addr   string
}

func startRun(t *testing.T, cfg server.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{}), log: newLogSink()}
	go func() {
		defer close(r.done)
		r.err = server.Run(ctx, cfg, slog.New(slog.NewTextHandler(r.log, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
	return r.err
}

func testConfig(t *testing.T) server.Config {
	cfg := server.DefaultConfig()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.HTTPAddr = "127.0.0.1:0"
	return cfg
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

func TestRunServesUntilItsContextEnds(t *testing.T) {
	cfg := testConfig(t)
	r := startRun(t, cfg)
	addr := r.log.wait(t, listeningRE, r.done)[1]
	for _, want := range []string{"version=", "data_dir=" + cfg.DataDir} {
		if !strings.Contains(r.log.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, r.log)
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
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(r.log.String(), "msg=stopped") {
		t.Errorf("no stopped line:\n%s", r.log)
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
	first := startRun(t, cfg)
	first.log.wait(t, listeningRE, first.done)

	err := server.Run(context.Background(), cfg, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	want := "data dir " + cfg.DataDir + " is in use by another configd"
	if err == nil || err.Error() != want {
		t.Errorf("second Run: %v, want %q", err, want)
	}
	if err := first.stop(t); err != nil {
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
	r := startRun(t, cfg)
	debug := r.log.wait(t, regexp.MustCompile(`msg="serving pprof profiles" addr=(\S+)`), r.done)[1]
	api := r.log.wait(t, listeningRE, r.done)[1]
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
