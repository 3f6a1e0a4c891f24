package apierror

import (
	"encoding/json"
	"net/http"

	"github.com/configd/configd/api"
)

// WriteJSON writes v as the JSON body of an HTTP answer with status, as
// every answer of the HTTP API is written (HTML characters not escaped).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a failed write means the client is gone
}

// Write answers an HTTP request with body, an api.ErrorResponse, with the
// status of its code.
func Write(w http.ResponseWriter, body api.ErrorBody) {
	WriteJSON(w, Status(body.Code), api.ErrorResponse{Error: body})
}

// WriteError answers an HTTP request with err's answer (Classify).
func WriteError(w http.ResponseWriter, err error) {
	c := Classify(err)
	WriteJSON(w, c.Status, api.ErrorResponse{Error: c.Body()})
}
