package requests

import "github.com/configd/configd/api"

// Need is the grant a token needs for an action on a request: Perm on
// every one of Targets (keys or canonical prefixes). A Need without
// targets asks nothing.
type Need struct {
	Perm    string
	Targets []string
}

// Needs returns what actor's token needs, with authentication on, to
// take action ("comment", "approve", "publish", "rebase" or "close") on
// r; every door (the HTTP API, the web UI) checks it before it calls the
// book. Commenting needs read on the request's scope; approving and
// publishing need write on every key it changes (whoever may approve
// could publish the change themselves); rebasing and closing are the
// author's, or a token's that may approve. An unknown action needs
// nothing here: the door refuses it.
func Needs(r Request, actor, action string) Need {
	switch action {
	case "comment":
		return Need{Perm: api.PermissionRead, Targets: []string{r.Scope}}
	case "rebase", "close":
		if actor == r.Author {
			return Need{}
		}
	case "approve", "publish":
	default:
		return Need{}
	}
	keys := make([]string, len(r.Ops))
	for i, o := range r.Ops {
		keys[i] = o.Key
	}
	return Need{Perm: api.PermissionWrite, Targets: keys}
}
