package codec

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Proto is the application/protobuf codec, for values that are proto.Message.
type Proto struct{}

var _ Codec = Proto{}

// ContentType implements Codec.
func (Proto) ContentType() string { return ProtoContentType }

// Marshal implements Codec.
func (Proto) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%w: %s needs a proto.Message, got %T", ErrMismatch, ProtoContentType, v)
	}
	return proto.Marshal(m)
}

// Unmarshal implements Codec.
func (Proto) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("%w: %s needs a proto.Message, got %T", ErrMismatch, ProtoContentType, v)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("%w: protobuf: %w", ErrMismatch, err)
	}
	return nil
}
