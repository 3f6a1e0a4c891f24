package etcdapi_test

import (
	"strings"
	"testing"

	"github.com/configd/configd/internal/testserver"
)

// confd's etcdv3 backend reaches configd, but confd reads every key with a
// leading '/' ("/app", whatever -prefix says), which configd's key rule
// refuses (docs/compat.md): confd says so and fails, rendering nothing.
// confd reads configd through its consul backend instead (server/consulapi).
func TestConfdEtcdv3IsToldConfigdKeysHaveNoLeadingSlash(t *testing.T) {
	e := startConfigd(t)
	got, err := testserver.ConfdOnce(t, "etcdv3", "http://"+e.Addr)
	if err == nil || !strings.Contains(err.Error(), `code = InvalidArgument desc = invalid key: key "/app" starts with '/'`) {
		t.Fatalf("confd -onetime -backend etcdv3: %q, %v; want configd's refusal of the key /app", got, err)
	}
}
