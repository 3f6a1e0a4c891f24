package httpapi

import (
	"net/http"
	"time"
)

// MaxTokenBody caps the body of POST /v1/tokens.
const MaxTokenBody = maxTokenBody

// NewWatchHandler is the handler of GET /v1/watch alone, over hub, with
// the progress interval and the watch stream's write timeout (0: the
// default).
func NewWatchHandler(hub Hub, progress, writeTimeout time.Duration) http.Handler {
	return &watchHTTP{hub: hub, progress: progress, writeTimeout: writeTimeout}
}

// RouteRules are the keys of routeAccess, each with whether its route is
// public.
func RouteRules() map[string]bool {
	m := make(map[string]bool, len(routeAccess))
	for k, a := range routeAccess {
		m[k] = a.public
	}
	return m
}
