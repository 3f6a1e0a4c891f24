package selector

import "github.com/configd/configd/sdk/go/micro/registry"

// FilterVersion keeps the services of the given version.
func FilterVersion(version string) Filter {
	return func(in []*registry.Service) []*registry.Service {
		var out []*registry.Service
		for _, s := range in {
			if s.Version == version {
				out = append(out, s)
			}
		}
		return out
	}
}

// FilterLabel keeps the nodes whose metadata has key=value.
func FilterLabel(key, value string) Filter {
	return func(in []*registry.Service) []*registry.Service {
		var out []*registry.Service
		for _, s := range in {
			c := *s
			c.Nodes = nil
			for _, n := range s.Nodes {
				if v, ok := n.Metadata[key]; ok && v == value {
					c.Nodes = append(c.Nodes, n)
				}
			}
			if len(c.Nodes) > 0 {
				out = append(out, &c)
			}
		}
		return out
	}
}

// FilterEndpoint keeps the services that declare the endpoint ("Type.Method").
func FilterEndpoint(name string) Filter {
	return func(in []*registry.Service) []*registry.Service {
		var out []*registry.Service
		for _, s := range in {
			for _, e := range s.Endpoints {
				if e.Name == name {
					out = append(out, s)
					break
				}
			}
		}
		return out
	}
}
