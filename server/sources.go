package server

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/plugin"
	"github.com/configd/configd/server/pump"
	"github.com/configd/configd/source"
)

// decodeSource decodes one entry of the `sources:` list: the store layer's
// place (name and type only), or a source of one of types.
func decodeSource(n *yaml.Node, types *source.Catalog) (source.Config, error) {
	var typ string
	if _, err := plugin.Peek(n, "type", &typ); err != nil || typ != pump.StoreType {
		return source.DecodeConfig(n, types) // which reports err
	}
	var store struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
	}
	if err := plugin.DecodeYAML(n, &store); err != nil {
		if de, ok := errors.AsType[*plugin.DecodeError](err); ok {
			return source.Config{}, fmt.Errorf("line %d: the store layer (type store): %s", de.Line, de.Detail())
		}
		return source.Config{}, err
	}
	return source.Config{Name: store.Name, Type: pump.StoreType}, nil
}

// layerOrder returns the layers of cfgs, lowest precedence first, with the
// store layer where an entry of type store puts it, or on top.
func layerOrder(cfgs []source.Config) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	placed := false
	for i, c := range cfgs {
		if c.Type == pump.StoreType {
			if placed {
				return nil, fmt.Errorf("sources[%d]: the store layer is placed twice", i)
			}
			if c.Name != "" && c.Name != audit.StoreLayer {
				return nil, fmt.Errorf("sources[%d]: the store layer's name is %q, not %q", i, audit.StoreLayer, c.Name)
			}
			placed = true
			order = append(order, audit.StoreLayer)
			seen[audit.StoreLayer] = true
			continue
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("sources[%d]: %w", i, err)
		}
		if c.Name == audit.StoreLayer {
			return nil, fmt.Errorf("sources[%d]: the name %q is reserved for the store layer", i, audit.StoreLayer)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("sources[%d]: two sources are named %q", i, c.Name)
		}
		seen[c.Name] = true
		order = append(order, c.Name)
	}
	if !placed {
		order = append(order, audit.StoreLayer)
	}
	return order, nil
}
