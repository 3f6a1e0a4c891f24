package client_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/sdk/go/client"
)

// TestTheOldNameForwardsToApiclient: code written against the old name
// gets apiclient's values, so errors.Is matches across the two names.
func TestTheOldNameForwardsToApiclient(t *testing.T) {
	if !errors.Is(fmt.Errorf("x: %w", apiclient.ErrNotFound), client.ErrNotFound) || client.DefaultUserAgent != apiclient.DefaultUserAgent {
		t.Fatal("the deprecated package does not forward to apiclient")
	}
	var c *client.Client
	var _ *apiclient.Client = c
}
