package gateway

import (
	"errors"
	"net/http"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/status"
)

// Error is the JSON body of an error answer, go-micro's shape (status.HTTPError): {"id",
// "code", "detail", "status"}, with the endpoint concerned.
type Error = status.HTTPError

// HTTPStatus is the HTTP status the gateway answers a call error with: the status code's own
// for the HTTP-like ones, with a gateway's view of time and nodes: a call timeout is 504, a
// node that failed after the request reached it 502 (client.ErrSent: the call may have run),
// any other Unavailable 503; a handler's unclassified error is 500.
func HTTPStatus(err error) int {
	switch c := status.CodeOf(err); {
	case c == status.Timeout:
		return http.StatusGatewayTimeout
	case c == status.Unavailable && errors.Is(err, client.ErrSent):
		return http.StatusBadGateway
	case c == status.Canceled:
		return 499 // nginx's "client closed request": nobody reads it
	case c >= 400 && c <= 599:
		return int(c)
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, code int, service, endpoint, detail string) {
	status.WriteHTTP(w, code, &status.Error{Service: service, Endpoint: endpoint, Message: detail})
}
