package codec

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// JSON is the application/json codec. Protobuf messages go through protojson, so their JSON
// follows the proto3 mapping; everything else through encoding/json.
type JSON struct{}

var _ Codec = JSON{}

// ContentType implements Codec.
func (JSON) ContentType() string { return JSONContentType }

// Marshal implements Codec.
func (JSON) Marshal(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok {
		return protojson.Marshal(m)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: json: %w", ErrMismatch, err)
	}
	return b, nil
}

// Unmarshal implements Codec. An empty body leaves v unchanged.
func (JSON) Unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return nil
	}
	var err error
	if m, ok := v.(proto.Message); ok {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m)
	} else {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		return fmt.Errorf("%w: json: %w", ErrMismatch, err)
	}
	return nil
}
