package api

import "time"

// The error codes of change requests (docs/requests.md).
const (
	// CodeStale: the request's base moved on for a key it changes (a key
	// was written after it was drafted): rebase it, look at the new diff,
	// and have it approved again. 409.
	CodeStale = "stale"
	// CodeNotApproved: the request lacks the approvals its prefix's policy
	// asks for. 409.
	CodeNotApproved = "not_approved"
	// CodeSelfApproval: the author approved their own request. 403.
	CodeSelfApproval = "self_approval"
	// CodeRequestRequired: a direct write or rollback reached a prefix
	// whose policy takes changes only through change requests (or
	// configd's own keys of requests). 403.
	CodeRequestRequired = "request_required"
)

// The states of a change request. An open request with the approvals its
// policy asks for is shown approved.
const (
	RequestOpen      = "open"
	RequestApproved  = "approved"
	RequestPublished = "published"
	RequestClosed    = "closed"
)

// ProposeRequest is the body of POST /v1/requests: a draft of changes
// under Scope (a key prefix), each op as in a transaction.
type ProposeRequest struct {
	Scope  string  `json:"scope"`
	Reason string  `json:"reason,omitempty"`
	Ops    []TxnOp `json:"ops"`
}

// RequestActionBody is the body of the actions on a request: the text of
// a comment, the reason of a close, a publish, a rebase or an approval.
type RequestActionBody struct {
	Text string `json:"text,omitempty"`
}

// RequestNote is one comment or approval of a change request.
type RequestNote struct {
	Actor string    `json:"actor"`
	Time  time.Time `json:"time"`
	Text  string    `json:"text,omitempty"`
}

// ChangeRequest is a change request as GET /v1/requests/{id} answers.
type ChangeRequest struct {
	ID     int64     `json:"id"`
	Scope  string    `json:"scope"`
	Author string    `json:"author"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
	// Base is the revision the draft was made on (or last rebased on).
	Base int64 `json:"base"`
	// State is one of the Request* states.
	State string `json:"state"`
	// Stale: a key the request changes was written after Base; StaleKeys
	// names them. Publishing a stale request is refused (CodeStale).
	Stale     bool     `json:"stale,omitempty"`
	StaleKeys []string `json:"stale_keys,omitempty"`
	// Keys is how many keys the draft changes.
	Keys int `json:"keys"`
	// ApprovalsNeeded is what the nearest policy (PolicyPrefix) asks.
	ApprovalsNeeded int           `json:"approvals_needed"`
	PolicyPrefix    *string       `json:"policy_prefix,omitempty"`
	Approvals       []RequestNote `json:"approvals"`
	Comments        []RequestNote `json:"comments"`
	// Diff is the draft against now, old → new per key, secrets withheld
	// as in GET /v1/diff (only in GET /v1/requests/{id}).
	Diff []Change `json:"diff,omitempty"`
	// PublishedRev is the revision that published the request; ClosedBy
	// and CloseReason say who closed it and why.
	PublishedRev int64  `json:"published_rev,omitempty"`
	PublishedBy  string `json:"published_by,omitempty"`
	// Rollout is the rollout that published the request (configctl
	// rollout): PublishedRev started it.
	Rollout     int64  `json:"rollout,omitempty"`
	ClosedBy    string `json:"closed_by,omitempty"`
	CloseReason string `json:"close_reason,omitempty"`
	// Rev is the store's revision the answer was made at.
	Rev int64 `json:"rev"`
}

// RequestsResponse is the answer of GET /v1/requests.
type RequestsResponse struct {
	Requests []ChangeRequest `json:"requests"`
}

// RequestPolicy is a prefix's approval policy: how many approvals a
// change request under it needs, from people other than its author, and
// whether the prefix takes changes only through requests (Require: direct
// writes and rollbacks are refused with CodeRequestRequired).
type RequestPolicy struct {
	Prefix    string `json:"prefix"`
	Approvals int    `json:"approvals"`
	Require   bool   `json:"require,omitempty"`
}

// PoliciesResponse is the answer of GET /v1/policies.
type PoliciesResponse struct {
	Policies []RequestPolicy `json:"policies"`
}
