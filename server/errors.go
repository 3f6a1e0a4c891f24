package server

import (
	"encoding/json"
	"net/http"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/apierror"
)

// errorBody is the HTTP answer to err (apierror.Classify): its status,
// its payload, and false when it is configd's fault (500), whose cause
// must be logged.
func errorBody(err error) (int, api.ErrorBody, bool) {
	c := apierror.Classify(err)
	return c.Status, c.Body(), !c.Internal
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a failed write means the client is gone
}

// writeError writes an api.ErrorResponse with the status of its code.
func writeError(w http.ResponseWriter, body api.ErrorBody) {
	writeJSON(w, apierror.Status(body.Code), api.ErrorResponse{Error: body})
}
