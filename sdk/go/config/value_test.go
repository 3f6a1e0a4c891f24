package config

import (
	"errors"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
)

// valueOf is the Value of one key holding raw with content type ct.
func valueOf(raw, ct string) Value {
	return Value{n: &node{e: newEntry([]byte(raw), ct, 1, 1, 1)}, rev: 7}
}

// trieOf builds a copy from key, value pairs (text/plain, or
// "application/json:..." / "application/yaml:..." for other types).
func trieOf(kvs ...string) *node {
	b := builder{root: &node{gen: 1}, gen: 1}
	for i := 0; i+1 < len(kvs); i += 2 {
		ct, v := api.TypeText, kvs[i+1]
		for _, t := range []string{api.TypeJSON, api.TypeYAML} {
			if rest, ok := strings.CutPrefix(v, t+":"); ok {
				ct, v = t, rest
			}
		}
		b.put(kvs[i], newEntry([]byte(v), ct, 1, 1, 1))
	}
	return b.root
}

func TestTypedGetters(t *testing.T) {
	for _, tc := range []struct {
		name, raw, ct string
		str           string
		i             int
		b             bool
		f             float64
		d             time.Duration
		list          []string
		m             map[string]string
	}{
		{name: "text", raw: "hello", ct: api.TypeText, str: "hello", i: -1, b: true, f: -1, d: -1, list: []string{"hello"}, m: nil},
		{name: "int text", raw: " 42 ", ct: api.TypeText, str: " 42 ", i: 42, b: true, f: 42, d: -1, list: []string{"42"}},
		{name: "integral float", raw: "42.0", ct: api.TypeText, str: "42.0", i: 42, b: true, f: 42, d: -1, list: []string{"42.0"}},
		{name: "float", raw: "2.5", ct: api.TypeText, str: "2.5", i: -1, b: true, f: 2.5, d: -1, list: []string{"2.5"}},
		{name: "bool", raw: "true", ct: api.TypeText, str: "true", i: -1, b: true, f: -1, d: -1, list: []string{"true"}},
		{name: "bool off", raw: "Off", ct: api.TypeText, str: "Off", i: -1, b: false, f: -1, d: -1, list: []string{"Off"}},
		{name: "zero", raw: "0", ct: api.TypeText, str: "0", i: 0, b: false, f: 0, d: 0, list: []string{"0"}},
		{name: "duration", raw: "1m30s", ct: api.TypeText, str: "1m30s", i: -1, b: true, f: -1, d: 90 * time.Second, list: []string{"1m30s"}},
		{name: "bare number is no duration", raw: "5", ct: api.TypeText, str: "5", i: 5, b: true, f: 5, d: -1, list: []string{"5"}},
		{name: "comma list", raw: "a, b,,c ", ct: api.TypeText, str: "a, b,,c ", i: -1, b: true, f: -1, d: -1, list: []string{"a", "b", "c"}},
		{name: "text map", raw: "a=1, b = 2", ct: api.TypeText, str: "a=1, b = 2", i: -1, b: true, f: -1, d: -1, list: []string{"a=1", "b = 2"}, m: map[string]string{"a": "1", "b": "2"}},
		{name: "empty", raw: "", ct: api.TypeText, str: "", i: -1, b: true, f: -1, d: -1, list: []string{}},
		{name: "json string", raw: `"5s"`, ct: api.TypeJSON, str: "5s", i: -1, b: true, f: -1, d: 5 * time.Second, list: []string{"5s"}},
		{name: "json number", raw: `12`, ct: api.TypeJSON, str: "12", i: 12, b: true, f: 12, d: -1, list: []string{"12"}},
		{name: "json bool", raw: `false`, ct: api.TypeJSON, str: "false", i: -1, b: false, f: -1, d: -1, list: []string{"false"}},
		{name: "json list", raw: `["x", 2, true]`, ct: api.TypeJSON, str: `["x", 2, true]`, i: -1, b: true, f: -1, d: -1, list: []string{"x", "2", "true"}},
		{name: "json object", raw: ` {"a":"x","n":1,"o":{"p":2}} `, ct: api.TypeJSON, str: `{"a":"x","n":1,"o":{"p":2}}`, i: -1, b: true, f: -1, d: -1, list: nil,
			m: map[string]string{"a": "x", "n": "1", "o": `{"p":2}`}},
		{name: "yaml scalar", raw: "250ms\n", ct: api.TypeYAML, str: "250ms", i: -1, b: true, f: -1, d: 250 * time.Millisecond, list: []string{"250ms"}},
		{name: "yaml int", raw: "7 # comment\n", ct: api.TypeYAML, str: "7", i: 7, b: true, f: 7, d: -1, list: []string{"7"}},
		{name: "yaml list", raw: "- a\n- 2\n", ct: api.TypeYAML, str: "- a\n- 2", i: -1, b: true, f: -1, d: -1, list: []string{"a", "2"}},
		{name: "yaml map", raw: "a: x\nb: 2\n", ct: api.TypeYAML, str: "a: x\nb: 2", i: -1, b: true, f: -1, d: -1, list: nil, m: map[string]string{"a": "x", "b": "2"}},
		{name: "binary", raw: "\x00\xff", ct: api.TypeBinary, str: "\x00\xff", i: -1, b: true, f: -1, d: -1, list: []string{"\x00\xff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := valueOf(tc.raw, tc.ct)
			if !v.Exists() || v.Rev() != 7 || v.ContentType() != tc.ct {
				t.Fatalf("Exists %v Rev %d ContentType %q", v.Exists(), v.Rev(), v.ContentType())
			}
			if got := v.String("def"); got != tc.str {
				t.Errorf("String = %q, want %q", got, tc.str)
			}
			if got := v.Int(-1); got != tc.i {
				t.Errorf("Int = %d, want %d", got, tc.i)
			}
			if got := v.Bool(true); got != tc.b {
				t.Errorf("Bool = %v, want %v", got, tc.b)
			}
			if got := v.Float64(-1); got != tc.f {
				t.Errorf("Float64 = %v, want %v", got, tc.f)
			}
			if got := v.Duration(-1); got != tc.d {
				t.Errorf("Duration = %v, want %v", got, tc.d)
			}
			if got := v.StringSlice(nil); !slices.Equal(got, tc.list) || (got == nil) != (tc.list == nil) {
				t.Errorf("StringSlice = %q, want %q", got, tc.list)
			}
			if got := v.StringMap(nil); !maps.Equal(got, tc.m) {
				t.Errorf("StringMap = %q, want %q", got, tc.m)
			}
			if got := string(v.Bytes()); got != tc.raw {
				t.Errorf("Bytes = %q, want %q", got, tc.raw)
			}
		})
	}
}

