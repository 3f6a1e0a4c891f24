package grpcapi

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/server/watchwire"
	"github.com/configd/configd/watcher"
)

// protoMessage returns the WatchResponse of b (watch ID 0), encoded: the
// watch stream's frame of b (watchwire.ProtoFrame) without its length.
func protoMessage(b watcher.Batch) []byte {
	frame := watchwire.ProtoFrame(b)
	_, n := protowire.ConsumeVarint(frame)
	return frame[n:]
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
