// Package watchwire is how a batch of the watch hub goes out on every
// watch transport: its protobuf message (the watch stream and gRPC) and
// its JSON (long poll and server-sent events), each encoded once per batch
// and shared by every connection that sends it, and the metrics of what
// the transports send.
package watchwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/watcher"
)

// DefaultProgressInterval is how often an idle watch is told the current
// revision, on every transport.
const DefaultProgressInterval = 10 * time.Second

// The hub hands one batch to every watcher of a scope (a revision's
// changes, or a snapshot at one revision: watcher.Batch.Encoded), so each
// transport encodes a batch once and sends the same bytes on every
// connection, never copying them per connection: a 3 MB snapshot sent to
// 2,000 watchers costs one encoding, not 6 GB.

// protoFrameKey and jsonBatchKey name the encodings of a batch.
type (
	protoFrameKey struct{}
	jsonBatchKey  struct{}
)

// ProtoFrame returns b as a frame of the watch stream: the WatchResponse
// of b (watch ID 0) with its varint length before it. gRPC sends the same
// bytes without the length.
func ProtoFrame(b watcher.Batch) []byte {
	return b.Encoded(protoFrameKey{}, func(b watcher.Batch) []byte { return AppendFrame(nil, Proto(0, b)) })
}

// JSON returns b as the JSON of an api.WatchBatch (HTML characters not
// escaped, as every JSON answer).
func JSON(b watcher.Batch) []byte {
	return b.Encoded(jsonBatchKey{}, func(b watcher.Batch) []byte {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(API(b)); err != nil {
			// An api.WatchBatch always marshals.
			panic(fmt.Sprintf("watchwire: marshal watch batch: %v", err))
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	})
}

// AppendFrame appends m to buf with its varint length before it: a frame
// of the watch stream.
func AppendFrame(buf []byte, m *configdpb.WatchResponse) []byte {
	buf = protowire.AppendVarint(buf, uint64(proto.Size(m)))
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
	if err != nil {
		// A WatchResponse built here always marshals.
		panic(fmt.Sprintf("watchwire: marshal watch message: %v", err))
	}
	return out
}

// Proto returns b as the WatchResponse of watch id.
func Proto(id int64, b watcher.Batch) *configdpb.WatchResponse {
	msg := &configdpb.WatchResponse{WatchId: id, Rev: b.Rev, Actor: b.Actor, Origin: b.Origin}
	switch b.Kind {
	case watcher.KindSnapshot:
		msg.Kind = configdpb.WatchResponse_SNAPSHOT
	case watcher.KindResync:
		msg.Kind = configdpb.WatchResponse_RESYNC
	default:
		msg.Kind = configdpb.WatchResponse_CHANGES
	}
	msg.Events = make([]*configdpb.Event, len(b.Events))
	for i, e := range b.Events {
		ev := &configdpb.Event{Kv: &configdpb.KeyValue{Key: e.Key}}
		if e.Type == audit.OpDelete {
			ev.Type = configdpb.Event_DELETE
		} else {
			ev.Kv.Value, ev.Kv.ContentType = e.Value, e.ContentType
			ev.Kv.CreateRev, ev.Kv.ModRev, ev.Kv.Version = e.CreateRev, e.ModRev, e.Version
		}
		msg.Events[i] = ev
	}
	return msg
}

// API returns b as an api.WatchBatch.
func API(b watcher.Batch) api.WatchBatch {
	out := api.WatchBatch{Kind: b.Kind.String(), Rev: b.Rev, Actor: b.Actor, Origin: b.Origin, Events: make([]api.WatchEvent, len(b.Events))}
	if !b.Time.IsZero() {
		t := b.Time
		out.Time = &t
	}
	for i, e := range b.Events {
		ev := api.WatchEvent{Key: e.Key, Op: e.Type.String()}
		if e.Type == audit.OpPut {
			ev.Value, ev.Encoding = api.EncodeValue(e.Value)
			ev.ContentType, ev.CreateRev, ev.ModRev, ev.Version = e.ContentType, e.CreateRev, e.ModRev, e.Version
		}
		out.Events[i] = ev
	}
	return out
}
