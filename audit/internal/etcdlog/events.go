package etcdlog

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit/internal/events"
)

// The source events are shared through etcd, so that every replica lists
// the events of every source, whichever replica syncs it, and they outlive
// that replica: P/events/<source>/<seq> holds one event (its time, source,
// state and message), seq counting from 1 in 20 digits, one more each.
// Each source keeps its newest events.PerSource: the transaction that puts
// one deletes those it pushes out. An event's ID is the etcd revision that
// recorded it (its key's creation revision): the same on every replica,
// and it orders the events of every source as etcd recorded them. Each
// replica keeps a copy in its own source_events table (events.Shared),
// filled by one watch of P/events/.

func (l *Log) eventsDir() string { return l.prefix + "/events/" }

// eventDir is the prefix of one source's events; a name is escaped, so
// that no source's events sit under another's.
func (l *Log) eventDir(source string) string { return l.eventsDir() + url.PathEscape(source) + "/" }

type eventJSON struct {
	Time    int64  `json:"time"` // Unix nanoseconds
	Source  string `json:"source"`
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
}

// encodeEvent is e's value in etcd: JSON, with no HTML escapes (an error
// message's < > & stay one byte each).
func encodeEvent(e events.SourceEvent) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(eventJSON{Time: e.Time.UnixNano(), Source: e.Source, State: e.State, Message: e.Message})
	return strings.TrimSuffix(b.String(), "\n")
}

func decodeEvent(key, v []byte) (events.SourceEvent, error) {
	var j eventJSON
	if err := json.Unmarshal(v, &j); err != nil {
		return events.SourceEvent{}, fmt.Errorf("audit: %w: %s: %w", ErrNotALog, key, err)
	}
	return events.SourceEvent{Time: time.Unix(0, j.Time).UTC(), Source: j.Source, State: j.State, Message: j.Message}, nil
}

// RecordEvent appends e to its source's events and deletes those beyond
// the newest events.PerSource, in one transaction, and returns the etcd
// revision that recorded it (its ID). An event that is already its
// source's newest (the same time, state and message: the answer of an
// earlier attempt was lost) is not recorded twice.
func (l *Log) RecordEvent(ctx context.Context, e events.SourceEvent) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	dir, value := l.eventDir(e.Source), encodeEvent(e)
	for range 8 {
		last, err := l.cli.Get(ctx, dir, clientv3.WithLastKey()...)
		if err != nil {
			return 0, unavailable("read the source's events", err)
		}
		seq := int64(1)
		if len(last.Kvs) == 1 {
			kv := last.Kvs[0]
			if string(kv.Value) == value {
				return kv.CreateRevision, nil
			}
			n, err := strconv.ParseInt(strings.TrimPrefix(string(kv.Key), dir), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("audit: %w: %s is not a source event's key", ErrNotALog, kv.Key)
			}
			seq = n + 1
		}
		key := dir + revString(seq)
		ops := []clientv3.Op{clientv3.OpPut(key, value)}
		if drop := seq - events.PerSource; drop > 0 { // keys 1 to drop
			ops = append(ops, clientv3.OpDelete(dir+revString(0), clientv3.WithRange(dir+revString(drop+1))))
		}
		resp, err := l.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(ops...).Commit()
		if err != nil {
			return 0, unavailable("record the source event", err)
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
	}
	return 0, fmt.Errorf("audit: source %q's events: others kept recording them; try again", e.Source)
}

// Events returns every source's events that the cluster shares, by ID
// (the etcd revision that recorded each), and the etcd revision they were
// read at.
func (l *Log) Events(ctx context.Context) ([]events.SourceEvent, int64, error) {
	out, rev, err := readDir(ctx, l, l.eventsDir(), "the source events", func(kv *mvccpb.KeyValue) (events.SourceEvent, error) {
		e, err := decodeEvent(kv.Key, kv.Value)
		e.ID = kv.CreateRevision
		return e, err
	})
	slices.SortFunc(out, func(a, b events.SourceEvent) int { return cmp.Compare(a.ID, b.ID) })
	return out, rev, err
}

// FollowEvents keeps a replica's copy of the cluster's source events until
// ctx ends: load (events.Shared.Load) shares what waits and copies them
// all, first, then at each change a watch of P/events/ reports and each
// time poke receives (events wait to be shared); when etcd does not
// answer, it starts again after a pause (see Follow), telling status.
func (l *Log) FollowEvents(ctx context.Context, load func(ctx context.Context) (int64, error), poke <-chan struct{}, status func(error)) error {
	return l.keepCopy(ctx, l.eventsDir(), load, poke, status)
}
