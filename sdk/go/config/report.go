package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
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
	sched := schedule{every: api.DefaultClientReportInterval}
	heartbeat := time.NewTimer(sched.every)
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
			heartbeat.Reset(sched.every)
			continue // no configd watched yet: the first watch wakes us
		}
		last = time.Now()
		got, err := c.sendReport(hc, c.snapshotReport())
		next := sched.every
		switch {
		case err == nil:
			sent, failing = true, false
			if got.every > 0 {
				sched = got
			}
			next = sched.next(last, c.opts.instance)
		case !failing:
			failing = true
			c.log.Warn("cannot report to configd (delivery tracking); retrying at the next change or in "+next.String(), "err", err)
		default:
			c.log.Debug("cannot report to configd", "err", err)
		}
		heartbeat.Reset(next)
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

// schedule is when configd asks for heartbeats (api.ClientReportResponse).
type schedule struct {
	every, window time.Duration
}

// next returns how long after now the heartbeat after a report sent at
// now goes: at the client's offset within the window at the start of a
// period (periods of every since the Unix epoch), the first such slot at
// least half a period after now, so that heartbeats stay between half a
// period and a period and a half apart (configd's expiry is three). The
// offset is a hash of the instance, so a fleet's heartbeats spread over
// the window and each client keeps its slot. Without a window: every.
func (s schedule) next(now time.Time, instance string) time.Duration {
	if s.window <= 0 || s.window > s.every {
		return s.every
	}
	h := fnv.New64a()
	h.Write([]byte(instance))
	offset := time.Duration(h.Sum64() % uint64(s.window))
	earliest := now.Add(s.every / 2)
	slot := earliest.Truncate(s.every).Add(offset)
	if slot.Before(earliest) {
		slot = slot.Add(s.every)
	}
	return slot.Sub(now)
}

func (c *Client) sendGone(hc *http.Client) {
	r := c.snapshotReport()
	r.Gone = true
	ctx, cancel := context.WithTimeout(context.Background(), goneTimeout)
	defer cancel()
	_, _ = c.post(ctx, hc, r)
}

// sendReport sends r; it returns when configd wants heartbeats.
func (c *Client) sendReport(hc *http.Client, r api.ClientReport) (schedule, error) {
	ctx, cancel := context.WithTimeout(c.ctx, reportTimeout)
	defer cancel()
	return c.post(ctx, hc, r)
}

func (c *Client) post(ctx context.Context, hc *http.Client, r api.ClientReport) (schedule, error) {
	a := c.watched.Load()
	if a == nil {
		return schedule{}, fmt.Errorf("%w: no configd watched yet", ErrUnavailable)
	}
	addr := *a
	if err := c.checkTokenTransport(addr); err != nil {
		return schedule{}, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return schedule{}, err
	}
	scheme := "http"
	if c.opts.tls != nil {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+addr+"/v1/clients/report", bytes.NewReader(body))
	if err != nil {
		return schedule{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.opts.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return schedule{}, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e api.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return schedule{}, fmt.Errorf("%s: %s: %s", addr, resp.Status, e.Error.Message)
		}
		return schedule{}, fmt.Errorf("%s: %s", addr, resp.Status)
	}
	var out api.ClientReportResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return schedule{}, fmt.Errorf("%s: the answer to a report: %w", addr, err)
	}
	return schedule{every: time.Duration(out.EveryMS) * time.Millisecond, window: time.Duration(out.WindowMS) * time.Millisecond}, nil
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
