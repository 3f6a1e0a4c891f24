package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/watcher"
)

func newWatchEnv(t *testing.T) (*audit.Store, *httptest.Server) {
	st, _, ts := newWatchEnvHub(t)
	return st, ts
}

func newWatchEnvHub(t *testing.T) (*audit.Store, *watcher.Hub, *httptest.Server) {
	t.Helper()
	e := configdtest.NewEnv(t)
	return e.Store, e.Hub, e.Serve(httpapi.NewWatchHandler(e.Hub, 20*time.Millisecond, 0))
}

func commitPut(t *testing.T, st *audit.Store, key, value string) int64 {
	t.Helper()
	return configdtest.Commit(t, st, audit.Txn{Actor: "alice", Ops: configdtest.Puts(key, value)})
}

func TestLongPollAnswersAtOnceWhenChangesAreWaiting(t *testing.T) {
	st, ts := newWatchEnv(t)
	commitPut(t, st, "key1", "a")
	commitPut(t, st, "key1", "b")
	commitPut(t, st, "other", "x")
	code, resp, _ := configdtest.PollWatch(t, ts.URL, "key=key1&since=1&wait=1m")
	if code != 200 || resp.Rev != 2 || len(resp.Batches) != 1 || resp.Batches[0].Events[0].Value != "b" || resp.Kind != api.WatchChanges {
		t.Fatalf("poll = %d %+v", code, resp)
	}
	code, resp, _ = configdtest.PollWatch(t, ts.URL, "prefix=&since=0")
	if code != 200 || resp.Kind != api.WatchSnapshot || resp.Rev != 3 || len(resp.Batches[0].Events) != 2 {
		t.Fatalf("snapshot poll = %d %+v", code, resp)
	}
}

func TestLongPollHoldsUntilAChangeArrives(t *testing.T) {
	st, hub, ts := newWatchEnvHub(t)
	commitPut(t, st, "key1", "a")
	done := make(chan api.WatchResponse, 1)
	go func() {
		_, resp, _ := configdtest.PollWatch(t, ts.URL, "key=key1&since=1&wait=1m")
		done <- resp
	}()
	// Wait until the poll has registered its watch, then commit.
	deadline := time.Now().Add(10 * time.Second)
	for hub.Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the poll never registered")
		}
		runtime.Gosched()
	}
	select {
	case got := <-done:
		t.Fatalf("poll answered before any change: %+v", got)
	default:
	}
	commitPut(t, st, "key1", "v0")
	got := <-done
	if got.Kind != api.WatchChanges || got.Batches[0].Rev != 2 || got.Batches[0].Events[0].Value != "v0" {
		t.Fatalf("held poll = %+v", got)
	}
}

func TestLongPollEndsWithProgressWhenNothingChanges(t *testing.T) {
	st, ts := newWatchEnv(t)
	commitPut(t, st, "key1", "a")
	commitPut(t, st, "other", "b")
	code, resp, _ := configdtest.PollWatch(t, ts.URL, "key=key1&since=1&wait=30ms")
	if code != 200 || resp.Kind != api.WatchProgress || resp.Rev != 2 || len(resp.Batches) != 0 {
		t.Fatalf("idle poll = %d %+v", code, resp)
	}
}

func TestLongPollRefusesBadInput(t *testing.T) {
	st, ts := newWatchEnv(t)
	commitPut(t, st, "key1", "a")
	for _, c := range []struct{ query, code string }{
		{"key=a//b", api.CodeBadKey},
		{"key=key1&since=99", api.CodeBadRevision},
		{"key=key1&since=-1", api.CodeBadRevision},
		{"key=key1&wait=soon", api.CodeBadRequest},
		{"since=1", api.CodeBadRequest},
		{"key=key1&bogus=1", api.CodeBadRequest},
	} {
		code, _, bad := configdtest.PollWatch(t, ts.URL, c.query)
		if code/100 != 4 || bad.Error.Code != c.code || bad.Error.Message == "" {
			t.Errorf("%s: %d %+v, want %s", c.query, code, bad, c.code)
		}
	}
}

func TestServerSentEventsStreamChangesWithRevisionIDs(t *testing.T) {
	st, ts := newWatchEnv(t)
	commitPut(t, st, "key1", "a")
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/watch?key=key1", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	commitPut(t, st, "key1", "b")
	sc := bufio.NewScanner(resp.Body)
	var id, event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "changes":
			var b api.WatchBatch
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &b); err != nil {
				t.Fatal(err)
			}
			if id != "2" || b.Rev != 2 || b.Events[0].Value != "b" {
				t.Fatalf("event id %s batch %+v", id, b)
			}
			return
		}
	}
	t.Fatalf("stream ended: %v", sc.Err())
}
