// Package wire names the headers the client and server agree on.
package wire

// Header names of a request and its response.
const (
	Service     = "Micro-Service"  // request: the service name
	Endpoint    = "Micro-Endpoint" // request: "Type.Method"
	ID          = "Micro-Id"       // request and response: correlates them in logs
	Timeout     = "Micro-Timeout"  // request: milliseconds the caller still waits
	ContentType = "Content-Type"   // request and response: the body's codec
	Error       = "Micro-Error"    // response: a status.Error as JSON
)
