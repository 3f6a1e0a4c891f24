package setting_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/setting"
)

// config is a program's configuration, with a setting of every type.
type config struct {
	Addr     string
	File     string
	Size     int
	Rate     float64
	Wait     time.Duration
	On       bool
	Peers    []string
	Labels   map[string]string
	Secret   string
	Items    []string // only the file sets it, decoded by decodeItems
	CertFile string
	KeyFile  string
}

func defaults() config { return config{Addr: "127.0.0.1:1", Size: 10, Wait: time.Second} }

func (c *config) settings() setting.Table {
	return setting.Table{
		setting.String(&c.Addr, "addr", "host:port", func(s string) error {
			if !strings.Contains(s, ":") {
				return errors.New(s + ": want host:port")
			}
			return nil
		}).Expect("host:port"),
		setting.File(&c.File, "file", "a file"),
		setting.Int(&c.Size, "size", "a size", setting.AtLeast(1)),
		setting.Float(&c.Rate, "rate", "a rate", setting.AtLeast(0.0)),
		setting.Duration(&c.Wait, "wait", "a wait", setting.MoreThan(time.Duration(0))),
		setting.Bool(&c.On, "on", "a switch").WithKey("enabled"),
		setting.List(&c.Peers, "peers", "peers").WithKey("cluster.peers"),
		setting.Map(&c.Labels, "labels", "labels").WithKey("cluster.labels"),
		setting.String(&c.Secret, "secret", "from the environment only").NoFlag().NoFile(),
		setting.YAML(&c.Items, "items", "items", decodeItems),
		setting.File(&c.CertFile, "cert", "a certificate").WithKey("tls.cert").Also(func() error {
			if (c.CertFile == "") != (c.KeyFile == "") {
				return errors.New("the certificate and the key go together")
			}
			return nil
		}),
		setting.File(&c.KeyFile, "key", "its key").WithKey("tls.key"),
	}.Env("APP_").Keys()
}

