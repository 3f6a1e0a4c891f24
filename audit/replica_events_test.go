package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// recordEvent records a source event on s; an error fails the test.
func recordEvent(t *testing.T, s *Store, source, state, msg string) {
	t.Helper()
	if err := s.RecordSourceEvent(context.Background(), SourceEvent{Source: source, State: state, Message: msg}); err != nil {
		t.Fatalf("record %s's %s event: %v", source, state, err)
	}
}

// sourceEvents lists s's newest events of source ("": all), at most
// 1,000; an error fails the test.
func sourceEvents(t *testing.T, s *Store, source string) []SourceEvent {
	t.Helper()
	evs, err := s.SourceEvents(context.Background(), source, 1000)
	if err != nil {
		t.Fatalf("list the source events: %v", err)
	}
	return evs
}

// eventLines are evs as "source state message" lines.
func eventLines(evs []SourceEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, strings.TrimSpace(e.Source+" "+e.State+" "+e.Message))
	}
	return out
}

// sameEvents waits until every store lists the events of want (source,
// state, message, newest first), all of them identical (IDs, times,
// order), and returns them.
func sameEvents(t *testing.T, want []string, stores ...*Store) []SourceEvent {
	t.Helper()
	var first []SourceEvent
	waitFor(t, fmt.Sprintf("the same %d source events on every replica", len(want)), func() bool {
		first = sourceEvents(t, stores[0], "")
		if !reflect.DeepEqual(eventLines(first), want) {
			return false
		}
		for _, s := range stores[1:] {
			if !reflect.DeepEqual(sourceEvents(t, s, ""), first) {
				return false
			}
		}
		return true
	})
	for i, e := range first {
		if e.Time.IsZero() || i > 0 && e.ID >= first[i-1].ID {
			t.Fatalf("event %d: %+v after %+v: want a time and IDs newest first", i, e, first[i-1])
		}
	}
	return first
}

// Source events are shared: recorded by the replica that syncs the source,
// listed identically (IDs, times, order) by every replica, kept in etcd up
// to SharedEventsPerSource a source, and still listed after the replica
// that recorded them is gone, by the others and by a new one.
func (e *replicaEnv) sharedEvents(t *testing.T) {
	a, b := e.replica(t), e.replica(t)
	recordEvent(t, a, "consul", "degraded", "connection refused")
	recordEvent(t, a, "consul", "refused", "value too large")
	if got, want := eventLines(sourceEvents(t, a, "consul")), []string{"consul refused value too large", "consul degraded connection refused"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("a's own events when its Record returned: %q, want %q", got, want)
	}
	recordEvent(t, b, "files", "degraded", "yaml: line 3: did not find expected key")
	recordEvent(t, a, "consul", "ok", "")
	want := []string{"consul ok", "files degraded yaml: line 3: did not find expected key", "consul refused value too large", "consul degraded connection refused"}
	sameEvents(t, want, a, b)

	// A long message is cut, the same everywhere.
	long := strings.Repeat("é", SharedEventMessageMax)
	recordEvent(t, b, "files", "refused", long)
	evs := sourceEvents(t, b, "files")
	if m := evs[0].Message; len(m) > SharedEventMessageMax || !strings.HasSuffix(m, "…") || !utf8.ValidString(m) || !strings.HasPrefix(long, strings.TrimSuffix(m, "…")) {
		t.Fatalf("a message of %d bytes is listed as %d bytes %q...; want it cut at a character to at most %d, marked", len(long), len(m), m[:10], SharedEventMessageMax)
	}
	want = append([]string{"files refused " + evs[0].Message}, want...)
	sameEvents(t, want, a, b)

	// A source keeps its newest SharedEventsPerSource in etcd, and in
	// every copy.
	const extra = 5
	for i := range SharedEventsPerSource + extra {
		recordEvent(t, b, "flappy", "degraded", fmt.Sprint(i))
	}
	cnt, err := e.client(t).Get(context.Background(), prefix(t)+"/events/flappy/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if cnt.Count != SharedEventsPerSource {
		t.Fatalf("etcd holds %d events of a source, want %d", cnt.Count, SharedEventsPerSource)
	}
	var flappy []string
	for i := SharedEventsPerSource + extra - 1; i >= extra; i-- {
		flappy = append(flappy, fmt.Sprintf("flappy degraded %d", i))
	}
	want = append(flappy, want...)
	shared := sameEvents(t, want, a, b)

	// The replica that recorded the consul events is gone: the others, and
	// a new one, list them; the next holder's events come after them.
	a.Close()
	c := e.replica(t)
	if got := sourceEvents(t, c, ""); !reflect.DeepEqual(got, shared) {
		t.Fatalf("a new replica lists %q when its Open returned, want %q", eventLines(got), eventLines(shared))
	}
	recordEvent(t, c, "consul", "degraded", "the next holder's")
	sameEvents(t, append([]string{"consul degraded the next holder's"}, want...), b, c)
}

// A replica cut off from etcd records a source event without waiting for
// etcd longer than its timeout, lists it at once and with no error (after
// the shared ones), and shares it once the link heals: then every replica
// lists it, in the order etcd recorded it.
func (e *replicaEnv) eventsWhileCutOff(t *testing.T) {
	cli, link := e.linkedClient(t)
	const timeout = time.Second
	a := e.replica(t)
	c := openReplica(t, filepath.Join(t.TempDir(), "configd.db"), WithEtcd(cli, prefix(t)), WithEtcdTimeout(timeout))
	recordEvent(t, a, "files", "ok", "")
	sameEvents(t, []string{"files ok"}, a, c)

	link.cut()
	started := time.Now()
	recordEvent(t, c, "consul", "degraded", "cut off")
	first := time.Since(started)
	started = time.Now()
	recordEvent(t, c, "consul", "ok", "")
	second := time.Since(started)
	t.Logf("recording with etcd cut off: %v, then %v", first, second)
	if first > 3*timeout || second > timeout {
		t.Fatalf("recording with etcd cut off took %v, then %v: want at most about the etcd timeout (%v), then no wait", first, second, timeout)
	}
	if got, want := eventLines(sourceEvents(t, c, "")), []string{"consul ok", "consul degraded cut off", "files ok"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("the replica cut off lists %q, want %q", got, want)
	}
	recordEvent(t, a, "files", "degraded", "meanwhile")

	link.heal()
	sameEvents(t, []string{"consul ok", "consul degraded cut off", "files degraded meanwhile", "files ok"}, a, c)
}
