package authz

import (
	"context"
	"testing"

	"google.golang.org/grpc/metadata"
)

// TestFirstMetadataIsTheFirstValueOfTheName: the first of the name's
// values, whatever the case the metadata was keyed in, and "" for a name
// the call did not send or a call without metadata.
func TestFirstMetadataIsTheFirstValueOfTheName(t *testing.T) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{
		"x-configd-actor": {"alice", "mallory"},
		"Authorization":   {"Bearer t"}, // a map not built by metadata.Pairs keeps its case
	})
	for name, want := range map[string]string{
		"x-configd-actor": "alice",
		"authorization":   "Bearer t",
		"token":           "",
	} {
		if got := firstMetadata(ctx, name); got != want {
			t.Errorf("firstMetadata(%q) = %q, want %q", name, got, want)
		}
	}
	if got := firstMetadata(context.Background(), "x-configd-actor"); got != "" {
		t.Errorf("without metadata: %q", got)
	}
}
