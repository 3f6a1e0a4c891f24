package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server/forward"
)

// testWritesForwardedOverTLS: replicas that serve TLS forward writes to the
// cluster's writer over HTTPS when given the CA of their certificates
// (--peer-ca), and the write is read back at once on the replica it was
// sent to; without --peer-ca each commits its own writes, as before.
func testWritesForwardedOverTLS(t *testing.T, newCluster func(*testing.T, ...string) *configdtest.Cluster) {
	certs := testserver.NewTLSFiles(t, t.TempDir())
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(t)}}
	t.Cleanup(client.CloseIdleConnections)
	// put writes key=value on addr over HTTPS and returns the revision and
	// the writer that committed it ("" for addr itself).
	put := func(addr, key, value string) (int64, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, "https://"+addr+"/v1/kv/"+key, strings.NewReader(value))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("put %s on %s: %v", key, addr, err)
		}
		defer resp.Body.Close()
		var wr api.WriteResponse
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || json.Unmarshal(b, &wr) != nil {
			t.Fatalf("put %s on %s: %d %s", key, addr, resp.StatusCode, b)
		}
		return wr.Rev, resp.Header.Get(forward.HeaderForwardedTo)
	}
	get := func(addr, key string) api.KeyValue {
		t.Helper()
		resp, err := client.Get("https://" + addr + "/v1/kv/" + key)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var kv api.KeyValue
		if err := json.NewDecoder(resp.Body).Decode(&kv); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("get %s on %s: %d %v", key, addr, resp.StatusCode, err)
		}
		return kv
	}
	replicas := func(addr string) int {
		t.Helper()
		resp, err := client.Get("https://" + addr + "/v1/replicas")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rr api.ReplicasResponse
		if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
			t.Fatal(err)
		}
		return len(rr.Replicas)
	}
	tlsArgs := []string{"--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey}

	t.Run("WithThePeerCA", func(t *testing.T) {
		c := newCluster(t, append(tlsArgs, "--peer-ca", certs.CAFile)...).Start(2)
		r1, r2 := c.Replicas[0].Addr, c.Replicas[1].Addr
		waitFor(t, "r2 forwards to r1 over HTTPS", func() bool {
			_, to := put(r2, "app/w", "2")
			return to == r1
		})
		rev, to := put(r2, "app/ryw", "mine")
		if kv := get(r2, "app/ryw"); to != r1 || kv.Value != "mine" || kv.ModRev != rev {
			t.Fatalf("on r2, after its write forwarded to %q at %d: %+v", to, rev, kv)
		}
		if _, to := put(r1, "app/w", "1"); to != "" {
			t.Fatalf("the writer forwarded its own write to %s", to)
		}
	})
	t.Run("WithoutIt", func(t *testing.T) {
		c := newCluster(t, tlsArgs...).Start(2)
		r2 := c.Replicas[1].Addr
		waitFor(t, "r2 lists both replicas", func() bool { return replicas(r2) == 2 })
		for i := range 5 {
			if _, to := put(r2, "app/w", string(rune('a'+i))); to != "" {
				t.Fatalf("without --peer-ca, r2 forwarded a write to %s", to)
			}
		}
	})
}
