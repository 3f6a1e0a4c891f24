// Package env is the source of type env: environment variables whose names
// start with a prefix, read once when the source runs (a process's
// environment does not change).
//
//	sources:
//	  - name: env
//	    type: env
//	    prefix: APP_
//	    mount: app/
//
// The mapping from a variable to a key, with prefix APP_:
//
//   - only variables whose names start with the prefix, compared case
//     sensitively, are read; the prefix is removed;
//   - the rest of the name is lower-cased;
//   - each '_' becomes '/', except that "__" stands for one '_' in the key.
//
// So APP_DB_HOST=x gives db/host = x (app/db/host once mounted), and
// APP_DB_MAX__CONNS=10 gives db/max_conns = 10. Values are text/plain, or
// application/octet-stream when they are not valid UTF-8.
//
// APP_BROKER=nats next to APP_BROKER_ADDRESS=host:4222 gives both broker and
// broker/address: configd's keyspace lets a key have keys under it, so
// neither is lost. Names that map to no valid key (APP_ alone, APP_DB_ with
// its trailing separator, APP__X with a leading one) are left out with a
// warning, and so is the second of two names that give the same key
// (APP_Db_Host and APP_DB_HOST): names are read in byte order, the first
// wins.
package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/internal/publish"
)

// Config is the env source's own config: the fields of a sources: entry of
// type env. It is the plugin module source.env.
type Config struct {
	// Prefix is the start of the variables' names, such as APP_; it is
	// removed from the keys. Required: without one, every variable of the
	// process (PATH, HOME...) would become configuration.
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
}

var _ source.TypeConfig = Config{}

// PluginInfo names the module: source.env.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: source.Namespace + ".env", New: func() plugin.Module { return new(Config) }}
}

var prefixRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks Prefix.
func (c Config) Validate() error {
	if c.Prefix == "" {
		return errors.New("prefix is required (such as APP_): without one every environment variable would become a key")
	}
	if !prefixRE.MatchString(c.Prefix) {
		return fmt.Errorf("prefix %q: an environment variable name starts with a letter or '_' and holds letters, digits and '_'", c.Prefix)
	}
	return nil
}

// NewSource returns an env source; source.New calls it.
func (c Config) NewSource(cfg source.Config, opts ...source.Option) (source.Source, error) {
	return &Source{cfg: cfg, prefix: c.Prefix, opts: source.NewOptions(opts...), pub: publish.New()}, nil
}

// Source reads environment variables. Build it with source.New.
type Source struct {
	cfg    source.Config
	prefix string
	opts   source.Options
	pub    *publish.Publisher
}

var _ source.Source = (*Source)(nil)

// Name returns the source's name.
func (s *Source) Name() string { return s.cfg.Name }

// Status returns the source's status.
func (s *Source) Status() source.Status { return s.pub.Status() }

// Close ends Run.
func (s *Source) Close() error {
	s.pub.Close()
	return nil
}

// Run reads the environment once, emits it, and waits for ctx or Close.
func (s *Source) Run(ctx context.Context, emit func(source.Update)) error {
	ctx, cancel, err := s.pub.Start(ctx, emit)
	if err != nil {
		return err
	}
	defer cancel()
	snap, warnings := Read(os.Environ(), s.prefix, s.cfg.MountPrefix(), s.opts.MaxValueSize)
	for _, w := range warnings {
		s.opts.Logger.Warn("env source: variable left out", "source", s.cfg.Name, "variable", w.Where, "problem", w.Problem)
	}
	s.pub.Snapshot(snap, warnings, 0)
	<-ctx.Done()
	return nil
}

// Read maps environ ("NAME=value" entries, as os.Environ returns) to keys
// as the package documentation describes, for a source mounted at mount.
func Read(environ []string, prefix, mount string, maxValueSize int) (map[string]source.Value, []source.Warning) {
	environ = slices.Clone(environ)
	slices.Sort(environ)
	b := source.NewBuilder(mount, maxValueSize)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, prefix) {
			continue
		}
		key := KeyOf(name[len(prefix):])
		if key == "" {
			b.Warn(name, "left out: nothing follows the prefix")
			continue
		}
		v := source.Value{Data: []byte(value), ContentType: source.TypeText}
		if !utf8.ValidString(value) {
			v.ContentType = source.TypeBinary
		}
		b.Add(name, key, v)
	}
	return b.Result()
}

// KeyOf maps a variable name, without its prefix, to a key: lower case,
// '_' to '/', "__" to '_'. The result is not validated.
func KeyOf(name string) string {
	var b strings.Builder
	name = strings.ToLower(name)
	for i := 0; i < len(name); i++ {
		if name[i] != '_' {
			b.WriteByte(name[i])
			continue
		}
		if i+1 < len(name) && name[i+1] == '_' {
			b.WriteByte('_')
			i++
			continue
		}
		b.WriteByte('/')
	}
	return b.String()
}

func (s *Source) String() string {
	return fmt.Sprintf("env source %q (prefix %s)", s.cfg.Name, s.prefix)
}
