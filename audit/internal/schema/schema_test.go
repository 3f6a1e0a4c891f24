package schema

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/configd/configd/audit/record"
)

func mustCompile(t *testing.T, prefix, doc string) *Schema {
	t.Helper()
	s, err := Compile(prefix, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jsonEntry(key, v string) Entry {
	return Entry{Key: key, Value: []byte(v), ContentType: record.TypeJSON}
}
func textEntry(key, v string) Entry {
	return Entry{Key: key, Value: []byte(v), ContentType: "text/plain"}
}

func TestTheViewIsTheTreeFormat(t *testing.T) {
	// The schema states the whole view: JSON and YAML values parsed, text
	// a string, a parent's own value under "_value".
	s := mustCompile(t, "app/", `{
		"type": "object", "required": ["limits", "db", "name", "ports"], "additionalProperties": false,
		"properties": {
			"limits": {"type": "object", "properties": {"rps": {"type": "integer", "const": 5}}},
			"ports": {"type": "array", "items": {"type": "integer"}},
			"db": {"type": "object", "required": ["_value", "host"], "additionalProperties": false,
			       "properties": {"_value": {"const": "parent"}, "host": {"const": "db1"}}},
			"name": {"const": "{\"not\": \"parsed\"}"}}}`)
	err := s.Check([]Entry{
		jsonEntry("app/limits", `{"rps": 5}`),
		{Key: "app/ports", Value: []byte("- 80\n- 443\n"), ContentType: record.TypeYAML},
		textEntry("app/db/host", "db1"),
		textEntry("app/db", "parent"),
		textEntry("app/name", `{"not": "parsed"}`),
	})
	if err != nil {
		t.Fatalf("the view is not the tree format: %v", err)
	}
}

func TestViolationNamesKeyPointerRuleAndPrefix(t *testing.T) {
	s := mustCompile(t, "app/", `{"properties": {"limits": {"properties": {"rps": {"type": "integer", "minimum": 1}}}}}`)
	err := s.Check([]Entry{jsonEntry("app/limits", `{"rps": -1}`), textEntry("app/other", "x")})
	var se *record.SchemaError
	if !errors.As(err, &se) || !errors.Is(err, record.ErrSchemaViolation) {
		t.Fatalf("Check = %v, want a *SchemaError", err)
	}
	if got, want := err.Error(), "app/limits: /rps: must be >= 1 (schema app/)"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	if err := s.Check([]Entry{jsonEntry("app/limits", `{"rps": 3}`)}); err != nil {
		t.Fatalf("a good view: %v", err)
	}
}

func TestViolationOfAKeysWholeValueAndOfAMissingMember(t *testing.T) {
	s := mustCompile(t, "app/", `{"required": ["name"], "properties": {"port": {"type": "string", "pattern": "^[0-9]+$"}}}`)
	err := s.Check([]Entry{textEntry("app/port", "http")})
	if err == nil || err.Error() != `app/: missing property 'name' (schema app/)` {
		t.Fatalf("Check = %v", err)
	}
	err = s.Check([]Entry{textEntry("app/name", "n"), textEntry("app/port", "http")})
	if err == nil || err.Error() != `app/port: must match the pattern "^[0-9]+$" (schema app/)` {
		t.Fatalf("Check = %v", err)
	}
	// A place of a nested object that no key holds.
	s = mustCompile(t, "app/", `{"properties": {"db": {"required": ["host"]}}}`)
	err = s.Check([]Entry{textEntry("app/db/port", "1")})
	if err == nil || err.Error() != `app/db: missing property 'host' (schema app/)` {
		t.Fatalf("Check = %v", err)
	}
}

func TestViolationOfAParentKeysOwnValue(t *testing.T) {
	s := mustCompile(t, "", `{"properties": {"app": {"properties": {"db": {"properties": {"_value": {"maxLength": 3}}}}}}}`)
	err := s.Check([]Entry{textEntry("app/db", "toolong"), textEntry("app/db/host", "h")})
	if err == nil || err.Error() != "app/db: must be at most 3 characters long (schema /)" {
		t.Fatalf("Check = %v", err)
	}
}

func TestMessagesNeverQuoteASecretsValue(t *testing.T) {
	const secret = "hunter2-very-secret"
	for _, sch := range []string{
		`{"properties": {"pw": {"minLength": 64}}}`,
		`{"properties": {"pw": {"pattern": "^x"}}}`,
		`{"properties": {"pw": {"format": "email"}}}`,
		`{"properties": {"pw": {"type": "integer"}}}`,
		`{"properties": {"pw": {"enum": ["a", "b"]}}}`,
		`{"properties": {"pw": {"not": {"type": "string"}}}}`,
		`{"properties": {"pw": {"const": "x"}}}`,
	} {
		s := mustCompile(t, "app/", sch)
		err := s.Check([]Entry{{Key: "app/pw", Value: []byte(secret), ContentType: "text/plain", Secret: true}})
		if err == nil {
			t.Fatalf("%s: no violation", sch)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("%s: the message quotes the secret: %v", sch, err)
		}
	}
	s := mustCompile(t, "app/", `{"properties": {"pw": {"additionalProperties": false}}}`)
	err := s.Check([]Entry{{Key: "app/pw", Value: []byte(`{"` + secret + `": 1}`), ContentType: record.TypeJSON, Secret: true}})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("additionalProperties on a secret: %v", err)
	}
}

func TestCompileRefusesAnInvalidSchemaWithTheCompilersError(t *testing.T) {
	for _, doc := range []string{`{"type": 5}`, `{"minimum": "one"}`, `not json`, `{"$ref": "file:///etc/passwd"}`, `{"$ref": "https://example.com/s.json"}`} {
		_, err := Compile("app/", []byte(doc))
		if !errors.Is(err, record.ErrBadRequest) {
			t.Fatalf("Compile(%s) = %v, want ErrBadRequest", doc, err)
		}
		if !strings.Contains(err.Error(), "schema app/") {
			t.Fatalf("Compile(%s) = %v: does not name the prefix", doc, err)
		}
	}
}

func TestCacheCompilesOnce(t *testing.T) {
	var c Cache
	a, err := c.Get("app/", []byte(`{"type": "object"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Get("app/", []byte(`{"type": "object"}`))
	if a != b {
		t.Fatal("the same schema was compiled twice")
	}
}

// BenchmarkCheck measures a schema's check of a view of 10 and 1,000 keys:
// the tree built and validated (what a covered write adds to its commit).
func BenchmarkCheck(b *testing.B) {
	s, err := Compile("app/", []byte(`{"properties": {"limits": {"properties": {"rps": {"type": "integer", "minimum": 1}}}}, "additionalProperties": {"type": "string"}}`))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10, 1000} {
		entries := []Entry{jsonEntry("app/limits", `{"rps": 5}`)}
		for i := range n - 1 {
			entries = append(entries, textEntry(fmt.Sprintf("app/k%05d", i), "value"))
		}
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Check(entries); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
