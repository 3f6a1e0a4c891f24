package codec

import "errors"

// ErrRemote: a response envelope carries the peer's error instead of a result. The error
// wrapping it has the peer's message.
var ErrRemote = errors.New("codec: error response")

// Envelope is what an RPC codec carries around the value: the method called, the call's
// sequence number (echoed by the response) and, on a response, the peer's error.
type Envelope struct {
	// Method is the endpoint, "Type.Method" (JSON-RPC method, proto-RPC service_method).
	Method string
	// ID is the sequence number of the call (JSON-RPC id, proto-RPC seq).
	ID uint64
	// Error is the peer's error message on a response; empty on success.
	Error string
}

// RPC is a Codec whose body is an RPC envelope around the value: JSON-RPC and proto-RPC. The
// client and the server go through the package functions MarshalRequest, UnmarshalRequest,
// MarshalResponse and UnmarshalResponse, which fall back to Marshal and Unmarshal for plain
// codecs. An RPC codec's own Marshal writes a request with an empty envelope, and its Unmarshal
// reads the value out of either a request or a response.
type RPC interface {
	Codec
	// MarshalRequest encodes v as the request of env.
	MarshalRequest(env Envelope, v any) ([]byte, error)
	// UnmarshalRequest decodes a request into v and returns its envelope.
	UnmarshalRequest(data []byte, v any) (Envelope, error)
	// MarshalResponse encodes v as the response of env; with env.Error set, v is ignored.
	MarshalResponse(env Envelope, v any) ([]byte, error)
	// UnmarshalResponse decodes a response into v and returns its envelope; a response that
	// carries an error returns an error wrapping ErrRemote.
	UnmarshalResponse(data []byte, v any) (Envelope, error)
}

// MarshalRequest encodes a request body with c, in env's envelope when c is an RPC codec.
func MarshalRequest(c Codec, env Envelope, v any) ([]byte, error) {
	if r, ok := c.(RPC); ok {
		return r.MarshalRequest(env, v)
	}
	return c.Marshal(v)
}

// UnmarshalRequest decodes a request body with c, out of its envelope when c is an RPC codec.
func UnmarshalRequest(c Codec, data []byte, v any) (Envelope, error) {
	if r, ok := c.(RPC); ok {
		return r.UnmarshalRequest(data, v)
	}
	return Envelope{}, c.Unmarshal(data, v)
}

// MarshalResponse encodes a response body with c, in env's envelope when c is an RPC codec.
func MarshalResponse(c Codec, env Envelope, v any) ([]byte, error) {
	if r, ok := c.(RPC); ok {
		return r.MarshalResponse(env, v)
	}
	return c.Marshal(v)
}

// UnmarshalResponse decodes a response body with c, out of its envelope when c is an RPC codec.
func UnmarshalResponse(c Codec, data []byte, v any) (Envelope, error) {
	if r, ok := c.(RPC); ok {
		return r.UnmarshalResponse(data, v)
	}
	return Envelope{}, c.Unmarshal(data, v)
}
