package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/httpapi"
)

func TestWatchStreamSendsASnapshotThenEachChangeOfItsScope(t *testing.T) {
	st, _, ts := newWatchEnvHub(t)
	commitPut(t, st, "app/a", "1")
	s := configdtest.OpenWatchStream(t, ts.Listener.Addr().String(), "prefix=app&since=0", "")
	if got := s.Head.Header.Get(api.HeaderProgressInterval); got != "20ms" {
		t.Errorf("%s = %q, want 20ms", api.HeaderProgressInterval, got)
	}
	if m := s.Next(); m.GetKind() != configdpb.WatchResponse_CREATED || m.GetRev() != 1 {
		t.Fatalf("first message %v rev %d, want CREATED at 1", m.GetKind(), m.GetRev())
	}
	snap := s.NextOf(configdpb.WatchResponse_SNAPSHOT)
	if snap.GetRev() != 1 || len(snap.GetEvents()) != 1 || string(snap.GetEvents()[0].GetKv().GetValue()) != "1" {
		t.Fatalf("snapshot %v", snap)
	}
	commitPut(t, st, "other", "x")
	r := commitPut(t, st, "app/b", "2")
	ch := s.NextOf(configdpb.WatchResponse_CHANGES)
	if ch.GetRev() != r || ch.GetActor() != "alice" || len(ch.GetEvents()) != 1 || ch.GetEvents()[0].GetKv().GetKey() != "app/b" {
		t.Fatalf("changes %v, want app/b at %d", ch, r)
	}
}

func TestWatchStreamResumesAfterSince(t *testing.T) {
	st, _, ts := newWatchEnvHub(t)
	commitPut(t, st, "k", "1")
	since := commitPut(t, st, "k", "2")
	r := commitPut(t, st, "k", "3")
	s := configdtest.OpenWatchStream(t, ts.Listener.Addr().String(), fmt.Sprintf("key=k&since=%d", since), "")
	s.NextOf(configdpb.WatchResponse_CREATED)
	if m := s.NextOf(configdpb.WatchResponse_CHANGES); m.GetRev() != r || string(m.GetEvents()[0].GetKv().GetValue()) != "3" {
		t.Fatalf("got %v, want k=3 at %d", m, r)
	}
}

func TestWatchStreamSendsProgressWhenIdle(t *testing.T) {
	st, _, ts := newWatchEnvHub(t)
	r := commitPut(t, st, "k", "1")
	s := configdtest.OpenWatchStream(t, ts.Listener.Addr().String(), fmt.Sprintf("key=k&since=%d", r), "")
	s.NextOf(configdpb.WatchResponse_CREATED)
	commitPut(t, st, "elsewhere", "1")
	// Progress comes even with nothing new for the scope: it is also the
	// stream's keepalive. It ends up at the hub's revision.
	for {
		m := s.NextOf(configdpb.WatchResponse_PROGRESS)
		if m.GetRev() == r+1 {
			break
		}
	}
}

func TestWatchStreamRefusalsAreJSONErrors(t *testing.T) {
	st, _, ts := newWatchEnvHub(t)
	commitPut(t, st, "k", "1")
	for _, tc := range []struct {
		query  string
		status int
		code   string
	}{
		{"key=/bad", http.StatusBadRequest, api.CodeBadKey},
		{"key=k&since=99", http.StatusBadRequest, api.CodeBadRevision},
		{"since=0", http.StatusBadRequest, api.CodeBadRequest},
		// A client's identity past a report's limits (rollouts read it).
		{"prefix=app&instance=" + strings.Repeat("x", api.MaxClientInstance+1), http.StatusBadRequest, api.CodeBadRequest},
		{"prefix=app&labels=%25zz", http.StatusBadRequest, api.CodeBadRequest},
	} {
		_, status, body := configdtest.DialWatchStream(t, ts.Listener.Addr().String(), tc.query, "")
		if status != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) {
			t.Errorf("%s: %d %s, want %d with code %s", tc.query, status, body, tc.status, tc.code)
		}
	}
}

func TestWatchStreamEndsWithUnavailableWhenConfigdStops(t *testing.T) {
	_, hub, ts := newWatchEnvHub(t)
	s := configdtest.OpenWatchStream(t, ts.Listener.Addr().String(), "prefix=app", "")
	s.NextOf(configdpb.WatchResponse_CREATED)
	s.NextOf(configdpb.WatchResponse_SNAPSHOT)
	hub.Close()
	m := s.NextOf(configdpb.WatchResponse_CANCELED)
	if m.GetCode() != api.CodeUnavailable {
		t.Fatalf("CANCELED with code %q, want %q", m.GetCode(), api.CodeUnavailable)
	}
	if _, err := s.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after CANCELED: %v, want the connection closed", err)
	}
}

func TestWatchStreamReleasesTheWatchWhenTheClientGoes(t *testing.T) {
	_, hub, ts := newWatchEnvHub(t)
	s := configdtest.OpenWatchStream(t, ts.Listener.Addr().String(), "prefix=app", "")
	s.NextOf(configdpb.WatchResponse_CREATED)
	if hub.Len() != 1 {
		t.Fatalf("%d watchers, want 1", hub.Len())
	}
	s.Conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := configdtest.WaitFor(ctx, func() bool { return hub.Len() == 0 }); err != nil {
		t.Fatalf("%d watchers left after the client closed: %v", hub.Len(), err)
	}
}

