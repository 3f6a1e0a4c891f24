package record

import (
	"encoding/json"
	"fmt"
	"mime"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Content types the store accepts.
const (
	TypeText   = "text/plain"
	TypeJSON   = "application/json"
	TypeYAML   = "application/yaml"
	TypeBinary = "application/octet-stream"
)

// NormalizeContentType returns the canonical form of ct: "" is text/plain,
// parameters such as "; charset=utf-8" are dropped, and the YAML aliases
// (text/yaml, application/x-yaml, text/x-yaml) become application/yaml.
// Any other type is ErrContentType.
func NormalizeContentType(ct string) (string, error) {
	// Already canonical: no parse, and the constant is returned, not ct,
	// so that a stored value does not keep the request's copy of its type
	// alive (a string per key for the GC to mark).
	switch ct {
	case "", TypeText:
		return TypeText, nil
	case TypeJSON:
		return TypeJSON, nil
	case TypeBinary:
		return TypeBinary, nil
	case TypeYAML:
		return TypeYAML, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrContentType, ct, err)
	}
	switch mt {
	case TypeText, TypeJSON, TypeBinary, TypeYAML:
		return NormalizeContentType(mt) // the constant
	case "application/x-yaml", "text/yaml", "text/x-yaml":
		return TypeYAML, nil
	}
	return "", fmt.Errorf("%w: %q (use text/plain, application/json, application/yaml or application/octet-stream)", ErrContentType, ct)
}

// CheckValue reports whether value, of key, is acceptable under the
// canonical content type ct (ErrInvalidValue when it does not parse).
func CheckValue(key string, value []byte, ct string) error {
	switch ct {
	case TypeText:
		if !utf8.Valid(value) {
			return fmt.Errorf("%w: key %q: text/plain value is not valid UTF-8 (use application/octet-stream for binary data)", ErrInvalidValue, key)
		}
	case TypeJSON:
		if !json.Valid(value) {
			var v any
			err := json.Unmarshal(value, &v)
			return fmt.Errorf("%w: key %q: value does not parse as JSON: %v", ErrInvalidValue, key, err)
		}
	case TypeYAML:
		var v any
		if err := yaml.Unmarshal(value, &v); err != nil {
			return fmt.Errorf("%w: key %q: value does not parse as YAML: %v", ErrInvalidValue, key, err)
		}
	}
	return nil
}
