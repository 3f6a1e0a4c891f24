package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// JSONRPC is the application/json-rpc codec: the body is one JSON-RPC 2.0 object, a request
//
//	{"jsonrpc":"2.0","method":"Greeter.Hello","params":[VALUE],"id":7}
//
// or a response, {"jsonrpc":"2.0","result":VALUE,"id":7} or
// {"jsonrpc":"2.0","error":{"code":-32000,"message":"..."},"id":7}. VALUE goes through the JSON
// codec (protojson for proto messages). Requests read params given by position (a one-element
// array) or by name (the object is the value); ids are non-negative integers.
type JSONRPC struct{}

var _ RPC = JSONRPC{}

// JSONRPCContentType is the content type of the JSON-RPC codec.
const JSONRPCContentType = "application/json-rpc"

// JSONRPCServerError is the error code of error responses written by MarshalResponse (the
// JSON-RPC 2.0 range for implementation-defined server errors starts there).
const JSONRPCServerError = -32000

type jsonrpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

type jsonrpcMessage struct {
	Version string          `json:"jsonrpc"`
	Method  *string         `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *jsonrpcError   `json:"error,omitempty"`
	ID      json.RawMessage `json:"id,omitempty"`
}

// ContentType implements Codec.
func (JSONRPC) ContentType() string { return JSONRPCContentType }

// Marshal implements Codec: a request with an empty method and id 0.
func (c JSONRPC) Marshal(v any) ([]byte, error) { return c.MarshalRequest(Envelope{}, v) }

// Unmarshal implements Codec: the value of a request (params) or a response (result).
func (c JSONRPC) Unmarshal(data []byte, v any) error {
	m, err := parseJSONRPC(data)
	if err != nil {
		return err
	}
	if m.Method != nil {
		_, err = m.request(v)
	} else {
		_, err = m.response(v)
	}
	return err
}

// MarshalRequest implements RPC.
func (JSONRPC) MarshalRequest(env Envelope, v any) ([]byte, error) {
	b, err := JSON{}.Marshal(v)
	if err != nil {
		return nil, err
	}
	method := env.Method
	return json.Marshal(jsonrpcMessage{Version: "2.0", Method: &method, Params: append(append([]byte{'['}, b...), ']'),
		ID: strconv.AppendUint(nil, env.ID, 10)})
}

// UnmarshalRequest implements RPC.
func (JSONRPC) UnmarshalRequest(data []byte, v any) (Envelope, error) {
	m, err := parseJSONRPC(data)
	if err != nil {
		return Envelope{}, err
	}
	if m.Method == nil {
		return Envelope{}, fmt.Errorf("%w: json-rpc: a request needs a method", ErrMismatch)
	}
	return m.request(v)
}

// MarshalResponse implements RPC.
func (JSONRPC) MarshalResponse(env Envelope, v any) ([]byte, error) {
	m := jsonrpcMessage{Version: "2.0", ID: strconv.AppendUint(nil, env.ID, 10)}
	if env.Error != "" {
		m.Error = &jsonrpcError{Code: JSONRPCServerError, Message: env.Error}
	} else {
		b, err := JSON{}.Marshal(v)
		if err != nil {
			return nil, err
		}
		m.Result = b
	}
	return json.Marshal(m)
}

// UnmarshalResponse implements RPC.
func (JSONRPC) UnmarshalResponse(data []byte, v any) (Envelope, error) {
	m, err := parseJSONRPC(data)
	if err != nil {
		return Envelope{}, err
	}
	if m.Method != nil {
		return Envelope{}, fmt.Errorf("%w: json-rpc: a response has no method", ErrMismatch)
	}
	return m.response(v)
}

func parseJSONRPC(data []byte) (*jsonrpcMessage, error) {
	var m jsonrpcMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: json-rpc: %w", ErrMismatch, err)
	}
	if m.Version != "2.0" {
		return nil, fmt.Errorf("%w: json-rpc: not a JSON-RPC 2.0 object (jsonrpc %q)", ErrMismatch, m.Version)
	}
	return &m, nil
}

func (m *jsonrpcMessage) id() (uint64, error) {
	if len(m.ID) == 0 || string(m.ID) == "null" {
		return 0, nil
	}
	id, err := strconv.ParseUint(string(m.ID), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: json-rpc: id %s is not a non-negative integer", ErrMismatch, m.ID)
	}
	return id, nil
}

func (m *jsonrpcMessage) request(v any) (Envelope, error) {
	id, err := m.id()
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{Method: *m.Method, ID: id}
	p := bytes.TrimSpace(m.Params)
	switch {
	case len(p) == 0 || string(p) == "null":
		return env, nil // no params: v keeps its zero value
	case p[0] == '{':
		return env, JSON{}.Unmarshal(p, v)
	case p[0] == '[':
		var params []json.RawMessage
		if err := json.Unmarshal(p, &params); err != nil {
			return Envelope{}, fmt.Errorf("%w: json-rpc: params: %w", ErrMismatch, err)
		}
		switch len(params) {
		case 0:
			return env, nil
		case 1:
			return env, JSON{}.Unmarshal(params[0], v)
		}
		return Envelope{}, fmt.Errorf("%w: json-rpc: %d params by position, want one", ErrMismatch, len(params))
	}
	return Envelope{}, fmt.Errorf("%w: json-rpc: params must be an array or an object, got %.20s", ErrMismatch, p)
}

func (m *jsonrpcMessage) response(v any) (Envelope, error) {
	id, err := m.id()
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{ID: id}
	switch {
	case m.Error != nil && len(m.Result) > 0:
		return Envelope{}, fmt.Errorf("%w: json-rpc: a response with both result and error", ErrMismatch)
	case m.Error != nil:
		env.Error = m.Error.Message
		return env, fmt.Errorf("%w: json-rpc error %d: %s", ErrRemote, m.Error.Code, m.Error.Message)
	case len(m.Result) == 0:
		return Envelope{}, fmt.Errorf("%w: json-rpc: a response with neither result nor error", ErrMismatch)
	}
	return env, JSON{}.Unmarshal(m.Result, v)
}
