package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/configd/configd/api"
)

// Reporting (delivery tracking): the client tells configd who it is (its
// instance and labels), what it watches, the revision it has applied and
// the values it rejects, with POST /v1/clients/report on the configd it
// watches (over HTTP, also when it watches over gRPC: configd serves both
// on one port). It reports when its copy's content or its rejections
// change, at most once per reportGap, and otherwise every third of
// configd's expiry (configd's answer says how often), so that configd
// lists it while it lives and forgets it after the expiry once it is gone.
// Close tells configd at once. A configd that does not track delivery
// (404) is asked again only at the heartbeat.
const (
	reportGap     = time.Second
	reportTimeout = 5 * time.Second
	goneTimeout   = 500 * time.Millisecond
)

// dirty asks the reporter for a report; it never blocks.
func (c *Client) dirty() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// report runs the reporter until Close.
func (c *Client) report() {
	defer close(c.reported)
	if c.opts.noReport {
		return
	}
	hc := &http.Client{Transport: c.reportTransport(), Timeout: reportTimeout}
	defer hc.CloseIdleConnections()
	every := api.DefaultClientReportInterval
	heartbeat := time.NewTimer(every)
	defer heartbeat.Stop()
	var last time.Time
	sent, failing := false, false
	for {
		select {
		case <-c.ctx.Done():
			if sent {
				c.sendGone(hc)
			}
			return
		case <-c.wake:
			// Gather what else changes within reportGap.
			if wait := reportGap - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-c.ctx.Done():
					t.Stop()
					continue
				}
			}
		case <-heartbeat.C:
		}
		if c.watched.Load() == nil {
			heartbeat.Reset(every)
			continue // no configd watched yet: the first watch wakes us
		}
		last = time.Now()
		next, err := c.sendReport(hc, c.snapshotReport())
		switch {
		case err == nil:
			sent, failing = true, false
			if next > 0 {
				every = next
			}
		case !failing:
			failing = true
			c.log.Warn("cannot report to configd (delivery tracking); retrying at the next change or in "+every.String(), "err", err)
		default:
			c.log.Debug("cannot report to configd", "err", err)
		}
		heartbeat.Reset(every)
	}
}

// snapshotReport is the report of the client's state now.
func (c *Client) snapshotReport() api.ClientReport {
	keys, prefixes := c.opts.filter()
	r := api.ClientReport{Instance: c.opts.instance, Labels: c.opts.labels, Prefixes: slices.Concat(keys, prefixes)}
	c.mu.Lock()
	r.Rev = c.Rev()
	for _, k := range slices.Sorted(maps.Keys(c.rejected)) {
		r.Rejections = append(r.Rejections, c.rejected[k])
	}
	c.mu.Unlock()
	return r
}

func (c *Client) sendGone(hc *http.Client) {
	r := c.snapshotReport()
	r.Gone = true
	ctx, cancel := context.WithTimeout(context.Background(), goneTimeout)
	defer cancel()
	_, _ = c.post(ctx, hc, r)
}

// sendReport sends r; it returns how often configd wants a heartbeat.
func (c *Client) sendReport(hc *http.Client, r api.ClientReport) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(c.ctx, reportTimeout)
	defer cancel()
	return c.post(ctx, hc, r)
}

func (c *Client) post(ctx context.Context, hc *http.Client, r api.ClientReport) (time.Duration, error) {
	a := c.watched.Load()
	if a == nil {
		return 0, fmt.Errorf("%w: no configd watched yet", ErrUnavailable)
	}
	addr := *a
	if err := c.checkTokenTransport(addr); err != nil {
		return 0, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	scheme := "http"
	if c.opts.tls != nil {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+addr+"/v1/clients/report", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.opts.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e api.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return 0, fmt.Errorf("%s: %s: %s", addr, resp.Status, e.Error.Message)
		}
		return 0, fmt.Errorf("%s: %s", addr, resp.Status)
	}
	var out api.ClientReportResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return 0, fmt.Errorf("%s: the answer to a report: %w", addr, err)
	}
	return time.Duration(out.EveryMS) * time.Millisecond, nil
}

func (c *Client) reportTransport() *http.Transport {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: reportTimeout, KeepAlive: keepaliveTime}).DialContext,
		TLSHandshakeTimeout: reportTimeout,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     2 * api.DefaultClientReportInterval,
	}
	if c.opts.tls != nil {
		tr.TLSClientConfig = c.opts.tls.Clone()
	}
	return tr
}
