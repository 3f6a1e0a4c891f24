package consulapi_test

import (
	"testing"

	"github.com/configd/configd/internal/testserver"
)

// confd (v0.16.0) reads configd through its consul backend: the keys
// under /app, its leading '/' dropped as confd does for Consul.
func TestConfdRendersConfigdKeysThroughTheConsulDoor(t *testing.T) {
	d := newDoor(t)
	putAppKeys(t, d)
	got, err := testserver.ConfdOnce(t, "consul", d.addr)
	want := "host=db1\nmissing=fallback\ngets /app/db/host=db1\ngets /app/db/port=5432\nls host\nls port\n"
	if err != nil || got != want {
		t.Fatalf("confd -onetime -backend consul rendered %q (%v), want %q", got, err, want)
	}
}
