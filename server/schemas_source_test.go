package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/server"
)

// awaitValue follows key with the watch long poll from revision since
// until its value is want, and returns the revision that made it so.
func awaitValue(t *testing.T, addr, key, want string, since int64) int64 {
	t.Helper()
	deadline := time.Now().Add(configdtest.WaitLimit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://%s/v1/watch?key=%s&since=%d&wait=5s", addr, key, since))
		if err != nil {
			t.Fatal(err)
		}
		var wr api.WatchResponse
		err = json.NewDecoder(resp.Body).Decode(&wr)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range wr.Batches {
			for _, e := range b.Events {
				if e.Value == want {
					return b.Rev
				}
			}
		}
		since = wr.Rev
	}
	t.Fatalf("%s never became %q", key, want)
	return 0
}

// A file source's change that breaks a schema is held back: the source
// shows degraded with the schema's message, the old values stay, and the
// fixed file applies.
func TestASourceChangeThatBreaksASchemaIsHeldBack(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, "config")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(files, "db.yaml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(dbFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("host: db1\nport: 5432\n")
	conf := filepath.Join(dir, "configd.yaml")
	if err := os.WriteFile(conf, []byte("sources:\n  - {name: defaults, type: file, path: "+files+"/, mount: app/}\n  - {name: store, type: store}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig([]string{"--config", conf, "--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")}, envFunc(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := configdtest.Run(t, cfg)
	c, err := apiclient.New(d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rev := awaitValue(t, d.Addr, "app/db/port", "5432", 0)
	if _, err := c.SetSchema(ctx, "app/db/", []byte(`{"properties": {"port": {"type": "string", "pattern": "^[0-9]+$"}}}`)); err != nil {
		t.Fatal(err)
	}

	write("host: db2\nport: http\n")
	d.WaitLog(regexp.MustCompile(`source snapshot refused.*source=defaults`))
	srcs, err := c.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var st api.SourceStatus
	for _, s := range srcs.Sources {
		if s.Name == "defaults" {
			st = s
		}
	}
	if st.State != "degraded" || !strings.Contains(st.LastError, `app/db/port: must match the pattern "^[0-9]+$" (schema app/db/)`) {
		t.Fatalf("source status %+v: want degraded with the schema's message", st)
	}
	for key, want := range map[string]string{"app/db/host": "db1", "app/db/port": "5432"} {
		kv, err := c.Get(ctx, key)
		if err != nil || kv.Value != want {
			t.Fatalf("%s = %+v, %v: want the last good %q", key, kv, err, want)
		}
	}

	write("host: db2\nport: \"6432\"\n")
	awaitValue(t, d.Addr, "app/db/port", "6432", rev)
	if kv, err := c.Get(ctx, "app/db/host"); err != nil || kv.Value != "db2" {
		t.Fatalf("app/db/host after the fix = %+v, %v", kv, err)
	}
	// The pump marks the source ok once the revision is recorded: a
	// moment after the watch sees its value.
	wctx, cancel := context.WithTimeout(ctx, configdtest.WaitLimit)
	defer cancel()
	if err := configdtest.WaitFor(wctx, func() bool {
		srcs, err = c.Sources(ctx)
		if err != nil {
			return false
		}
		for _, s := range srcs.Sources {
			if s.Name == "defaults" {
				st = s
			}
		}
		return st.State == "ok" && st.LastError == ""
	}); err != nil {
		t.Fatalf("source after the fix: %+v (%v)", st, err)
	}
}
