// Package sourcetest runs a source in a test and hands its updates over a
// channel, with bounded waits.
package sourcetest

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/source"
)

// Wait bounds every expected update.
var Wait = 20 * time.Second

// Received is an update and when the callback got it.
type Received struct {
	source.Update
	At time.Time
}

// Recorder is a running source.
type Recorder struct {
	t       testing.TB
	Src     source.Source
	updates chan Received
}

// Run starts src.Run; the test's cleanup cancels it and checks that Run
// returns nil promptly.
func Run(t testing.TB, src source.Source) *Recorder {
	t.Helper()
	r := &Recorder{t: t, Src: src, updates: make(chan Received, 10000)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(u source.Update) { r.updates <- Received{Update: u, At: time.Now()} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(Wait):
			t.Errorf("Run did not return within %v of cancel", Wait)
		}
		src.Close()
	})
	return r
}

// Next returns the next update, or fails the test after Wait.
func (r *Recorder) Next() Received {
	r.t.Helper()
	select {
	case u := <-r.updates:
		return u
	case <-time.After(Wait):
		r.t.Fatalf("no update within %v (status %+v)", Wait, r.Src.Status())
	}
	return Received{}
}

// NextSnapshot returns the next update, failing unless it is a snapshot.
func (r *Recorder) NextSnapshot() Received {
	r.t.Helper()
	u := r.Next()
	if u.Err != nil || u.Snapshot == nil {
		r.t.Fatalf("got error update %v, want a snapshot", u.Err)
	}
	return u
}

// NextError returns the next update's error, failing unless it has one and
// no snapshot.
func (r *Recorder) NextError() error {
	r.t.Helper()
	u := r.Next()
	if u.Err == nil || u.Snapshot != nil {
		r.t.Fatalf("got snapshot %v, want an error update", Texts(u.Snapshot))
	}
	return u.Err
}

// Texts renders a snapshot as key -> text, for comparisons and messages.
func Texts(snap map[string]source.Value) map[string]string {
	if snap == nil {
		return nil
	}
	m := make(map[string]string, len(snap))
	for k, v := range snap {
		m[k] = string(v.Data)
	}
	return m
}

// Percentile returns the p-th percentile (0..100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// Decode decodes entry, one sources: entry in YAML ("{name: f, type:
// file, path: x}"), with source.DecodeConfig and the given types.
func Decode(t testing.TB, entry string, types ...source.TypeConfig) (source.Config, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(entry), &doc); err != nil {
		t.Fatalf("entry %q: %v", entry, err)
	}
	cat, err := source.NewCatalog(types...)
	if err != nil {
		t.Fatal(err)
	}
	return source.DecodeConfig(doc.Content[0], cat)
}
