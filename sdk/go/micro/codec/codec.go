// Package codec turns request and response values into bytes and back, chosen by content type:
// JSON (application/json), protobuf (application/protobuf), raw bytes
// (application/octet-stream), JSON-RPC 2.0 (application/json-rpc), go-micro's proto-RPC
// (application/proto-rpc) and length-prefixed gRPC messages (application/grpc+proto,
// application/grpc+json). JSON-RPC and proto-RPC wrap the value in a request or response
// envelope (see RPC).
package codec

import (
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
)

// Codec marshals message bodies of one content type. Implementations are safe for concurrent use.
type Codec interface {
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, which is a pointer.
	Unmarshal(data []byte, v any) error
	// ContentType is the MIME type the codec handles, without parameters.
	ContentType() string
}

// Sentinel errors, checked with errors.Is.
var (
	// ErrMismatch: the value's Go type cannot go through the codec (a non-proto value to
	// the protobuf codec, anything but bytes to the raw codec), or the bytes are not in the
	// codec's format.
	ErrMismatch = errors.New("codec: mismatch")
	// ErrUnsupported: no codec is registered for the content type.
	ErrUnsupported = errors.New("codec: unsupported content type")
)

// The content types of the built-in codecs.
const (
	JSONContentType  = "application/json"
	ProtoContentType = "application/protobuf"
	RawContentType   = "application/octet-stream"
)

// ContentTypeOf is the content type used for v when none is chosen: protobuf for a
// proto.Message, JSON for anything else.
func ContentTypeOf(v any) string {
	if _, ok := v.(proto.Message); ok {
		return ProtoContentType
	}
	return JSONContentType
}

// Set maps content types to codecs. A Set is immutable once built, so it is safe to share.
type Set struct {
	byType map[string]Codec
}

// NewSet returns a Set of the given codecs; a later codec of the same content type wins.
func NewSet(codecs ...Codec) *Set {
	s := &Set{byType: make(map[string]Codec, len(codecs))}
	for _, c := range codecs {
		s.byType[c.ContentType()] = c
	}
	return s
}

// Default returns a Set with the JSON, protobuf, raw, JSON-RPC, proto-RPC and gRPC (proto and
// JSON) codecs. "application/proto" and "application/x-protobuf" are accepted as aliases of
// protobuf, "application/grpc" of application/grpc+proto.
func Default() *Set {
	s := NewSet(JSON{}, Proto{}, Raw{}, JSONRPC{}, ProtoRPC{}, GRPC{}, GRPC{JSON: true})
	s.byType["application/proto"] = Proto{}
	s.byType["application/x-protobuf"] = Proto{}
	s.byType["application/grpc"] = GRPC{}
	return s
}

// Get returns the codec for contentType; parameters such as "; charset=utf-8" are ignored.
func (s *Set) Get(contentType string) (Codec, error) {
	if c, ok := s.byType[contentType]; ok { // the usual case: already canonical, no parsing
		return c, nil
	}
	mt := contentType
	if parsed, _, err := mime.ParseMediaType(contentType); err == nil {
		mt = parsed
	}
	if c, ok := s.byType[strings.ToLower(mt)]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w %q (have %s)", ErrUnsupported, contentType, strings.Join(s.ContentTypes(), ", "))
}

// ContentTypes lists the content types of the set, sorted.
func (s *Set) ContentTypes() []string {
	out := make([]string, 0, len(s.byType))
	for t := range s.byType {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
