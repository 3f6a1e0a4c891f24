package audit

import (
	"context"
	"errors"
	"testing"
)

func TestTokensCreateListRevoke(t *testing.T) {
	st := openTest(t)
	ctx := context.Background()
	tok := Token{Name: "ci", Hash: []byte("hash-1"), Grants: []Grant{
		{Permission: "write", Prefix: "app/"}, {Permission: "read", Prefix: ""}}}
	if err := st.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(ctx, Token{Name: "ci", Hash: []byte("hash-2")}); !errors.Is(err, ErrTokenExists) {
		t.Fatalf("second valid token named ci: got %v, want ErrTokenExists", err)
	}
	ts, err := st.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != "ci" || string(ts[0].Hash) != "hash-1" || len(ts[0].Grants) != 2 || !ts[0].RevokedAt.IsZero() {
		t.Fatalf("tokens: %+v", ts)
	}
	if err := st.RevokeToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, "ci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking twice: got %v, want ErrNotFound", err)
	}
	// The name is free again once revoked.
	if err := st.CreateToken(ctx, Token{Name: "ci", Hash: []byte("hash-3")}); err != nil {
		t.Fatal(err)
	}
	ts, err = st.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].RevokedAt.IsZero() || !ts[1].RevokedAt.IsZero() {
		t.Fatalf("after revoke and re-create: %+v", ts)
	}
}

func TestSetTokenGrants(t *testing.T) {
	st := openTest(t)
	ctx := context.Background()
	if err := st.CreateToken(ctx, Token{Name: "ci", Hash: []byte("h1"), Grants: []Grant{{Permission: "write", Prefix: ""}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetTokenGrants(ctx, "ci", []Grant{{Permission: "read", Prefix: "app/"}}); err != nil {
		t.Fatal(err)
	}
	ts, err := st.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || len(ts[0].Grants) != 1 || ts[0].Grants[0] != (Grant{Permission: "read", Prefix: "app/"}) {
		t.Fatalf("after SetTokenGrants: %+v", ts)
	}
	if err := st.SetTokenGrants(ctx, "nobody", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: got %v, want ErrNotFound", err)
	}
	if err := st.RevokeToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetTokenGrants(ctx, "ci", []Grant{{Permission: "admin", Prefix: ""}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked token: got %v, want ErrNotFound", err)
	}
}
