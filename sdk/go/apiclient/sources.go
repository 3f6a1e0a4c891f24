package apiclient

import (
	"context"
	"net/http"
	"strings"

	"github.com/configd/configd/api"
)

// Sources returns the layers of configd's configuration, highest
// precedence first: its sources and the writable store layer, with their
// state.
func (c *Client) Sources(ctx context.Context) (api.SourcesResponse, error) {
	var s api.SourcesResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/sources"}, &s)
	return s, err
}

// Layers returns every layer that defines key, highest precedence first,
// and marks the one its value comes from.
func (c *Client) Layers(ctx context.Context, key string) (api.LayersResponse, error) {
	var l api.LayersResponse
	path := "/v1/layers/" + strings.TrimPrefix(kvPath(key), "/v1/kv/")
	err := c.do(ctx, request{method: http.MethodGet, path: path}, &l)
	return l, err
}

// Replicas returns the replicas of the configd cluster the server is a
// replica of, with their revision and lag; a configd that runs alone
// answers Store "sqlite" and none.
func (c *Client) Replicas(ctx context.Context) (api.ReplicasResponse, error) {
	var r api.ReplicasResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/replicas"}, &r)
	return r, err
}
