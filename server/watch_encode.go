package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/watcher"
)

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

// protoFrame returns b as a frame of the watch stream: the WatchResponse
// of b (watch ID 0) with its varint length before it.
func protoFrame(b watcher.Batch) []byte {
	return b.Encoded(protoFrameKey{}, func(b watcher.Batch) []byte { return appendFrame(nil, pbBatch(0, b)) })
}

// protoMessage returns the WatchResponse of b (watch ID 0), encoded: the
// frame without its length.
func protoMessage(b watcher.Batch) []byte {
	frame := protoFrame(b)
	_, n := protowire.ConsumeVarint(frame)
	return frame[n:]
}

// batchJSON returns b as the JSON of an api.WatchBatch (HTML characters
// not escaped, as every JSON answer).
func batchJSON(b watcher.Batch) []byte {
	return b.Encoded(jsonBatchKey{}, func(b watcher.Batch) []byte {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(apiBatch(b)); err != nil {
			// An api.WatchBatch always marshals.
			panic(fmt.Sprintf("server: marshal watch batch: %v", err))
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	})
}

// appendFrame appends m to buf with its varint length before it.
func appendFrame(buf []byte, m *configdpb.WatchResponse) []byte {
	buf = protowire.AppendVarint(buf, uint64(proto.Size(m)))
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
	if err != nil {
		// A WatchResponse built here always marshals.
		panic(fmt.Sprintf("server: marshal watch message: %v", err))
	}
	return out
}

// maxCopiedFrame is the largest shared frame that a write copies beside
// the connection's own small frames (one system call for them all); a
// larger one is written where it is.
const maxCopiedFrame = 64 << 10

// frameWriter gathers the frames of one write to a watch stream: the
// connection's own messages and small frames in one buffer, large shared
// frames by reference, written together with writev (net.Buffers).
type frameWriter struct {
	bufs net.Buffers
	own  []byte // the frames since the last shared one
	size int
}

// add appends m, encoded.
func (f *frameWriter) add(m *configdpb.WatchResponse) {
	n := len(f.own)
	f.own = appendFrame(f.own, m)
	f.size += len(f.own) - n
}

// addShared appends a frame that other connections send too.
func (f *frameWriter) addShared(frame []byte) {
	f.size += len(frame)
	if len(frame) <= maxCopiedFrame {
		f.own = append(f.own, frame...)
		return
	}
	f.flushOwn()
	f.bufs = append(f.bufs, frame)
}

// flushOwn moves the own frames so far into bufs; later ones go after
// them in the same array, never over them.
func (f *frameWriter) flushOwn() {
	if len(f.own) > 0 {
		f.bufs = append(f.bufs, f.own)
		f.own = f.own[len(f.own):]
	}
}

// buffers returns everything gathered, in order.
func (f *frameWriter) buffers() net.Buffers {
	f.flushOwn()
	return f.bufs
}

// sharedResponse is a WatchResponse encoded once for many gRPC watches
// (protoMessage), sent on one of them as watch id.
type sharedResponse struct {
	id  int64
	msg []byte // the response with watch ID 0
}

// grpcCodec is the gRPC server's codec: protobuf, except that a
// sharedResponse goes out as its watch ID's field followed by the shared
// bytes, without copying them (a field may come in any order, and the
// shared message has no watch ID of its own).
type grpcCodec struct{ encoding.CodecV2 }

func newGRPCCodec() grpcCodec { return grpcCodec{encoding.GetCodecV2("proto")} }

func (c grpcCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*sharedResponse)
	if !ok {
		return c.CodecV2.Marshal(v)
	}
	if r.id == 0 {
		return mem.BufferSlice{mem.SliceBuffer(r.msg)}, nil
	}
	head := protowire.AppendVarint(protowire.AppendTag(nil, watchIDField, protowire.VarintType), uint64(r.id))
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(r.msg)}, nil
}

// watchIDField is WatchResponse.watch_id's field number.
var watchIDField = (&configdpb.WatchResponse{}).ProtoReflect().Descriptor().Fields().ByName("watch_id").Number()
