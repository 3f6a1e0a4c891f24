package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
)

// bin and ctlBin are the configd and configctl binaries the tests run,
// built once by TestMain.
var bin, ctlBin string

// watchBin is examples/watch, an SDK client process.
var watchBin string

func TestMain(m *testing.M) {
	configdtest.Main(m, map[*string]string{&bin: "github.com/configd/configd/cmd/configd", &ctlBin: "github.com/configd/configd/cmd/configctl",
		&watchBin: "github.com/configd/configd/examples/watch"})
}

const waitLimit = configdtest.WaitLimit

var listeningRE = configdtest.ListeningRE

// daemon is one configd process, with an HTTP client of its API.
type daemon struct {
	*configdtest.Process
	t      testing.TB
	client *http.Client
}

// launch starts configd with args and returns without waiting for it.
func launch(t testing.TB, args ...string) *daemon {
	t.Helper()
	return launchCmd(t, exec.Command(bin, args...))
}

// launchCmd starts cmd, which runs configd, and returns without waiting
// for it. Only the flags configure the daemon: no CONFIGD_* from the
// environment the tests run in.
func launchCmd(t testing.TB, cmd *exec.Cmd) *daemon {
	t.Helper()
	d := &daemon{Process: configdtest.Spawn(t, cmd), t: t,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(d.client.CloseIdleConnections)
	return d
}

// start starts configd on dataDir with a free port and waits until it
// listens.
func start(t testing.TB, dataDir string, args ...string) *daemon {
	t.Helper()
	d := launch(t, append([]string{"--data-dir", dataDir, "--http-addr", "127.0.0.1:0"}, args...)...)
	d.Listening()
	return d
}

func (d *daemon) url(path string) string { return "http://" + d.Addr + path }

// call makes one request and decodes a 200 answer into out.
func (d *daemon) call(method, path string, body []byte, out any) error {
	req, err := http.NewRequest(method, d.url(path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(api.HeaderActor, "test")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (d *daemon) mustCall(method, path string, body []byte, out any) {
	d.t.Helper()
	if err := d.call(method, path, body, out); err != nil {
		d.t.Fatal(err)
	}
}

// configdLine returns the "configd: ..." error line of a failed start.
func configdLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "configd: ") {
			return l
		}
	}
	return ""
}

func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	d := start(t, dir)

	const writers, perWriter = 32, 300
	acks, cut := writeStorm(t, []*daemon{d}, writers, perWriter, writers*perWriter*6/10, 1500*time.Millisecond, d)
	if len(acks) < writers {
		t.Fatalf("only %d writes acknowledged before the kill", len(acks))
	}
	t.Logf("%d writes acknowledged, %d writers cut by kill -9", len(acks), cut)

	d2 := start(t, dir)
	var st api.Status
	d2.mustCall(http.MethodGet, "/v1/status", nil, &st)
	maxAck := int64(0)
	for _, a := range acks {
		maxAck = max(maxAck, a.rev)
	}
	if st.Rev < maxAck {
		t.Fatalf("after restart the store is at revision %d, but revision %d was acknowledged", st.Rev, maxAck)
	}

	// Every revision 1..current is there (no gap), read concurrently.
	revs := make([]api.Revision, st.Rev+1)
	next := make(chan int64)
	var rg sync.WaitGroup
	for range 8 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for r := range next {
				if err := d2.call(http.MethodGet, fmt.Sprintf("/v1/revisions/%d", r), nil, &revs[r]); err != nil {
					t.Errorf("revision %d after restart: %v", r, err)
				}
			}
		}()
	}
	for r := int64(1); r <= st.Rev; r++ {
		next <- r
	}
	close(next)
	rg.Wait()
	for r := int64(1); r <= st.Rev; r++ {
		if revs[r].Rev != r {
			t.Errorf("GET /v1/revisions/%d answered revision %d", r, revs[r].Rev)
		}
	}
	for _, a := range acks {
		rev := revs[a.rev]
		if len(rev.Changes) != 1 || rev.Changes[0].Key != a.key || rev.Changes[0].New == nil || rev.Changes[0].New.Value != a.value {
			t.Errorf("acknowledged revision %d (%s=%s) reads back as %+v", a.rev, a.key, a.value, rev.Changes)
		}
	}
}

func TestSecondConfigdOnSameDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	first := start(t, dir)
	first.mustCall(http.MethodPut, "/v1/kv/k", []byte("before"), nil)

	second := launch(t, "--data-dir", dir, "--http-addr", "127.0.0.1:0")
	if code := second.Wait(); code != 1 {
		t.Errorf("second configd exited %d, want 1; output:\n%s", code, second.Log)
	}
	want := "configd: data dir " + dir + " is in use by another configd"
	if line := configdLine(second.Log.String()); line != want {
		t.Errorf("second configd says %q, want %q", line, want)
	}
	if strings.Contains(second.Log.String(), "msg=listening") {
		t.Errorf("second configd listened")
	}

	// The first one still serves, reads and writes.
	first.mustCall(http.MethodPut, "/v1/kv/k", []byte("after"), nil)
	var kv api.KeyValue
	first.mustCall(http.MethodGet, "/v1/kv/k", nil, &kv)
	if kv.Value != "after" || kv.Version != 2 {
		t.Errorf("first configd after the second's attempt: %+v", kv)
	}
}

