package status

import (
	"encoding/json"
	"net/http"
)

// HTTPError is the JSON body of every error a gateway answers: go-micro's shape, so that what
// teams wrote against go-micro's `micro api` reads it unchanged, with the endpoint concerned:
//
//	{"id": "example", "code": 504, "detail": "...", "status": "Gateway Timeout", "endpoint": "Example.Call"}
type HTTPError struct {
	// ID is the service concerned, when there is one.
	ID string `json:"id,omitempty"`
	// Code is the HTTP status.
	Code int `json:"code"`
	// Detail says what went wrong.
	Detail string `json:"detail"`
	// Status is the HTTP status text.
	Status   string `json:"status"`
	Endpoint string `json:"endpoint,omitempty"`
}

// WriteHTTP answers an HTTP request with e as an HTTPError, with HTTP status httpStatus (e's
// own code for the codes that are HTTP statuses, the caller's choice for the others: a
// gateway answers Timeout with 504). A handler sets any header it needs (WWW-Authenticate,
// Retry-After) before it calls WriteHTTP.
func WriteHTTP(w http.ResponseWriter, httpStatus int, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpStatus)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(HTTPError{ID: e.Service, Code: httpStatus, Detail: e.Message, Status: http.StatusText(httpStatus), Endpoint: e.Endpoint}) // a failed write means the client is gone
}
