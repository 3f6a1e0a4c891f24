package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
)

// A change file is the draft of a change request (configctl propose,
// docs/requests.md):
//
//	set:
//	  app/name: orders              # a text value
//	  app/limits:                   # a value with its type
//	    type: json                  # text, json, yaml, binary or a MIME type
//	    value: {rps: 100}           # a mapping or a list needs type json or yaml
//	  app/password:
//	    value: hunter2
//	    secret: true
//	delete:
//	  - app/old
//
// Each error names the file, the line and what is wrong.

// changeFileError is a change file that cannot be read (exit code 1).
type changeFileError struct {
	file string
	line int
	msg  string
}

func (e *changeFileError) Error() string {
	if e.line == 0 {
		return fmt.Sprintf("%s: %s", e.file, e.msg)
	}
	return fmt.Sprintf("%s: line %d: %s", e.file, e.line, e.msg)
}

// readChangeFile reads the change file at path into a transaction's ops.
func readChangeFile(path string) ([]api.TxnOp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseChangeFile(path, data)
}

func parseChangeFile(name string, data []byte) ([]api.TxnOp, error) {
	fail := func(n *yaml.Node, format string, args ...any) error {
		e := &changeFileError{file: name, msg: fmt.Sprintf(format, args...)}
		if n != nil {
			e.line = n.Line
		}
		return e
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fail(nil, "%s", te.Error())
		}
		// yaml.v3's messages start "yaml: line N: ...".
		return nil, &changeFileError{file: name, msg: err.Error()}
	}
	const want = "want set: (keys and their values) and/or delete: (a list of keys)"
	if len(doc.Content) == 0 {
		return nil, fail(nil, "the file is empty: %s", want)
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fail(top, "the file is not a mapping: %s", want)
	}
	var ops []api.TxnOp
	seen := map[string]int{} // key → line
	addKey := func(n *yaml.Node) error {
		if n.Kind != yaml.ScalarNode {
			return fail(n, "a key must be a string")
		}
		if err := keyspace.Validate(n.Value); err != nil {
			return fail(n, "%v", err)
		}
		if line, dup := seen[n.Value]; dup {
			return fail(n, "key %q is already changed at line %d", n.Value, line)
		}
		seen[n.Value] = n.Line
		return nil
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "set":
			if v.Kind != yaml.MappingNode {
				return nil, fail(v, "set: want a mapping of keys to values")
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				key, val := v.Content[j], v.Content[j+1]
				if err := addKey(key); err != nil {
					return nil, err
				}
				op, err := setOp(key.Value, val, fail)
				if err != nil {
					return nil, err
				}
				ops = append(ops, op)
			}
		case "delete":
			if v.Kind != yaml.SequenceNode {
				return nil, fail(v, "delete: want a list of keys")
			}
			for _, key := range v.Content {
				if err := addKey(key); err != nil {
					return nil, err
				}
				ops = append(ops, api.TxnOp{Op: "delete", Key: key.Value})
			}
		default:
			return nil, fail(k, "unknown field %q: %s", k.Value, want)
		}
	}
	if len(ops) == 0 {
		return nil, fail(top, "the file changes nothing: %s", want)
	}
	return ops, nil
}

// setOp is the put of key to the value node val: a scalar (a text value),
// or a mapping of value, type and secret.
func setOp(key string, val *yaml.Node, fail func(*yaml.Node, string, ...any) error) (api.TxnOp, error) {
	op := api.TxnOp{Op: "put", Key: key}
	switch {
	case val.Kind == yaml.ScalarNode && val.Tag == "!!null":
		return op, fail(val, "%s has no value (to delete a key, list it under delete:)", key)
	case val.Kind == yaml.ScalarNode:
		op.Value = val.Value
		return op, nil
	case val.Kind != yaml.MappingNode:
		return op, fail(val, "%s: want a value, or a mapping of value, type and secret", key)
	}
	var value *yaml.Node
	for i := 0; i+1 < len(val.Content); i += 2 {
		f, v := val.Content[i], val.Content[i+1]
		switch f.Value {
		case "value":
			value = v
		case "type":
			ct, err := parseType(v.Value)
			if err != nil || v.Kind != yaml.ScalarNode {
				return op, fail(v, "%s: type: %v", key, err)
			}
			op.ContentType = ct
		case "secret":
			if err := v.Decode(&op.Secret); err != nil {
				return op, fail(v, "%s: secret: want true or false", key)
			}
		default:
			return op, fail(f, "%s: unknown field %q (want value, type and secret; a structured value goes under value:)", key, f.Value)
		}
	}
	if value == nil || value.Kind == yaml.ScalarNode && value.Tag == "!!null" {
		return op, fail(val, "%s has no value: (to delete a key, list it under delete:)", key)
	}
	if value.Kind == yaml.ScalarNode {
		op.Value = value.Value
		return op, nil
	}
	switch op.ContentType {
	case api.TypeJSON:
		var v any
		if err := value.Decode(&v); err != nil {
			return op, fail(value, "%s: %v", key, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return op, fail(value, "%s: the value has no JSON form: %v", key, err)
		}
		op.Value = string(b)
	case api.TypeYAML:
		b, err := yaml.Marshal(value)
		if err != nil {
			return op, fail(value, "%s: %v", key, err)
		}
		op.Value = string(b)
	default:
		return op, fail(value, "%s: a mapping or a list is a value only with type json or yaml", key)
	}
	return op, nil
}
