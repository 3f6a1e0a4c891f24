package source

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/plugin"
)

type stubSource struct{ name string }

func (s stubSource) Name() string                                     { return s.name }
func (s stubSource) Run(ctx context.Context, emit func(Update)) error { <-ctx.Done(); return nil }
func (s stubSource) Status() Status                                   { return Status{} }
func (s stubSource) Close() error                                     { return nil }

// stubConfig is the config of a source type for tests: stub.
type stubConfig struct {
	Path string `yaml:"path"`
}

func (stubConfig) PluginInfo() plugin.Info {
	return plugin.Info{ID: "source.stub", New: func() plugin.Module { return new(stubConfig) }}
}

func (c stubConfig) Validate() error {
	if c.Path == "" {
		return errors.New("path is required")
	}
	return nil
}

func (stubConfig) NewSource(cfg Config, _ ...Option) (Source, error) {
	return stubSource{name: cfg.Name}, nil
}

func TestCatalogNewAndDecode(t *testing.T) {
	types, err := NewCatalog(stubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(Config{Name: "s1", Type: "stub", TypeConfig: stubConfig{Path: "x"}})
	if err != nil || src.Name() != "s1" {
		t.Fatalf("New = %v, %v", src, err)
	}
	decode := func(entry string) (Config, error) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(entry), &doc); err != nil {
			t.Fatal(err)
		}
		return DecodeConfig(doc.Content[0], types)
	}
	cfg, err := decode("name: s1\ntype: stub\nmount: app\npath: x\n")
	if err != nil || cfg.Name != "s1" || cfg.Type != "stub" || cfg.MountPrefix() != "app/" || cfg.TypeConfig != (stubConfig{Path: "x"}) {
		t.Fatalf("DecodeConfig = %+v, %v", cfg, err)
	}
	if _, err := decode("name: s1\ntype: stub\npath: x\nprefix: p\n"); !errors.Is(err, ErrConfig) ||
		!strings.Contains(err.Error(), `line 4: invalid source config: source "s1" (type stub): prefix: unknown field (known: name, type, mount, path)`) {
		t.Fatalf("unused field: %v", err)
	}
	if _, err := decode("name: s1\ntype: stub\n"); !errors.Is(err, ErrConfig) ||
		!strings.Contains(err.Error(), `line 1: invalid source config: source "s1" (type stub): path is required`) {
		t.Fatalf("type's Validate: %v", err)
	}
	if _, err := decode("name: a b\ntype: stub\npath: x\n"); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `name "a b"`) {
		t.Fatalf("shared Validate: %v", err)
	}
	if _, err := decode("name: s1\npath: x\n"); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "type is required (one of stub)") {
		t.Fatalf("no type: %v", err)
	}
	_, err = decode("{name: s2, type: nope}")
	if !errors.Is(err, ErrUnknownType) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "stub") {
		t.Fatalf("unknown type: %v, want ErrUnknownType listing the known types", err)
	}
	if err := types.Add(stubConfig{}); err == nil {
		t.Fatal("adding a type twice succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Type: "stub"}, "name is required"},
		{Config{Name: "a b", Type: "stub"}, `name "a b"`},
		{Config{Name: "a"}, "type is required"},
		{Config{Name: "a", Type: "stub", Mount: "/app/"}, `mount "/app/" is not a valid key prefix`},
		{Config{Name: "a", Type: "stub", Mount: "app//x"}, "empty segment"},
		{Config{Name: "a", Type: "stub"}, "no config of type stub"},
		{Config{Name: "a", Type: "file", TypeConfig: stubConfig{Path: "x"}}, "type file, but its TypeConfig is source.stubConfig, of module source.stub"},
		{Config{Name: "a", Type: "stub", TypeConfig: stubConfig{}}, "path is required"},
	} {
		if err := c.cfg.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want ErrConfig mentioning %q", c.cfg, err, c.want)
		}
	}
	if err := (&TLSConfig{KeyFile: "k"}).Validate(); err == nil || !strings.Contains(err.Error(), "cert_file and key_file go together") {
		t.Errorf("TLSConfig.Validate = %v", err)
	}
	ok := Config{Name: "defaults", Type: "stub", Mount: "app", TypeConfig: stubConfig{Path: "x"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if p := ok.MountPrefix(); p != "app/" {
		t.Fatalf("MountPrefix = %q, want app/", p)
	}
}

func TestDiff(t *testing.T) {
	v := func(s, ct string) Value { return Value{Data: []byte(s), ContentType: ct} }
	old := map[string]Value{"a": v("1", TypeText), "b": v("2", TypeText), "c": v("[]", TypeText)}
	new := map[string]Value{"a": v("1", TypeText), "c": v("[]", TypeJSON), "d": v("4", TypeText)}
	got := Diff(old, new)
	want := []Change{{Key: "b", Deleted: true}, {Key: "c", Value: v("[]", TypeJSON)}, {Key: "d", Value: v("4", TypeText)}}
	if len(got) != len(want) {
		t.Fatalf("Diff = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Key != want[i].Key || got[i].Deleted != want[i].Deleted || !got[i].Value.Equal(want[i].Value) {
			t.Fatalf("Diff[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(Diff(nil, nil)) != 0 {
		t.Fatal("Diff(nil, nil) is not empty")
	}
}
