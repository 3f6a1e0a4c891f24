package consulapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/consulapi"
)

// do sends method path with body to d and returns the status and body.
func (d *door) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, d.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestBadInputIsRefusedAndLosesNothing(t *testing.T) {
	d := newDoor(t)
	d.put(t, "app/k", "good")
	var ops []string
	for i := range 129 {
		ops = append(ops, fmt.Sprintf(`{"KV":{"Verb":"set","Key":"app/t%d","Value":"eA=="}}`, i))
	}
	tooMany := "[" + strings.Join(ops, ",") + "]"
	big := strings.Repeat("x", 1<<20+1)

	for _, c := range []struct {
		name, method, path, body string
		status                   int
		says                     string
	}{
		{"invalid key", "PUT", "/v1/kv/app//k", "bad", 400, `key "app//k" has an empty segment`},
		{"invalid key in a txn", "PUT", "/v1/txn", `[{"KV":{"Verb":"set","Key":"app/k","Value":"eA=="}},{"KV":{"Verb":"set","Key":"app/../k","Value":"eA=="}}]`, 409, `has a \"..\" segment`},
		{"oversize value", "PUT", "/v1/kv/app/k", big, 413, "Request body(1048577 bytes) too large, max size: 1048576 bytes"},
		{"cas=notanumber", "PUT", "/v1/kv/app/k?cas=notanumber", "bad", 400, `Invalid CAS index: cas="notanumber"`},
		{"cas=notanumber on delete", "DELETE", "/v1/kv/app/k?cas=notanumber", "", 400, `Invalid CAS index`},
		{"flags not a number", "PUT", "/v1/kv/app/k?flags=many", "bad", 400, "flags"},
		{"acquire", "PUT", "/v1/kv/app/k?acquire=abc", "bad", 400, "?acquire is not served"},
		{"missing key", "PUT", "/v1/kv/", "bad", 400, "Missing key name"},
		{"bad index", "GET", "/v1/kv/app/k?index=x", "", 400, "Invalid index"},
		{"bad wait", "GET", "/v1/kv/app/k?index=1&wait=forever", "", 400, "Invalid wait time"},
		{"stale and consistent", "GET", "/v1/kv/app/k?stale&consistent", "", 400, "Cannot specify ?stale with ?consistent"},
		{"other datacenter", "GET", "/v1/kv/app/k?dc=eu", "", 500, `No path to datacenter "eu"`},
		{"unknown txn verb", "PUT", "/v1/txn", `[{"KV":{"Verb":"set","Key":"app/k","Value":"eA=="}},{"KV":{"Verb":"bogus","Key":"app/k"}}]`, 409, `unknown KV verb \"bogus\"`},
		{"lock", "PUT", "/v1/txn", `[{"KV":{"Verb":"lock","Key":"app/k","Session":"s"}}]`, 409, `KV verb \"lock\" is not served`},
		{"node op", "PUT", "/v1/txn", `[{"Node":{"Verb":"get"}}]`, 409, "Node operations are not served"},
		{"txn over the op cap", "PUT", "/v1/txn", tooMany, 413, "Transaction contains too many operations (129 > 128)"},
		{"txn not JSON", "PUT", "/v1/txn", `[{`, 400, "Failed to parse body"},
		{"a txn whose cas fails after its set", "PUT", "/v1/txn", `[{"KV":{"Verb":"set","Key":"app/k","Value":"eA=="}},{"KV":{"Verb":"cas","Key":"app/k","Value":"eQ==","Index":0}}]`, 409, `failed to set key \"app/k\", index is stale`},
		{"unknown endpoint", "GET", "/v1/catalog/services", "", 404, `Invalid URL path: not a recognized HTTP API endpoint: "/v1/catalog/services" is not served`},
		{"method", "POST", "/v1/kv/app/k", "bad", 405, "method POST not allowed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := d.c.Store.Rev()
			status, body := d.do(t, c.method, c.path, c.body)
			if status != c.status || !strings.Contains(body, c.says) {
				t.Fatalf("%s %s: %d %q, want %d saying %q", c.method, c.path, status, body, c.status, c.says)
			}
			if d.c.Store.Rev() != before {
				t.Fatal("a refused request made a revision")
			}
			if v, _ := d.value(t, "app/k"); v != "good" {
				t.Fatalf("app/k is %q after a refused request", v)
			}
		})
	}
}

