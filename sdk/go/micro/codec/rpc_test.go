package codec_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/configd/configd/sdk/go/micro/codec"
)

// TestRPCCodecsRoundTrip sends a request and its response through every new codec, found by
// content type in the default set, both through the envelope functions and plain Marshal.
func TestRPCCodecsRoundTrip(t *testing.T) {
	set := codec.Default()
	for _, tc := range []struct {
		contentType string
		req, rsp    func() any // fresh values of the request and response types
		fill        func(req, rsp any)
		equal       func(a, b any) bool
	}{
		{"application/json-rpc", func() any { return &hello{} }, func() any { return &hello{} },
			func(q, s any) { q.(*hello).Name, s.(*hello).Name = "bob", "hi bob" },
			func(a, b any) bool { return *a.(*hello) == *b.(*hello) }},
		{"application/json-rpc; charset=utf-8", func() any { return &wrapperspb.StringValue{} }, func() any { return &wrapperspb.Int64Value{} },
			func(q, s any) { q.(*wrapperspb.StringValue).Value, s.(*wrapperspb.Int64Value).Value = "q", 42 },
			func(a, b any) bool { return proto.Equal(a.(proto.Message), b.(proto.Message)) }},
		{"application/proto-rpc", func() any { return &wrapperspb.StringValue{} }, func() any { return &wrapperspb.BytesValue{} },
			func(q, s any) {
				q.(*wrapperspb.StringValue).Value, s.(*wrapperspb.BytesValue).Value = "q", []byte{0, 1, 2}
			},
			func(a, b any) bool { return proto.Equal(a.(proto.Message), b.(proto.Message)) }},
		{"application/grpc+proto", func() any { return &wrapperspb.StringValue{} }, func() any { return &wrapperspb.StringValue{} },
			func(q, s any) {
				q.(*wrapperspb.StringValue).Value, s.(*wrapperspb.StringValue).Value = "q", strings.Repeat("s", 300)
			},
			func(a, b any) bool { return proto.Equal(a.(proto.Message), b.(proto.Message)) }},
		{"application/grpc", func() any { return &wrapperspb.StringValue{} }, func() any { return &wrapperspb.StringValue{} },
			func(q, s any) { q.(*wrapperspb.StringValue).Value = "" }, // an empty message: a bare prefix
			func(a, b any) bool { return proto.Equal(a.(proto.Message), b.(proto.Message)) }},
		{"application/grpc+json", func() any { return &hello{} }, func() any { return &wrapperspb.StringValue{} },
			func(q, s any) { q.(*hello).Name, s.(*wrapperspb.StringValue).Value = "bob", "x" },
			func(a, b any) bool {
				if m, ok := a.(proto.Message); ok {
					return proto.Equal(m, b.(proto.Message))
				}
				return *a.(*hello) == *b.(*hello)
			}},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			c, err := set.Get(tc.contentType)
			if err != nil {
				t.Fatal(err)
			}
			req, rsp := tc.req(), tc.rsp()
			tc.fill(req, rsp)
			_, isRPC := c.(codec.RPC)

			b, err := codec.MarshalRequest(c, codec.Envelope{Method: "Greeter.Hello", ID: 7}, req)
			if err != nil {
				t.Fatal(err)
			}
			gotReq := tc.req()
			env, err := codec.UnmarshalRequest(c, b, gotReq)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.equal(req, gotReq) {
				t.Fatalf("request %v came back as %v", req, gotReq)
			}
			if isRPC && (env.Method != "Greeter.Hello" || env.ID != 7) {
				t.Fatalf("request envelope %+v", env)
			}

			b, err = codec.MarshalResponse(c, env, rsp)
			if err != nil {
				t.Fatal(err)
			}
			gotRsp := tc.rsp()
			renv, err := codec.UnmarshalResponse(c, b, gotRsp)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.equal(rsp, gotRsp) || renv.ID != env.ID {
				t.Fatalf("response %v came back as %v (envelope %+v)", rsp, gotRsp, renv)
			}
			// Plain Unmarshal reads the value of a response as well as of a request.
			plain := tc.rsp()
			if err := c.Unmarshal(b, plain); err != nil || !tc.equal(rsp, plain) {
				t.Fatalf("plain Unmarshal of a response: %v, %v", plain, err)
			}
			// Plain Marshal is a request that plain Unmarshal reads.
			if b, err = c.Marshal(req); err != nil {
				t.Fatal(err)
			}
			plain = tc.req()
			if err := c.Unmarshal(b, plain); err != nil || !tc.equal(req, plain) {
				t.Fatalf("plain round trip: %v, %v", plain, err)
			}

			if !isRPC {
				return
			}
			b, err = codec.MarshalResponse(c, codec.Envelope{ID: 9, Error: "no such greeting"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			renv, err = codec.UnmarshalResponse(c, b, tc.rsp())
			if !errors.Is(err, codec.ErrRemote) || !strings.Contains(err.Error(), "no such greeting") || renv.Error != "no such greeting" || renv.ID != 9 {
				t.Fatalf("error response: %+v, %v; want ErrRemote with the message", renv, err)
			}
		})
	}
}

