package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/configd/configd/api"
)

// Clients returns the SDK clients of every replica that watch something
// under prefix ("" for all), with the revision each applied, how many
// revisions of the prefix it is behind and the values it rejects
// (delivery tracking).
func (c *Client) Clients(ctx context.Context, prefix string) (api.ClientsResponse, error) {
	var r api.ClientsResponse
	var q url.Values
	if prefix != "" {
		q = url.Values{"prefix": {prefix}}
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/clients", query: q}, &r)
	return r, err
}
