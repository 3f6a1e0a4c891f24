package all_test

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/all"
	"github.com/configd/configd/source/consul"
	"github.com/configd/configd/source/etcd"
	"github.com/configd/configd/source/memory"
)

func TestAllTypesRegistered(t *testing.T) {
	if got, want := all.Types().Names(), []string{"consul", "env", "etcd", "file"}; !slices.Equal(got, want) {
		t.Fatalf("Types() = %v, want %v", got, want)
	}
	// Each call builds a new catalog: adding to one does not leak into the next.
	types := all.Types()
	if err := types.Add(fake{}); err != nil {
		t.Fatal(err)
	}
	if err := types.Add(fake{}); err == nil {
		t.Fatal("adding a type twice succeeded")
	}
	if all.Types().Has("fake") {
		t.Fatal("a catalog change leaked into a new catalog")
	}
}

// fake is a source type that is not built in.
type fake struct{}

func (fake) PluginInfo() plugin.Info {
	return plugin.Info{ID: "source.fake", New: func() plugin.Module { return new(fake) }}
}
func (fake) NewSource(cfg source.Config, _ ...source.Option) (source.Source, error) {
	return memory.New(cfg.Name), nil
}

// The sources: block of issue 4's configd.yaml decodes into Configs that
// New accepts (the store entry is configd's own layer, not a Source).
func TestIssueExampleConfigDecodesAndBuilds(t *testing.T) {
	const doc = `
sources:
  - name: defaults
    type: file
    path: ./config/
    mount: app/
  - name: shared
    type: consul
    address: 127.0.0.1:8500
    prefix: micro/config/
    mount: app/
  - name: infra
    type: etcd
    endpoints: [127.0.0.1:2379]
    prefix: /infra/
    mount: infra/
  - name: env
    type: env
    prefix: APP_
    mount: app/
  - name: secure
    type: consul
    address: https://consul.internal:8501
    token: secret
    tls:
      ca_file: ../../internal/testserver/testdata-does-not-exist.pem
  - name: store
    type: store
`
	var file struct {
		Sources []yaml.Node `yaml:"sources"`
	}
	if err := yaml.Unmarshal([]byte(doc), &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Sources) != 6 {
		t.Fatalf("%d sources", len(file.Sources))
	}
	var cfgs []source.Config
	for _, n := range file.Sources[:5] {
		cfg, err := source.DecodeConfig(&n, all.Types())
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, cfg)
	}
	for _, cfg := range cfgs[:4] {
		src, err := source.New(cfg)
		if err != nil {
			t.Fatalf("New(%s): %v", cfg.Name, err)
		}
		if src.Name() != cfg.Name || src.Status().State != source.StateStarting {
			t.Fatalf("%s: name %q, status %+v", cfg.Name, src.Name(), src.Status())
		}
		src.Close()
	}
	if got := cfgs[2].TypeConfig.(etcd.Config).Endpoints; !slices.Equal(got, []string{"127.0.0.1:2379"}) {
		t.Fatalf("endpoints = %v", got)
	}
	if c := cfgs[4].TypeConfig.(consul.Config); c.TLS == nil || c.TLS.CAFile == "" || c.Token != "secret" {
		t.Fatalf("tls/token not decoded: %+v", c)
	}
	if _, err := source.New(cfgs[4]); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("missing CA file: %v", err)
	}
	if _, err := source.DecodeConfig(&file.Sources[5], all.Types()); err == nil || !strings.Contains(err.Error(), `type "store"`) {
		t.Fatalf("type store: %v", err)
	}
}
