package api

import "time"

// Kinds of watch message, in WatchBatch.Kind and WatchResponse.Kind.
const (
	WatchChanges  = "changes"  // the changes of one revision in the scope
	WatchSnapshot = "snapshot" // every live key of the scope: replace the scope with it
	WatchProgress = "progress" // nothing changed in the scope up to Rev
	WatchResync   = "resync"   // the watcher fell behind: watch again from the last applied revision
)

// WatchEvent is what happened to one key. On a delete only Key and Op are
// set.
type WatchEvent struct {
	Key string `json:"key"`
	// Op is "put" or "delete".
	Op          string `json:"op"`
	Value       string `json:"value,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	CreateRev   int64  `json:"create_rev,omitempty"`
	ModRev      int64  `json:"mod_rev,omitempty"`
	Version     int64  `json:"version,omitempty"`
}

// WatchBatch is one revision's changes within a watch's scope, or a
// snapshot of the scope. Rev is the revision it brings the watcher to.
type WatchBatch struct {
	Kind   string       `json:"kind"`
	Rev    int64        `json:"rev"`
	Actor  string       `json:"actor,omitempty"`
	Origin string       `json:"origin,omitempty"`
	Time   *time.Time   `json:"time,omitempty"`
	Events []WatchEvent `json:"events"`
}

// WatchResponse answers a long poll on GET /v1/watch. Poll again with
// since=Rev. Kind is "progress" (and Batches empty) when the wait ended with
// nothing new in the scope.
type WatchResponse struct {
	Rev     int64        `json:"rev"`
	Kind    string       `json:"kind"`
	Batches []WatchBatch `json:"batches"`
}

// The watch stream: GET /v1/watch with "Connection: Upgrade" and "Upgrade:
// WatchStreamProtocol" switches the connection (101 Switching Protocols) to
// a one-way stream of watch messages from configd, each a varint length
// followed by a configdpb.WatchResponse in protobuf, the same messages as
// the gRPC Watch: CREATED, then SNAPSHOT (since=0) or CHANGES, PROGRESS
// when idle, and RESYNC or CANCELED as the last message of a stream that
// configd ends. The client sends nothing after its request; closing the
// connection ends the watch. A refused watch gets the usual JSON error
// instead of 101.
const (
	WatchStreamProtocol = "configd-watch/1"
	// HeaderProgressInterval, on the 101 answer, says how often an idle
	// stream receives PROGRESS (a Go duration such as "10s"): a client that
	// hears nothing for twice as long may take the connection as dead.
	HeaderProgressInterval = "Configd-Progress-Interval"
)