// A client that stops reading holds up nobody: another watcher gets every
// revision while the first one's socket is full.
func TestWatchStreamAClientThatStopsReadingSlowsNoOne(t *testing.T) {
	st, _, ts := newWatchEnvHub(t)
	addr := ts.Listener.Addr().String()
	stuck := configdtest.OpenWatchStream(t, addr, "prefix=app", "")
	stuck.NextOf(configdpb.WatchResponse_CREATED)
	live := configdtest.OpenWatchStream(t, addr, "prefix=app", "")
	live.NextOf(configdpb.WatchResponse_CREATED)
	live.NextOf(configdpb.WatchResponse_SNAPSHOT)
	big := strings.Repeat("x", 40<<10)
	var last int64
	for i := range 200 { // 8 MB: more than the stuck socket's buffers
		last = commitPut(t, st, fmt.Sprintf("app/%d", i%10), fmt.Sprint(big, i))
		m := live.NextOf(configdpb.WatchResponse_CHANGES)
		if m.GetRev() != last {
			t.Fatalf("live watcher got rev %d, want %d", m.GetRev(), last)
		}
	}
}

// Streams opened and closed in a loop leave no goroutine, timer or watch
// behind.
func TestWatchStreamOpenCloseCyclesLeakNothing(t *testing.T) {
	_, hub, ts := newWatchEnvHub(t)
	addr := ts.Listener.Addr().String()
	before := runtime.NumGoroutine()
	for range 500 {
		s := configdtest.OpenWatchStream(t, addr, "prefix=app&since=0", "")
		s.NextOf(configdpb.WatchResponse_CREATED)
		s.NextOf(configdpb.WatchResponse_SNAPSHOT)
		s.Conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := configdtest.WaitFor(ctx, func() bool { return hub.Len() == 0 && runtime.NumGoroutine() <= before+5 })
	if err != nil {
		t.Fatalf("after 500 streams: %d watchers, %d goroutines (%d before): %v", hub.Len(), runtime.NumGoroutine(), before, err)
	}
}

// CHANGES frames are shared between watchers of one scope only: a
// revision touching two keys reaches the watcher of each with its own key.
func TestWatchStreamSharesFramesOnlyWithinAScope(t *testing.T) {
	st, _, ts := newWatchEnvHub(t)
	addr := ts.Listener.Addr().String()
	r := commitPut(t, st, "seed", "0")
	open := func(q string) *configdtest.WatchStream {
		s := configdtest.OpenWatchStream(t, addr, fmt.Sprintf("%s&since=%d", q, r), "")
		s.NextOf(configdpb.WatchResponse_CREATED)
		return s
	}
	a1, a2, b := open("key=a"), open("key=a"), open("key=b")
	rev, err := st.Commit(context.Background(), audit.Txn{Actor: "alice", Ops: []audit.Op{audit.Put("a", []byte("1"), ""), audit.Put("b", []byte("2"), "")}})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		s    *configdtest.WatchStream
		want string
	}{"a1": {a1, "a=1"}, "a2": {a2, "a=1"}, "b": {b, "b=2"}} {
		m := tc.s.NextOf(configdpb.WatchResponse_CHANGES)
		var got []string
		for _, ev := range m.GetEvents() {
			got = append(got, ev.GetKv().GetKey()+"="+string(ev.GetKv().GetValue()))
		}
		if m.GetRev() != rev.Rev || strings.Join(got, ",") != tc.want {
			t.Errorf("%s: rev %d events %v, want rev %d with %s", name, m.GetRev(), got, rev.Rev, tc.want)
		}
	}
}

// smallBuffers is a listener whose connections have a small send buffer,
// so that what a slow client has not read waits in configd, not in the
// kernel.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}

// pacedReader reads at most 32 KiB every 50ms: 640 KiB/s.
type pacedReader struct{ r io.Reader }

func (p pacedReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b[:min(len(b), 32<<10)])
	time.Sleep(50 * time.Millisecond) // the client's pace, not a wait for an event
	return n, err
}

// A client that reads slowly but steadily gets a snapshot that takes it
// far longer than the write timeout to read; only one that stops reading
// is cut off.
func TestWatchStreamASlowClientGetsAWholeLargeSnapshot(t *testing.T) {
	e := configdtest.NewEnv(t)
	st := e.Store
	ts := httptest.NewUnstartedServer(httpapi.NewWatchHandler(e.Hub, time.Minute, 500*time.Millisecond))
	ts.Listener = smallBuffers{ts.Listener}
	ts.Start()
	t.Cleanup(ts.Close)
	var ops []audit.Op
	for i := range 16 {
		ops = append(ops, audit.Put(fmt.Sprintf("app/%02d", i), []byte(strings.Repeat(fmt.Sprint(i%10), 64<<10)), ""))
	}
	if _, err := st.Commit(context.Background(), audit.Txn{Ops: ops}); err != nil {
		t.Fatal(err)
	}

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	fmt.Fprintf(conn, "GET /v1/watch?prefix=app/&since=0 HTTP/1.1\r\nHost: configd\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", api.WatchStreamProtocol)
	r := bufio.NewReaderSize(pacedReader{conn}, 32<<10)
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	start := time.Now()
	var m *configdpb.WatchResponse
	for m.GetKind() != configdpb.WatchResponse_SNAPSHOT {
		m = &configdpb.WatchResponse{}
		if err := (protodelim.UnmarshalOptions{MaxSize: 4 << 20}).UnmarshalFrom(r, m); err != nil {
			t.Fatalf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
		}
	}
	if len(m.GetEvents()) != 16 || len(m.GetEvents()[15].GetKv().GetValue()) != 64<<10 {
		t.Fatalf("snapshot of %d keys", len(m.GetEvents()))
	}
	t.Logf("a 1 MiB snapshot took the client %s to read (write timeout 500ms)", time.Since(start).Round(time.Millisecond))
}
