package api

import "time"

// HeaderAuthorization carries the bearer token: "Authorization: Bearer
// cfd_...". gRPC clients send it as the "authorization" metadata.
const HeaderAuthorization = "Authorization"

// Permissions of a Grant. Each implies the ones before it.
const (
	PermissionRead  = "read"
	PermissionWrite = "write"
	PermissionAdmin = "admin"
)

// Grant gives Permission on every key under Prefix ("" is every key).
type Grant struct {
	Permission string `json:"permission"`
	Prefix     string `json:"prefix"`
}

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Name   string  `json:"name"`
	Grants []Grant `json:"grants"`
}

// GrantsRequest is the body of PUT /v1/tokens/{name}/grants, which
// replaces a valid token's grants; it answers with the token (TokenInfo).
type GrantsRequest struct {
	Grants []Grant `json:"grants"`
}

// TokenCreated answers POST /v1/tokens. Token is the secret: configd keeps
// only its hash and never shows it again.
type TokenCreated struct {
	Name   string  `json:"name"`
	Token  string  `json:"token"`
	Grants []Grant `json:"grants"`
}

// TokenInfo describes a token in GET /v1/tokens, without its secret.
type TokenInfo struct {
	Name      string     `json:"name"`
	Grants    []Grant    `json:"grants"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// TokensResponse answers GET /v1/tokens.
type TokensResponse struct {
	Tokens []TokenInfo `json:"tokens"`
}