func TestMissingValueReturnsDefaults(t *testing.T) {
	for name, v := range map[string]Value{"zero": {}, "prefix without own value": {n: trieOf("a/b", "1").children["a"]}} {
		t.Run(name, func(t *testing.T) {
			if v.String("d") != "d" || v.Int(3) != 3 || !v.Bool(true) || v.Float64(1.5) != 1.5 || v.Duration(time.Second) != time.Second ||
				v.StringSlice([]string{"x"})[0] != "x" || v.Bytes() != nil || v.ContentType() != "" {
				t.Fatal("a getter did not return its default")
			}
		})
	}
	if (Value{}).Exists() {
		t.Fatal("zero Value exists")
	}
	var x struct{ A int }
	if err := (Value{}).Scan(&x); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Scan of nothing = %v, want ErrNotFound", err)
	}
}

func TestGettersReturnCopies(t *testing.T) {
	v := valueOf(`{"a":"1"}`, api.TypeJSON)
	v.Bytes()[0] = 'X'
	v.StringMap(nil)["a"] = "changed"
	if v.String("") != `{"a":"1"}` || v.StringMap(nil)["a"] != "1" {
		t.Fatal("modifying a returned copy changed the value")
	}
	l := valueOf("a,b", api.TypeText)
	l.StringSlice(nil)[0] = "changed"
	if l.StringSlice(nil)[0] != "a" {
		t.Fatal("modifying a returned slice changed the value")
	}
}

