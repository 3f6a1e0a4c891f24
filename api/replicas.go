package api

import (
	"encoding/json"
	"time"
)

// ReplicaStatus is one replica of a configd cluster on etcd, as it
// registers itself (GET /v1/replicas, configctl replicas).
type ReplicaStatus struct {
	// Name is the replica's name in the cluster (--replica-name, default
	// its address); Addr is the address it serves on.
	Name string `json:"name"`
	Addr string `json:"addr"`
	// Version is the configd version it runs.
	Version string `json:"version"`
	// LogFormat is the format of the cluster's commit log it reads and
	// writes, Schema its data dir's schema level: replicas of one log
	// format may differ in schema level during a rolling upgrade (see
	// docs/ha.md, "Versions and upgrades").
	LogFormat int `json:"log_format,omitempty"`
	Schema    int `json:"schema,omitempty"`
	// Rev is the newest revision it had applied when it last reported
	// (about once a second); Lag is how many revisions it is behind the
	// newest revision of any replica listed.
	Rev int64 `json:"rev"`
	Lag int64 `json:"lag"`
	// Sources are the names of the sources it syncs.
	Sources []string `json:"sources,omitempty"`
	// UpSince is when it started.
	UpSince time.Time `json:"up_since"`
	// Self marks the replica that answered.
	Self bool `json:"self,omitempty"`
}

// ParseReplicaStatus reads a replica's registration as the replicas
// store it in etcd (JSON, under P/replicas/<name>). It reports false for
// a value that is not one: not a ReplicaStatus in JSON, or one without a
// name or an address.
func ParseReplicaStatus(v []byte) (ReplicaStatus, bool) {
	var s ReplicaStatus
	if json.Unmarshal(v, &s) != nil || s.Name == "" || s.Addr == "" {
		return ReplicaStatus{}, false
	}
	return s, true
}

// ReplicasResponse answers GET /v1/replicas: the replicas registered in
// the cluster, by name, and the newest revision among them. A configd
// that runs alone says so (Store "sqlite") and lists none.
type ReplicasResponse struct {
	// Store is the store mode of the configd that answered: "sqlite" or
	// "etcd".
	Store    string          `json:"store"`
	Rev      int64           `json:"rev"`
	Replicas []ReplicaStatus `json:"replicas"`
}
