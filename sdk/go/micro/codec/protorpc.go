package codec

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ProtoRPC is the application/proto-rpc codec, go-micro's protorpc: the body is a header
// message and the value, each as a 4-byte big-endian length and that many bytes. The header
// is protobuf,
//
//	message Request  { string service_method = 1; fixed64 seq = 2; }
//	message Response { string service_method = 1; fixed64 seq = 2; string error = 3; }
//
// and the value a proto.Message (empty on an error response).
type ProtoRPC struct{}

var _ RPC = ProtoRPC{}

// ProtoRPCContentType is the content type of the proto-RPC codec.
const ProtoRPCContentType = "application/proto-rpc"

// ContentType implements Codec.
func (ProtoRPC) ContentType() string { return ProtoRPCContentType }

// Marshal implements Codec: a request with an empty envelope.
func (c ProtoRPC) Marshal(v any) ([]byte, error) { return c.MarshalRequest(Envelope{}, v) }

// Unmarshal implements Codec: the value of a request or a response (the headers differ only
// in the error field, which is not checked here).
func (ProtoRPC) Unmarshal(data []byte, v any) error {
	_, err := unmarshalProtoRPC(data, v)
	return err
}

// MarshalRequest implements RPC.
func (ProtoRPC) MarshalRequest(env Envelope, v any) ([]byte, error) {
	env.Error = ""
	return marshalProtoRPC(env, v)
}

// UnmarshalRequest implements RPC.
func (ProtoRPC) UnmarshalRequest(data []byte, v any) (Envelope, error) {
	env, err := unmarshalProtoRPC(data, v)
	if err == nil && env.Error != "" {
		return Envelope{}, fmt.Errorf("%w: proto-rpc: a request with an error field", ErrMismatch)
	}
	return env, err
}

// MarshalResponse implements RPC.
func (ProtoRPC) MarshalResponse(env Envelope, v any) ([]byte, error) { return marshalProtoRPC(env, v) }

// UnmarshalResponse implements RPC.
func (ProtoRPC) UnmarshalResponse(data []byte, v any) (Envelope, error) {
	env, err := unmarshalProtoRPC(data, v)
	if err == nil && env.Error != "" {
		return env, fmt.Errorf("%w: proto-rpc: %s", ErrRemote, env.Error)
	}
	return env, err
}

func marshalProtoRPC(env Envelope, v any) ([]byte, error) {
	var hdr []byte
	hdr = protowire.AppendTag(hdr, 1, protowire.BytesType)
	hdr = protowire.AppendString(hdr, env.Method)
	hdr = protowire.AppendTag(hdr, 2, protowire.Fixed64Type)
	hdr = protowire.AppendFixed64(hdr, env.ID)
	var body []byte
	if env.Error != "" {
		hdr = protowire.AppendTag(hdr, 3, protowire.BytesType)
		hdr = protowire.AppendString(hdr, env.Error)
	} else {
		var err error
		if body, err = (Proto{}).Marshal(v); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, 8+len(hdr)+len(body))
	out = binary.BigEndian.AppendUint32(out, uint32(len(hdr)))
	out = append(out, hdr...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...), nil
}

// frame splits a 4-byte big-endian length and its bytes off data.
func frame(data []byte, what string) (frame, rest []byte, err error) {
	if len(data) < 4 {
		return nil, nil, fmt.Errorf("%w: proto-rpc: %s: %d bytes, short of a 4-byte length", ErrMismatch, what, len(data))
	}
	n := binary.BigEndian.Uint32(data)
	if uint64(n) > uint64(len(data)-4) {
		return nil, nil, fmt.Errorf("%w: proto-rpc: %s of %d bytes overruns the body (%d left)", ErrMismatch, what, n, len(data)-4)
	}
	return data[4 : 4+n], data[4+n:], nil
}

func unmarshalProtoRPC(data []byte, v any) (Envelope, error) {
	hdr, rest, err := frame(data, "header")
	if err != nil {
		return Envelope{}, err
	}
	body, rest, err := frame(rest, "body")
	if err != nil {
		return Envelope{}, err
	}
	if len(rest) > 0 {
		return Envelope{}, fmt.Errorf("%w: proto-rpc: %d bytes after the body", ErrMismatch, len(rest))
	}
	env, err := parseProtoRPCHeader(hdr)
	if err != nil || env.Error != "" {
		return env, err
	}
	return env, Proto{}.Unmarshal(body, v)
}

func parseProtoRPCHeader(b []byte) (Envelope, error) {
	var env Envelope
	bad := func(what string) (Envelope, error) {
		return Envelope{}, fmt.Errorf("%w: proto-rpc: header: %s", ErrMismatch, what)
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return bad(protowire.ParseError(n).Error())
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 3) && typ == protowire.BytesType:
			s, n := protowire.ConsumeString(b)
			if n < 0 {
				return bad(protowire.ParseError(n).Error())
			}
			if num == 1 {
				env.Method = s
			} else {
				env.Error = s
			}
			b = b[n:]
		case num == 2 && typ == protowire.Fixed64Type:
			id, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return bad(protowire.ParseError(n).Error())
			}
			env.ID = id
			b = b[n:]
		case num <= 3:
			return bad(fmt.Sprintf("field %d has wire type %d", num, typ))
		default: // unknown fields are skipped, as protobuf does
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return bad(protowire.ParseError(n).Error())
			}
			b = b[n:]
		}
	}
	return env, nil
}
