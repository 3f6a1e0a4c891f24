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

func TestExportFormatRoundTripsEveryValue(t *testing.T) {
	var doc exportDoc
	doc.Rev, doc.Prefix = 42, "app/"
	types := []string{api.TypeText, api.TypeJSON, api.TypeYAML, api.TypeBinary}
	for i, v := range trickyValues {
		doc.Entries = append(doc.Entries, exportEntry{
			Key: "app/k" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Value: []byte(v), ContentType: types[i%len(types)],
		})
	}
	doc.Entries = append(doc.Entries,
		exportEntry{Key: "app/bytes", Value: []byte{0, 0xff, 0xfe}, ContentType: api.TypeBinary},
		exportEntry{Key: "app/latin1", Value: []byte("caf\xe9"), ContentType: api.TypeText},
	)
	out, err := encodeExport(doc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeExport("export.yaml", out)
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if back.Rev != doc.Rev || back.Prefix != doc.Prefix || len(back.Entries) != len(doc.Entries) {
		t.Fatalf("decoded rev %d prefix %q %d entries", back.Rev, back.Prefix, len(back.Entries))
	}
	for i, e := range doc.Entries {
		got := back.Entries[i]
		if got.Key != e.Key || !bytes.Equal(got.Value, e.Value) || got.ContentType != e.ContentType {
			t.Errorf("entry %d: got %q %q %s, want %q %q %s", i, got.Key, got.Value, got.ContentType, e.Key, e.Value, e.ContentType)
		}
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
		e := exportEntry{Key: key, Value: value, ContentType: types[int(typ)%len(types)]}
		out, err := encodeExport(exportDoc{Entries: []exportEntry{e}})
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeExport("fuzz", out)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, out)
		}
		if len(back.Entries) != 1 || back.Entries[0].Key != e.Key || !bytes.Equal(back.Entries[0].Value, e.Value) ||
			back.Entries[0].ContentType != e.ContentType {
			t.Fatalf("round trip of %+v gave %+v\n%s", e, back.Entries, out)
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
