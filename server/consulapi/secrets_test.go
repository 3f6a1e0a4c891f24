package consulapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	consul "github.com/hashicorp/consul/api"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server/consulapi"
	"github.com/configd/configd/server/core"
)

const secretValue = "pa55-Wr9vQx-consul-secret"

func TestSecretValueOnlyOverTLSOrLoopback(t *testing.T) {
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	d := newDoor(t, withCore(core.WithStoreOptions(audit.WithMasterKey(mk))))
	if _, err := d.c.Store.Commit(t.Context(), audit.Txn{Actor: "test", Ops: []audit.Op{
		audit.Put("app/password", []byte(secretValue), "").AsSecret(), audit.Put("app/plain", []byte("p"), "")}}); err != nil {
		t.Fatal(err)
	}
	// Over loopback, Consul's client reads it.
	p, _, err := d.client(t, "").Get("app/password", nil)
	if err != nil || string(p.Value) != secretValue {
		t.Fatalf("loopback Get: %v %v", p, err)
	}
	// A write through the door keeps the key secret.
	if _, err := d.client(t, "").Put(&consul.KVPair{Key: "app/password", Value: []byte(secretValue + "2")}, nil); err != nil {
		t.Fatal(err)
	}
	if !d.c.Store.IsSecret("app/password") {
		t.Fatal("a Consul write made a secret key plain")
	}

	// From elsewhere without TLS (httptest.NewRequest comes from
	// 192.0.2.1): refused alone, withheld in a listing, as configd's own
	// API does.
	h := consulapi.New(d.c.Store, d.c.Hub)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/kv/app/password", nil))
	if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), secretValue) {
		t.Fatalf("remote plain GET: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/v1/kv/app/?recurse", "/v1/kv/app/password?raw"} {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if strings.Contains(rec.Body.String(), secretValue) {
			t.Fatalf("remote plain GET %s sent the secret: %s", path, rec.Body)
		}
	}
	if !strings.Contains(rec.Body.String(), "TLS") {
		t.Fatalf("raw GET of a secret: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/kv/app/?recurse", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"Key":"app/password","Flags":0,"Value":null`) ||
		!strings.Contains(rec.Body.String(), `"Key":"app/plain"`) {
		t.Fatalf("remote plain listing: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/v1/txn", strings.NewReader(`[{"KV":{"Verb":"get","Key":"app/password"}}]`)))
	if strings.Contains(rec.Body.String(), secretValue) {
		t.Fatalf("remote plain txn get sent the secret: %s", rec.Body)
	}
}
