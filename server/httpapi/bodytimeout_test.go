package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/httpapi"
)

// TestSlowBodyIsCutAndWritesNothing: a client that sends headers and part
// of a body, then nothing, is answered 408 request_timeout once the body
// read timeout passes, its connection is closed, and nothing is written.
// A client that sends its body in time is served, and a watch (no body)
// outlives the timeout.
func TestSlowBodyIsCutAndWritesNothing(t *testing.T) {
	const timeout = 200 * time.Millisecond
	ce := secretEnv(t, []httpapi.Option{httpapi.WithBodyReadTimeout(timeout)}, audit.Put("app/a", []byte("1"), ""))
	e := &env{t: t, ce: ce, st: ce.Store, ts: ce.HTTP}
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	before := e.snapshot()
	for _, tc := range []struct{ name, request string }{
		{"put", "PUT /v1/kv/app/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"},
		{"txn", "POST /v1/txn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ops\":["},
		{"chunked put", "PUT /v1/kv/app/slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.request); err != nil {
				t.Fatal(err)
			}
			// The answer comes without the client sending anything more;
			// the read deadline only bounds a configd that never answers.
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to a stalled body: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			var eb api.ErrorResponse
			if resp.StatusCode != http.StatusRequestTimeout || json.Unmarshal(b, &eb) != nil || eb.Error.Code != api.CodeRequestTimeout {
				t.Fatalf("stalled body: %d %s, want 408 request_timeout", resp.StatusCode, b)
			}
			if _, err := br.ReadByte(); err == nil {
				t.Errorf("the connection stays open after the 408")
			}
		})
	}
	if got := e.snapshot(); got != before {
		t.Errorf("stalled bodies changed the store:\n%s\nwant\n%s", got, before)
	}
	e.put("app/fast", "v", "")

	// A long poll waits past the timeout and still answers.
	start := time.Now()
	var wr api.WatchResponse
	e.decode(http.StatusOK, &wr, http.MethodGet, fmt.Sprintf("/v1/watch?prefix=app/&since=%d&wait=%s", ce.Hub.Rev(), 3*timeout), nil)
	if wr.Kind != api.WatchProgress || time.Since(start) < 3*timeout {
		t.Errorf("long poll past the body timeout: %+v after %v, want progress after %v", wr, time.Since(start), 3*timeout)
	}
}