func TestStatusAndAgentSelfAnswerAsConsul(t *testing.T) {
	d := newDoor(t)
	status, body := d.do(t, "GET", "/v1/status/leader", "")
	var leader string
	if status != 200 || json.Unmarshal([]byte(body), &leader) != nil || leader != d.addr {
		t.Fatalf("leader: %d %s, want %q", status, body, d.addr)
	}
	status, body = d.do(t, "GET", "/v1/agent/self", "")
	var self struct {
		Config struct{ Datacenter, NodeName, Version string }
		Member struct{ Addr string }
	}
	if status != 200 || json.Unmarshal([]byte(body), &self) != nil || self.Config.Datacenter != "dc1" ||
		self.Config.NodeName == "" || self.Config.Version == "" || self.Member.Addr != "127.0.0.1" {
		t.Fatalf("agent/self: %d %s", status, body)
	}
}

func TestWritesKeepConfigdsPolicies(t *testing.T) {
	d := newDoor(t)
	if _, err := d.c.Store.Commit(t.Context(), audit.Txn{Actor: "test", Ops: []audit.Op{
		audit.Put(keyspace.PoliciesKey, []byte(`{"app/":{"approvals":1,"require":true}}`), "application/json")}}); err != nil {
		t.Fatal(err)
	}
	before := d.c.Store.Rev()
	// A prefix whose policy takes changes only through change requests.
	if status, body := d.do(t, "PUT", "/v1/kv/app/k", "v"); status != 403 || !strings.Contains(body, "change request") {
		t.Fatalf("a direct write under a required policy: %d %s", status, body)
	}
	if status, body := d.do(t, "PUT", "/v1/txn", `[{"KV":{"Verb":"set","Key":"app/k","Value":"eA=="}}]`); status != 403 {
		t.Fatalf("a txn under a required policy: %d %s", status, body)
	}
	// configd's own keys are not written through the door.
	if status, body := d.do(t, "PUT", "/v1/kv/"+keyspace.PoliciesKey, "{}"); status != 403 || !strings.Contains(body, "configd's own keys") {
		t.Fatalf("a write of configd's policies: %d %s", status, body)
	}
	if d.c.Store.Rev() != before {
		t.Fatal("a refused write made a revision")
	}
}

func TestABodyTooSlowIsAnswered408AndWritesNothing(t *testing.T) {
	d := newDoor(t, withOptions(consulapi.WithBodyReadTimeout(200*time.Millisecond)))
	d.put(t, "app/k", "good")
	for _, req := range []string{
		"PUT /v1/kv/app/k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab",
		"PUT /v1/txn HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{",
	} {
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		// The answer comes once the deadline passes; the body never ends.
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "--body-read-timeout") {
			t.Fatalf("%d %s, want 408", resp.StatusCode, b)
		}
	}
	if v, _ := d.value(t, "app/k"); v != "good" {
		t.Fatalf("app/k is %q", v)
	}
}

func TestTheDoorsLimitsApply(t *testing.T) {
	t.Run("rate", func(t *testing.T) {
		d := newDoor(t, withOptions(consulapi.WithLimits(authz.NewLimits(0.001, 1, 0))))
		if status, _ := d.do(t, "PUT", "/v1/kv/app/k", "v"); status != 200 {
			t.Fatalf("first request: %d", status)
		}
		before := d.c.Store.Rev()
		if status, body := d.do(t, "PUT", "/v1/kv/app/k", "w"); status != 429 || !strings.Contains(body, "rate limit") {
			t.Fatalf("over the rate: %d %s", status, body)
		}
		if d.c.Store.Rev() != before {
			t.Fatal("a request over the rate wrote")
		}
	})
	t.Run("watches", func(t *testing.T) {
		d := newDoor(t, withOptions(consulapi.WithLimits(authz.NewLimits(0, 0, 1))))
		rev := d.put(t, "app/k", "v")
		path := fmt.Sprintf("/v1/kv/app/k?index=%d&wait=1m", rev.Rev)
		// Two blocking queries of one identity with a cap of one: one
		// holds the watch, the other is refused at once.
		statuses := make(chan int, 2)
		for range 2 {
			go func() {
				resp, err := http.Get(d.srv.URL + path)
				if err != nil {
					statuses <- 0
					return
				}
				resp.Body.Close()
				statuses <- resp.StatusCode
			}()
		}
		if status := <-statuses; status != 429 {
			t.Fatalf("the first answer: %d, want 429 (the second query over the cap)", status)
		}
		d.put(t, "app/k", "w")
		if status := <-statuses; status != 200 {
			t.Fatalf("the query that held the watch: %d", status)
		}
	})
}
