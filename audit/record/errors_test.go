package record

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// TestNotFoundNamesTheKeyAndIsErrNotFound: the not-found error of a read,
// formatted only when read, says what fmt.Errorf("%w: %q") said.
func TestNotFoundNamesTheKeyAndIsErrNotFound(t *testing.T) {
	err := NotFound(`app/db "primary"`)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("errors.Is(%v, ErrNotFound) = false", err)
	}
	if got, want := err.Error(), `key not found: "app/db \"primary\""`; got != want {
		t.Fatalf("Error() = %s, want %s", got, want)
	}
	if errors.Is(err, ErrConflict) {
		t.Fatalf("errors.Is(%v, ErrConflict) = true", err)
	}
}

// TestNormalizeContentTypeTakesCanonicalTypesAsTheyAre: the canonical
// types skip the parse and come back as they are; others are still parsed.
func TestNormalizeContentTypeTakesCanonicalTypesAsTheyAre(t *testing.T) {
	for in, want := range map[string]string{
		"":                                TypeText,
		TypeText:                          TypeText,
		TypeJSON:                          TypeJSON,
		TypeYAML:                          TypeYAML,
		TypeBinary:                        TypeBinary,
		"Application/JSON; charset=utf-8": TypeJSON,
		"text/x-yaml":                     TypeYAML,
	} {
		got, err := NormalizeContentType(strings.Clone(in)) // as a request's copy would be
		if err != nil || got != want {
			t.Errorf("NormalizeContentType(%q) = %q, %v; want %q", in, got, err, want)
		}
		// The constant, not the request's copy, which a stored value
		// would otherwise keep alive.
		if unsafe.StringData(got) != unsafe.StringData(want) {
			t.Errorf("NormalizeContentType(%q) returned a copy, not the constant", in)
		}
	}
	if _, err := NormalizeContentType("image/png"); !errors.Is(err, ErrContentType) {
		t.Errorf("NormalizeContentType(image/png): %v, want ErrContentType", err)
	}
}