func TestUnusableDataDirFailsWithOneLine(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, dir, want string }{
		{"parent is a file", filepath.Join(file, "data"), file + " is a file, not a directory"},
		{"data dir is a file", file, "data dir " + file + " is not a directory"},
	}
	// Root writes through permission bits, so the read-only case only
	// means something for another user.
	if os.Geteuid() != 0 {
		ro := filepath.Join(tmp, "readonly")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(ro, 0o700) })
		cases = append(cases,
			struct{ name, dir, want string }{"read-only dir", ro, "data dir " + ro + " is not writable: permission denied"},
			struct{ name, dir, want string }{"under a read-only dir", filepath.Join(ro, "data"), "cannot create data dir " + filepath.Join(ro, "data") + ": permission denied"},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := launch(t, "--data-dir", tc.dir, "--http-addr", "127.0.0.1:0")
			if code := d.Wait(); code != 1 {
				t.Errorf("exit code %d, want 1; output:\n%s", code, d.Log)
			}
			line := configdLine(d.Log.String())
			if !strings.Contains(line, tc.want) {
				t.Errorf("error line %q does not say %q; output:\n%s", line, tc.want, d.Log)
			}
			if strings.Count(d.Log.String(), "configd: ") != 1 {
				t.Errorf("want exactly one error line; output:\n%s", d.Log)
			}
		})
	}
}

func TestSIGTERMFinishesInFlightRequestsAndClosesCleanly(t *testing.T) {
	dir := t.TempDir()
	d := start(t, dir)
	for i := range 5 {
		d.mustCall(http.MethodPut, fmt.Sprintf("/v1/kv/app/k%d", i), []byte(fmt.Sprintf("v%d", i)), nil)
	}

	// A PUT in flight: headers sent, the handler waiting for the body.
	inflight := startSlowPut(t, d.Addr, "app/inflight", "late value")
	d.Signal(syscall.SIGTERM)
	d.WaitLog(regexp.MustCompile(`msg="shutting down"`))
	// Shutdown has begun: new connections are refused...
	if _, err := http.Get(d.url("/v1/status")); err == nil {
		t.Errorf("a new request was served after shutdown began")
	}
	// ...and the request in flight still completes.
	status, body := inflight.finish()
	if status != http.StatusOK {
		t.Errorf("in-flight PUT answered %d %s, want 200", status, body)
	}
	if code := d.Wait(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0; output:\n%s", code, d.Log)
	}
	if !strings.Contains(d.Log.String(), "msg=stopped") {
		t.Errorf("no \"stopped\" log line; output:\n%s", d.Log)
	}
	// A clean close checkpoints the WAL into the database and removes it.
	if _, err := os.Stat(filepath.Join(dir, "configd.db-wal")); err == nil {
		t.Errorf("configd.db-wal is still there after a clean shutdown")
	}

	d2 := start(t, dir)
	var lr api.ListResponse
	d2.mustCall(http.MethodGet, "/v1/kv?prefix=app", nil, &lr)
	got := map[string]string{}
	for _, kv := range lr.KVs {
		got[kv.Key] = kv.Value
	}
	want := map[string]string{"app/inflight": "late value"}
	for i := range 5 {
		want[fmt.Sprintf("app/k%d", i)] = fmt.Sprintf("v%d", i)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || lr.Rev != 6 {
		t.Errorf("after restart: rev %d %v, want rev 6 %v", lr.Rev, got, want)
	}
}

func TestVersionFlag(t *testing.T) {
	d := launch(t, "--version")
	if code := d.Wait(); code != 0 || !strings.HasPrefix(d.Log.String(), "configd ") {
		t.Errorf("--version: exit %d, output %q", code, d.Log)
	}
}

func TestBadFlagExits2(t *testing.T) {
	d := launch(t, "--log-format", "xml")
	if code := d.Wait(); code != 2 || !strings.Contains(configdLine(d.Log.String()), "--log-format") {
		t.Errorf("bad flag: exit %d, output %q", code, d.Log)
	}
}

// ack is a write acknowledged during a storm.
type ack struct {
	rev        int64
	key, value string
}

// writeStorm runs writers that each put perWriter new values, writer w on
// ds[w%len(ds)], and kills victim with SIGKILL mid-storm: once enough
// writes are acknowledged, or after within. A write that fails on the
// victim after the kill stops its writer (cut); any other failure fails
// the test, and so does a storm that the kill did not cut.
func writeStorm(t *testing.T, ds []*daemon, writers, perWriter, enough int, within time.Duration, victim *daemon) (acks []ack, cut int) {
	t.Helper()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		reached  = make(chan struct{})
		killed   = make(chan struct{})
		signaled sync.Once
	)
	for w := range writers {
		d := ds[w%len(ds)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				key, value := fmt.Sprintf("storm/w%02d/k%d", w, i%8), fmt.Sprintf("w%02d-i%03d", w, i)
				var wr api.WriteResponse
				if err := d.call(http.MethodPut, "/v1/kv/"+key, []byte(value), &wr); err != nil {
					select {
					case <-killed:
						if d == victim {
							mu.Lock()
							cut++
							mu.Unlock()
							return
						}
					default:
					}
					t.Errorf("put on %s: %v", d.Addr, err)
					return
				}
				if !wr.Changed {
					t.Errorf("put of a new value %s=%s changed nothing", key, value)
				}
				mu.Lock()
				acks = append(acks, ack{wr.Rev, key, value})
				if len(acks) == enough {
					signaled.Do(func() { close(reached) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-time.After(within):
	case <-reached:
	}
	close(killed)
	victim.Signal(syscall.SIGKILL)
	victim.Wait()
	wg.Wait()
	if cut == 0 {
		t.Fatalf("every writer of %s finished before the kill: it was not mid-storm", victim.Addr)
	}
	return acks, cut
}
