package consulapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/apierror"
)

// writeText answers status with msg as a plain-text body, as Consul
// answers its errors.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// writeJSON answers status with v as JSON, as Consul answers its data.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// consulMessage is err's message as Consul words its class: a refused
// token is Consul's "ACL not found" or "Permission denied", followed by
// configd's reason.
func consulMessage(c apierror.Class) (int, string) {
	switch c.Code {
	case api.CodeUnauthenticated:
		// Consul answers a token it does not know with 403.
		return http.StatusForbidden, "ACL not found: " + c.Message
	case api.CodeForbidden:
		return http.StatusForbidden, "Permission denied: " + c.Message
	}
	return c.Status, c.Message
}

// fail answers err, classified once by apierror, in Consul's words; an
// internal error's cause goes to the log.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	c := apierror.Classify(err)
	if c.Internal {
		h.opts.logger.Error("consul api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	status, msg := consulMessage(c)
	writeText(w, status, msg)
}

// bodyError is the answer to a body that could not be read: its own when
// it has one (authz.BodyDeadline's 408), else 400.
func bodyError(err error) error {
	var ae *apierror.Error
	if errors.As(err, &ae) {
		return ae
	}
	return apierror.BadRequest("could not read the whole request body: %v", err)
}
