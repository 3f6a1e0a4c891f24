package all_test

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/source"
	_ "github.com/configd/configd/source/all"
)

func TestAllTypesRegistered(t *testing.T) {
	if got, want := source.Types(), []string{"consul", "env", "etcd", "file"}; !slices.Equal(got, want) {
		t.Fatalf("Types() = %v, want %v", got, want)
	}
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
		Sources []source.Config `yaml:"sources"`
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatal(err)
	}
	if len(file.Sources) != 6 {
		t.Fatalf("%d sources", len(file.Sources))
	}
	for _, cfg := range file.Sources[:4] {
		src, err := source.New(cfg)
		if err != nil {
			t.Fatalf("New(%s): %v", cfg.Name, err)
		}
		if src.Name() != cfg.Name || src.Status().State != source.StateStarting {
			t.Fatalf("%s: name %q, status %+v", cfg.Name, src.Name(), src.Status())
		}
		src.Close()
	}
	if got := file.Sources[2].Endpoints; !slices.Equal(got, []string{"127.0.0.1:2379"}) {
		t.Fatalf("endpoints = %v", got)
	}
	if tls := file.Sources[4].TLS; tls == nil || tls.CAFile == "" || file.Sources[4].Token != "secret" {
		t.Fatalf("tls/token not decoded: %+v", file.Sources[4])
	}
	if _, err := source.New(file.Sources[4]); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("missing CA file: %v", err)
	}
	if _, err := source.New(file.Sources[5]); err == nil || !strings.Contains(err.Error(), `type "store"`) {
		t.Fatalf("type store: %v", err)
	}
}
