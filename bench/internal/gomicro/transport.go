// Package gomicro holds what the harness's go-micro v4 peers share: go-micro's http transport
// with a mend for a fault of its rpc server (go-micro.dev/v4 v4.11.0).
//
// The rpc server keeps a pseudo-socket per request of a connection, keyed by the "Micro-ID"
// header, and releases it once the request is answered. Over the http transport the header
// arrives as net/http spells it, "Micro-Id", so every request of a connection gets the key "":
// a request that arrives before the previous one's pseudo-socket is released is handed to that
// finished one and never answered, and the client gives up after its request timeout (408).
// With pooled connections that is about one call in 3,000 on this machine, a 5 s stall each.
// HTTPTransport's listener copies the header back under the name the server looks up; it
// changes nothing else, and nothing on the client's side.
package gomicro

import (
	"net/http"

	"go-micro.dev/v4/transport"
	"go-micro.dev/v4/transport/headers"
)

// HTTPTransport is go-micro's http transport whose server sockets carry the request ID under
// the header name go-micro's rpc server reads.
func HTTPTransport(opts ...transport.Option) transport.Transport {
	return requestIDTransport{transport.NewHTTPTransport(opts...)}
}

type requestIDTransport struct{ transport.Transport }

func (t requestIDTransport) Listen(addr string, opts ...transport.ListenOption) (transport.Listener, error) {
	l, err := t.Transport.Listen(addr, opts...)
	if err != nil {
		return nil, err
	}
	return requestIDListener{l}, nil
}

type requestIDListener struct{ transport.Listener }

func (l requestIDListener) Accept(fn func(transport.Socket)) error {
	return l.Listener.Accept(func(s transport.Socket) { fn(requestIDSocket{s}) })
}

type requestIDSocket struct{ transport.Socket }

func (s requestIDSocket) Recv(m *transport.Message) error {
	if err := s.Socket.Recv(m); err != nil {
		return err
	}
	if id, ok := m.Header[http.CanonicalHeaderKey(headers.ID)]; ok && m.Header[headers.ID] == "" {
		m.Header[headers.ID] = id
	}
	return nil
}
