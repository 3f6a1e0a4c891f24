package textdiff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Why IndentJSON left a value as stored.
var (
	ErrTooDeep = fmt.Errorf("nested deeper than %d levels", MaxIndentDepth)
	ErrTooLong = fmt.Errorf("longer than %d bytes once indented", MaxIndentBytes)
	errInvalid = errors.New("not valid JSON")
)

// IndentJSON returns the JSON text v pretty-printed as json.Indent with
// two spaces would (its surrounding space trimmed, its key order kept), or
// ErrTooDeep, ErrTooLong or a syntax error. It stops at the first level or
// byte past MaxIndentDepth or MaxIndentBytes, so it never builds more than
// MaxIndentBytes.
func IndentJSON(v []byte) (string, error) {
	v = bytes.TrimSpace(v)
	if !json.Valid(v) {
		return "", errInvalid
	}
	var out strings.Builder
	out.Grow(min(2*len(v), MaxIndentBytes))
	depth := 0
	// open is set after '{' or '[': the newline waits for the next token,
	// so that empty ones stay {} and [].
	open := false
	newline := func(depth int) error {
		if out.Len()+1+2*depth > MaxIndentBytes {
			return ErrTooLong
		}
		out.WriteByte('\n')
		for range depth {
			out.WriteString("  ")
		}
		return nil
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if open && c != '}' && c != ']' {
			open = false
			if err := newline(depth); err != nil {
				return "", err
			}
		}
		switch c {
		case '"':
			// A string, copied as it is up to its closing quote.
			j := i + 1
			for ; v[j] != '"'; j++ {
				if v[j] == '\\' {
					j++
				}
			}
			if out.Len()+j+1-i > MaxIndentBytes {
				return "", ErrTooLong
			}
			out.Write(v[i : j+1])
			i = j
			continue
		case '{', '[':
			if depth++; depth > MaxIndentDepth {
				return "", ErrTooDeep
			}
			open = true
			out.WriteByte(c)
		case '}', ']':
			depth--
			if open {
				open = false
			} else if err := newline(depth); err != nil {
				return "", err
			}
			out.WriteByte(c)
		case ',':
			out.WriteByte(c)
			if err := newline(depth); err != nil {
				return "", err
			}
		case ':':
			out.WriteString(": ")
		default:
			out.WriteByte(c)
		}
		if out.Len() > MaxIndentBytes {
			return "", ErrTooLong
		}
	}
	return out.String(), nil
}
