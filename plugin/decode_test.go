package plugin_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/plugin"
)

type tlsFields struct {
	CAFile   string `yaml:"ca_file"`
	Insecure bool   `yaml:"insecure"`
}

type common struct {
	Name string `yaml:"name"`
}

type server struct {
	Endpoints []string      `yaml:"endpoints"`
	TLS       *tlsFields    `yaml:"tls"`
	Timeout   time.Duration `yaml:"timeout"`
	Port      int           `yaml:"port"`
	Internal  string        `yaml:"-"`
	Plain     string        // key "plain"
	Base      common        `yaml:",inline"`
}

func decode(t *testing.T, doc string, dst ...any) error {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	return plugin.DecodeYAML(&n, dst...)
}

func TestDecodeYAMLSetsFields(t *testing.T) {
	var s server
	var extra struct {
		Mount string `yaml:"mount"`
	}
	err := decode(t, `
name: a
mount: app/
endpoints: [x:1, "y:2"]
tls: {ca_file: ca.pem}
timeout: 1m30s
port: 8500
plain: p
`, &s, &extra)
	if err != nil {
		t.Fatal(err)
	}
	if s.Base.Name != "a" || extra.Mount != "app/" || !slices.Equal(s.Endpoints, []string{"x:1", "y:2"}) ||
		s.TLS == nil || s.TLS.CAFile != "ca.pem" || s.Timeout != 90*time.Second || s.Port != 8500 || s.Plain != "p" {
		t.Fatalf("decoded %+v, %+v", s, extra)
	}
}

func TestDecodeYAMLAnchorsAliasesAndMerges(t *testing.T) {
	var doc struct {
		Base   tlsFields `yaml:"base"`
		Merged tlsFields `yaml:"merged"`
		Alias  tlsFields `yaml:"alias"`
		List   []string  `yaml:"list"`
		Again  []string  `yaml:"again"`
	}
	err := decode(t, `
base: &b {ca_file: ca.pem, insecure: true}
merged:
  <<: *b
  insecure: false
alias: *b
list: &l [a, b]
again: *l
`, &doc)
	if err != nil {
		t.Fatal(err)
	}
	want := tlsFields{CAFile: "ca.pem", Insecure: true}
	if doc.Base != want || doc.Alias != want || doc.Merged != (tlsFields{CAFile: "ca.pem"}) || !slices.Equal(doc.Again, []string{"a", "b"}) {
		t.Fatalf("decoded %+v", doc)
	}
	// A merged key that the struct lacks is refused like a written one.
	var only tlsFields
	if err := decode(t, "{<<: {ca_file: x, bogus: 1}}", &only); err == nil {
		t.Fatal("an unknown merged key was accepted")
	}
}

func TestDecodeYAMLNullsLeaveZero(t *testing.T) {
	s := server{TLS: &tlsFields{CAFile: "old"}}
	if err := decode(t, "tls:\nendpoints: ~\n", &s); err != nil {
		t.Fatal(err)
	}
	if s.TLS != nil || s.Endpoints != nil {
		t.Fatalf("decoded %+v", s)
	}
	if err := decode(t, "", &s); err != nil {
		t.Fatalf("empty document: %v", err)
	}
}

func TestDecodeYAMLErrorsSayWhereWhatAndWhy(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want plugin.DecodeError
	}{
		{"name: a\nendpoint: [x]\n", plugin.DecodeError{Line: 2, Field: "endpoint",
			Problem: "unknown field (known: endpoints, tls, timeout, port, plain, name)"}},
		{"endpoints: 5\n", plugin.DecodeError{Line: 1, Field: "endpoints", Problem: "want a list of strings, got 5"}},
		{"endpoints: {a: b}\n", plugin.DecodeError{Line: 1, Field: "endpoints", Problem: "want a list of strings, got a mapping"}},
		{"tls: yes\n", plugin.DecodeError{Line: 1, Field: "tls", Problem: `want a mapping of ca_file, insecure, got "yes"`}},
		{"tls:\n  ca_file: x\n  cafile: y\n", plugin.DecodeError{Line: 3, Field: "tls.cafile", Problem: "unknown field (known: ca_file, insecure)"}},
		{"tls: {insecure: maybe}\n", plugin.DecodeError{Line: 1, Field: "tls.insecure", Problem: `want true or false, got "maybe"`}},
		{"timeout: soon\n", plugin.DecodeError{Line: 1, Field: "timeout", Problem: `want a duration (such as 10s), got "soon"`}},
		{"port: [1]\n", plugin.DecodeError{Line: 1, Field: "port", Problem: "want an integer, got a list"}},
		{"plain: {a: 1}\n", plugin.DecodeError{Line: 1, Field: "plain", Problem: "want a string, got a mapping"}},
		{"port: 1\nport: 2\n", plugin.DecodeError{Line: 2, Field: "port", Problem: "already set on line 1"}},
		{"internal: x\n", plugin.DecodeError{Line: 1, Field: "internal", Problem: "unknown field (known: endpoints, tls, timeout, port, plain, name)"}},
		{"- a\n", plugin.DecodeError{Line: 1, Problem: "want a mapping of endpoints, tls, timeout, port, plain, name, got a list"}},
		{"[a]: 1\n", plugin.DecodeError{Line: 1, Problem: "a key is a list, want a field name"}},
		{"<<: 5\n", plugin.DecodeError{Line: 1, Problem: "<< merges mappings only"}},
	} {
		var s server
		err := decode(t, c.doc, &s)
		de, ok := errors.AsType[*plugin.DecodeError](err)
		if !ok || *de != c.want {
			t.Errorf("%q: err = %#v, want %#v", c.doc, err, &c.want)
		}
	}
	if got := (&plugin.DecodeError{Line: 3, Field: "tls.cafile", Problem: "unknown field"}).Error(); got != "line 3: tls.cafile: unknown field" {
		t.Errorf("Error() = %q", got)
	}
}

func TestDecodeYAMLRefusesBadTargets(t *testing.T) {
	var s server
	if err := decode(t, "{}", s); err == nil {
		t.Error("a struct value (not a pointer) was accepted")
	}
	var twice struct {
		Name string `yaml:"name"`
	}
	if err := decode(t, "{}", &s, &twice); err == nil {
		t.Error("two targets declaring name were accepted")
	}
}

func TestPeekReadsOneKey(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("base: &b {type: consul}\nentry: {<<: *b, bogus: 1}\nbad: {type: [a]}\n"), &n); err != nil {
		t.Fatal(err)
	}
	root := n.Content[0]
	var typ string
	if ok, err := plugin.Peek(root.Content[3], "type", &typ); !ok || err != nil || typ != "consul" {
		t.Fatalf("merged type: %q, %v, %v", typ, ok, err) // and bogus is not looked at
	}
	if ok, err := plugin.Peek(root.Content[3], "name", &typ); ok || err != nil {
		t.Fatalf("absent key: %v, %v", ok, err)
	}
	_, err := plugin.Peek(root.Content[5], "type", &typ)
	if de, ok := errors.AsType[*plugin.DecodeError](err); !ok || de.Detail() != "type: want a string, got a list" || de.Line != 3 {
		t.Fatalf("type of the wrong kind: %v", err)
	}
	if _, err := plugin.Peek(root.Content[0], "type", &typ); err == nil {
		t.Fatal("Peek into a scalar: no error")
	}
}
