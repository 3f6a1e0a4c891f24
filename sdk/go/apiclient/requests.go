package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/configd/configd/api"
)

// Propose records a change request: a draft of ops under req.Scope, by
// the client's actor (docs/requests.md).
func (c *Client) Propose(ctx context.Context, req api.ProposeRequest) (api.ChangeRequest, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.ChangeRequest{}, err
	}
	var out api.ChangeRequest
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/requests", body: body, jsonBody: true}, &out)
	return out, err
}

// Request returns change request id with its diff against now.
func (c *Client) Request(ctx context.Context, id int64) (api.ChangeRequest, error) {
	var out api.ChangeRequest
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/requests/" + strconv.FormatInt(id, 10)}, &out)
	return out, err
}

// Requests lists the change requests the token may read, oldest first;
// state "" is every state.
func (c *Client) Requests(ctx context.Context, state string) ([]api.ChangeRequest, error) {
	var q url.Values
	if state != "" {
		q = url.Values{"state": {state}}
	}
	var out api.RequestsResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/requests", query: q}, &out)
	return out.Requests, err
}

// RequestAction takes action (comment, approve, rebase, publish or close)
// on change request id, with text (the comment, the approval's note, the
// close's reason), and returns the request as it then stands.
func (c *Client) RequestAction(ctx context.Context, id int64, action, text string) (api.ChangeRequest, error) {
	body, err := json.Marshal(api.RequestActionBody{Text: text})
	if err != nil {
		return api.ChangeRequest{}, err
	}
	var out api.ChangeRequest
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/requests/" + strconv.FormatInt(id, 10) + "/" + url.PathEscape(action),
		body: body, jsonBody: true}, &out)
	return out, err
}

// Policies returns the approval policies, by prefix.
func (c *Client) Policies(ctx context.Context) ([]api.RequestPolicy, error) {
	var out api.PoliciesResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/policies"}, &out)
	return out.Policies, err
}

// SetPolicy sets a prefix's approval policy (approvals 0 removes it),
// recording reason.
func (c *Client) SetPolicy(ctx context.Context, p api.RequestPolicy, reason string) (api.RequestPolicy, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return api.RequestPolicy{}, err
	}
	var h http.Header
	if reason != "" {
		h = http.Header{api.HeaderReason: {reason}}
	}
	var out api.RequestPolicy
	err = c.do(ctx, request{method: http.MethodPut, path: "/v1/policies", header: h, body: body, jsonBody: true}, &out)
	return out, err
}
