package source

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type stubSource struct{ name string }

func (s stubSource) Name() string                                     { return s.name }
func (s stubSource) Run(ctx context.Context, emit func(Update)) error { <-ctx.Done(); return nil }
func (s stubSource) Status() Status                                   { return Status{} }
func (s stubSource) Close() error                                     { return nil }

func TestRegistryNewAndTypes(t *testing.T) {
	Register("stub-registry-test", func(cfg Config, opts ...Option) (Source, error) {
		if err := cfg.OnlyFields("path"); err != nil {
			return nil, err
		}
		return stubSource{name: cfg.Name}, nil
	})
	src, err := New(Config{Name: "s1", Type: "stub-registry-test", Path: "x"})
	if err != nil || src.Name() != "s1" {
		t.Fatalf("New = %v, %v", src, err)
	}
	if _, err := New(Config{Name: "s1", Type: "stub-registry-test", Prefix: "p"}); !errors.Is(err, ErrConfig) ||
		!strings.Contains(err.Error(), `source "s1" (type stub-registry-test): prefix is not used by type stub-registry-test`) {
		t.Fatalf("unused field: %v", err)
	}
	_, err = New(Config{Name: "s2", Type: "nope"})
	if !errors.Is(err, ErrUnknownType) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "stub-registry-test") {
		t.Fatalf("unknown type: %v, want ErrUnknownType listing the known types", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a type twice did not panic")
		}
	}()
	Register("stub-registry-test", func(Config, ...Option) (Source, error) { return nil, nil })
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Type: "file"}, "name is required"},
		{Config{Name: "a b", Type: "file"}, `name "a b"`},
		{Config{Name: "a"}, "type is required"},
		{Config{Name: "a", Type: "file", Mount: "/app/"}, `mount "/app/" is not a valid key prefix`},
		{Config{Name: "a", Type: "file", Mount: "app//x"}, "empty segment"},
		{Config{Name: "a", Type: "file", TLS: &TLSConfig{KeyFile: "k"}}, "cert_file and key_file go together"},
	} {
		if err := c.cfg.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want ErrConfig mentioning %q", c.cfg, err, c.want)
		}
	}
	ok := Config{Name: "defaults", Type: "file", Mount: "app"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if p := ok.MountPrefix(); p != "app/" {
		t.Fatalf("MountPrefix = %q, want app/", p)
	}
}

func TestDiff(t *testing.T) {
	v := func(s, ct string) Value { return Value{Data: []byte(s), ContentType: ct} }
	old := map[string]Value{"a": v("1", TypeText), "b": v("2", TypeText), "c": v("[]", TypeText)}
	new := map[string]Value{"a": v("1", TypeText), "c": v("[]", TypeJSON), "d": v("4", TypeText)}
	got := Diff(old, new)
	want := []Change{{Key: "b", Deleted: true}, {Key: "c", Value: v("[]", TypeJSON)}, {Key: "d", Value: v("4", TypeText)}}
	if len(got) != len(want) {
		t.Fatalf("Diff = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Key != want[i].Key || got[i].Deleted != want[i].Deleted || !got[i].Value.Equal(want[i].Value) {
			t.Fatalf("Diff[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(Diff(nil, nil)) != 0 {
		t.Fatal("Diff(nil, nil) is not empty")
	}
}
