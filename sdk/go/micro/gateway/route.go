// Package gateway turns HTTP requests into calls on the RPC core: the talk's
// `micro api` (HTTP → RPC through the registry and selector) and `micro web`
// (a reverse proxy to web services, and a page that lists them).
//
// A request finds its target by a Route: routes a service declares in its
// registry metadata, or configured ones (from code or, live, from a configd
// prefix), win over the path rule (/example/call → service "example",
// endpoint "Example.Call", under a configurable namespace).
package gateway

// Handler kinds a Route names.
const (
	// HandlerRPC decodes the request body (JSON, form, query string,
	// protobuf), calls the endpoint and answers JSON.
	HandlerRPC = "rpc"
	// HandlerHTTP reverse-proxies the request to a node of the service.
	HandlerHTTP = "http"
	// HandlerWeb is micro web's proxy: the service's name is the first path
	// element, stripped before the request is proxied.
	HandlerWeb = "web"
)

// Route sends the requests that match Method and Path to Endpoint of
// Service, through the handler Handler names.
type Route struct {
	// Method is an HTTP method, or empty for every method.
	Method string `json:"method,omitempty"`
	// Path is a pattern in net/http's ServeMux syntax, without the method:
	// "/users/{id}", "/files/{path...}". A path parameter becomes a field
	// of the request body for the rpc handler.
	Path string `json:"path"`
	// Service is the registered name of the service (the namespace is not
	// added to it).
	Service string `json:"service"`
	// Endpoint is the RPC endpoint, "Type.Method"; empty for the http and
	// web handlers.
	Endpoint string `json:"endpoint,omitempty"`
	// Handler is HandlerRPC (the default when empty), HandlerHTTP or
	// HandlerWeb.
	Handler string `json:"handler,omitempty"`
}
