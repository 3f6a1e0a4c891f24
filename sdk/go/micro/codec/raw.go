package codec

import "fmt"

// Raw is the application/octet-stream codec: bodies pass through untouched. It takes []byte or
// *[]byte and decodes into *[]byte.
type Raw struct{}

var _ Codec = Raw{}

// ContentType implements Codec.
func (Raw) ContentType() string { return RawContentType }

// Marshal implements Codec.
func (Raw) Marshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case *[]byte:
		return *b, nil
	}
	return nil, fmt.Errorf("%w: %s needs []byte or *[]byte, got %T", ErrMismatch, RawContentType, v)
}

// Unmarshal implements Codec. The bytes are copied, so v does not alias a transport buffer.
func (Raw) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("%w: %s decodes into *[]byte, got %T", ErrMismatch, RawContentType, v)
	}
	*b = append((*b)[:0], data...)
	return nil
}
