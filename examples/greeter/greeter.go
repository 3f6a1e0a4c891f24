package main

import (
	"context"
	"fmt"

	"github.com/configd/configd/sdk/go/micro/metadata"
)

// Request is the body of Greeter.Hello.
type Request struct {
	Name string `json:"name"`
}

// Response is the answer of Greeter.Hello.
type Response struct {
	Msg  string `json:"msg"`
	Node string `json:"node"`
}

// Greeter is the seed's example service.
type Greeter struct {
	// Node is this instance's id, returned with every answer.
	Node string
}

// Hello greets req.Name. A "Greeting" in the caller's metadata replaces "Hello"; the answering
// node is also sent back as response metadata.
func (g *Greeter) Hello(ctx context.Context, req *Request, rsp *Response) error {
	greeting := "Hello"
	if md, ok := metadata.FromContext(ctx); ok && md["Greeting"] != "" {
		greeting = md["Greeting"]
	}
	metadata.SetResponse(ctx, "Node", g.Node)
	rsp.Msg = fmt.Sprintf("%s %s", greeting, req.Name)
	rsp.Node = g.Node
	return nil
}
