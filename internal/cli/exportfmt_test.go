package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
)

// trickyValues are texts that YAML would read differently if written
// naively: numbers, booleans, nulls, indicators, whitespace at the edges,
// line ends of every kind, and characters YAML cannot print.
var trickyValues = []string{
	"", " ", "5s", "8080", "0x1F", "1e3", "true", "yes", "no", "null", "~", "-", "- a", "? x", ": y",
	"#comment", "a # b", "'quoted'", `"dq"`, "&anchor", "*alias", "!tag", "%TAG", "@at", "`tick",
	"{a: 1}", "[1, 2]", "---", "...", "  lead", "trail  ", "tab\there", "\ttab",
	"a\nb", "a\nb\n", "a\nb\n\n\n", "\nlead", "\n", "\n\n", "a \nb", "  indented\nfirst", "x\n  y\n",
	"a\r\nb\r\n", "cr\ronly", "nul\x00", "bell\a", "esc\x1b[0m", "del\x7f", "bom\ufeff", "ls\u2028ps\u2029",
	"nel\u0085", "héllo 世界 🙂", strings.Repeat("long ", 100), strings.Repeat("line\n", 50),
}

// encoders are the export's two formats.
var encoders = map[string]func(exportDoc) ([]byte, error){"yaml": encodeExport, "json": encodeExportJSON}

func TestExportFormatRoundTripsEveryValue(t *testing.T) {
	var doc exportDoc
	doc.Rev, doc.Prefix = 42, "app/"
	types := []string{api.TypeText, api.TypeJSON, api.TypeYAML, api.TypeBinary}
	for i, v := range trickyValues {
		doc.Entries = append(doc.Entries, exportEntry{
			Key: "app/k" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Value: []byte(v), ContentType: types[i%len(types)],
			Secret: i%3 == 0,
		})
	}
	doc.Entries = append(doc.Entries,
		exportEntry{Key: "app/bytes", Value: []byte{0, 0xff, 0xfe}, ContentType: api.TypeBinary},
		exportEntry{Key: "app/latin1", Value: []byte("caf\xe9"), ContentType: api.TypeText},
		exportEntry{Key: "app/secret-bytes", Value: []byte{0xff}, ContentType: api.TypeText, Secret: true},
		exportEntry{Key: "app/secret-left-out", ContentType: api.TypeText, Secret: true, LeftOut: true},
		exportEntry{Key: "app/secret-json-left-out", ContentType: api.TypeJSON, Secret: true, LeftOut: true},
	)
	for name, encode := range encoders {
		t.Run(name, func(t *testing.T) {
			out, err := encode(doc)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decodeExport("export."+name, out)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, out)
			}
			if back.Rev != doc.Rev || back.Prefix != doc.Prefix || len(back.Entries) != len(doc.Entries) {
				t.Fatalf("decoded rev %d prefix %q %d entries", back.Rev, back.Prefix, len(back.Entries))
			}
			for i, e := range doc.Entries {
				got := back.Entries[i]
				if got.Key != e.Key || !bytes.Equal(got.Value, e.Value) || got.ContentType != e.ContentType ||
					got.Secret != e.Secret || got.LeftOut != e.LeftOut {
					t.Errorf("entry %d: got %+v, want %+v", i, got, e)
				}
			}
		})
	}
}

