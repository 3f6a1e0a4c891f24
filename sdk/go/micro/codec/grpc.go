package codec

import (
	"encoding/binary"
	"fmt"
)

// GRPC is the gRPC message codec: the body is one length-prefixed gRPC message, a
// compressed-flag byte (0: compression is not supported), a 4-byte big-endian length and the
// message, protobuf (application/grpc+proto, also accepted as application/grpc) or, with JSON
// set, JSON (application/grpc+json).
type GRPC struct {
	// JSON selects application/grpc+json: the message goes through the JSON codec.
	JSON bool
}

var _ Codec = GRPC{}

// The content types of the gRPC codec.
const (
	GRPCContentType     = "application/grpc+proto"
	GRPCJSONContentType = "application/grpc+json"
)

// ContentType implements Codec.
func (g GRPC) ContentType() string {
	if g.JSON {
		return GRPCJSONContentType
	}
	return GRPCContentType
}

func (g GRPC) inner() Codec {
	if g.JSON {
		return JSON{}
	}
	return Proto{}
}

// Marshal implements Codec.
func (g GRPC) Marshal(v any) ([]byte, error) {
	b, err := g.inner().Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...), nil
}

// Unmarshal implements Codec.
func (g GRPC) Unmarshal(data []byte, v any) error {
	if len(data) < 5 {
		return fmt.Errorf("%w: grpc: %d bytes, short of the 5-byte message prefix", ErrMismatch, len(data))
	}
	switch data[0] {
	case 0:
	case 1:
		return fmt.Errorf("%w: grpc: compressed message (flag 1); compression is not supported", ErrMismatch)
	default:
		return fmt.Errorf("%w: grpc: bad compressed flag %d", ErrMismatch, data[0])
	}
	if n := binary.BigEndian.Uint32(data[1:]); uint64(n) != uint64(len(data)-5) {
		return fmt.Errorf("%w: grpc: prefix announces %d bytes, the body has %d", ErrMismatch, n, len(data)-5)
	}
	return g.inner().Unmarshal(data[5:], v)
}
