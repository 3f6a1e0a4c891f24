package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server"
)

// secretValue must never leave configd but to a reader of its key.
const secretValue = "pa55-Wr9vQx-tr0ub4dor-secret"

const adminToken = "admin-token-0123456789abcdef0123456789"

// writeMasterKey writes a new master key file (0600) and returns its path.
func writeMasterKey(t *testing.T, dir string) string {
	t.Helper()
	_, b64, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "master.key")
	if err := os.WriteFile(p, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type httpClient struct {
	t     *testing.T
	base  string
	token string
}

func (c httpClient) do(method, path string, body []byte) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set(api.HeaderAuthorization, "Bearer "+c.token)
	}
	if body != nil && method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (c httpClient) want(status int, method, path string, body []byte) []byte {
	c.t.Helper()
	got, b := c.do(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, status, b)
	}
	return b
}

func TestSecretsEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.Auth = true
	cfg.BootstrapToken = adminToken
	cfg.MasterKeyFile = writeMasterKey(t, t.TempDir())
	r := configdtest.Run(t, cfg, configdtest.LogLevel(slog.LevelDebug))
	admin := httpClient{t: t, base: "http://" + r.Addr, token: adminToken}

	admin.want(http.StatusOK, http.MethodPut, "/v1/kv/app/db/password?secret=true", []byte(secretValue))
	admin.want(http.StatusOK, http.MethodPut, "/v1/kv/app/db/host", []byte("db.internal"))
	// A later write keeps the mark; so does a transaction.
	admin.want(http.StatusOK, http.MethodPut, "/v1/kv/app/db/password", []byte(secretValue+"-v2"))
	admin.want(http.StatusOK, http.MethodPost, "/v1/txn", configdtest.JSON(t, api.TxnRequest{Ops: []api.TxnOp{
		{Op: "put", Key: "app/api/key", Value: secretValue + "-api", Secret: true}}}))

	// A reader of the key gets the plaintext, over loopback.
	var kv api.KeyValue
	if err := json.Unmarshal(admin.want(http.StatusOK, http.MethodGet, "/v1/kv/app/db/password", nil), &kv); err != nil {
		t.Fatal(err)
	}
	if kv.Value != secretValue+"-v2" || !kv.Secret || kv.Withheld() {
		t.Fatalf("GET = %+v", kv)
	}
	if raw := admin.want(http.StatusOK, http.MethodGet, "/v1/kv/app/db/password?raw=true", nil); string(raw) != secretValue+"-v2" {
		t.Fatalf("GET raw = %q", raw)
	}
	var list api.ListResponse
	if err := json.Unmarshal(admin.want(http.StatusOK, http.MethodGet, "/v1/kv?prefix=app/", nil), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.KVs) != 3 || list.KVs[0].Value != secretValue+"-api" || !list.KVs[0].Secret {
		t.Fatalf("list = %+v", list.KVs)
	}

	// A token without read on app/ gets 403, and no value.
	var created api.TokenCreated
	body := admin.want(http.StatusCreated, http.MethodPost, "/v1/tokens", configdtest.JSON(t, api.TokenRequest{Name: "other-reader",
		Grants: []api.Grant{{Permission: api.PermissionRead, Prefix: "other/"}}}))
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	reader := httpClient{t: t, base: admin.base, token: created.Token}
	if got := reader.want(http.StatusForbidden, http.MethodGet, "/v1/kv/app/db/password", nil); bytes.Contains(got, []byte(secretValue)) {
		t.Fatalf("403 body holds the value: %s", got)
	}

	// History, revisions, diffs show a digest and a length.
	var hist api.HistoryResponse
	histBody := admin.want(http.StatusOK, http.MethodGet, "/v1/history?prefix=app/", nil)
	if err := json.Unmarshal(histBody, &hist); err != nil {
		t.Fatal(err)
	}
	var sawSecret bool
	for _, rev := range hist.Revisions {
		for _, c := range rev.Changes {
			if c.Key != "app/db/password" || c.New == nil {
				continue
			}
			sawSecret = true
			if !c.New.Secret || !strings.HasPrefix(c.New.Hash, "hmac-sha256:") || c.New.Value != "" || c.New.Length == 0 {
				t.Fatalf("history change: %+v", c.New)
			}
		}
	}
	if !sawSecret {
		t.Fatalf("no secret change in the history: %s", histBody)
	}
	var outputs [][]byte
	outputs = append(outputs, histBody)
	for rev := 1; rev <= 4; rev++ {
		outputs = append(outputs, admin.want(http.StatusOK, http.MethodGet, "/v1/revisions/"+itoa(rev), nil))
	}
	outputs = append(outputs,
		admin.want(http.StatusOK, http.MethodGet, "/v1/diff?from=0", nil),
		admin.want(http.StatusOK, http.MethodGet, "/v1/diff?from=1&key=app/db/password", nil),
		admin.want(http.StatusOK, http.MethodPost, "/v1/rollback", configdtest.JSON(t, api.RollbackRequest{Key: "app/db/password", To: 1, DryRun: true})),
		admin.want(http.StatusOK, http.MethodGet, "/v1/layers/app/db/password", nil),
		admin.want(http.StatusOK, http.MethodGet, "/metrics", nil),
	)
	var layers api.LayersResponse
	if err := json.Unmarshal(outputs[len(outputs)-2], &layers); err != nil || len(layers.Layers) == 0 ||
		!layers.Layers[0].Secret || !strings.HasPrefix(layers.Layers[0].Hash, "hmac-sha256:") || layers.Layers[0].Length == 0 {
		t.Errorf("/v1/layers of a secret: %+v (%v), want it withheld with its digest and length", layers, err)
	}
	// The web UI: the timeline, the key's page (and its diff), revisions.
	for _, p := range []string{"/ui/", "/ui/timeline.json?after=0", "/ui/key/app/db/password", "/ui/key/app/db/password?a=0&b=4",
		"/ui/key/app/api/key", "/ui/rev/1", "/ui/rev/3", "/ui/rev/4"} {
		outputs = append(outputs, admin.want(http.StatusOK, http.MethodGet, p, nil))
	}
	// A rollback: the secret comes back, and the answer withholds it.
	outputs = append(outputs, admin.want(http.StatusOK, http.MethodPost, "/v1/rollback", configdtest.JSON(t, api.RollbackRequest{Key: "app/db/password", To: 1})))
	if err := json.Unmarshal(admin.want(http.StatusOK, http.MethodGet, "/v1/kv/app/db/password", nil), &kv); err != nil || kv.Value != secretValue {
		t.Fatalf("after rollback: %+v, %v", kv, err)
	}
	for i, out := range outputs {
		if bytes.Contains(out, []byte("pa55-Wr9vQx")) {
			t.Errorf("output %d holds the secret:\n%s", i, out)
		}
	}
	if !bytes.Contains(outputs[len(outputs)-2], []byte("secret")) {
		t.Errorf("the revision page does not say the value is secret")
	}

	dbPath := filepath.Join(cfg.DataDir, server.DBFile)
	checkAtRest := func() {
		t.Helper()
		for _, p := range []string{dbPath, dbPath + "-wal"} {
			b, err := os.ReadFile(p)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("pa55-Wr9vQx")) {
				t.Errorf("%s holds the secret in clear", p)
			}
		}
	}
	checkAtRest()
	r.Stop()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	checkAtRest()
	if strings.Contains(r.Log.String(), "pa55-Wr9vQx") {
		t.Errorf("the log holds the secret:\n%s", r.Log)
	}
	if !strings.Contains(r.Log.String(), "level=DEBUG") {
		t.Errorf("no debug lines in the log: the check proves little")
	}

	// A restart with another master key fails clearly, at start.
	cfg.MasterKeyFile = writeMasterKey(t, t.TempDir())
	err := server.Run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "master key") || !strings.Contains(err.Error(), "--master-key-file") {
		t.Fatalf("Run with another master key: %v", err)
	}
	cfg.MasterKeyFile = ""
	err = server.Run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "no master key") {
		t.Fatalf("Run without a master key: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
