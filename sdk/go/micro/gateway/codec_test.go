package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

// codecSeen records the codec of each call a server received.
type codecSeen struct {
	mu   sync.Mutex
	last string
}

func (c *codecSeen) wrap(next server.HandlerFunc) server.HandlerFunc {
	return func(ctx context.Context, req *server.Request, rsp any) error {
		c.mu.Lock()
		c.last = req.ContentType
		c.mu.Unlock()
		return next(ctx, req, rsp)
	}
}

func (c *codecSeen) get() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// WithContentType picks the codec of the calls end to end, over a real transport: a JSON
// request goes in a JSON-family codec, a protobuf body in a protobuf-family one, and the
// other family keeps its plain codec (the gateway has no schema to cross over).
func TestWithContentTypeCallsInThatCodec(t *testing.T) {
	for _, c := range []struct{ ct, json, proto string }{
		{"", "application/json", "application/protobuf"},
		{"application/json", "application/json", "application/protobuf"},
		{"application/json-rpc", "application/json-rpc", "application/protobuf"},
		{"application/grpc+json", "application/grpc+json", "application/protobuf"},
		{"application/protobuf", "application/json", "application/protobuf"},
		{"application/x-protobuf", "application/json", "application/protobuf"}, // an alias
		{"application/proto-rpc", "application/json", "application/proto-rpc"},
		{"application/grpc+proto", "application/json", "application/grpc+proto"},
		{"application/grpc", "application/json", "application/grpc+proto"}, // an alias
	} {
		t.Run(c.ct, func(t *testing.T) {
			e := newEnvOn(t, tcp.New())
			var seen codecSeen
			e.serveWith(t, []server.Option{server.WrapHandler(seen.wrap)}, "example", Example{})
			_, ts := e.gateway(t, gateway.WithContentType(c.ct))

			if code, body := do(t, "POST", ts.URL+"/example/call", "application/json", `{"name":"hobo"}`); code != 200 || body != `{"msg":"Hello hobo"}` {
				t.Fatalf("JSON: %d %s", code, body)
			}
			if got := seen.get(); got != c.json {
				t.Errorf("a JSON request went as %s, want %s", got, c.json)
			}
			in, _ := proto.Marshal(wrapperspb.String("hobo"))
			code, body := doRaw(t, "POST", ts.URL+"/example/upper", "application/protobuf", string(in))
			var out wrapperspb.StringValue
			if err := proto.Unmarshal([]byte(body), &out); code != 200 || err != nil || out.Value != "HOBO" {
				t.Fatalf("protobuf: %d %q %v", code, body, err)
			}
			if got := seen.get(); got != c.proto {
				t.Errorf("a protobuf body went as %s, want %s", got, c.proto)
			}
		})
	}
}

func TestWithContentTypeRefusesACodecItCannotCallWith(t *testing.T) {
	e := newEnv(t)
	for _, ct := range []string{"application/octet-stream", "text/plain", "application/bson-rpc"} {
		g, err := gateway.New(gateway.WithClient(e.cli), gateway.WithRegistry(e.reg), gateway.WithContentType(ct))
		if err == nil {
			g.Close()
			t.Errorf("%s: accepted", ct)
			continue
		}
		t.Logf("%s: %v", ct, err)
	}
}

// Echo answers its request as it got it.
type Echo struct{}

func (Echo) Raw(_ context.Context, req *json.RawMessage, rsp *json.RawMessage) error {
	*rsp = append(json.RawMessage(nil), *req...)
	return nil
}

// A JSON object with nothing to merge into it (no query string, no path parameter) goes to
// the service as it came, not decoded and encoded again; one with a query string is merged.
func TestAJSONObjectAloneIsSentAsItCame(t *testing.T) {
	e := newEnvOn(t, tcp.New())
	e.serve(t, "echo", Echo{})
	_, ts := e.gateway(t)
	in := `{"b":1,"a":[1,2]}` // the JSON codec compacts it; the old way also sorted its keys
	if code, body := do(t, "POST", ts.URL+"/echo/raw", "application/json", in); code != 200 || body != in {
		t.Fatalf("%d %s, want 200 %s", code, body, in)
	}
	if code, body := do(t, "POST", ts.URL+"/echo/raw?c=3", "application/json", in); code != 200 || body != `{"a":[1,2],"b":1,"c":"3"}` {
		t.Fatalf("with a query: %d %s", code, body)
	}
	for _, bad := range []string{`{"b": 1`, `{"b": 1}}`, ` {} x`} {
		if code, body := do(t, "POST", ts.URL+"/echo/raw", "application/json", bad); code != 400 || !strings.Contains(body, "malformed JSON") {
			t.Errorf("%s: %d %s, want 400 malformed JSON", bad, code, body)
		}
	}
}
