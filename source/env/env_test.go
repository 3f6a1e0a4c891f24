package env_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/source"
	"github.com/configd/configd/source/env"
	"github.com/configd/configd/source/internal/sourcetest"
)

// run starts src and returns its first update.
func run(t *testing.T, src source.Source) (source.Update, chan error) {
	t.Helper()
	updates := make(chan source.Update, 4)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { done <- src.Run(ctx, func(u source.Update) { updates <- u }) }()
	select {
	case u := <-updates:
		return u, done
	case <-time.After(5 * time.Second):
		t.Fatal("no update within 5s")
	}
	return source.Update{}, nil
}

func TestEnvMapsVariablesToKeys(t *testing.T) {
	t.Setenv("CFGDTEST_DB_HOST", "db1")
	t.Setenv("CFGDTEST_DB_MAX__CONNS", "10")
	t.Setenv("CFGDTEST_BROKER", "nats")
	t.Setenv("CFGDTEST_BROKER_ADDRESS", "127.0.0.1:4222")
	t.Setenv("CFGDTEST_Db_Host", "loses") // same key as CFGDTEST_DB_HOST, which sorts first
	t.Setenv("CFGDTEST_", "nothing after the prefix")
	t.Setenv("CFGDTEST_BAD_", "trailing separator")
	t.Setenv("CFGDTEST_BIN", "caf\xe9")
	t.Setenv("OTHER_DB_HOST", "not ours")

	src, err := source.New(source.Config{Name: "env", Type: "env", Mount: "app/", TypeConfig: env.Config{Prefix: "CFGDTEST_"}})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := run(t, src)
	if u.Err != nil {
		t.Fatal(u.Err)
	}
	want := map[string]source.Value{
		"db/host":        {Data: []byte("db1"), ContentType: source.TypeText},
		"db/max_conns":   {Data: []byte("10"), ContentType: source.TypeText},
		"broker":         {Data: []byte("nats"), ContentType: source.TypeText},
		"broker/address": {Data: []byte("127.0.0.1:4222"), ContentType: source.TypeText},
		"bin":            {Data: []byte("caf\xe9"), ContentType: source.TypeBinary},
	}
	if !source.Equal(u.Snapshot, want) {
		t.Errorf("snapshot = %v\nwant %v", u.Snapshot, want)
	}
	text := source.WarningsText(u.Warnings)
	for _, name := range []string{"CFGDTEST_Db_Host", "CFGDTEST_=", "CFGDTEST_BAD_"} {
		name = strings.TrimSuffix(name, "=")
		if !strings.Contains(text, name+":") {
			t.Errorf("no warning about %s in %q", name, text)
		}
	}
	if len(u.Warnings) != 3 {
		t.Errorf("%d warnings, want 3: %s", len(u.Warnings), text)
	}
	if st := src.Status(); st.State != source.StateOK || st.Keys != 5 || st.LastSync.IsZero() {
		t.Errorf("status = %+v", st)
	}
}

func TestEnvRunEndsOnCloseAndRunsOnce(t *testing.T) {
	src, err := source.New(source.Config{Name: "env", Type: "env", TypeConfig: env.Config{Prefix: "CFGDTEST_"}})
	if err != nil {
		t.Fatal(err)
	}
	_, done := run(t, src)
	if err := src.Run(context.Background(), func(source.Update) {}); !errors.Is(err, source.ErrRunning) {
		t.Fatalf("second Run: %v, want ErrRunning", err)
	}
	src.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after Close", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if st := src.Status(); st.State != source.StateClosed {
		t.Fatalf("state after Close = %s", st.State)
	}
}

func TestEnvConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  source.Config
		want string
	}{
		{source.Config{Name: "e", Type: "env", TypeConfig: env.Config{}}, "prefix is required"},
		{source.Config{Name: "e", Type: "env", TypeConfig: env.Config{Prefix: "APP-"}}, `prefix "APP-"`},
		{source.Config{Name: "e", Type: "env", Mount: "a//b", TypeConfig: env.Config{Prefix: "APP_"}}, `mount "a//b" is not a valid key prefix`},
		{source.Config{Name: "", Type: "env", TypeConfig: env.Config{Prefix: "APP_"}}, "name is required"},
		{source.Config{Name: "e", Type: "file", TypeConfig: env.Config{Prefix: "APP_"}}, "type file, but its TypeConfig is env.Config"},
	}
	for _, c := range cases {
		_, err := source.New(c.cfg)
		if !errors.Is(err, source.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want ErrConfig mentioning %q", c.cfg, err, c.want)
		}
	}
	// From a config file: a field of another type, an unknown type.
	for _, c := range []struct{ entry, want string }{
		{"{name: e, type: env, prefix: APP_, endpoints: [x]}", `source "e" (type env): endpoints: unknown field (known: name, type, mount, prefix)`},
		{"{name: e, type: nope}", `unknown source type "nope" (known: env)`},
		{"{name: e, type: env, prefix: APP-}", `prefix "APP-"`},
	} {
		_, err := sourcetest.Decode(t, c.entry, env.Config{})
		if !errors.Is(err, source.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeConfig(%s) = %v, want ErrConfig mentioning %q", c.entry, err, c.want)
		}
	}
	if _, err := sourcetest.Decode(t, "{name: e, type: nope}", env.Config{}); !errors.Is(err, source.ErrUnknownType) {
		t.Errorf("unknown type: %v, want ErrUnknownType", err)
	}
}

func TestKeyOf(t *testing.T) {
	for in, want := range map[string]string{
		"DB_HOST":      "db/host",
		"DB_MAX__CONN": "db/max_conn",
		"A___B":        "a_/b",
		"X":            "x",
	} {
		if got := env.KeyOf(in); got != want {
			t.Errorf("KeyOf(%q) = %q, want %q", in, got, want)
		}
	}
}
