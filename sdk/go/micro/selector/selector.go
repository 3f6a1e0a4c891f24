// Package selector picks the node a call goes to: List → Filter → Strategy, over a cache fed by
// registry Watch, with a TTL fallback that keeps serving the last good list when the registry
// cannot be reached, and with nodes demoted for a while when calls to them fail.
package selector

import (
	"errors"

	"github.com/configd/configd/sdk/go/micro/registry"
)

// Selector chooses nodes for a service. Implementations are safe for concurrent use.
type Selector interface {
	// Select returns a Next that yields nodes of service, best first. Every node a Next returns
	// must be reported back through Mark once the call to it ends, so load-aware strategies see
	// outstanding requests and failing nodes are demoted.
	Select(service string, opts ...SelectOption) (Next, error)
	// Mark reports the end of a call to node. A non-nil err demotes the node for a while; pass nil
	// for errors that say nothing about the node's health (an application error from a handler).
	Mark(service string, node *registry.Node, err error)
	// Reset forgets the cached nodes and the demotions of service.
	Reset(service string)
	// Close stops the registry watch.
	Close() error
	// String names the implementation.
	String() string
}

// Next yields the next node to try. Within one Next, nodes already returned are tried again
// only after every candidate has been returned once, so a retry goes to another node when
// there is one.
type Next func() (*registry.Node, error)

// Filter narrows the services (versions) of a name before a strategy picks a node.
type Filter func([]*registry.Service) []*registry.Service

// Load tells a strategy how busy a node is.
type Load interface {
	// Outstanding returns the number of calls to the node that have not been Marked yet.
	Outstanding(service, nodeID string) int64
}

// Strategy builds a Next over nodes. It is called once per Select.
type Strategy func(service string, nodes []*registry.Node, load Load) Next

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotFound: the registry has no node for the service.
	ErrNotFound = errors.New("selector: service not found")
	// ErrNoneAvailable: the service has nodes, but none passed the filters.
	ErrNoneAvailable = errors.New("selector: no node available")
	// ErrClosed: the selector was closed.
	ErrClosed = errors.New("selector: closed")
)