// TestExportMarksSecrets: a secret's entry says "secret: true", with its
// value or without; the other entries are written as before secrets
// existed, so that an older apply still reads them.
func TestExportMarksSecrets(t *testing.T) {
	doc := exportDoc{Rev: 7, Prefix: "app/", Entries: []exportEntry{
		{Key: "app/api/key", Value: []byte("s3kr1t"), ContentType: api.TypeText, Secret: true},
		{Key: "app/cert", ContentType: "application/x-pem-file", Secret: true, LeftOut: true},
		{Key: "app/db/password", ContentType: api.TypeText, Secret: true, LeftOut: true},
		{Key: "app/db/port", Value: []byte("5432"), ContentType: api.TypeText},
		{Key: "app/features", Value: []byte(`{"beta": true}`), ContentType: api.TypeJSON},
	}}
	for name, want := range map[string]string{
		"yaml": `# configd export of app/ at rev 7; load it with: configctl apply -f FILE
# 2 secret key(s) without their values: apply leaves them as they are; configctl export --with-secrets includes them
rev: 7
prefix: app/
keys:
  app/api/key:
    secret: true
    value: s3kr1t
  app/cert:
    secret: true # value left out
    type: application/x-pem-file
  app/db/password:
    secret: true # value left out
  app/db/port: "5432"
  app/features:
    type: application/json
    value: '{"beta": true}'
`,
		"json": `{
  "rev": 7,
  "prefix": "app/",
  "keys": {
    "app/api/key": {"secret":true,"value":"s3kr1t"},
    "app/cert": {"secret":true,"type":"application/x-pem-file"},
    "app/db/password": {"secret":true},
    "app/db/port": "5432",
    "app/features": {"type":"application/json","value":"{\"beta\": true}"}
  }
}
`,
	} {
		out, err := encoders[name](doc)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != want {
			t.Errorf("%s export:\n%s\nwant:\n%s", name, out, want)
		}
	}
	out, err := encodeExportJSON(exportDoc{})
	if err != nil || string(out) != "{\n  \"rev\": 0,\n  \"prefix\": \"\",\n  \"keys\": {}\n}\n" {
		t.Errorf("an empty JSON export: %q, %v", out, err)
	}
	// With every value in it, the file says it holds secrets.
	doc.Entries = doc.Entries[:1]
	if out, _ := encodeExport(doc); !strings.Contains(string(out), "# holds secret values in clear text") {
		t.Errorf("an export with a secret's value does not say so:\n%s", out)
	}
}

func TestExportOfASecret(t *testing.T) {
	lr := api.ListResponse{Rev: 3, Prefix: "app/", KVs: []api.KeyValue{
		{Key: "app/plain", Value: "v", ContentType: api.TypeText},
		{Key: "app/secret", Value: "s3kr1t", ContentType: api.TypeText, Secret: true},
		{Key: "app/withheld", ContentType: api.TypeText, Secret: true, Hash: "hmac-sha256:0011223344556677", Length: 6},
	}}
	doc, err := exportOf(lr, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []exportEntry{
		{Key: "app/plain", Value: []byte("v"), ContentType: api.TypeText},
		{Key: "app/secret", ContentType: api.TypeText, Secret: true, LeftOut: true},
		{Key: "app/withheld", ContentType: api.TypeText, Secret: true, LeftOut: true},
	} {
		if got := doc.Entries[i]; got.Key != want.Key || !bytes.Equal(got.Value, want.Value) || got.Secret != want.Secret || got.LeftOut != want.LeftOut {
			t.Errorf("without --with-secrets: entry %d = %+v, want %+v", i, got, want)
		}
	}
	// Asked for the values, a value configd withheld is an error, not a
	// file that silently lacks it.
	if _, err := exportOf(lr, true); err == nil || !strings.Contains(err.Error(), `withheld the value of the secret key "app/withheld"`) {
		t.Errorf("--with-secrets with a withheld value: %v", err)
	}
	lr.KVs = lr.KVs[:2]
	doc, err = exportOf(lr, true)
	if err != nil || string(doc.Entries[1].Value) != "s3kr1t" || !doc.Entries[1].Secret || doc.Entries[1].LeftOut {
		t.Errorf("--with-secrets: %+v, %v", doc.Entries, err)
	}
}

func TestApplyReadsTheSecretMark(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"keys:\n  app/k:\n    secret: yes\n    value: v\n", `secret: want true or false, got "yes"`},
		{"keys:\n  app/k:\n    secret: false\n", "no value field"},
		{"keys:\n  app/k:\n    type: json\n", "no value field"},
		{`{"keys": {"app/k": {"secret": "true", "value": "v"}}}`, "secret: want true or false"},
		{`{"keys": {"app/k": {"secret": true, "value": "v", "extra": 1}}}`, `unknown field "extra"`},
	} {
		if _, err := decodeExport("f", []byte(tc.file)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.file, err, tc.want)
		}
	}
	doc, err := decodeExport("f", []byte("keys:\n  app/k:\n    secret: false\n    value: v\n"))
	if err != nil || doc.Entries[0].Secret || string(doc.Entries[0].Value) != "v" {
		t.Errorf("secret: false: %+v, %v", doc.Entries, err)
	}
}

