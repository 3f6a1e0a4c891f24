package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/configd/configd/api"
)

// CreateToken creates a bearer token named name with grants and returns
// it with its secret, which configd shows only this once. It needs an
// admin token.
func (c *Client) CreateToken(ctx context.Context, name string, grants []api.Grant) (api.TokenCreated, error) {
	body, err := json.Marshal(api.TokenRequest{Name: name, Grants: grants})
	if err != nil {
		return api.TokenCreated{}, err
	}
	var out api.TokenCreated
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/tokens", body: body, jsonBody: true}, &out)
	return out, err
}

// Tokens lists the tokens, revoked ones included, without their secrets.
// It needs an admin token.
func (c *Client) Tokens(ctx context.Context) ([]api.TokenInfo, error) {
	var out api.TokensResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/tokens"}, &out)
	return out.Tokens, err
}

// RevokeToken revokes the valid token named name. It needs an admin token.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/tokens/" + url.PathEscape(name)}, nil)
}

// SetTokenGrants replaces the grants of the valid token named name and
// returns them as configd stored them. configd checks the token's requests
// against them from then on and ends its open watches that reach a key it
// may no longer read. It needs an admin token.
func (c *Client) SetTokenGrants(ctx context.Context, name string, grants []api.Grant) ([]api.Grant, error) {
	body, err := json.Marshal(api.GrantsRequest{Grants: grants})
	if err != nil {
		return nil, err
	}
	var out api.TokenInfo
	err = c.do(ctx, request{method: http.MethodPut, path: "/v1/tokens/" + url.PathEscape(name) + "/grants", body: body, jsonBody: true}, &out)
	return out.Grants, err
}