func TestStringMapOfAPrefixListsItsChildKeys(t *testing.T) {
	root := trieOf("labels/team", "core", "labels/tier", "1", "labels/deep/x", "y")
	got := Value{n: lookup(root, []string{"labels"})}.StringMap(nil)
	if !maps.Equal(got, map[string]string{"team": "core", "tier": "1"}) {
		t.Fatalf("StringMap = %v", got)
	}
}

func TestGetPathForms(t *testing.T) {
	root := trieOf("app/db/timeout", "3s")
	want := lookup(root, []string{"app", "db", "timeout"})
	if want == nil || want.e == nil {
		t.Fatal("segments do not find the key")
	}
	for _, path := range [][]string{{"app/db/timeout"}, {"app/db", "timeout"}, {"/app/db/timeout/"}, {"app", "", "db//timeout"}} {
		if got := lookup(root, path); got != want {
			t.Errorf("lookup(%q) does not find the key", path)
		}
	}
	for _, path := range [][]string{{"app/db/timeou"}, {"ap"}, {"app/db/timeout/x"}} {
		if got := lookup(root, path); got != nil {
			t.Errorf("lookup(%q) found a node", path)
		}
	}
}

type dbConfig struct {
	Host    string        `json:"host"`
	Port    int           `json:"port"`
	Timeout time.Duration `json:"timeout"`
	TLS     bool
	Ratio   float64
	Tags    []string
	Replica *struct{ Host string }
	Addr    net.IP
}

type appConfig struct {
	Name    string            `json:"name"`
	DB      dbConfig          `json:"db"`
	Limits  map[string]int    `json:"limits"`
	Labels  map[string]string `json:"labels"`
	Feature struct {
		Enabled bool `json:"enabled"`
		Value   any  `json:"_value"`
	} `json:"feature"`
	Ignored string `json:"-"`
	Extra   any    `json:"extra"`
}

func TestScanAPrefixIntoAStruct(t *testing.T) {
	root := trieOf(
		"app/name", "shop",
		"app/db/host", "db1",
		"app/db/port", "5432", // text, into an int
		"app/db/timeout", "5s", // text, into a Duration
		"app/db/tls", "yes",
		"app/db/ratio", "0.5",
		"app/db/tags", "a, b",
		"app/db/replica/host", "db2",
		"app/db/addr", "10.0.0.1", // TextUnmarshaler
		"app/limits", "application/json:{\"rps\": 100, \"burst\": \"20\"}",
		"app/labels", "application/yaml:team: core\ntier: 1\n",
		"app/feature", "on", // a key with keys under it
		"app/feature/enabled", "application/json:true",
		"app/Ignored", "x",
		"app/extra", "application/json:{\"n\": 1, \"l\": [1, \"two\"]}",
		"app/unknown", "ignored",
	)
	var cfg appConfig
	if err := (Value{n: lookupKey(root, "app")}).Scan(&cfg); err != nil {
		t.Fatal(err)
	}
	db := cfg.DB
	if cfg.Name != "shop" || db.Host != "db1" || db.Port != 5432 || db.Timeout != 5*time.Second || !db.TLS || db.Ratio != 0.5 ||
		!slices.Equal(db.Tags, []string{"a", "b"}) || db.Replica == nil || db.Replica.Host != "db2" || db.Addr.String() != "10.0.0.1" {
		t.Fatalf("db = %+v", db)
	}
	if !maps.Equal(cfg.Limits, map[string]int{"rps": 100, "burst": 20}) || !maps.Equal(cfg.Labels, map[string]string{"team": "core", "tier": "1"}) {
		t.Fatalf("limits %v labels %v", cfg.Limits, cfg.Labels)
	}
	if !cfg.Feature.Enabled || cfg.Feature.Value != "on" || cfg.Ignored != "" {
		t.Fatalf("feature %+v ignored %q", cfg.Feature, cfg.Ignored)
	}
	extra, _ := cfg.Extra.(map[string]any)
	if extra["n"] != 1.0 || len(extra["l"].([]any)) != 2 {
		t.Fatalf("extra = %#v", cfg.Extra)
	}
	// The copy handed to an interface is the caller's own.
	extra["n"] = "changed"
	var again appConfig
	(Value{n: lookupKey(root, "app")}).Scan(&again)
	if again.Extra.(map[string]any)["n"] != 1.0 {
		t.Fatal("modifying a scanned map changed the client's copy")
	}
}

