package file

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/source"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// render prints what Flatten made of a document, one key per line in key
// order, then the warnings, or the error.
func render(snap map[string]source.Value, warnings []source.Warning, err error) string {
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
		return b.String()
	}
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s\t%s\t%q\n", k, snap[k].ContentType, snap[k].Data)
	}
	for _, w := range warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

func TestFlattenGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/flatten/*.*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		f, ok := FormatOf(in)
		if !ok {
			continue
		}
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := render(Flatten(data, f))
			golden := strings.TrimSuffix(in, filepath.Ext(in)) + filepath.Ext(in) + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./source -run TestFlattenGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Flatten(%s):\n--- got\n%s--- want (%s)\n%s", in, got, golden, want)
			}
		})
	}
	if n < 10 {
		t.Fatalf("found %d golden inputs, expected at least 10", n)
	}
}

func TestFlattenRefusesNonUTF8(t *testing.T) {
	for _, f := range []Format{FormatYAML, FormatJSON} {
		_, _, err := Flatten([]byte("{\"a\": \"caf\xe9\"}"), f)
		if !errors.Is(err, ErrDocument) || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("%s: err = %v, want ErrDocument about UTF-8", f, err)
		}
	}
}

func TestFlattenBoundsAliasExpansion(t *testing.T) {
	// The "billion laughs": nine levels of ten aliases each.
	var b strings.Builder
	b.WriteString("a0: &a0 [x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	_, _, err := Flatten([]byte(b.String()), FormatYAML)
	if !errors.Is(err, ErrDocument) || !strings.Contains(err.Error(), "aliases") {
		t.Fatalf("err = %v, want ErrDocument about aliases", err)
	}
}

func TestAddDocumentUnderBaseTakesScalarsAndLists(t *testing.T) {
	b := source.NewBuilder("app/", 0)
	if err := addDocument(b, "greeting.yaml", "greeting", []byte("hello\n"), FormatYAML); err != nil {
		t.Fatal(err)
	}
	if err := addDocument(b, "hosts.json", "hosts", []byte(`["a","b"]`), FormatJSON); err != nil {
		t.Fatal(err)
	}
	snap, w := b.Result()
	if len(w) != 0 {
		t.Fatalf("warnings: %v", w)
	}
	if got := snap["greeting"]; string(got.Data) != "hello" || got.ContentType != source.TypeText {
		t.Errorf("greeting = %+v", got)
	}
	if got := snap["hosts"]; string(got.Data) != `["a","b"]` || got.ContentType != source.TypeJSON {
		t.Errorf("hosts = %+v", got)
	}
}

// TestFlattenLeavesOutKeysThatLookLikeOthers: a document key with a
// zero-width or bidirectional-control character, or not in NFC, is left
// out with a warning that names it; the other keys are taken.
func TestFlattenLeavesOutKeysThatLookLikeOthers(t *testing.T) {
	doc := "{\"db\": {\"host\": \"a\", \"ho\u200bst\": \"b\", \"\u202eexe\": \"c\", \"cafe\u0301\": \"d\"}}"
	snap, w, err := Flatten([]byte(doc), FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap) != 1 || string(snap["db/host"].Data) != "a" {
		t.Errorf("snapshot %v, want only db/host", snap)
	}
	if len(w) != 3 {
		t.Fatalf("warnings %v, want one per refused key", w)
	}
	for _, x := range w {
		if !strings.Contains(x.Problem, "left out") || !strings.Contains(x.Problem, "invalid key") {
			t.Errorf("warning %q does not say the key was left out as invalid", x.Problem)
		}
	}
}

// FuzzFlatten checks that Flatten never panics and that what it returns
// keeps the Update contract: valid keys, UTF-8 text, valid JSON lists.
func FuzzFlatten(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/flatten/*.*")
	for _, s := range seeds {
		if _, ok := FormatOf(s); !ok {
			continue
		}
		data, err := os.ReadFile(s)
		if err == nil {
			f.Add(data, strings.HasSuffix(s, ".json"))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		format := FormatYAML
		if isJSON {
			format = FormatJSON
		}
		snap, _, err := Flatten(data, format)
		if err != nil {
			if !errors.Is(err, ErrDocument) {
				t.Fatalf("error does not wrap ErrDocument: %v", err)
			}
			return
		}
		for k, v := range snap {
			if err := keyspace.Validate(k); err != nil {
				t.Fatalf("invalid key in snapshot: %v", err)
			}
			switch v.ContentType {
			case source.TypeText:
				if !utf8.Valid(v.Data) {
					t.Fatalf("key %q: text value is not UTF-8", k)
				}
			case source.TypeJSON:
				if !jsonValid(v.Data) {
					t.Fatalf("key %q: JSON value %q does not parse", k, v.Data)
				}
			default:
				t.Fatalf("key %q: content type %q", k, v.ContentType)
			}
		}
	})
}
