package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/watchwire"
	"github.com/configd/configd/watcher"
)

// Long poll limits.
const (
	DefaultWatchWait = 30 * time.Second
	MaxWatchWait     = 5 * time.Minute
	// maxPollBatches caps one long-poll answer; the client polls again
	// from the last revision it got.
	maxPollBatches = 1000
)

// Hub is the watch hub the watch routes read: watcher.Hub.
type Hub interface {
	Rev() int64
	Watch(ctx context.Context, f watcher.Filter, since int64, opts ...watcher.WatchOption) (*watcher.Watcher, error)
}

var _ Hub = (*watcher.Hub)(nil)

// watchHTTP serves GET /v1/watch: a long poll, or server-sent events when
// the client accepts text/event-stream.
type watchHTTP struct {
	hub      Hub
	metrics  *watchwire.Metrics
	progress time.Duration
	// writeTimeout bounds how long a watch stream's client may take to
	// read streamWriteChunk bytes (0: streamWriteTimeout).
	writeTimeout time.Duration
	limits       *authz.Limits
	auth         *authz.Auth // nil: authentication is off
	// await waits until a watch from since can open (core.AwaitWatch):
	// on a replica, a client may come with the revision another replica
	// had sent it; nil: at once.
	await func(ctx context.Context, since int64) error
}

type watchParams struct {
	filter watcher.Filter
	since  int64
	wait   time.Duration
	// id is the client's identity, for rollouts: the headers
	// api.HeaderInstance and api.HeaderLabels, or the query's instance=
	// and labels= (for an EventSource, which sends no headers of its own).
	id rollout.Identity
}

func parseWatchParams(r *http.Request) (watchParams, error) {
	q := r.URL.Query()
	if err := checkParams(q, "key", "prefix", "since", "wait", "instance", "labels"); err != nil {
		return watchParams{}, err
	}
	p := watchParams{filter: watcher.Filter{Keys: q["key"], Prefixes: q["prefix"]}, wait: DefaultWatchWait}
	if len(p.filter.Keys) == 0 && len(p.filter.Prefixes) == 0 {
		return p, apierror.BadRequest("give key=KEY or prefix=PREFIX (prefix= alone watches everything)")
	}
	if s := q.Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return p, apierror.New(api.CodeBadRevision, "since must be a revision number >= 0, got %q", s)
		}
		p.since = n
	} else if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			return p, apierror.New(api.CodeBadRevision, "Last-Event-ID must be a revision number, got %q", id)
		}
		p.since = n
	}
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return p, apierror.BadRequest("wait must be a duration such as 30s, got %q", s)
		}
		p.wait = min(d, MaxWatchWait)
	}
	instance, labels := r.Header.Get(api.HeaderInstance), r.Header.Get(api.HeaderLabels)
	if instance == "" && labels == "" {
		instance, labels = q.Get("instance"), q.Get("labels")
	}
	var err error
	if p.id.Instance, p.id.Labels, err = api.ParseIdentity(instance, labels); err != nil {
		return p, apierror.BadRequest("%v", err)
	}
	return p, nil
}

// fail writes err as a JSON error.
func (h *watchHTTP) fail(w http.ResponseWriter, err error) {
	status, body, _ := errorBody(err)
	apierror.WriteJSON(w, status, api.ErrorResponse{Error: body})
}