func TestScanAKey(t *testing.T) {
	var d time.Duration
	if err := valueOf("1m", api.TypeText).Scan(&d); err != nil || d != time.Minute {
		t.Fatalf("duration: %v %v", d, err)
	}
	var n int
	if err := valueOf("5", api.TypeText).Scan(&n); err != nil || n != 5 {
		t.Fatalf("int: %v %v", n, err)
	}
	var s string
	if err := valueOf("5", api.TypeJSON).Scan(&s); err != nil || s != "5" {
		t.Fatalf("number into string: %q %v", s, err)
	}
	var l []int
	if err := valueOf("[1, 2, 3]", api.TypeJSON).Scan(&l); err != nil || !slices.Equal(l, []int{1, 2, 3}) {
		t.Fatalf("list: %v %v", l, err)
	}
	var big int64
	if err := valueOf("9007199254740993", api.TypeJSON).Scan(&big); err != nil || big != 9007199254740993 {
		t.Fatalf("64-bit integer: %d %v", big, err)
	}
	var m map[string]any
	if err := valueOf("a: [1, x]\n", api.TypeYAML).Scan(&m); err != nil || len(m["a"].([]any)) != 2 {
		t.Fatalf("yaml into map: %v %v", m, err)
	}
}

func TestScanErrorsNameTheMember(t *testing.T) {
	root := trieOf("app/db/port", "many")
	var cfg appConfig
	err := (Value{n: lookupKey(root, "app")}).Scan(&cfg)
	if err == nil || !strings.Contains(err.Error(), `"db/port"`) || !strings.Contains(err.Error(), `"many"`) {
		t.Fatalf("err = %v, want one naming db/port and its value", err)
	}
	var small int8
	if err := valueOf("300", api.TypeText).Scan(&small); err == nil {
		t.Fatal("300 fit in an int8")
	}
	if err := valueOf("1", api.TypeText).Scan(small); err == nil {
		t.Fatal("Scan into a non-pointer succeeded")
	}
	var st struct{ A int }
	if err := valueOf("[1]", api.TypeJSON).Scan(&st); err == nil {
		t.Fatal("a list decoded into a struct")
	}
}

// TestValueGetReadsUnderAPrefixAtItsRevision: a prefix's Value reads its keys as they were at
// its revision, after the client's copy moved on.
func TestValueGetReadsUnderAPrefixAtItsRevision(t *testing.T) {
	d := startConfigd(t)
	rev := d.put("app/db/host", "a", "app/db/port", "1")
	c := connect(t, []string{d.addr})
	waitRev(t, c, rev)
	app := c.Get("app")
	waitRev(t, c, d.put("app/db/host", "b"))
	if got := app.Get("db", "host").String(""); got != "a" {
		t.Fatalf("app.Get(db, host) = %q after a change, want the prefix's revision's a", got)
	}
	if got := app.Get("db/port"); got.Int(0) != 1 || got.Rev() != rev {
		t.Fatalf("app.Get(db/port) = %d at %d, want 1 at %d", got.Int(0), got.Rev(), rev)
	}
	if c.Get("app").Get("db", "host").String("") != "b" || app.Get("nope").Exists() || (Value{}).Get("x").Exists() {
		t.Fatal("Get of a newer prefix, of a missing key, or of a zero Value")
	}
}
