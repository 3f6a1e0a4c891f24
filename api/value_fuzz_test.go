package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzValueEncoding checks EncodeValue and DecodeValue, the pair that
// carries a value's bytes in the JSON API:
//
//   - any bytes survive EncodeValue, a JSON round trip of the KeyValue that
//     carries them, and DecodeValue (KeyValue.Bytes) unchanged;
//   - EncodeValue sends valid UTF-8 as itself and anything else as base64,
//     so the encoded string is always valid UTF-8 (JSON cannot carry
//     anything else);
//   - DecodeValue with no encoding gives the string's bytes; with base64 it
//     accepts exactly what standard base64 accepts, and what it decodes
//     encodes and decodes back to the same bytes.
func FuzzValueEncoding(f *testing.F) {
	f.Add([]byte("hello"), "aGVsbG8=", EncodingBase64)
	f.Add([]byte{}, "", "")
	f.Add([]byte("caf\xe9"), "Y2Fm6Q==", EncodingBase64)
	f.Add([]byte{0, 0xff, 0xfe, '\n'}, "not base64!", EncodingBase64)
	f.Add([]byte(`{"a":[1,2]}`), "aGVsbG8", EncodingBase64) // missing padding
	f.Add([]byte("ключ\u2028"), "plain text", "")
	f.Add([]byte("\xed\xa0\x80"), "AAAA\n", EncodingBase64) // a surrogate; a newline in base64
	f.Add([]byte("x"), "x", "BASE64")
	f.Fuzz(func(t *testing.T, raw []byte, value, encoding string) {
		v, enc := EncodeValue(raw)
		switch {
		case enc == "" && (!utf8.Valid(raw) || v != string(raw)):
			t.Fatalf("EncodeValue(%q) = %q, %q: sent as itself but not UTF-8 or changed", raw, v, enc)
		case enc == EncodingBase64 && utf8.Valid(raw):
			t.Fatalf("EncodeValue(%q) = %q, %q: valid UTF-8 sent as base64", raw, v, enc)
		case enc != "" && enc != EncodingBase64:
			t.Fatalf("EncodeValue(%q): unknown encoding %q", raw, enc)
		case !utf8.ValidString(v):
			t.Fatalf("EncodeValue(%q) = %q: not valid UTF-8, JSON would mangle it", raw, v)
		}
		got, err := DecodeValue(v, enc)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("DecodeValue(EncodeValue(%q)) = %q, %v", raw, got, err)
		}
		// Through the JSON of the API.
		b, err := json.Marshal(KeyValue{Key: "k", Value: v, Encoding: enc, ContentType: TypeBinary})
		if err != nil {
			t.Fatal(err)
		}
		var kv KeyValue
		if err := json.Unmarshal(b, &kv); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if got, err := kv.Bytes(); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%q through JSON %s and Bytes = %q, %v", raw, b, got, err)
		}

		// Decoding arbitrary input.
		switch encoding {
		case "":
			if got, err := DecodeValue(value, ""); err != nil || string(got) != value {
				t.Fatalf("DecodeValue(%q, \"\") = %q, %v; want the string itself", value, got, err)
			}
		case EncodingBase64:
			got, err := DecodeValue(value, encoding)
			want, werr := base64.StdEncoding.DecodeString(value)
			if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("DecodeValue(%q, base64) = %q, %v; standard base64 says %q, %v", value, got, err, want, werr)
			}
			if err != nil {
				return
			}
			v2, enc2 := EncodeValue(got)
			if back, err := DecodeValue(v2, enc2); err != nil || !bytes.Equal(back, got) {
				t.Fatalf("re-encoding %q: %q, %q decodes to %q, %v", got, v2, enc2, back, err)
			}
		default:
			// Not an encoding of the API: refused, never read as text.
			if got, err := DecodeValue(value, encoding); !errors.Is(err, ErrEncoding) || got != nil {
				t.Fatalf("DecodeValue(%q, %q) = %q, %v; want ErrEncoding", value, encoding, got, err)
			}
		}
	})
}