func TestExportFormatIsReadable(t *testing.T) {
	out, err := encodeExport(exportDoc{Rev: 7, Prefix: "app/", Entries: []exportEntry{
		{Key: "app/db/hosts", Value: []byte("db1\ndb2\n"), ContentType: api.TypeText},
		{Key: "app/db/port", Value: []byte("5432"), ContentType: api.TypeText},
		{Key: "app/db/timeout", Value: []byte("5s"), ContentType: api.TypeText},
		{Key: "app/features", Value: []byte(`{"beta": true}`), ContentType: api.TypeJSON},
		{Key: "app/logo", Value: []byte{0x89, 'P', 'N', 'G'}, ContentType: api.TypeBinary},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `# configd export of app/ at rev 7; load it with: configctl apply -f FILE
rev: 7
prefix: app/
keys:
  app/db/hosts: |
    db1
    db2
  app/db/port: "5432"
  app/db/timeout: 5s
  app/features:
    type: application/json
    value: '{"beta": true}'
  app/logo:
    type: application/octet-stream
    encoding: base64
    value: iVBORw==
`
	if string(out) != want {
		t.Fatalf("export:\n%s\nwant:\n%s", out, want)
	}
}

func FuzzExportRoundTrip(f *testing.F) {
	for _, v := range trickyValues {
		f.Add("app/k", []byte(v), uint8(0))
	}
	f.Add("a b/ü", []byte{0xff}, uint8(3))
	f.Fuzz(func(t *testing.T, key string, value []byte, typ uint8) {
		if err := keyspace.Validate(key); err != nil {
			return
		}
		types := []string{api.TypeText, api.TypeJSON, api.TypeYAML, api.TypeBinary}
		e := exportEntry{Key: key, Value: value, ContentType: types[int(typ)%len(types)], Secret: typ&4 != 0}
		for name, encode := range encoders {
			out, err := encode(exportDoc{Entries: []exportEntry{e}})
			if err != nil {
				t.Fatal(err)
			}
			back, err := decodeExport("fuzz", out)
			if err != nil {
				t.Fatalf("%s decode: %v\n%s", name, err, out)
			}
			if len(back.Entries) != 1 || back.Entries[0].Key != e.Key || !bytes.Equal(back.Entries[0].Value, e.Value) ||
				back.Entries[0].ContentType != e.ContentType || back.Entries[0].Secret != e.Secret {
				t.Fatalf("%s round trip of %+v gave %+v\n%s", name, e, back.Entries, out)
			}
		}
	})
}

func TestTableValueQuotesOnlyWhatIsAmbiguous(t *testing.T) {
	tests := []struct {
		kv   api.KeyValue
		want string
	}{
		{api.KeyValue{Value: "5s"}, "5s"},
		{api.KeyValue{Value: `{"a": 1}`}, `{"a": 1}`},
		{api.KeyValue{Value: ""}, `""`},
		{api.KeyValue{Value: " padded"}, `" padded"`},
		{api.KeyValue{Value: "a\nb"}, `"a\nb"`},
		{api.KeyValue{Value: `"quoted"`}, `"\"quoted\""`},
		{api.KeyValue{Value: "AAE=", Encoding: api.EncodingBase64}, "<2 bytes>"},
		{api.KeyValue{Value: "abc", ContentType: api.TypeBinary}, "<3 bytes>"},
		{api.KeyValue{Value: strings.Repeat("x", 50)}, strings.Repeat("x", 37) + "..."},
	}
	for _, tt := range tests {
		if got := tableValue(&tt.kv, 40); got != tt.want {
			t.Errorf("tableValue(%q) = %q, want %q", tt.kv.Value, got, tt.want)
		}
	}
}