func (h *watchHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := parseWatchParams(r)
	if err == nil && h.await != nil {
		err = h.await(r.Context(), p.since)
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	release, err := h.limits.OpenWatch(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	if wantsStream(r) {
		h.upgrade(w, r, p, release)
		return
	}
	defer release()
	ctx := r.Context()
	// wake is signalled by the watcher when it has news and by the rules
	// when the token's rights change.
	wake := make(chan struct{}, 1)
	rules := authz.NewWatchRules(ctx, h.auth, p.filter, authz.SecureRequest(r), func() { signal(wake) })
	defer rules.Close()
	wt, err := h.hub.Watch(ctx, p.filter, p.since, watcher.WithNotify(wake), watcher.WithIdentity(p.id))
	if err != nil {
		h.fail(w, err)
		return
	}
	defer wt.Close()
	h.metrics.Watchers(1)
	defer h.metrics.Watchers(-1)
	src := &ruledWatch{wt: wt, rules: rules, wake: wake}
	if acceptsEventStream(r) {
		h.stream(ctx, w, src)
		return
	}
	h.poll(ctx, w, src, p)
}

// batchSource is a watcher, as the long poll and SSE read it.
type batchSource interface {
	TryNext() (watcher.Batch, bool, error)
	Next(ctx context.Context) (watcher.Batch, error)
}

// ruledWatch is a watcher whose batches pass its rules (watchRules)
// before they are sent: the first that does not ends the watch with the
// rules' error.
type ruledWatch struct {
	wt    *watcher.Watcher
	rules *authz.WatchRules
	wake  chan struct{} // the watcher's notify channel, also the rules' wake
}

func (g *ruledWatch) TryNext() (watcher.Batch, bool, error) {
	if err := g.rules.Check(); err != nil {
		return watcher.Batch{}, false, err
	}
	b, ok, err := g.wt.TryNext()
	if ok {
		if err := g.rules.Admit(b); err != nil {
			return watcher.Batch{}, false, err
		}
	}
	return b, ok, err
}

func (g *ruledWatch) Next(ctx context.Context) (watcher.Batch, error) {
	for {
		b, ok, err := g.TryNext()
		if ok {
			return b, nil
		}
		if err != nil {
			return watcher.Batch{}, err
		}
		select {
		case <-g.wake:
		case <-ctx.Done():
			return watcher.Batch{}, ctx.Err()
		}
	}
}

// signal wakes whoever waits on ch, without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// watchEnded is the error answer of a watch that ended: a refusal as it
// is, anything else (the hub closing) as 503.
func watchEnded(err error) error {
	var he *apierror.Error
	if errors.As(err, &he) {
		return err
	}
	return apierror.New(api.CodeUnavailable, "watch ended: %v", err)
}

// poll answers with what is queued now, or waits up to p.wait for the first
// batch; when the wait ends with nothing new it answers "progress".
func (h *watchHTTP) poll(ctx context.Context, w http.ResponseWriter, wt batchSource, p watchParams) {
	deadline := time.Now().Add(p.wait)
	for {
		// Read the hub's revision before draining: every batch up to it is
		// then queued, so an empty drain means nothing changed up to rev.
		rev := h.hub.Rev()
		batches, err := h.drain(wt, nil)
		if err != nil {
			h.fail(w, watchEnded(err))
			return
		}
		if len(batches) > 0 || !time.Now().Before(deadline) {
			h.answer(w, batches, max(rev, p.since))
			return
		}
		waitCtx, cancel := context.WithDeadline(ctx, deadline)
		b, err := wt.Next(waitCtx)
		cancel()
		switch {
		case err == nil:
			h.metrics.Sent(b)
			batches, err := h.drain(wt, []watcher.Batch{b})
			if err != nil {
				h.fail(w, watchEnded(err))
				return
			}
			h.answer(w, batches, b.Rev)
			return
		case ctx.Err() != nil:
			return // the client went away
		case errors.Is(err, context.DeadlineExceeded):
			continue // answer with progress (or what arrived meanwhile)
		default:
			h.fail(w, watchEnded(err))
			return
		}
	}
}

// drain appends every queued batch, up to maxPollBatches, to batches.
func (h *watchHTTP) drain(wt batchSource, batches []watcher.Batch) ([]watcher.Batch, error) {
	for len(batches) < maxPollBatches {
		b, ok, err := wt.TryNext()
		if !ok {
			if err != nil && len(batches) == 0 {
				return nil, err
			}
			break
		}
		h.metrics.Sent(b)
		batches = append(batches, b)
		if b.Kind == watcher.KindResync {
			break
		}
	}
	return batches, nil
}

// answer writes an api.WatchResponse with batches, each batch's JSON
// written as the hub's batch shares it (batchJSON), not copied.
func (h *watchHTTP) answer(w http.ResponseWriter, batches []watcher.Batch, rev int64) {
	resp := api.WatchResponse{Rev: rev, Kind: api.WatchProgress, Batches: []api.WatchBatch{}}
	if len(batches) > 0 {
		resp.Rev = batches[len(batches)-1].Rev
		resp.Kind = batches[0].Kind.String()
		for _, b := range batches[1:] {
			if b.Kind.String() != resp.Kind {
				resp.Kind = api.WatchChanges // mixed: see each batch's kind
			}
		}
	}
	head, err := json.Marshal(resp)
	if err != nil || !bytes.HasSuffix(head, []byte("[]}")) {
		// The batches are api.WatchResponse's last field.
		panic(fmt.Sprintf("server: watch answer %s: %v", head, err))
	}
	setRev(w, resp.Rev)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bufs := net.Buffers{head[:len(head)-2]} // up to "batches":[
	for i, b := range batches {
		if i > 0 {
			bufs = append(bufs, []byte(","))
		}
		bufs = append(bufs, watchwire.JSON(b))
	}
	bufs = append(bufs, []byte("]}\n"))
	_, _ = bufs.WriteTo(w) // a failed write means the client is gone
}

func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/event-stream") {
			return true
		}
	}
	return false
}

// stream sends server-sent events: one "changes"/"snapshot" event per batch
// with the revision as its id (so EventSource resumes with Last-Event-ID),
// and a "progress" event when idle.
func (h *watchHTTP) stream(ctx context.Context, w http.ResponseWriter, wt batchSource) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		h.fail(w, apierror.New(api.CodeInternal, "streaming is not supported by this connection"))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	write := func(event string, rev int64, data []byte) bool {
		bufs := net.Buffers{fmt.Appendf(nil, "id: %d\nevent: %s\ndata: ", rev, event), data, []byte("\n\n")}
		if _, err := bufs.WriteTo(w); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	send := func(event string, rev int64, v any) bool {
		data, err := json.Marshal(v)
		return err == nil && write(event, rev, data)
	}
	// sendBatch sends b's JSON as the hub's batch shares it (batchJSON).
	sendBatch := func(b watcher.Batch) bool { return write(b.Kind.String(), b.Rev, watchwire.JSON(b)) }
	// refuse ends the stream with an "error" event carrying the API error
	// of a refusal (a secret on a plain connection).
	refuse := func(err error) {
		var he *apierror.Error
		if errors.As(err, &he) {
			_, body, _ := errorBody(err)
			send("error", 0, api.ErrorResponse{Error: body})
		}
	}
	progress := h.progress
	if progress <= 0 {
		progress = watchwire.DefaultProgressInterval
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, progress)
		b, err := wt.Next(pctx)
		cancel()
		switch {
		case err == nil:
			h.metrics.Sent(b)
			if !sendBatch(b) || b.Kind == watcher.KindResync {
				return
			}
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			rev := h.hub.Rev()
			b, ok, err := wt.TryNext()
			if ok {
				h.metrics.Sent(b)
				if !sendBatch(b) || b.Kind == watcher.KindResync {
					return
				}
				continue
			}
			if err != nil {
				refuse(err)
				return
			}
			if !send(api.WatchProgress, rev, api.WatchBatch{Kind: api.WatchProgress, Rev: rev, Events: []api.WatchEvent{}}) {
				return
			}
		default:
			refuse(err)
			return
		}
	}
}
