package grpc

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/configd/configd/sdk/go/micro/transport"
)

// wireCodec encodes *transport.Message as the protobuf Message of the package comment. It
// registers as "proto", so the content type is application/grpc+proto as with generated code.
type wireCodec struct{}

func (wireCodec) Name() string { return "proto" }

// size is the encoded size of m.
func size(m *transport.Message) int {
	n := 0
	for k, v := range m.Header {
		e := entrySize(k, v)
		n += protowire.SizeTag(1) + protowire.SizeBytes(e)
	}
	if len(m.Body) > 0 {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(m.Body))
	}
	return n
}

func entrySize(k, v string) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
}

func (wireCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(*transport.Message)
	if !ok {
		return nil, fmt.Errorf("grpc transport: cannot encode %T", v)
	}
	b := make([]byte, 0, size(m))
	for k, v := range m.Header {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(k, v)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	if len(m.Body) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Body)
	}
	return b, nil
}

// Unmarshal decodes into a *transport.Message. The body aliases data, which gRPC hands over
// freshly allocated for each message.
func (wireCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*transport.Message)
	if !ok {
		return fmt.Errorf("grpc transport: cannot decode into %T", v)
	}
	m.Header, m.Body = map[string]string{}, nil
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return malformed(protowire.ParseError(n))
		}
		data = data[n:]
		if typ != protowire.BytesType || (num != 1 && num != 2) {
			n = protowire.ConsumeFieldValue(num, typ, data) // unknown field: skip
			if n < 0 {
				return malformed(protowire.ParseError(n))
			}
			data = data[n:]
			continue
		}
		val, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return malformed(protowire.ParseError(n))
		}
		data = data[n:]
		if num == 2 {
			m.Body = val
			continue
		}
		k, v, err := entry(val)
		if err != nil {
			return err
		}
		m.Header[k] = v
	}
	return nil
}

// entry decodes one map entry {key = 1; value = 2}.
func entry(b []byte) (k, v string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", "", malformed(protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType || (num != 1 && num != 2) {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", "", malformed(protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		s, n := protowire.ConsumeString(b)
		if n < 0 {
			return "", "", malformed(protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 {
			k = s
		} else {
			v = s
		}
	}
	return k, v, nil
}

func malformed(err error) error {
	return fmt.Errorf("%w: header map: %w", transport.ErrMalformedFrame, err)
}
