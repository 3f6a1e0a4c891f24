package source

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/plugin"
)

// Config is one entry of the sources: list of configd.yaml: the fields every source has
// (name, type, mount) and, in TypeConfig, the fields of its type, which its type's package
// declares (file.Config, consul.Config, ...).
//
//	sources:
//	  - name: shared           # Config.Name
//	    type: consul           # Config.Type
//	    mount: app/            # Config.Mount
//	    address: 127.0.0.1:8500  # consul.Config.Address
//	    prefix: micro/config/    # consul.Config.Prefix
//
// DecodeConfig decodes an entry; in code, set the fields:
//
//	source.Config{Name: "shared", Type: "consul", Mount: "app/",
//		TypeConfig: consul.Config{Address: "127.0.0.1:8500", Prefix: "micro/config/"}}
type Config struct {
	// Name identifies the source in configd's audit trail ("source:<name>"),
	// logs and status. Letters, digits, '.', '_' and '-'; required.
	Name string `yaml:"name" json:"name"`
	// Type selects the implementation: file, env, consul, etcd. It is the
	// name of TypeConfig's module (source.<type>).
	Type string `yaml:"type" json:"type"`
	// Mount is the key prefix under which the source's keys appear. ""
	// mounts at the root. Must be a valid prefix (keyspace.Prefix).
	Mount string `yaml:"mount" json:"mount,omitempty"`

	// TypeConfig is the type's own fields; required.
	TypeConfig TypeConfig `yaml:"-" json:"config,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks the whole entry: a name, a type, a mount that is a valid
// key prefix, and a TypeConfig of that type whose own Validate passes.
// Errors wrap ErrConfig and name the source.
func (c Config) Validate() error {
	if c.Name == "" {
		return c.errorf("name is required")
	}
	if !nameRE.MatchString(c.Name) {
		return c.errorf("name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", c.Name)
	}
	if c.Type == "" {
		return c.errorf("type is required")
	}
	if _, err := keyspace.Prefix(c.Mount); err != nil {
		return c.errorf("mount %q is not a valid key prefix: %w", c.Mount, err)
	}
	if c.TypeConfig == nil {
		return c.errorf("no config of type %s (Config.TypeConfig)", c.Type)
	}
	if id := c.TypeConfig.PluginInfo().ID; id != plugin.ID(Namespace+"."+c.Type) {
		return c.errorf("type %s, but its TypeConfig is %T, of module %s", c.Type, c.TypeConfig, id)
	}
	if err := plugin.Validate(c.TypeConfig); err != nil {
		return c.errorf("%w", err)
	}
	return nil
}

// MountPrefix returns the canonical mount prefix ("" or ending in '/').
// It is only meaningful once Validate has passed.
func (c Config) MountPrefix() string {
	p, _ := keyspace.Prefix(c.Mount)
	return p
}

// Errorf returns an error about this config, wrapping ErrConfig and naming
// the source, for the types' own checks when they build a source.
func (c Config) Errorf(format string, args ...any) error {
	return c.errorf(format, args...)
}

func (c Config) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %w", ErrConfig, c.who(), fmt.Errorf(format, args...))
}

// who names the source in messages: source "shared" (type consul).
func (c Config) who() string {
	who := "source"
	if c.Name != "" {
		who = fmt.Sprintf("source %q", c.Name)
	}
	if c.Type != "" {
		who += fmt.Sprintf(" (type %s)", c.Type)
	}
	return who
}

// errDecode turns an error of decoding the entry at line into one that
// starts with the line of the fault, names the source and wraps ErrConfig.
func (c Config) errDecode(line int, err error) error {
	if de, ok := errors.AsType[*plugin.DecodeError](err); ok {
		line, err = de.Line, errors.New(de.Detail())
	}
	return fmt.Errorf("line %d: %w", line, c.errorf("%w", err))
}
