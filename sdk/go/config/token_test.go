package config

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestWithTokenReadsWhatTheTokenMay: against a configd with authentication
// on, a client with a reader token of app/ mirrors app/, and one without
// a token gets nothing.
func TestWithTokenReadsWhatTheTokenMay(t *testing.T) {
	ctx := context.Background()
	d, secret := startAuthConfigd(t)
	d.put("app/name", "shop", "db/password", "hunter2")

	c, err := New(ctx, WithAddress(d.addr), WithPrefix("app"), WithToken(secret), WithTimeout(5*time.Second), WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Get("name").String(""); got != "shop" {
		t.Errorf("app/name = %q, want shop", got)
	}

	// Without a token: refused at once, not retried until the timeout.
	_, err = New(ctx, WithAddress(d.addr), WithPrefix("app"), WithTimeout(waitLimit), WithLogger(discard()))
	if !errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrUnavailable) {
		t.Errorf("without a token: %v, want ErrUnauthenticated", err)
	}
}

func TestTokenIsNotSentInClearToAnotherHost(t *testing.T) {
	creds := tokenCreds{token: "cfd_x"}
	if _, err := creds.GetRequestMetadata(context.Background(), "https://10.1.2.3:7700/configd.v1.Config"); err == nil {
		t.Error("token sent over plaintext to 10.1.2.3")
	}
	md, err := creds.GetRequestMetadata(context.Background(), "https://127.0.0.1:7700/configd.v1.Config")
	if err != nil || md["authorization"] != "Bearer cfd_x" {
		t.Errorf("loopback: %v, %v", md, err)
	}
}