func decodeItems(n *yaml.Node) ([]string, error) {
	var out []string
	if err := n.Decode(&out); err != nil {
		return nil, errors.New("items: want a list of strings")
	}
	return out, nil
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// load loads c's settings from file (when not ""), env and args, as a program does.
func load(t *testing.T, c *config, file string, envs map[string]string, args ...string) error {
	t.Helper()
	st := c.settings()
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := st.AddFlags(fs, setting.ParseOnLoad)
	if err := fs.Parse(args); err != nil {
		return err
	}
	src := setting.Sources{Env: env(envs), Flags: flags}
	if file != "" {
		src.File = filepath.Join(t.TempDir(), "app.yaml")
		if err := os.WriteFile(src.File, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Load(src); err != nil {
		return err
	}
	return st.Check()
}

func TestPrecedenceFlagOverEnvOverFileOverDefault(t *testing.T) {
	file := "addr: file:1\nsize: 20\nwait: 2s\nenabled: true\ncluster:\n  peers: [a:1, b:1]\n  labels: {zone: a}\ntls:\n  cert: c.pem\n  key: k.pem\nitems: [x, y]\n"
	for _, tc := range []struct {
		name string
		file string
		env  map[string]string
		args []string
		want func(c *config)
	}{
		{name: "defaults", want: func(*config) {}},
		{name: "file", file: file, want: func(c *config) {
			c.Addr, c.Size, c.Wait, c.On, c.Peers, c.Labels = "file:1", 20, 2*time.Second, true, []string{"a:1", "b:1"}, map[string]string{"zone": "a"}
			c.CertFile, c.KeyFile, c.Items = "c.pem", "k.pem", []string{"x", "y"}
		}},
		{name: "env over file", file: "addr: file:1\nsize: 20\n", env: map[string]string{"APP_ADDR": "env:1", "APP_PEERS": "e:1, ,e:2"},
			want: func(c *config) { c.Addr, c.Size, c.Peers = "env:1", 20, []string{"e:1", "e:2"} }},
		{name: "flag over env over file", file: "addr: file:1\nsize: 20\nwait: 2s\n",
			env:  map[string]string{"APP_ADDR": "env:1", "APP_SIZE": "30"},
			args: []string{"--addr", "flag:1", "--on", "--labels=a=1,b=2"},
			want: func(c *config) {
				c.Addr, c.Size, c.Wait, c.On, c.Labels = "flag:1", 30, 2*time.Second, true, map[string]string{"a": "1", "b": "2"}
			}},
		{name: "empty env is unset", env: map[string]string{"APP_ADDR": ""}, want: func(*config) {}},
		{name: "a flag back to the zero value", env: map[string]string{"APP_ON": "true"}, args: []string{"--on=false"}, want: func(*config) {}},
		{name: "env only", env: map[string]string{"APP_SECRET": "s3cret"}, want: func(c *config) { c.Secret = "s3cret" }},
		{name: "file scalars parse as flags do", file: "rate: 2.5\nfile: ' f.txt '\ncluster:\n  peers: a:1,b:1\n",
			want: func(c *config) { c.Rate, c.File, c.Peers = 2.5, "f.txt", []string{"a:1", "b:1"} }},
		{name: "empty sections", file: "cluster:\ntls:\n", want: func(*config) {}},
		{name: "empty file", file: "# nothing\n", want: func(*config) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := defaults()
			if err := load(t, &got, tc.file, tc.env, tc.args...); err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// A bad value, from any source, is an error that names its source and says what was expected;
// the file is decoded strictly.
func TestBadValuesNameTheirSourceAndWhatIsExpected(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		env  map[string]string
		args []string
		want []string
	}{
		{name: "flag", args: []string{"--size", "big"}, want: []string{"flag --size: ", `want a whole number, got "big"`}},
		{name: "flag check", args: []string{"--wait", "0s"}, want: []string{"flag --wait: 0s: want > 0s"}},
		{name: "env", env: map[string]string{"APP_ON": "maybe"}, want: []string{"environment APP_ON: ", `want true or false, got "maybe"`}},
		{name: "env pairs", env: map[string]string{"APP_LABELS": "zone"}, want: []string{"environment APP_LABELS: ", `got "zone"`}},
		{name: "file value", file: "size: big\n", want: []string{"config file ", ": line 1: size: ", `want a whole number, got "big"`}},
		{name: "file check", file: "\nrate: -1\n", want: []string{"line 2: rate: -1: want >= 0"}},
		{name: "file list for a scalar", file: "addr: [1]\n", want: []string{"line 1: addr: want a single value (host:port), got a list"}},
		{name: "file mapping for a scalar", file: "tls:\n  cert:\n    a: b\n", want: []string{"line 3: tls.cert: want a single value (a file name), got a mapping"}},
		{name: "file mapping for a list", file: "cluster:\n  peers: {a: b}\n", want: []string{"line 2: cluster.peers: want a list", "got a mapping"}},
		{name: "file list item", file: "cluster:\n  peers:\n    - a\n    - [b]\n", want: []string{"line 4: cluster.peers: an item is a list"}},
		{name: "file list for a mapping", file: "cluster:\n  labels: [a]\n", want: []string{"line 2: cluster.labels: want a mapping", "got a list"}},
		{name: "unknown key", file: "size: 1\nsise: 2\n", want: []string{`line 2: unknown key "sise" (known: `, "size", "tls.cert"}},
		{name: "unknown key in a section", file: "tls:\n  crt: c\n", want: []string{`line 2: unknown key "tls.crt" (known: tls.cert, tls.key)`}},
		{name: "a flag's name as a key", file: "on: true\n", want: []string{`unknown key "on"`, "enabled"}},
		{name: "env-only setting in the file", file: "secret: x\n", want: []string{`unknown key "secret"`}},
		{name: "key twice", file: "size: 1\nsize: 2\n", want: []string{"line 2: size is already set on line 1"}},
		{name: "section twice", file: "tls:\n  cert: a\ntls:\n  key: b\n", want: []string{"line 3: tls is already set on line 1"}},
		{name: "section not a mapping", file: "tls: on\n", want: []string{`line 1: tls: want a mapping (tls.cert, tls.key), got "on"`}},
		{name: "file not a mapping", file: "- a\n", want: []string{"line 1: want a mapping of settings (key: value), got a list"}},
		{name: "YAML setting's own error", file: "items: 5\n", want: []string{": items: want a list of strings"}},
		{name: "check across settings", args: []string{"--cert", "c.pem"}, want: []string{"invalid configuration: tls.cert: the certificate and the key go together"}},
		{name: "unknown flag", args: []string{"--sise", "1"}, want: []string{"sise"}},
		{name: "env-only setting has no flag", args: []string{"--secret", "x"}, want: []string{"secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults()
			err := load(t, &c, tc.file, tc.env, tc.args...)
			if missing := slices.DeleteFunc(slices.Clone(tc.want), func(w string) bool { return err != nil && strings.Contains(err.Error(), w) }); len(missing) > 0 {
				t.Errorf("error %v does not mention %q", err, missing)
			}
			if err != nil && strings.ContainsRune(err.Error(), '\n') {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// A bad value leaves the variable as it was.
func TestBadValueLeavesTheVariable(t *testing.T) {
	c := defaults()
	if err := load(t, &c, "size: 20\nwait: -1s\n", nil); err == nil {
		t.Fatal("no error")
	}
	if c.Wait != time.Second {
		t.Errorf("wait %v after a bad value, want the default 1s", c.Wait)
	}
}

func TestFlagsParseNowOrOnLoad(t *testing.T) {
	var c config
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.settings().AddFlags(fs, setting.ParseNow)
	if err := fs.Parse([]string{"--wait", "soon"}); err == nil || !strings.Contains(err.Error(), "want a duration") {
		t.Errorf("ParseNow: fs.Parse = %v, want the bad duration refused", err)
	}
	fs = flag.NewFlagSet("app", flag.ContinueOnError)
	st := c.settings()
	flags := st.AddFlags(fs, setting.ParseOnLoad)
	if err := fs.Parse([]string{"--wait", "soon"}); err != nil {
		t.Fatalf("ParseOnLoad: fs.Parse = %v", err)
	}
	if err := st.Load(setting.Sources{Flags: flags}); err == nil || !strings.HasPrefix(err.Error(), "flag --wait: ") {
		t.Errorf("ParseOnLoad: Load = %v", err)
	}
}

func TestHelpShowsVariableKeyAndDefault(t *testing.T) {
	c := defaults()
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	c.settings().AddFlags(fs, setting.ParseOnLoad)
	fs.PrintDefaults()
	for _, w := range []string{"-addr", "(env APP_ADDR, config key addr)", "(default 127.0.0.1:1)", "-on", "config key enabled", "-cert", "config key tls.cert"} {
		if !strings.Contains(help.String(), w) {
			t.Errorf("help does not mention %q:\n%s", w, help.String())
		}
	}
	for _, w := range []string{"-secret", "-items"} {
		if strings.Contains(help.String(), w) {
			t.Errorf("help offers %s, which has no flag", w)
		}
	}
	// An Optional setting's zero value means unset: no default shown, not checked.
	var o struct{ TTL time.Duration }
	st := setting.Table{setting.Duration(&o.TTL, "ttl", "a TTL", setting.MoreThan(time.Duration(0))).Optional()}
	fs = flag.NewFlagSet("app", flag.ContinueOnError)
	help.Reset()
	fs.SetOutput(&help)
	st.AddFlags(fs, setting.ParseNow)
	fs.PrintDefaults()
	if strings.Contains(help.String(), "default") {
		t.Errorf("optional zero shows a default:\n%s", help.String())
	}
	if err := st.Check(); err != nil {
		t.Errorf("optional zero: Check = %v", err)
	}
	if err := st.Load(setting.Sources{Env: env(map[string]string{"TTL": "0s"})}); err != nil {
		t.Errorf("no variable named: %v", err)
	}
	if err := st.Env("").Load(setting.Sources{Env: env(map[string]string{"TTL": "0s"})}); err == nil {
		t.Error("an optional setting took 0s from a source")
	}
}

func TestOnlyAndNoFile(t *testing.T) {
	var c config
	st := c.settings().Only("size", "addr").NoFile()
	if len(st) != 2 || st[0].Name() != "size" || st[0].Key() != "" || st[0].Env() != "APP_SIZE" {
		t.Fatalf("Only: %v %q %q", st[0].Name(), st[0].Key(), st[0].Env())
	}
	defer func() {
		if recover() == nil {
			t.Error("Only of an unknown name did not panic")
		}
	}()
	c.settings().Only("nope")
}
