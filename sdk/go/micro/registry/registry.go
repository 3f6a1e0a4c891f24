// Package registry defines where services announce themselves and how callers find them.
//
// The interface follows go-micro v1 (Register, Deregister, GetService, ListServices, Watch).
// Implementations live in sub-packages, each a plugin module (see Module) chosen by name through
// a Catalog.
package registry

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Registry is a service discovery store. Implementations are safe for concurrent use.
type Registry interface {
	// Register adds or refreshes the nodes of s. Registering a node again within its TTL keeps it
	// alive; a node not refreshed within its TTL is removed by the registry.
	Register(s *Service, opts ...RegisterOption) error
	// Deregister removes the nodes of s. Removing a node that is not registered is not an error.
	Deregister(s *Service, opts ...DeregisterOption) error
	// GetService returns one Service per registered version of name, or ErrNotFound.
	GetService(name string, opts ...GetOption) ([]*Service, error)
	// ListServices returns every registered service (name and version), nodes included.
	ListServices(opts ...ListOption) ([]*Service, error)
	// Watch returns a Watcher of changes. Events that happen after Watch returns are delivered in
	// order; none is dropped silently (a watcher that falls too far behind ends with
	// ErrWatcherOverflow and the caller re-lists).
	Watch(opts ...WatchOption) (Watcher, error)
	// String names the implementation ("memory", "consul", ...).
	String() string
}

// Service is one version of a named service and the nodes that run it.
type Service struct {
	Name      string            `json:"name"`
	Version   string            `json:"version"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Endpoints []*Endpoint       `json:"endpoints,omitempty"`
	Nodes     []*Node           `json:"nodes,omitempty"`
}

// Node is one running instance of a service.
type Node struct {
	Id       string            `json:"id"`
	Address  string            `json:"address"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Endpoint is a method a service answers, named "Type.Method" as the server registers it.
type Endpoint struct {
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Action says what happened to a service in a watch Result.
type Action string

// The actions a Watcher reports.
const (
	// Create: a name/version that had no nodes now has some.
	Create Action = "create"
	// Update: the nodes, metadata or endpoints of a known name/version changed.
	Update Action = "update"
	// Delete: the last node of a name/version went away (deregistered or expired).
	Delete Action = "delete"
)

// Result is one watch event. Service is the full state of that name/version after the change;
// for Delete it is the last state before the service went away.
type Result struct {
	Action  Action
	Service *Service
}

// Watcher delivers registry events in order.
type Watcher interface {
	// Next blocks until the next event, or returns ErrWatcherStopped after Stop.
	Next() (*Result, error)
	// Stop ends the watch and releases a blocked Next. It is safe to call more than once.
	Stop()
}

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotFound: no node of the named service is registered.
	ErrNotFound = errors.New("registry: service not found")
	// ErrWatcherStopped: the watcher was stopped.
	ErrWatcherStopped = errors.New("registry: watcher stopped")
	// ErrWatcherOverflow: the watcher fell too far behind and was ended; re-list and watch again.
	ErrWatcherOverflow = errors.New("registry: watcher fell behind")
	// ErrInvalid: a service or node is missing a required field.
	ErrInvalid = errors.New("registry: invalid service")
)

// Copy returns a deep copy of s, so callers can keep it while the registry changes.
func (s *Service) Copy() *Service {
	if s == nil {
		return nil
	}
	c := &Service{Name: s.Name, Version: s.Version, Metadata: maps.Clone(s.Metadata)}
	for _, e := range s.Endpoints {
		c.Endpoints = append(c.Endpoints, &Endpoint{Name: e.Name, Metadata: maps.Clone(e.Metadata)})
	}
	for _, n := range s.Nodes {
		c.Nodes = append(c.Nodes, n.Copy())
	}
	return c
}

// Copy returns a deep copy of n.
func (n *Node) Copy() *Node {
	if n == nil {
		return nil
	}
	return &Node{Id: n.Id, Address: n.Address, Metadata: maps.Clone(n.Metadata)}
}

// Validate reports what is missing from s, wrapped in ErrInvalid.
func (s *Service) Validate() error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: nil service", ErrInvalid)
	case s.Name == "":
		return fmt.Errorf("%w: empty service name", ErrInvalid)
	}
	for i, n := range s.Nodes {
		if n == nil || n.Id == "" {
			return fmt.Errorf("%w: service %s: node %d has no id", ErrInvalid, s.Name, i)
		}
	}
	return nil
}

// EndpointNames returns the sorted names of s's endpoints.
func (s *Service) EndpointNames() []string {
	names := make([]string, 0, len(s.Endpoints))
	for _, e := range s.Endpoints {
		names = append(names, e.Name)
	}
	slices.Sort(names)
	return names
}
