package web

import (
	"github.com/configd/configd/server/apierror"
)

// badInput is a malformed query parameter or form field: 400 bad_request.
func badInput(format string, args ...any) error {
	return apierror.BadRequest(format, args...)
}
