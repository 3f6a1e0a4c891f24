package api

import (
	"fmt"
	"net/url"
	"time"
	"unicode/utf8"
)

// Delivery tracking: what an SDK client reports to configd about itself
// (POST /v1/clients/report) and what configd shows of its clients (GET
// /v1/clients, configctl clients). docs/delivery.md describes both.

// Limits of a ClientReport, checked by ClientReport.Check: a report past
// one is refused whole (400 invalid_argument) and changes nothing.
const (
	MaxClientInstance    = 253 // bytes of ClientReport.Instance
	MaxClientLabels      = 32
	MaxClientLabelKey    = 63
	MaxClientLabelValue  = 253
	MaxClientPrefixes    = 64
	MaxClientRejections  = 32
	MaxClientRejectError = 1024 // bytes of ClientRejection.Error; longer ones are cut by the SDK
)

// DefaultClientReportInterval is how often an SDK client reports when
// nothing changed (a heartbeat), unless configd's answer asks for another
// interval (ClientReportResponse.Every); DefaultClientExpiry is how long
// configd keeps a client that stopped reporting.
const (
	DefaultClientReportInterval = time.Minute
	DefaultClientExpiry         = 3 * time.Minute
)

// ClientReport is what an SDK client sends to configd: who it is, what it
// watches, the revision it has applied and the values it rejected.
type ClientReport struct {
	// Instance is the client's stable identity (never an IP): by default
	// the pod's or host's name and the service's name.
	Instance string `json:"instance"`
	// Labels are the client's declared labels (config.WithLabels); they
	// only change how the client is shown.
	Labels map[string]string `json:"labels,omitempty"`
	// Prefixes are the canonical prefixes (or keys) the client watches;
	// the report's token needs read on each.
	Prefixes []string `json:"prefixes"`
	// Rev is the revision the client has applied (its callbacks and
	// Validate functions ran).
	Rev int64 `json:"rev"`
	// Rejections are the values the client currently refuses: one per key,
	// the newest.
	Rejections []ClientRejection `json:"rejections,omitempty"`
	// Gone says the client is closing: configd forgets it at once.
	Gone bool `json:"gone,omitempty"`
}

// ClientRejection is a value a client refused: its Validate function's
// error, or a value it could not parse.
type ClientRejection struct {
	Key   string `json:"key"`
	Rev   int64  `json:"rev"`
	Error string `json:"error"`
}

// Check reports what is wrong with r, or nil. It does not check that the
// prefixes are well formed keyspace prefixes: the door does, with its own
// parse, when it checks the token's read access on them.
func (r ClientReport) Check() error {
	switch {
	case r.Instance == "":
		return fmt.Errorf("instance is required")
	case len(r.Instance) > MaxClientInstance || !utf8.ValidString(r.Instance):
		return fmt.Errorf("instance: at most %d bytes of UTF-8", MaxClientInstance)
	case len(r.Labels) > MaxClientLabels:
		return fmt.Errorf("labels: at most %d, got %d", MaxClientLabels, len(r.Labels))
	case len(r.Prefixes) == 0:
		return fmt.Errorf("prefixes: at least one")
	case len(r.Prefixes) > MaxClientPrefixes:
		return fmt.Errorf("prefixes: at most %d, got %d", MaxClientPrefixes, len(r.Prefixes))
	case r.Rev < 0:
		return fmt.Errorf("rev: must not be negative")
	case len(r.Rejections) > MaxClientRejections:
		return fmt.Errorf("rejections: at most %d, got %d", MaxClientRejections, len(r.Rejections))
	}
	for k, v := range r.Labels {
		if k == "" || len(k) > MaxClientLabelKey || !utf8.ValidString(k) {
			return fmt.Errorf("label %q: a key of 1 to %d bytes of UTF-8", k, MaxClientLabelKey)
		}
		if len(v) > MaxClientLabelValue || !utf8.ValidString(v) {
			return fmt.Errorf("label %q: a value of at most %d bytes of UTF-8", k, MaxClientLabelValue)
		}
	}
	for _, j := range r.Rejections {
		if j.Key == "" || j.Rev < 0 || len(j.Error) > MaxClientRejectError {
			return fmt.Errorf("rejection of %q: needs a key, a revision >= 0 and an error of at most %d bytes", j.Key, MaxClientRejectError)
		}
	}
	return nil
}

