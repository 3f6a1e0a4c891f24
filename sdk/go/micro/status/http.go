package status

import (
	"encoding/json"
	"net/http"
)

// httpBody is an HTTP answer's JSON body for an error.
type httpBody struct {
	Error *Error `json:"error"`
}

// WriteHTTP answers an HTTP request with e as its JSON body, the shape of every error a
// gateway answers:
//
//	{"error": {"code": 429, "message": "rate limited", "service": "example"}}
//
// with HTTP status httpStatus, which is e.Code for the codes that are HTTP statuses, and the
// caller's choice for the others (a gateway answers Timeout with 504). A handler sets any
// header it needs (WWW-Authenticate, Retry-After) before it calls WriteHTTP.
func WriteHTTP(w http.ResponseWriter, httpStatus int, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpStatus)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(httpBody{e}) // a failed write means the client is gone
}
