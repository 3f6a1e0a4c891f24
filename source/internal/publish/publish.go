// Package publish keeps the bookkeeping that every source shares: the
// run-once guard, Close, the Status, and the rules of the Source contract
// about what is emitted (no two equal snapshots in a row, one error update
// per distinct error, a snapshot after every recovery).
package publish

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/configd/configd/source"
)

// Publisher sends a source's updates. Snapshot, Error and Synced are called
// from the source's one Run goroutine; Status and Close from anywhere.
type Publisher struct {
	emitMu sync.Mutex // serialises calls of emit

	mu           sync.Mutex
	st           source.Status
	emit         func(source.Update)
	started      bool
	closed       bool
	cancel       context.CancelFunc
	last         map[string]source.Value
	lastWarnings []source.Warning
	sent         bool // a snapshot was sent
	inError      bool // the latest update sent was an error
	lastErr      string
}

// New returns a Publisher in state starting.
func New() *Publisher {
	return &Publisher{st: source.Status{State: source.StateStarting}}
}

// Start begins a Run: it returns a context that ends with ctx or with
// Close, or source.ErrRunning when Run was called before or the source is
// closed.
func (p *Publisher) Start(ctx context.Context, emit func(source.Update)) (context.Context, context.CancelFunc, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return nil, nil, source.ErrRunning
	}
	p.started = true
	p.emit = emit
	ctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	return ctx, cancel, nil
}

// Close marks the source closed and ends its Run. It reports whether this
// was the first call.
func (p *Publisher) Close() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.closed = true
	p.st.State = source.StateClosed
	if p.cancel != nil {
		p.cancel()
	}
	return true
}

// Status returns the current status.
func (p *Publisher) Status() source.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// Snapshot records a successful read of the whole scope at revision rev and
// emits it, unless it equals the previous snapshot (with the same warnings)
// and the source was healthy. It reports whether it emitted.
func (p *Publisher) Snapshot(snap map[string]source.Value, warnings []source.Warning, rev int64) bool {
	if snap == nil {
		snap = map[string]source.Value{}
	}
	p.emitMu.Lock()
	defer p.emitMu.Unlock()
	p.mu.Lock()
	now := time.Now()
	p.st.LastSync = now
	p.st.Revision = rev
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if p.sent && !p.inError && source.Equal(p.last, snap) && slices.Equal(p.lastWarnings, warnings) {
		p.mu.Unlock()
		return false
	}
	p.last, p.lastWarnings = snap, warnings
	p.sent, p.inError, p.lastErr = true, false, ""
	p.st.State = source.StateOK
	p.st.LastChange = now
	p.st.Keys = len(snap)
	p.st.Warnings = len(warnings)
	u := source.Update{Snapshot: snap, Warnings: warnings, Status: p.st}
	emit := p.emit
	p.mu.Unlock()
	emit(u)
	return true
}

// Error records a failed read and emits it, unless the previous update was
// an error with the same text.
func (p *Publisher) Error(err error) {
	p.emitMu.Lock()
	defer p.emitMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	msg := err.Error()
	p.st.State = source.StateDegraded
	p.st.LastError = msg
	p.st.LastErrorAt = time.Now()
	if p.inError && p.lastErr == msg {
		p.mu.Unlock()
		return
	}
	p.inError, p.lastErr = true, msg
	u := source.Update{Err: err, Status: p.st}
	emit := p.emit
	p.mu.Unlock()
	emit(u)
}

// Healthy reports whether the latest update sent was a snapshot.
func (p *Publisher) Healthy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent && !p.inError
}

// Synced records that the backend answered at revision rev and the scope
// has not changed since the last snapshot.
func (p *Publisher) Synced(rev int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.LastSync = time.Now()
	p.st.Revision = rev
}
