package web

import (
	"errors"
	"fmt"

	"github.com/configd/configd/keyspace"
)

var (
	errInvalidKey = keyspace.ErrInvalidKey
	// errBadInput: a malformed query parameter or form field.
	errBadInput = errors.New("bad input")
)

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadInput, fmt.Sprintf(format, args...))
}

func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
