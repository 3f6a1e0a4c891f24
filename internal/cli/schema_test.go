package cli

import (
	"strings"
	"testing"
)

func TestSchemaRefusalExitsSixWithTheRuleAndWritesNothing(t *testing.T) {
	d := newConfigd(t)
	f := writeFile(t, `{"properties": {"limits": {"properties": {"rps": {"type": "integer", "minimum": 1}}}}}`)
	d.run("", "schema", "set", "app/", "--file", f, "--reason", "positive limits").want(t, 0, "rev 1\n", "")
	d.run("", "set", "app/limits", `{"rps": -1}`, "--type", "json").
		want(t, ExitSchema, "", "configctl: app/limits: /rps: must be >= 1 (schema app/)\n")
	d.run("", "get", "app/limits").want(t, ExitNotFound, "", "")
	d.run("", "set", "app/limits", `{"rps": 3}`, "--type", "json").want(t, 0, "rev 2\n", "")

	// A schema the state breaks: exit 6 naming the violation, unless --force.
	strict := writeFile(t, `{"properties": {"limits": {"properties": {"rps": {"minimum": 10}}}}}`)
	r := d.run("", "schema", "set", "app", "-f", strict)
	if r.code != ExitSchema || !strings.Contains(r.stderr, "app/limits: /rps: must be >= 10 (schema app/)") || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("schema the state breaks: exit %d, stderr %q", r.code, r.stderr)
	}
	d.run("", "schema", "set", "app", "-f", strict, "--force", "--reason", "tighten").want(t, 0, "rev 3\n", "")
	// An invalid schema: exit 1 with the compiler's message.
	bad := writeFile(t, `{"minimum": "ten"}`)
	r = d.run("", "schema", "set", "app", "-f", bad)
	if r.code != ExitError || !strings.Contains(r.stderr, "not a valid JSON Schema") {
		t.Fatalf("invalid schema: exit %d, stderr %q", r.code, r.stderr)
	}
	d.run("", "schema", "set", "a//b", "-f", strict).want(t, ExitUsage, "", "")

	if out := d.ok("schema", "get", "app/"); !strings.Contains(out, `"minimum": 10`) {
		t.Fatalf("schema get: %q", out)
	}
	d.run("", "schema", "list").want(t, 0, "~^PREFIX +MOD REV +VERSION +BYTES\napp/ +3 +2 +\\d+\n$", "")
	d.run("", "schema", "delete", "app/", "--reason", "gone").want(t, 0, "rev 4\n", "")
	d.run("", "schema", "get", "app/").want(t, ExitNotFound, "", "configctl: no schema for prefix app/\n")
	out := d.ok("schema", "history", "app/")
	for _, want := range []string{"gone", "forced (the current state may break the schema): tighten", "positive limits", "-/schema/app/"} {
		if !strings.Contains(out, want) {
			t.Fatalf("schema history lacks %q:\n%s", want, out)
		}
	}
}
