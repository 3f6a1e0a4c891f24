package wire

import "testing"

func TestName(t *testing.T) {
	for _, name := range []string{Service, Endpoint, ID, Timeout, ContentType, Error, Stream,
		"Md-traceparent", "Md-tracestate", "Md-baggage", "X-Other", ""} {
		b := []byte(name)
		if got := Name(b); got != name {
			t.Errorf("Name(%q) = %q", name, got)
		}
	}
	known := []byte(Endpoint)
	if n := testing.AllocsPerRun(100, func() { _ = Name(known) }); n != 0 {
		t.Errorf("Name of a known header allocates %v times, want 0", n)
	}
	other := []byte("X-Other")
	got := Name(other)
	other[0] = 'Y' // the frame's buffer is reused; the name must not change with it
	if got != "X-Other" {
		t.Errorf("Name of an unknown header shares the frame's bytes: got %q", got)
	}
}
