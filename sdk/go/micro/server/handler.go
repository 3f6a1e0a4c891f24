package server

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"

	"github.com/configd/configd/sdk/go/micro/status"
)

// HandlerOptions configure Handle.
type HandlerOptions struct {
	// Name replaces the receiver's type name in endpoint names.
	Name string
	// Metadata is registered with endpoints, by endpoint name ("Type.Method").
	Metadata map[string]map[string]string
}

// HandlerOption sets a HandlerOptions field.
type HandlerOption func(*HandlerOptions)

// HandlerName sets the name endpoints are registered under ("Name.Method").
func HandlerName(n string) HandlerOption { return func(o *HandlerOptions) { o.Name = n } }

// EndpointMetadata registers md with the endpoint named endpoint ("Type.Method"), as go-micro's
// server.EndpointMetadata does: the gateway reads the keys "handler", "method" and "path" from
// it to route HTTP requests to the endpoint. Naming an endpoint the handler does not have fails
// Handle.
func EndpointMetadata(endpoint string, md map[string]string) HandlerOption {
	return func(o *HandlerOptions) {
		if o.Metadata == nil {
			o.Metadata = map[string]map[string]string{}
		}
		o.Metadata[endpoint] = md
	}
}

// kind tells how a handler is called.
type kind int

const (
	unary        kind = iota // func(ctx, *Req, *Rsp) error
	bidiStream               // func(ctx, Stream) error
	serverStream             // func(ctx, *Req, Stream) error
)

type handler struct {
	name     string
	metadata map[string]string
	kind     kind
	req, rsp reflect.Type // element types; nil when the handler has none
	// invoke runs the method itself: rsp is the response to fill (unary), st the stream.
	invoke func(ctx context.Context, req, rsp any, st Stream) error
	fn     HandlerFunc // call, wrapped
	logger *slog.Logger
}

var (
	ctxType    = reflect.TypeFor[context.Context]()
	errType    = reflect.TypeFor[error]()
	streamType = reflect.TypeFor[Stream]()
)

// isStream reports whether t is an argument a Stream can be passed as: Stream itself, or a
// non-empty interface with a subset of its methods.
func isStream(t reflect.Type) bool {
	return t.Kind() == reflect.Interface && t.NumMethod() > 0 && streamType.Implements(t)
}

// extract finds the methods of rcvr shaped func(ctx, *Req, *Rsp) error, func(ctx, Stream)
// error and func(ctx, *Req, Stream) error.
func extract(rcvr any, opts ...HandlerOption) ([]*handler, error) {
	var o HandlerOptions
	for _, f := range opts {
		f(&o)
	}
	v := reflect.ValueOf(rcvr)
	if !v.IsValid() {
		return nil, fmt.Errorf("server: Handle(nil)")
	}
	t := v.Type()
	name := o.Name
	if name == "" {
		name = reflect.Indirect(v).Type().Name()
	}
	if name == "" {
		return nil, fmt.Errorf("server: handler %s has no type name; use HandlerName", t)
	}
	var out []*handler
	for i := range t.NumMethod() {
		m := t.Method(i)
		mt := m.Type // receiver is In(0)
		if mt.NumOut() != 1 || mt.Out(0) != errType || mt.NumIn() < 3 || mt.In(1) != ctxType {
			continue
		}
		h := &handler{name: name + "." + m.Name}
		fn := m.Func
		switch {
		case mt.NumIn() == 4 && mt.In(2).Kind() == reflect.Pointer && mt.In(3).Kind() == reflect.Pointer:
			h.kind, h.req, h.rsp = unary, mt.In(2).Elem(), mt.In(3).Elem()
			h.invoke = func(ctx context.Context, req, rsp any, _ Stream) error {
				return errOf(fn.Call([]reflect.Value{v, reflect.ValueOf(ctx), reflect.ValueOf(req), reflect.ValueOf(rsp)}))
			}
		case mt.NumIn() == 4 && mt.In(2).Kind() == reflect.Pointer && isStream(mt.In(3)):
			h.kind, h.req = serverStream, mt.In(2).Elem()
			h.invoke = func(ctx context.Context, req, _ any, st Stream) error {
				return errOf(fn.Call([]reflect.Value{v, reflect.ValueOf(ctx), reflect.ValueOf(req), reflect.ValueOf(st)}))
			}
		case mt.NumIn() == 3 && isStream(mt.In(2)):
			h.kind = bidiStream
			h.invoke = func(ctx context.Context, _, _ any, st Stream) error {
				return errOf(fn.Call([]reflect.Value{v, reflect.ValueOf(ctx), reflect.ValueOf(st)}))
			}
		default:
			continue
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("server: %s has no method of the form func(context.Context, *Req, *Rsp) error, func(context.Context, server.Stream) error or func(context.Context, *Req, server.Stream) error", t)
	}
	return out, o.attachMetadata(out)
}

// attachMetadata gives each handler its EndpointMetadata; naming an endpoint none of them has
// is an error, so a typo does not silently leave an endpoint without its routes.
func (o HandlerOptions) attachMetadata(hs []*handler) error {
	for ep, md := range o.Metadata {
		i := slices.IndexFunc(hs, func(h *handler) bool { return h.name == ep })
		if i < 0 {
			return fmt.Errorf("server: EndpointMetadata names %s, which is not one of the handler's endpoints", ep)
		}
		hs[i].metadata = md
	}
	return nil
}

func errOf(out []reflect.Value) error {
	if e := out[0].Interface(); e != nil {
		return e.(error)
	}
	return nil
}

func (h *handler) newRequest() any {
	if h.req == nil {
		return nil
	}
	return reflect.New(h.req).Interface()
}

func (h *handler) newResponse() any {
	if h.rsp == nil {
		return nil
	}
	return reflect.New(h.rsp).Interface()
}

// call invokes the method; a panic becomes an Internal error wrapping ErrPanic, so wrappers
// (metrics) see it and the server goes on.
func (h *handler) call(ctx context.Context, req *Request, rsp any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			h.logger.Error("server: handler panicked", "endpoint", h.name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Wrap(status.Internal, fmt.Errorf("%w: %s: %v", ErrPanic, h.name, r), false)
		}
	}()
	if st, ok := req.Stream.(*stream); ok {
		st.setContext(ctx) // the context the wrappers made is the stream's
	}
	return h.invoke(ctx, req.Body, rsp, req.Stream)
}
