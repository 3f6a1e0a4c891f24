package status_test

import (
	"errors"
	"testing"

	"github.com/configd/configd/sdk/go/micro/status"
)

func TestWireRoundTrip(t *testing.T) {
	e := &status.Error{Code: status.NotFound, Message: `unknown endpoint "X.Y"`, Service: "s", Endpoint: "X.Y", Retryable: true}
	got := status.Unmarshal(e.Marshal())
	if *got != *e {
		t.Fatalf("round trip %+v, want %+v", got, e)
	}
	if g := status.Unmarshal("not json"); g.Code != status.Internal || g.Message != "not json" {
		t.Fatalf("garbage header became %+v", g)
	}
}

func TestRetryableAndCauses(t *testing.T) {
	cause := errors.New("overloaded")
	err := status.Retryable(cause)
	if !status.IsRetryable(err) || !errors.Is(err, cause) || status.CodeOf(err) != status.Internal {
		t.Fatalf("Retryable(plain) = %v", err)
	}
	orig := status.New(status.Unavailable, "draining")
	r := status.Retryable(orig)
	if !status.IsRetryable(r) || status.IsRetryable(orig) {
		t.Fatal("Retryable must mark a copy, not the original")
	}
	if status.IsRetryable(errors.New("plain")) || status.CodeOf(nil) != 0 || status.CodeOf(errors.New("x")) != status.Internal {
		t.Fatal("plain errors misclassified")
	}
}
