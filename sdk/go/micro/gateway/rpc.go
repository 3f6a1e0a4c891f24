package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/status"
)

// call is the rpc handler: the request becomes the body of a call to endpoint of service,
// and the answer is written back.
//
// The body goes by its content type. JSON, form-urlencoded and multipart bodies, the query
// string and path parameters make one JSON object (a JSON body's fields first, then query
// fields it lacks; path parameters last): it is sent as application/json, which every server
// on the core decodes into its handler's request type, a Go struct or a protobuf message
// alike (the JSON codec uses protojson for those), whatever codecs the service also speaks.
// A JSON body that is not an object is sent as it is, and so is an object when there is no
// query string or path parameter to merge into it (the common case, spared a decoding and an
// encoding). A protobuf body is passed through to
// the service as application/protobuf and its protobuf answer back, untouched: the gateway
// has no schema to turn it into JSON. Options.ContentType picks another codec of a family
// (callCodecs).
func (g *Gateway) call(w http.ResponseWriter, r *http.Request, service, endpoint string, params map[string]string) {
	if g.opts.Client == nil {
		writeError(w, http.StatusNotFound, service, endpoint, "this gateway makes no rpc calls")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.opts.Timeout)
	defer cancel()
	var md metadata.Metadata
	opts := []client.CallOption{client.WithRequestTimeout(g.opts.Timeout), client.WithResponseMetadata(&md)}
	if len(g.opts.Filters) > 0 {
		opts = append(opts, client.WithSelectOption(selector.WithFilter(g.opts.Filters...)))
	}
	if idempotent(r.Method) {
		opts = append(opts, client.Idempotent())
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.ContentLength == 0 && !isProto(mt) {
		mt = "" // no body: whatever the type says (hey sends text/html), the query is the request
	}
	if isProto(mt) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeBodyError(w, service, endpoint, err)
			return
		}
		req, rsp := new(emptypb.Empty), new(emptypb.Empty)
		req.ProtoReflect().SetUnknown(body)
		opts = append(opts, client.WithContentType(g.protoCT))
		if err := g.opts.Client.Call(ctx, service, endpoint, req, rsp, opts...); err != nil {
			g.writeCallError(w, r, service, endpoint, err)
			return
		}
		out, err := proto.Marshal(rsp) // unknown fields only: the answer's bytes as they came
		if err != nil {
			writeError(w, http.StatusInternalServerError, service, endpoint, err.Error())
			return
		}
		responseHeaders(w, md)
		w.Header().Set("Content-Type", codec.ProtoContentType)
		w.Write(out)
		return
	}
	req, err := jsonRequest(r, mt, params)
	if err != nil {
		writeBodyError(w, service, endpoint, err)
		return
	}
	var rsp json.RawMessage
	opts = append(opts, client.WithContentType(g.jsonCT))
	if err := g.opts.Client.Call(ctx, service, endpoint, req, &rsp, opts...); err != nil {
		g.writeCallError(w, r, service, endpoint, err)
		return
	}
	if len(rsp) == 0 {
		rsp = json.RawMessage("{}")
	}
	responseHeaders(w, md)
	w.Header().Set("Content-Type", "application/json")
	w.Write(rsp)
}

// The codecs the rpc handler calls with, by family: JSON requests go in one of the first,
// protobuf bodies in one of the second.
var (
	jsonCodecs  = []string{codec.JSONContentType, codec.JSONRPCContentType, codec.GRPCJSONContentType}
	protoCodecs = []string{codec.ProtoContentType, codec.ProtoRPCContentType, codec.GRPCContentType}
)

// callCodecs are the content types of the rpc handler's JSON and protobuf calls when ct
// (Options.ContentType, an alias allowed) is the codec asked for: ct for its family, the
// family's plain codec for the other.
func callCodecs(ct string) (jsonCT, protoCT string, err error) {
	jsonCT, protoCT = codec.JSONContentType, codec.ProtoContentType
	if ct == "" {
		return jsonCT, protoCT, nil
	}
	c, err := codec.Default().Get(ct)
	if err == nil {
		switch name := c.ContentType(); {
		case slices.Contains(jsonCodecs, name):
			return name, protoCT, nil
		case slices.Contains(protoCodecs, name):
			return jsonCT, name, nil
		}
	}
	return "", "", fmt.Errorf("gateway: content type %q: the rpc handler calls with %s", ct,
		strings.Join(slices.Concat(jsonCodecs, protoCodecs), ", "))
}

