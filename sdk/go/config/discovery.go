package config

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/configd/configd/api"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/selector"
)

// DefaultService is the service name configd registers under (configd
// --registry ...; see docs/registry.md) and that WithRegistry looks for
// unless WithService names another.
const DefaultService = api.ServiceName

// WithRegistry makes the client find configd through reg, a registry
// configd registers in (configd --registry etcd --registry-address ...),
// instead of fixed addresses: each connection goes to a node of the
// service (DefaultService, or WithService's) that a selector over reg
// picks, round robin. When a connection fails or a stream breaks, the
// client reports the node to the selector (selector.Mark), which leaves it
// out for a while, and asks again, so it moves to another instance, and
// to new instances as they register. Only nodes whose "tls" metadata
// matches the client's (WithTLS or not) are used.
//
// As with WithAddress, every instance of the service must serve the same
// store (the same revisions): the client resumes its watch from the
// revision it holds on whichever instance it reaches.
//
// WithRegistry takes the place of WithAddress and CONFIGD_ADDR. The
// selector is built by the client and closed by Close, unless WithSelector
// gives one. The client reads no MICRO_* variables itself, so that a
// program that does not use discovery links no registry client; one that
// wants micro's flags and variables builds the registry with
// micro.FromEnv and micro.NewParts (see docs/registry.md).
func WithRegistry(reg registry.Registry) Option {
	return func(o *options) { o.discovery().reg = reg }
}

// WithService sets the service name WithRegistry or WithSelector look
// for: DefaultService unless set (configd --server-name registers another).
func WithService(name string) Option {
	return func(o *options) { o.discovery().service = name }
}

// WithSelector makes the client pick configd's nodes with sel, for
// example a selector shared with a micro client; like WithRegistry, it
// takes the place of fixed addresses. The client does not close sel.
func WithSelector(sel selector.Selector) Option {
	return func(o *options) { o.discovery().sel = sel }
}

// discovery is how the client finds configd's nodes through a registry.
type discovery struct {
	reg     registry.Registry
	sel     selector.Selector // given (WithSelector), or built on first use
	service string

	mu    sync.Mutex
	built selector.Selector // the one built here, closed with the client
	once  sync.Once
}

func (o *options) discovery() *discovery {
	if o.disc == nil {
		o.disc = &discovery{}
	}
	return o.disc
}

// discover checks the discovery options and, when there are any, makes
// the client's one "address" a name for the service, used in messages.
func (o *options) discover() error {
	d := o.disc
	if d == nil {
		return nil
	}
	if d.service == "" {
		d.service = DefaultService
	}
	switch {
	case d.reg == nil && d.sel == nil:
		return errors.New("config: WithService needs WithRegistry or WithSelector")
	case d.reg != nil && d.sel != nil:
		return errors.New("config: WithRegistry and WithSelector both given: the selector has its own registry")
	}
	where := "registry " + d.reg.String()
	if d.sel != nil {
		where = "selector " + d.sel.String()
	}
	o.addrs = []string{fmt.Sprintf("service %s (%s)", d.service, where)}
	return nil
}

// selector returns the selector, building it on first use; it is closed
// when the client's context ends.
func (c *Client) selector() (selector.Selector, error) {
	d := c.opts.disc
	if d.sel != nil {
		return d.sel, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.built == nil {
		s, err := selector.New(selector.Registry(d.reg), selector.Logger(c.log))
		if err != nil {
			return nil, err
		}
		d.built = s
		context.AfterFunc(c.ctx, d.close)
	}
	return d.built, nil
}

func (d *discovery) close() {
	d.once.Do(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.built != nil {
			d.built.Close()
		}
	})
}

// connect runs one session: to addr, or, with discovery, to the node the
// selector picks, which it then tells how the session ended.
func (c *Client) connect(addr string) (created bool, err error) {
	d := c.opts.disc
	if d == nil {
		return c.session(addr)
	}
	sel, err := c.selector()
	if err != nil {
		return false, err
	}
	wantTLS := "off"
	if c.opts.tls != nil {
		wantTLS = "on"
	}
	next, err := sel.Select(d.service, selector.WithFilter(tlsFilter(wantTLS)))
	if errors.Is(err, selector.ErrNoneAvailable) {
		err = fmt.Errorf("%w: no node with tls=%s metadata", err, wantTLS)
	}
	if err != nil {
		return false, err
	}
	node, err := next()
	if err != nil {
		return false, err
	}
	created, err = c.session(node.Address)
	if c.ctx.Err() != nil {
		sel.Mark(d.service, node, nil) // closed: nothing wrong with the node
		d.close()
		return created, err
	}
	sel.Mark(d.service, node, err)
	if err != nil {
		err = fmt.Errorf("node %s at %s: %w", node.Id, node.Address, err)
	}
	return created, err
}

// tlsFilter keeps the nodes whose "tls" metadata is want, and those that
// do not say.
func tlsFilter(want string) selector.Filter {
	return func(svcs []*registry.Service) []*registry.Service {
		var out []*registry.Service
		for _, s := range svcs {
			var nodes []*registry.Node
			for _, n := range s.Nodes {
				if t, ok := n.Metadata["tls"]; !ok || t == want {
					nodes = append(nodes, n)
				}
			}
			if len(nodes) > 0 {
				c := *s
				c.Nodes = nodes
				out = append(out, &c)
			}
		}
		return out
	}
}
