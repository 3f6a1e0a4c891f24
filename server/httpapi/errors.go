package httpapi

import (
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