// ResponseHeaderPrefix prefixes the response metadata a handler sets (metadata.SetResponse)
// in the HTTP answer's headers: "Node" comes back as "Micro-Md-Node". The prefix keeps a
// service from setting the gateway's own headers (Set-Cookie, Content-Type, ...).
const ResponseHeaderPrefix = "Micro-Md-"

func responseHeaders(w http.ResponseWriter, md metadata.Metadata) {
	for k, v := range md {
		w.Header().Set(ResponseHeaderPrefix+k, v)
	}
}

func isProto(mt string) bool {
	switch mt {
	case codec.ProtoContentType, "application/x-protobuf", "application/proto":
		return true
	}
	return false
}

// idempotent methods may be retried on another node after the request reached one.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// errBadBody marks a body that could not be parsed (400), errUnsupported one of a content
// type the rpc handler does not take (415).
var (
	errBadBody     = errors.New("bad request body")
	errUnsupported = errors.New("unsupported content type")
)

// jsonRequest makes the call's JSON request from r's body, query string and path parameters.
func jsonRequest(r *http.Request, mt string, params map[string]string) (json.RawMessage, error) {
	fields := map[string]any{}
	addValues := func(vs url.Values) {
		for k, v := range vs {
			if _, ok := fields[k]; ok {
				continue
			}
			if len(v) == 1 {
				fields[k] = v[0]
			} else {
				fields[k] = v
			}
		}
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, bodyErr(err)
		}
		addValues(r.PostForm)
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, bodyErr(err)
		}
		addValues(r.MultipartForm.Value)
	case "", "application/json", "text/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if len(params) == 0 && r.URL.RawQuery == "" && isJSONObject(body) {
			return body, nil // nothing to merge: sent as it came, not decoded and encoded again
		}
		if len(body) > 0 {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(body, &obj); err != nil {
				if !json.Valid(body) {
					var v any
					return nil, fmt.Errorf("%w: malformed JSON: %w", errBadBody, json.Unmarshal(body, &v))
				}
				if len(params) == 0 && len(r.URL.Query()) == 0 {
					return body, nil // not an object, and nothing to merge into it
				}
				return nil, fmt.Errorf("%w: the JSON body must be an object to take query or path parameters: %w", errBadBody, err)
			}
			for k, v := range obj {
				fields[k] = v
			}
		}
	default:
		return nil, fmt.Errorf("%w %q: the rpc handler takes JSON, form-urlencoded, multipart form or protobuf bodies", errUnsupported, mt)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: query string: %w", errBadBody, err)
	}
	addValues(q)
	for k, v := range params {
		fields[k] = v
	}
	return json.Marshal(fields)
}

// isJSONObject says whether b is valid JSON whose value is an object.
func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

func bodyErr(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err
	}
	return fmt.Errorf("%w: %w", errBadBody, err)
}

// writeBodyError answers a body the rpc handler could not read or parse.
func writeBodyError(w http.ResponseWriter, service, endpoint string, err error) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, service, endpoint, fmt.Sprintf("request body over the limit of %d bytes", tooLarge.Limit))
	case errors.Is(err, errUnsupported):
		writeError(w, http.StatusUnsupportedMediaType, service, endpoint, err.Error())
	case errors.Is(err, errBadBody):
		writeError(w, http.StatusBadRequest, service, endpoint, err.Error())
	default:
		writeError(w, http.StatusBadRequest, service, endpoint, fmt.Sprintf("reading the request body: %v", err))
	}
}

// writeCallError answers a failed call with the HTTP status of its code.
func (g *Gateway) writeCallError(w http.ResponseWriter, r *http.Request, service, endpoint string, err error) {
	code := HTTPStatus(err)
	msg := err.Error()
	if se, ok := status.From(err); ok {
		msg = se.Message
	}
	if code >= 500 {
		g.opts.Logger.Warn("gateway: call failed", "method", r.Method, "path", r.URL.Path, "service", service, "endpoint", endpoint, "status", code, "err", err)
	}
	writeError(w, code, service, endpoint, msg)
}
