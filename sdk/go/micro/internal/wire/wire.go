// Package wire names the headers the client and server agree on.
package wire

import "github.com/configd/configd/sdk/go/micro/metadata"

// Header names of a request and its response.
const (
	Service     = "Micro-Service"  // request: the service name
	Endpoint    = "Micro-Endpoint" // request: "Type.Method"
	ID          = "Micro-Id"       // request and response: correlates them in logs
	Timeout     = "Micro-Timeout"  // request: milliseconds the caller still waits
	ContentType = "Content-Type"   // request and response: the body's codec
	Error       = "Micro-Error"    // response: a status.Error as JSON
	Stream      = "Micro-Stream"   // a stream's control frames: the values below
)

// The values of the Stream header. A stream is one socket: the client sends StreamOpen (the
// request's headers, no body), the server answers StreamOpened or an Error; then both sides
// send frames whose body is one message (Content-Type per frame, response metadata on the
// server's frames as it is set) and StreamEnd when done sending: the client at CloseSend, the
// server when the handler returned, with Error if it failed.
const (
	StreamOpen   = "open"
	StreamOpened = "opened"
	StreamEnd    = "end"
)

// Name returns b as a string, without allocating one for the header names every call carries:
// the ones above and the metadata keys of the default OpenTelemetry propagators, which the
// tracing wrapper adds to every call (metadata.HeaderPrefix + "traceparent", ...).
func Name(b []byte) string {
	switch string(b) { // compiled to comparisons: no string is built
	case Service:
		return Service
	case Endpoint:
		return Endpoint
	case ID:
		return ID
	case Timeout:
		return Timeout
	case ContentType:
		return ContentType
	case Error:
		return Error
	case Stream:
		return Stream
	case metadata.HeaderPrefix + "traceparent":
		return metadata.HeaderPrefix + "traceparent"
	case metadata.HeaderPrefix + "tracestate":
		return metadata.HeaderPrefix + "tracestate"
	case metadata.HeaderPrefix + "baggage":
		return metadata.HeaderPrefix + "baggage"
	}
	return string(b)
}