func TestJSONRPCWireFormat(t *testing.T) {
	b, err := codec.JSONRPC{}.MarshalRequest(codec.Envelope{Method: "Greeter.Hello", ID: 3}, &hello{Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"jsonrpc":"2.0","method":"Greeter.Hello","params":[{"name":"bob"}],"id":3}`; string(b) != want {
		t.Fatalf("request\n got %s\nwant %s", b, want)
	}
	b, _ = codec.JSONRPC{}.MarshalResponse(codec.Envelope{ID: 3, Error: "boom"}, nil)
	if want := `{"jsonrpc":"2.0","error":{"code":-32000,"message":"boom"},"id":3}`; string(b) != want {
		t.Fatalf("error response\n got %s\nwant %s", b, want)
	}
	// Params by name: the object is the value.
	var h hello
	env, err := codec.JSONRPC{}.UnmarshalRequest([]byte(`{"jsonrpc":"2.0","method":"G.H","params":{"name":"al"},"id":12}`), &h)
	if err != nil || h.Name != "al" || env != (codec.Envelope{Method: "G.H", ID: 12}) {
		t.Fatalf("by-name params: %+v %+v %v", h, env, err)
	}
}

func TestProtoRPCWireFormat(t *testing.T) {
	b, err := codec.ProtoRPC{}.MarshalRequest(codec.Envelope{Method: "G.H", ID: 5}, wrapperspb.String("x"))
	if err != nil {
		t.Fatal(err)
	}
	// go-micro's framing: uint32 length + Request{service_method=1, seq=2 (fixed64)}, uint32 length + body.
	var hdr []byte
	hdr = protowire.AppendTag(hdr, 1, protowire.BytesType)
	hdr = protowire.AppendString(hdr, "G.H")
	hdr = protowire.AppendTag(hdr, 2, protowire.Fixed64Type)
	hdr = protowire.AppendFixed64(hdr, 5)
	body, _ := proto.Marshal(wrapperspb.String("x"))
	want := binary.BigEndian.AppendUint32(nil, uint32(len(hdr)))
	want = append(want, hdr...)
	want = binary.BigEndian.AppendUint32(want, uint32(len(body)))
	want = append(want, body...)
	if string(b) != string(want) {
		t.Fatalf("got %x\nwant %x", b, want)
	}
}

// protoRPC builds a proto-rpc body from a raw header and body.
func protoRPC(hdr, body []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(hdr)))
	out = append(out, hdr...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

func TestRPCCodecsBadInput(t *testing.T) {
	jr, pr, gr := codec.JSONRPC{}, codec.ProtoRPC{}, codec.GRPC{}
	str := func() any { return &wrapperspb.StringValue{} }
	okBody, _ := proto.Marshal(wrapperspb.String("x"))
	for _, tc := range []struct {
		name string
		run  func() error
		is   error
		want string
	}{
		{"json-rpc: not json", func() error { return jr.Unmarshal([]byte("nope"), &hello{}) }, codec.ErrMismatch, "json-rpc"},
		{"json-rpc: empty body", func() error { return jr.Unmarshal(nil, &hello{}) }, codec.ErrMismatch, "json-rpc"},
		{"json-rpc: version 1", func() error {
			return jr.Unmarshal([]byte(`{"method":"a","params":[{}],"id":1}`), &hello{})
		}, codec.ErrMismatch, "not a JSON-RPC 2.0"},
		{"json-rpc: request without method", func() error {
			_, err := jr.UnmarshalRequest([]byte(`{"jsonrpc":"2.0","result":{},"id":1}`), &hello{})
			return err
		}, codec.ErrMismatch, "needs a method"},
		{"json-rpc: two params", func() error {
			_, err := jr.UnmarshalRequest([]byte(`{"jsonrpc":"2.0","method":"a","params":[{},{}],"id":1}`), &hello{})
			return err
		}, codec.ErrMismatch, "2 params"},
		{"json-rpc: scalar params", func() error {
			_, err := jr.UnmarshalRequest([]byte(`{"jsonrpc":"2.0","method":"a","params":5,"id":1}`), &hello{})
			return err
		}, codec.ErrMismatch, "array or an object"},
		{"json-rpc: string id", func() error {
			_, err := jr.UnmarshalRequest([]byte(`{"jsonrpc":"2.0","method":"a","params":[],"id":"x"}`), &hello{})
			return err
		}, codec.ErrMismatch, `id "x"`},
		{"json-rpc: wrong param type", func() error {
			_, err := jr.UnmarshalRequest([]byte(`{"jsonrpc":"2.0","method":"a","params":[{"name":5}],"id":1}`), &hello{})
			return err
		}, codec.ErrMismatch, "json"},
		{"json-rpc: response with neither", func() error {
			_, err := jr.UnmarshalResponse([]byte(`{"jsonrpc":"2.0","id":1}`), &hello{})
			return err
		}, codec.ErrMismatch, "neither result nor error"},
		{"json-rpc: response with both", func() error {
			_, err := jr.UnmarshalResponse([]byte(`{"jsonrpc":"2.0","result":{},"error":{"code":1,"message":"m"},"id":1}`), &hello{})
			return err
		}, codec.ErrMismatch, "both"},
		{"json-rpc: request as response", func() error {
			_, err := jr.UnmarshalResponse([]byte(`{"jsonrpc":"2.0","method":"a","params":[],"id":1}`), &hello{})
			return err
		}, codec.ErrMismatch, "no method"},
		{"json-rpc: error response", func() error {
			_, err := jr.UnmarshalResponse([]byte(`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1}`), &hello{})
			return err
		}, codec.ErrRemote, "-32601: Method not found"},
		{"json-rpc: unencodable value", func() error { _, err := jr.Marshal(make(chan int)); return err }, codec.ErrMismatch, "json"},

		{"proto-rpc: short", func() error { return pr.Unmarshal([]byte{0, 0}, str()) }, codec.ErrMismatch, "short of a 4-byte length"},
		{"proto-rpc: header overruns", func() error { return pr.Unmarshal([]byte{0, 0, 0, 9, 1}, str()) }, codec.ErrMismatch, "header of 9 bytes overruns"},
		{"proto-rpc: no body frame", func() error { return pr.Unmarshal([]byte{0, 0, 0, 0}, str()) }, codec.ErrMismatch, "body"},
		{"proto-rpc: trailing bytes", func() error {
			return pr.Unmarshal(append(protoRPC(nil, okBody), 1, 2), str())
		}, codec.ErrMismatch, "2 bytes after the body"},
		{"proto-rpc: garbage header", func() error { return pr.Unmarshal(protoRPC([]byte{0xff, 0xff}, nil), str()) }, codec.ErrMismatch, "header"},
		{"proto-rpc: seq as varint", func() error {
			return pr.Unmarshal(protoRPC(protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1), nil), str())
		}, codec.ErrMismatch, "field 2 has wire type 0"},
		{"proto-rpc: bad body", func() error { return pr.Unmarshal(protoRPC(nil, []byte{0xff}), str()) }, codec.ErrMismatch, "protobuf"},
		{"proto-rpc: not a proto value", func() error { _, err := pr.Marshal(&hello{}); return err }, codec.ErrMismatch, "proto.Message"},
		{"proto-rpc: error in a request", func() error {
			b, _ := pr.MarshalResponse(codec.Envelope{Error: "x"}, nil)
			_, err := pr.UnmarshalRequest(b, str())
			return err
		}, codec.ErrMismatch, "request with an error"},

		{"grpc: short", func() error { return gr.Unmarshal([]byte{0, 0, 0}, str()) }, codec.ErrMismatch, "5-byte message prefix"},
		{"grpc: compressed", func() error { return gr.Unmarshal([]byte{1, 0, 0, 0, 0}, str()) }, codec.ErrMismatch, "compression is not supported"},
		{"grpc: bad flag", func() error { return gr.Unmarshal([]byte{7, 0, 0, 0, 0}, str()) }, codec.ErrMismatch, "flag 7"},
		{"grpc: length mismatch", func() error { return gr.Unmarshal([]byte{0, 0, 0, 0, 4, 1}, str()) }, codec.ErrMismatch, "announces 4 bytes, the body has 1"},
		{"grpc: bad message", func() error { return gr.Unmarshal([]byte{0, 0, 0, 0, 1, 0xff}, str()) }, codec.ErrMismatch, "protobuf"},
		{"grpc: not a proto value", func() error { _, err := gr.Marshal(&hello{}); return err }, codec.ErrMismatch, "proto.Message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.is, tc.want)
			}
		})
	}
}
