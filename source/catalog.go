package source

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/plugin"
)

// Namespace is the plugin namespace of source types: the type consul is the
// module source.consul.
const Namespace = "source"

// TypeConfig is a source type's own config: the fields of a sources: entry
// beyond name, type and mount (file.Config holds path, consul.Config
// address, prefix, token...). Each type's package declares one; its
// PluginInfo names the module (source.<type>), its Validate (optional, see
// plugin.Validator) checks the fields without reading files or contacting a
// server.
type TypeConfig interface {
	plugin.Module
	// NewSource builds the source that cfg describes; cfg.TypeConfig is
	// the receiver and cfg has passed Config.Validate. It reads what it
	// must (TLS files) but does not contact any server: a backend that is
	// down is Run's business, reported as a degraded source. Errors wrap
	// ErrConfig (Config.Errorf). Call New rather than this.
	NewSource(cfg Config, opts ...Option) (Source, error)
}

// Catalog holds source types by name: the modules of namespace source. A
// binary builds one (source/all.Types has the types that ship with configd)
// and decodes its config file's entries with it.
type Catalog = plugin.Catalog[TypeConfig]

// NewCatalog returns a catalog of the given source types, such as
// NewCatalog(file.Config{}, env.Config{}).
func NewCatalog(types ...TypeConfig) (*Catalog, error) {
	return plugin.NewCatalog(Namespace, types...)
}

// New validates cfg and builds the source of its type. Errors wrap
// ErrConfig.
func New(cfg Config, opts ...Option) (Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg.TypeConfig.NewSource(cfg, opts...)
}

// DecodeConfig decodes one entry of a sources: list: name, type and mount
// into the Config, and the other fields into a new config of the entry's
// type, which types provides. Decoding is strict (plugin.DecodeYAML): a
// field that neither the shared fields nor the type has, a field given
// twice, or a value of the wrong kind is an error naming the field and
// what it wants. The result has passed Validate. Errors wrap ErrConfig
// (and ErrUnknownType for a type that types lacks), start with the line of
// the fault ("line 7: ...") and name the source and its type.
func DecodeConfig(n *yaml.Node, types *Catalog) (Config, error) {
	var c Config
	line := n.Line
	// Name and type first, so that every later error names the source,
	// and the type says how to decode the rest.
	if _, err := plugin.Peek(n, "name", &c.Name); err != nil {
		return Config{}, c.errDecode(line, err)
	}
	if _, err := plugin.Peek(n, "type", &c.Type); err != nil {
		return Config{}, c.errDecode(line, err)
	}
	if c.Type == "" {
		return Config{}, c.errDecode(line, fmt.Errorf("type is required (one of %s)", strings.Join(types.Names(), ", ")))
	}
	if !types.Has(c.Type) {
		return Config{}, c.errDecode(line, fmt.Errorf("%w %q (known: %s)", ErrUnknownType, c.Type, strings.Join(types.Names(), ", ")))
	}
	tc, err := types.Decode(c.Type, n, &c)
	if err != nil {
		return Config{}, c.errDecode(line, err)
	}
	c.TypeConfig = tc
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("line %d: %w", line, err)
	}
	return c, nil
}
