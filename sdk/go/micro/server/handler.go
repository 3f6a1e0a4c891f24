package server

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"

	"github.com/configd/configd/sdk/go/micro/status"
)

// HandlerOptions configure Handle.
type HandlerOptions struct {
	// Name replaces the receiver's type name in endpoint names.
	Name string
}

// HandlerOption sets a HandlerOptions field.
type HandlerOption func(*HandlerOptions)

// HandlerName sets the name endpoints are registered under ("Name.Method").
func HandlerName(n string) HandlerOption { return func(o *HandlerOptions) { o.Name = n } }

type handler struct {
	name     string
	rcvr     reflect.Value
	method   reflect.Method
	req, rsp reflect.Type // element types
	fn       HandlerFunc  // call, wrapped
	logger   *slog.Logger
}

var (
	ctxType = reflect.TypeFor[context.Context]()
	errType = reflect.TypeFor[error]()
)

// extract finds the methods of rcvr shaped func(ctx, *Req, *Rsp) error.
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
		if mt.NumIn() != 4 || mt.NumOut() != 1 || mt.In(1) != ctxType || mt.Out(0) != errType ||
			mt.In(2).Kind() != reflect.Pointer || mt.In(3).Kind() != reflect.Pointer {
			continue
		}
		out = append(out, &handler{name: name + "." + m.Name, rcvr: v, method: m, req: mt.In(2).Elem(), rsp: mt.In(3).Elem()})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("server: %s has no method of the form func(context.Context, *Req, *Rsp) error", t)
	}
	return out, nil
}

func (h *handler) newRequest() any  { return reflect.New(h.req).Interface() }
func (h *handler) newResponse() any { return reflect.New(h.rsp).Interface() }

// call invokes the method; a panic becomes an Internal error wrapping ErrPanic, so wrappers
// (metrics) see it and the server goes on.
func (h *handler) call(ctx context.Context, req *Request, rsp any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			h.logger.Error("server: handler panicked", "endpoint", h.name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Wrap(status.Internal, fmt.Errorf("%w: %s: %v", ErrPanic, h.name, r), false)
		}
	}()
	out := h.method.Func.Call([]reflect.Value{h.rcvr, reflect.ValueOf(ctx), reflect.ValueOf(req.Body), reflect.ValueOf(rsp)})
	if e := out[0].Interface(); e != nil {
		return e.(error)
	}
	return nil
}
