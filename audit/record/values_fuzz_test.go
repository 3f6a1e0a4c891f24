package record

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
)

// FuzzValueContentType checks the store's content-type and value checks,
// NormalizeContentType and CheckValue:
//
//   - NormalizeContentType either refuses with ErrContentType or gives one
//     of the four canonical types, the same as api's, and is idempotent and
//     blind to the case of an ASCII media type;
//   - CheckValue accepts a text/plain value exactly when it is UTF-8, an
//     application/json value exactly when it is JSON, any binary value, and
//     refuses with ErrInvalidValue (never a panic);
//   - a YAML value it accepts converts, through api.JSONCompatible (what
//     the tree format and the SDK use), to something encoding/json can
//     marshal.
func FuzzValueContentType(f *testing.F) {
	for _, s := range []struct{ ct, value string }{
		{"", "plain"},
		{"text/plain; charset=utf-8", "caf\xc3\xa9"},
		{"text/plain", "caf\xe9"},
		{"application/json", `{"a":[1,2.5,"x",null,true]}`},
		{"application/json", `{"a":`},
		{"APPLICATION/JSON", "12345678901234567890"},
		{"application/yaml", "a: 1\nb: [x, y]\n"},
		{"text/yaml", "a: &x 1\nb: *x\n"},
		{"application/x-yaml", "? [a, b]\n: c\n"},
		{"text/x-yaml", "t: 2001-12-14t21:59:43.10-05:00\nbin: !!binary aGVsbG8=\nn: .nan\ni: -.inf\n"},
		{"application/yaml", "{1: a, null: b, 2.5: c, true: d}"},
		{"application/yaml", "a: [unclosed"},
		{"application/octet-stream", "\x00\xff"},
		{"application/xml", "<a/>"},
		{"text/plain;", "x"},
		{"text/plain; charset", "x"},
		{"/", ""},
		{"application/x-www-form-urlencoded", "a=b"},
	} {
		f.Add(s.ct, []byte(s.value))
	}
	f.Fuzz(func(t *testing.T, ct string, value []byte) {
		canon, err := NormalizeContentType(ct)
		if err != nil {
			if !errors.Is(err, ErrContentType) {
				t.Fatalf("NormalizeContentType(%q) = %v: does not wrap ErrContentType", ct, err)
			}
		} else {
			switch canon {
			case TypeText, TypeJSON, TypeYAML, TypeBinary:
			default:
				t.Fatalf("NormalizeContentType(%q) = %q: not a canonical type", ct, canon)
			}
			if again, err := NormalizeContentType(canon); err != nil || again != canon {
				t.Fatalf("NormalizeContentType is not idempotent on %q: %q, %v", canon, again, err)
			}
			if isASCII(ct) {
				mt, params, _ := strings.Cut(ct, ";")
				upper := strings.ToUpper(mt)
				if params != "" || strings.Contains(ct, ";") {
					upper += ";" + params
				}
				if got, err := NormalizeContentType(upper); err != nil || got != canon {
					t.Fatalf("NormalizeContentType(%q) = %q but NormalizeContentType(%q) = %q, %v", ct, canon, upper, got, err)
				}
			}
		}
		for _, typ := range []string{TypeText, TypeJSON, TypeYAML, TypeBinary} {
			err := CheckValue("k", value, typ)
			if err != nil && !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("CheckValue(%q, %s) = %v: does not wrap ErrInvalidValue", value, typ, err)
			}
			var want bool
			switch typ {
			case TypeText:
				want = utf8.Valid(value)
			case TypeJSON:
				want = json.Valid(value)
			case TypeBinary:
				want = true
			case TypeYAML:
				if err != nil {
					continue
				}
				var v any
				if err := yaml.Unmarshal(value, &v); err != nil {
					t.Fatalf("CheckValue accepted YAML %q that does not unmarshal: %v", value, err)
				}
				if b, err := json.Marshal(api.JSONCompatible(v)); err != nil {
					t.Fatalf("YAML %q, accepted, does not convert to JSON: %v", value, err)
				} else if !json.Valid(b) {
					t.Fatalf("YAML %q converts to invalid JSON %q", value, b)
				}
				continue
			}
			if (err == nil) != want {
				t.Fatalf("CheckValue(%q, %s) = %v, want accepted=%v", value, typ, err, want)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// The canonical types of the store and of the API must be the same
// strings: the server hands one to the other unchanged.
func TestContentTypeConstantsMatchAPI(t *testing.T) {
	for _, c := range [][2]string{{TypeText, api.TypeText}, {TypeJSON, api.TypeJSON}, {TypeYAML, api.TypeYAML}, {TypeBinary, api.TypeBinary}} {
		if c[0] != c[1] {
			t.Errorf("audit %q != api %q", c[0], c[1])
		}
	}
}
