package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/configd/configd/api"
)

// StartRollout rolls a change request out in steps (docs/rollouts.md), by
// the client's actor, and returns the rollout with its status.
func (c *Client) StartRollout(ctx context.Context, req api.StartRollout) (api.Rollout, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.Rollout{}, err
	}
	var out api.Rollout
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/rollouts", body: body, jsonBody: true}, &out)
	return out, err
}

// Rollout returns rollout id and, while it runs, its status.
func (c *Client) Rollout(ctx context.Context, id int64) (api.Rollout, error) {
	var out api.Rollout
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/rollouts/" + strconv.FormatInt(id, 10)}, &out)
	return out, err
}

// Rollouts lists the rollouts the token may read, oldest first, without
// their status.
func (c *Client) Rollouts(ctx context.Context) ([]api.Rollout, error) {
	var out api.RolloutsResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/rollouts"}, &out)
	return out.Rollouts, err
}

// RolloutAction takes action (promote, pause, resume, abort or complete)
// on rollout id, with text for its log, and returns the rollout as it
// then stands.
func (c *Client) RolloutAction(ctx context.Context, id int64, action, text string) (api.Rollout, error) {
	return c.RolloutActionAt(ctx, id, 0, action, text)
}

// RolloutActionAt is RolloutAction on the version of rollout id at
// revision at (its Rev): it fails with a conflict (api.CodeConflict)
// when another action came first. At 0 it acts on the newest version.
func (c *Client) RolloutActionAt(ctx context.Context, id, at int64, action, text string) (api.Rollout, error) {
	body, err := json.Marshal(api.RolloutActionBody{Text: text, Rev: at})
	if err != nil {
		return api.Rollout{}, err
	}
	var out api.Rollout
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/rollouts/" + strconv.FormatInt(id, 10) + "/" + url.PathEscape(action),
		body: body, jsonBody: true}, &out)
	return out, err
}
