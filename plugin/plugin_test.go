package plugin_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/plugin"
)

// greeter is the namespace of these tests: a kind of plugin that greets.
type greeter interface {
	plugin.Module
	Greet(who string) string
}

// hello is a module with value receivers and a field: test.greeter.hello.
type hello struct {
	Greeting string `yaml:"greeting"`
}

func (hello) PluginInfo() plugin.Info {
	return plugin.Info{ID: "test.greeter.hello", New: func() plugin.Module { return new(hello) }}
}
func (h hello) Greet(who string) string { return h.Greeting + ", " + who }
func (h hello) Validate() error {
	if h.Greeting == "" {
		return errors.New("greeting is required")
	}
	return nil
}

// shout has pointer receivers: its config stays a pointer.
type shout struct{}

func (*shout) PluginInfo() plugin.Info {
	return plugin.Info{ID: "test.greeter.shout", New: func() plugin.Module { return new(shout) }}
}
func (*shout) Greet(who string) string { return strings.ToUpper(who) }

var _ greeter = hello{}
var _ greeter = (*shout)(nil)

// custom builds modules whose Info is whatever a test needs.
type custom struct{ info plugin.Info }

func (c custom) PluginInfo() plugin.Info { return c.info }
func (custom) Greet(string) string       { return "" }

func TestIDNamespaceAndName(t *testing.T) {
	for id, want := range map[plugin.ID][2]string{
		"source.consul":                      {"source", "consul"},
		"micro.registry.etcd":                {"micro.registry", "etcd"},
		"micro.selector.strategy.roundrobin": {"micro.selector.strategy", "roundrobin"},
		"bare":                               {"", "bare"},
	} {
		if ns, name := id.Namespace(), id.Name(); ns != want[0] || name != want[1] {
			t.Errorf("%s: namespace %q name %q, want %q %q", id, ns, name, want[0], want[1])
		}
	}
}

func TestCatalogAddsAndBuildsModules(t *testing.T) {
	cat, err := plugin.NewCatalog[greeter]("test.greeter", hello{}, new(shout))
	if err != nil {
		t.Fatal(err)
	}
	if got := cat.Names(); !slices.Equal(got, []string{"hello", "shout"}) || cat.Namespace() != "test.greeter" {
		t.Fatalf("names %v, namespace %s", got, cat.Namespace())
	}
	g, err := cat.New("shout")
	if err != nil || g.Greet("bob") != "BOB" {
		t.Fatalf("New(shout) = %v, %v", g, err)
	}
	if _, err := cat.New("whisper"); !errors.Is(err, plugin.ErrUnknown) || !strings.Contains(err.Error(), `unknown module "whisper" in test.greeter (known: hello, shout)`) {
		t.Fatalf("New(whisper): %v", err)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("greeting: hi\n"), &doc); err != nil {
		t.Fatal(err)
	}
	g, err = cat.Decode("hello", &doc)
	if err != nil || g != (hello{Greeting: "hi"}) { // a value, as code would write it
		t.Fatalf("Decode(hello) = %#v, %v", g, err)
	}
	if g, err := cat.Decode("shout", &yaml.Node{}); err != nil || g.Greet("a") != "A" {
		t.Fatalf("Decode(shout) = %#v, %v", g, err)
	}
	if _, err := cat.Decode("hello", &yaml.Node{}); err == nil || err.Error() != "greeting is required" {
		t.Fatalf("Decode runs Validate: %v", err)
	}
}

func TestCatalogRefusesBadModules(t *testing.T) {
	cat := plugin.Must(plugin.NewCatalog[greeter]("test.greeter", hello{}))
	newHello := func() plugin.Module { return new(hello) }
	for _, c := range []struct {
		mod  greeter
		want string
	}{
		{hello{}, `"test.greeter.hello" added twice`},
		{nil, "a nil module"},
		{(*shout)(nil), "a nil module"},
		{custom{plugin.Info{ID: "other.hello", New: newHello}}, "not in namespace test.greeter"},
		{custom{plugin.Info{ID: "test.greeter.Hello!", New: newHello}}, "labels are lower-case"},
		{custom{plugin.Info{ID: "test.greeter.x"}}, "Info.New is nil"},
		{custom{plugin.Info{ID: "test.greeter.x", New: func() plugin.Module { return hello{} }}}, "not a pointer to a struct"},
		{custom{plugin.Info{ID: "test.greeter.x", New: newHello}}, `Info.New returns a config of module "test.greeter.hello"`},
	} {
		if err := cat.Add(c.mod); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%#v) = %v, want an error mentioning %q", c.mod, err, c.want)
		}
	}
	// All or nothing: a batch with a bad module adds none.
	if err := cat.Add(new(shout), nil); err == nil || cat.Has("shout") {
		t.Fatalf("a failed batch added shout: %v", err)
	}
	if _, err := plugin.NewCatalog[greeter]("Test"); err == nil {
		t.Fatal("a namespace with upper case was accepted")
	}
	if _, err := plugin.NewCatalog[greeter]("test.greeter", new(shout), new(shout)); err == nil {
		t.Fatal("a module twice in one batch was accepted")
	}
}

// A catalog is safe for concurrent use (run with -race).
func TestCatalogConcurrentAddAndLookup(t *testing.T) {
	cat := plugin.Must(plugin.NewCatalog[greeter]("test.greeter"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			id := plugin.ID(fmt.Sprintf("test.greeter.g%d", i))
			if err := cat.Add(custom{plugin.Info{ID: id, New: func() plugin.Module { return &customPtr{id} }}}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			_ = cat.Names()
			_, _ = cat.New("hello")
		})
	}
	wg.Wait()
	if n := len(cat.Names()); n != 8 {
		t.Fatalf("%d modules, want 8", n)
	}
}

type customPtr struct{ id plugin.ID }

func (c *customPtr) PluginInfo() plugin.Info { return plugin.Info{ID: c.id} }
func (*customPtr) Greet(string) string       { return "" }
