package api

import "time"

// The error codes of rollouts (docs/rollouts.md).
const (
	// CodeRolloutConflict: another running rollout changes a key of the
	// new one; the message names it. 409.
	CodeRolloutConflict = "rollout_conflict"
	// CodeEmptySelection: a rollout's first step holds none of the
	// connected clients that watch its keys (start it with allow_empty,
	// configctl rollout --allow-empty, to start it anyway). 409.
	CodeEmptySelection = "empty_selection"
	// CodeRolloutActive: a direct write, transaction or rollback changes a
	// key of a running rollout: abort or complete the rollout first. 409.
	CodeRolloutActive = "rollout_active"
)

// The states of a rollout.
const (
	RolloutActive   = "active"
	RolloutPaused   = "paused"
	RolloutComplete = "complete"
	RolloutAborted  = "aborted"
)

// StartRollout is the body of POST /v1/rollouts: roll change request
// Request out in Steps ("10%" or "zone=eu-1,tier=web"; the first is the
// first step).
type StartRollout struct {
	Request int64    `json:"request"`
	Steps   []string `json:"steps"`
	// Bake is how long each step runs before it advances by itself, as a
	// Go duration ("10m"); empty or "0s": only promote advances it.
	Bake string `json:"bake,omitempty"`
	// MaxErrors is the percentage of a step's clients that may reject the
	// new values for the step to advance by itself (0: none may).
	MaxErrors float64 `json:"max_errors,omitempty"`
	// AbortOnErrors, when above 0, aborts the rollout when more than this
	// percentage of the step's clients reject the new values.
	AbortOnErrors float64 `json:"abort_on_errors,omitempty"`
	// AbortQuery is a PromQL expression, asked of the Prometheus at
	// Prometheus: the rollout aborts when it returns a result.
	AbortQuery string `json:"abort_query,omitempty"`
	Prometheus string `json:"prometheus,omitempty"`
	// AllowEmpty starts the rollout even when its first step holds none of
	// the connected clients (else CodeEmptySelection).
	AllowEmpty bool   `json:"allow_empty,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// RolloutActionBody is the optional body of POST
// /v1/rollouts/{id}/{action}: a note for the log and, with Rev, the
// version of the rollout the action was decided on (its Rev, as GET
// answered it). With Rev, the action is taken only on that version and
// refused with 409 conflict once another action came first, so that two
// people pressing promote at once promote once; without it, the action
// is taken on the newest version.
type RolloutActionBody struct {
	Text string `json:"text,omitempty"`
	Rev  int64  `json:"rev,omitempty"`
}

// RolloutNote is one action in a rollout's log.
type RolloutNote struct {
	Actor  string    `json:"actor"`
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Text   string    `json:"text,omitempty"`
}

// Rollout is a rollout as GET /v1/rollouts/{id} answers.
type Rollout struct {
	ID      int64     `json:"id"`
	Scope   string    `json:"scope"`
	Author  string    `json:"author"`
	Reason  string    `json:"reason,omitempty"`
	Time    time.Time `json:"time"`
	Request int64     `json:"request,omitempty"`
	// Base is the revision the old values were read at.
	Base int64 `json:"base"`
	// Changes are the keys the rollout changes, old → new, secrets
	// withheld as in GET /v1/diff.
	Changes       []Change `json:"changes"`
	Steps         []string `json:"steps"`
	Bake          string   `json:"bake,omitempty"`
	MaxErrors     float64  `json:"max_errors,omitempty"`
	AbortOnErrors float64  `json:"abort_on_errors,omitempty"`
	AbortQuery    string   `json:"abort_query,omitempty"`
	Prometheus    string   `json:"prometheus,omitempty"`
	// State is one of the Rollout* states; Step is the current step,
	// counted from 0.
	State       string        `json:"state"`
	Step        int           `json:"step"`
	StepStarted time.Time     `json:"step_started"`
	Log         []RolloutNote `json:"log"`
	// Rev is the revision of the rollout's record (its last action).
	Rev int64 `json:"rev"`
	// Status is who has the new values (only in GET /v1/rollouts/{id}
	// and the actions' answers, for a running rollout).
	Status *RolloutStatus `json:"status,omitempty"`
}

// RolloutStatus is how a running rollout stands with the connected
// clients that watch a key it changes (of every replica).
type RolloutStatus struct {
	// Clients is how many clients watch a key the rollout changes.
	Clients int `json:"clients"`
	// InStep, Applied and Rejected count the clients in the current step
	// (of it or an earlier one), those that applied the revision that
	// brought them in, and those that reject a new value.
	InStep   int `json:"in_step"`
	Applied  int `json:"applied"`
	Rejected int `json:"rejected"`
	// RejectedPercent is Rejected of InStep, in percent.
	RejectedPercent float64 `json:"rejected_percent"`
	// Behind names the clients in the step that have not applied it yet
	// (at most 100).
	Behind []string `json:"behind,omitempty"`
	// Steps are the counts of the clients that joined at each step up to
	// the current one.
	Steps []RolloutStepStatus `json:"steps"`
	// Members says, for each client that watches a key the rollout
	// changes, whether it is in the step (the first 1,000 clients by
	// instance name; the counts above are of all).
	Members []RolloutMember `json:"members,omitempty"`
}

// RolloutStepStatus is the clients that joined a rollout at one step.
type RolloutStepStatus struct {
	Step     string `json:"step"`
	Rev      int64  `json:"rev"`
	InStep   int    `json:"in_step"`
	Applied  int    `json:"applied"`
	Rejected int    `json:"rejected"`
}

// RolloutMember is one client of a rollout's status.
type RolloutMember struct {
	Instance string `json:"instance"`
	// InStep: the client sees the new values; Step is the step it joined
	// at (counted from 0).
	InStep   bool `json:"in_step"`
	Step     int  `json:"step,omitempty"`
	Applied  bool `json:"applied,omitempty"`
	Rejected bool `json:"rejected,omitempty"`
}

// RolloutsResponse is the answer of GET /v1/rollouts.
type RolloutsResponse struct {
	Rollouts []Rollout `json:"rollouts"`
}
