package rollouts

import (
	"github.com/configd/configd/api"
	"github.com/configd/configd/server/requests"
)

// Needs returns what a token needs, with authentication on, to take
// action on a rollout of scope; every door (the HTTP API, the web UI)
// checks it before it calls the book. Seeing a rollout (action "") needs
// read on its scope; any action on it (promote, pause, resume, abort,
// complete) needs write on its scope. Starting one is publishing its
// request: requests.Needs(r, actor, "publish").
func Needs(scope, action string) requests.Need {
	if action == "" {
		return requests.Need{Perm: api.PermissionRead, Targets: []string{scope}}
	}
	return requests.Need{Perm: api.PermissionWrite, Targets: []string{scope}}
}
