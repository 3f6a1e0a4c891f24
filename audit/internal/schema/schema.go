// Package schema is the store's JSON Schemas: one per key prefix, compiled
// with github.com/santhosh-tekuri/jsonschema/v6 and checked against the
// merged effective view under the prefix (docs/schemas.md).
//
// The view under a prefix is one JSON document, the tree format of
// GET /v1/kv?prefix=P&format=tree and of the SDK's Get(prefix).Scan
// (api.Tree): an object in which each key is a path of members (under
// app/, key app/db/host is {"db": {"host": …}}); a JSON value parsed
// (numbers keep their precision), a YAML value converted to JSON, any
// other value a JSON string. A key that is both a value and the parent of
// other keys (app/db and app/db/host) is an object holding its children,
// its own value the member "_value" (api.TreeValueKey):
// {"db": {"_value": <app/db>, "host": <app/db/host>}}.
//
// A violation is a *record.SchemaError naming the key whose value breaks
// the rule and the JSON pointer inside that value; its rule is worded from
// the schema alone, so a message never quotes a value, a secret's included.
package schema

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit/record"
)

// resource is the URL a schema is compiled under. A $ref outside the
// schema itself (another file, a URL) is refused: no loader is given.
const resource = "urn:configd:schema"

// Schema is a prefix's compiled JSON Schema. It is safe for concurrent use.
type Schema struct {
	prefix string
	sch    *jsonschema.Schema
}

// Compile compiles doc, the JSON Schema of the canonical prefix. An error
// wraps record.ErrBadRequest and carries the compiler's message.
func Compile(prefix string, doc []byte) (*Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("%w: schema %s: not JSON: %v", record.ErrBadRequest, Display(prefix), err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(jsonschema.SchemeURLLoader{})
	if err := c.AddResource(resource, v); err != nil {
		return nil, fmt.Errorf("%w: schema %s: %v", record.ErrBadRequest, Display(prefix), err)
	}
	sch, err := c.Compile(resource)
	if err != nil {
		return nil, fmt.Errorf("%w: schema %s is not a valid JSON Schema: %s", record.ErrBadRequest, Display(prefix), oneLine(err.Error()))
	}
	return &Schema{prefix: prefix, sch: sch}, nil
}

// Display is how a canonical prefix is named in messages: "/" for the
// whole keyspace.
func Display(prefix string) string {
	if prefix == "" {
		return "/"
	}
	return prefix
}

// Prefix is the schema's canonical prefix.
func (s *Schema) Prefix() string { return s.prefix }

// Entry is one key of a view: its value as the view's reader sees it.
type Entry struct {
	Key         string
	Value       []byte
	ContentType string
	Secret      bool
}

// Check validates the view made of entries, every key under the schema's
// prefix (in any order), and returns nil or the first violation, a
// *record.SchemaError.
func (s *Schema) Check(entries []Entry) error {
	leaves := make([]api.TreeLeaf, len(entries))
	for i, e := range entries {
		leaves[i] = api.TreeLeaf{Key: e.Key, Value: api.TreeValue(e.Value, e.ContentType)}
	}
	err := s.sch.Validate(api.Tree(s.prefix, leaves))
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("schema %s: %w", Display(s.prefix), err)
	}
	leaf := first(ve)
	key, ptr, secret := paths(s.prefix, entries).locate(s.prefix, leaf.InstanceLocation)
	return &record.SchemaError{Prefix: s.prefix, Key: key, Pointer: ptr, Rule: rule(leaf.ErrorKind, secret)}
}

// node is a place of the view: a key (has), the keys below it (kids), or
// both; it knows the keys' paths, not their values.
type node struct {
	has    bool
	secret bool
	kids   map[string]*node
}

// paths is the view's tree of keys.
func paths(prefix string, entries []Entry) *node {
	root := &node{}
	for _, e := range entries {
		n := root
		for _, seg := range strings.Split(strings.TrimPrefix(e.Key, prefix), "/") {
			if n.kids == nil {
				n.kids = map[string]*node{}
			}
			k := n.kids[seg]
			if k == nil {
				k = &node{}
				n.kids[seg] = k
			}
			n = k
		}
		n.has, n.secret = true, e.Secret
	}
	return root
}

// locate maps a place of the view (a JSON pointer's tokens) to the key
// that holds it, the pointer inside that key's value, and whether the key
// is secret. A place that no key holds (an object of the view, a missing
// member's parent) is named by its path below the prefix.
func (root *node) locate(prefix string, loc []string) (key, ptr string, secret bool) {
	n, i, path := root, 0, prefix
	for i < len(loc) && len(n.kids) > 0 {
		k := n.kids[loc[i]]
		if k == nil {
			if loc[i] == api.TreeValueKey && n.has {
				i++ // the key's own value, beside its children
			}
			break
		}
		if path != prefix {
			path += "/"
		}
		path += loc[i]
		n = k
		i++
	}
	if path == "" {
		path = "/"
	}
	return path, pointer(loc[i:]), n.has && n.secret
}

// pointer is tokens as a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return sb.String()
}

// first is the first violation at the bottom of e's causes.
func first(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(e.Causes) > 0 {
		e = e.Causes[0]
	}
	return e
}

var printer = message.NewPrinter(language.English)

// rule words the rule a value broke from the schema alone: never the
// value. A rule this table does not word is named by the library's message
// (which states the rule), or for a secret key by its keyword alone.
func rule(k jsonschema.ErrorKind, secret bool) string {
	switch k := k.(type) {
	case *kind.Type:
		return "must be " + strings.Join(k.Want, " or ")
	case *kind.Minimum:
		return "must be >= " + num(k.Want)
	case *kind.Maximum:
		return "must be <= " + num(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be > " + num(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be < " + num(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + num(k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long", k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items", k.Want)
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d members", k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %d members", k.Want)
	case *kind.Pattern:
		return "must match the pattern " + strconv.Quote(k.Want)
	case *kind.Format:
		return "must be a valid " + k.Want
	case *kind.UniqueItems:
		return "must not repeat an item"
	case *kind.Enum, *kind.Const, *kind.Required, *kind.DependentRequired, *kind.Dependency:
		// The schema's own values and member names.
		return strings.TrimPrefix(k.LocalizedString(printer), "value ")
	case *kind.AdditionalProperties:
		if secret {
			return "has a member the schema does not allow"
		}
		return k.LocalizedString(printer)
	case *kind.FalseSchema:
		return "is not allowed"
	}
	if secret {
		return fmt.Sprintf("breaks the rule %q (details withheld: the key is secret)", strings.Join(k.KeywordPath(), "/"))
	}
	return k.LocalizedString(printer)
}

// num writes a number of a schema.
func num(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Cache keeps compiled schemas by prefix and content, so that a schema is
// compiled once however many writes it checks. It is safe for concurrent
// use.
type Cache struct {
	mu sync.Mutex
	m  map[string]*Schema // by prefix + "\x00" + the schema's text
}

// maxCached bounds the cache; it is emptied when full (schemas change
// rarely).
const maxCached = 256

// Get returns the compiled schema of prefix whose text is doc.
func (c *Cache) Get(prefix string, doc []byte) (*Schema, error) {
	id := prefix + "\x00" + string(doc)
	c.mu.Lock()
	s := c.m[id]
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := Compile(prefix, doc)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[string]*Schema{}
	}
	c.m[id] = s
	c.mu.Unlock()
	return s, nil
}