// ClientReportResponse answers a report: how long until the client
// should report again when nothing changes, in milliseconds (a third of
// configd's expiry), and the window its heartbeats go in: a client sends
// each heartbeat at its own offset (a hash of its instance) within the
// first WindowMS of each period of EveryMS since the Unix epoch, so that
// configd takes its clients' heartbeats together, while it is awake for
// them, rather than one wake-up each (BENCHMARKS.md, "Delivery reports").
// 0: no window, a heartbeat EveryMS after the last report.
type ClientReportResponse struct {
	EveryMS  int64 `json:"every_ms"`
	WindowMS int64 `json:"window_ms,omitempty"`
}

// DefaultClientReportWindowMS is the window configd asks its clients'
// heartbeats to go in (ClientReportResponse.WindowMS).
const DefaultClientReportWindowMS = 2000

// ClientStatus is one client as configd shows it (GET /v1/clients).
type ClientStatus struct {
	Instance string            `json:"instance"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Token is the name of the token the client reported with ("" with
	// authentication off).
	Token string `json:"token,omitempty"`
	// Replica is the configd the client reports to (its replica name; its
	// address in the SQLite mode).
	Replica    string            `json:"replica"`
	Prefixes   []string          `json:"prefixes"`
	Rev        int64             `json:"rev"`
	Rejections []ClientRejection `json:"rejections,omitempty"`
	// Behind is how many revisions of the listed prefix the client has
	// not applied (at most 1000: history is read a page deep); only in
	// GET /v1/clients?prefix=.
	Behind   int64     `json:"behind"`
	LastSeen time.Time `json:"last_seen"`
}

// ClientsResponse answers GET /v1/clients: the clients of every replica
// that watch under the prefix, by instance.
type ClientsResponse struct {
	Prefix  string         `json:"prefix"`
	Rev     int64          `json:"rev"`
	Clients []ClientStatus `json:"clients"`
}

// A watch carries its client's identity (rollouts select clients by it:
// docs/rollouts.md) in these HTTP headers, or in gRPC metadata of the same
// names in lower case. The labels are URL-query encoded
// ("service=orders&zone=eu-1"). Both are optional: a watch without them is
// in no rollout's step but a 100% one.
const (
	HeaderInstance = "Configd-Instance"
	HeaderLabels   = "Configd-Labels"
)

// FormatLabels encodes labels for HeaderLabels.
func FormatLabels(labels map[string]string) string {
	v := url.Values{}
	for k, l := range labels {
		v.Set(k, l)
	}
	return v.Encode()
}

// ParseIdentity reads a watch's identity from its HeaderInstance and
// HeaderLabels values, refusing one that a report would refuse
// (ClientReport.Check's limits). An empty instance and labels are no
// identity, and no error.
func ParseIdentity(instance, labels string) (string, map[string]string, error) {
	var m map[string]string
	if labels != "" {
		v, err := url.ParseQuery(labels)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", HeaderLabels, err)
		}
		m = make(map[string]string, len(v))
		for k, vs := range v {
			m[k] = vs[len(vs)-1]
		}
	}
	if instance == "" && m == nil {
		return "", nil, nil
	}
	r := ClientReport{Instance: instance, Labels: m, Prefixes: []string{""}}
	if instance == "" {
		r.Instance = "-" // labels alone are allowed
	}
	if err := r.Check(); err != nil {
		return "", nil, fmt.Errorf("client identity: %w", err)
	}
	return instance, m, nil
}
