package configdtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
)

// WatchStream is the client end of a watch stream
// (api.WatchStreamProtocol), read frame by frame.
type WatchStream struct {
	t testing.TB
	// Conn is the connection, Head configd's 101 answer.
	Conn net.Conn
	Head *http.Response
	r    *bufio.Reader
}

// OpenWatchStream asks configd at addr for the watch stream of query
// (key=, prefix=, since=), with secret as bearer token ("" sends none);
// it fails the test unless configd answers 101.
func OpenWatchStream(t testing.TB, addr, query, secret string) *WatchStream {
	t.Helper()
	s, status, body := DialWatchStream(t, addr, query, secret)
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("status %d (%s), want 101", status, body)
	}
	return s
}

// DialWatchStream sends the upgrade request and reads configd's answer:
// the stream on 101, else the status and body.
func DialWatchStream(t testing.TB, addr, query, secret string) (*WatchStream, int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	auth := ""
	if secret != "" {
		auth = "Authorization: Bearer " + secret + "\r\n"
	}
	fmt.Fprintf(conn, "GET /v1/watch?%s HTTP/1.1\r\nHost: configd\r\n%sConnection: Upgrade\r\nUpgrade: %s\r\n\r\n",
		query, auth, api.WatchStreamProtocol)
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, string(body)
	}
	return &WatchStream{t: t, Conn: conn, Head: resp, r: r}, resp.StatusCode, ""
}

// Next reads one message, failing the test after 10 s.
func (s *WatchStream) Next() *configdpb.WatchResponse {
	s.t.Helper()
	m, err := s.Read()
	if err != nil {
		s.t.Fatalf("read a watch message: %v", err)
	}
	return m
}

// Read reads one message, waiting at most 10 s.
func (s *WatchStream) Read() (*configdpb.WatchResponse, error) {
	s.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	m := &configdpb.WatchResponse{}
	return m, protodelim.UnmarshalFrom(s.r, m)
}

// NextOf reads messages until one of kind, skipping PROGRESS.
func (s *WatchStream) NextOf(kind configdpb.WatchResponse_Kind) *configdpb.WatchResponse {
	s.t.Helper()
	for {
		m := s.Next()
		if m.GetKind() == kind {
			return m
		}
		if m.GetKind() != configdpb.WatchResponse_PROGRESS {
			s.t.Fatalf("got %v at rev %d, want %v", m.GetKind(), m.GetRev(), kind)
		}
	}
}

// WaitFor polls cond until it holds or ctx ends: for a state that no
// event announces (a hub's count of watchers, a limit's count of watches).
func WaitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Eventually waits until cond holds, for at most WaitLimit, and fails the
// test saying what did not happen otherwise.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	if err := WaitFor(ctx, cond); err != nil {
		t.Fatalf("%s: not within %s", what, WaitLimit)
	}
}

// PollWatch long-polls GET /v1/watch?query at baseURL (http://host:port)
// and returns the status and the answer: an api.WatchResponse on 200, else
// an api.ErrorResponse.
func PollWatch(t testing.TB, baseURL, query string) (int, api.WatchResponse, api.ErrorResponse) {
	t.Helper()
	resp, err := http.Get(baseURL + "/v1/watch?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ok api.WatchResponse
	var bad api.ErrorResponse
	if resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(&ok)
	} else {
		err = json.NewDecoder(resp.Body).Decode(&bad)
	}
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, ok, bad
}
