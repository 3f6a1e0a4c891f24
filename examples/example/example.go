package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/status"
)

// Request is the body of Example.Call.
type Request struct {
	Name string `json:"name"`
	// Sleep makes the call wait this long (a Go duration) before answering: a slow node, for
	// trying the gateway's timeout.
	Sleep string `json:"sleep,omitempty"`
}

// Response is the answer of Example.Call.
type Response struct {
	Msg string `json:"msg"`
}

// Example is the talk's example service.
type Example struct {
	// Node is this instance's id, sent back as the response metadata "Node".
	Node string
	// Logger says when a call starts to sleep.
	Logger *slog.Logger
}

// Call greets req.Name: {"name":"hobo"} → {"msg":"Hello hobo"}.
func (e *Example) Call(ctx context.Context, req *Request, rsp *Response) error {
	metadata.SetResponse(ctx, "Node", e.Node)
	if req.Name == "" {
		return status.New(status.BadRequest, "name is empty")
	}
	if req.Sleep != "" {
		d, err := time.ParseDuration(req.Sleep)
		if err != nil {
			return status.New(status.BadRequest, "sleep: %v", err)
		}
		e.Logger.Info("Example.Call sleeping", "name", req.Name, "for", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return errors.Join(status.New(status.Timeout, "slept past the deadline"), ctx.Err())
		}
	}
	rsp.Msg = "Hello " + req.Name
	return nil
}
