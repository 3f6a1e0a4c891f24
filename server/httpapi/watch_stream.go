package httpapi

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/watchwire"
	"github.com/configd/configd/watcher"
)

// The watch stream (api.WatchStreamProtocol) is the lean way to hold a
// watch open: after the upgrade, an idle watcher costs configd one
// goroutine parked in Read and a timer, nothing else. Sending happens in a
// goroutine started when the hub queues a batch (watcher.WithCallback) and
// ending when the queue is empty, so 10,000 idle watchers hold no writer
// goroutines, buffers or HTTP/2 state.

// streamWriteTimeout bounds how long a watch stream's client may take to
// read streamWriteChunk bytes: a client that stops reading for that long
// is disconnected (it resumes from its last revision when it comes back).
// A slow client is not: a 3 MB snapshot to each of 2,000 clients sharing
// one link takes longer than that, and cutting them off would only make
// them ask again.
const (
	streamWriteTimeout = 10 * time.Second
	streamWriteChunk   = 64 << 10
)

// maxStreamWrite is how much one write gathers from a watcher's queue.
const maxStreamWrite = 1 << 20

// wantsStream reports whether r asks to upgrade to the watch stream.
func wantsStream(r *http.Request) bool {
	if r.ProtoMajor != 1 || !headerHasToken(r.Header, "Connection", "upgrade") {
		return false
	}
	return headerHasToken(r.Header, "Upgrade", api.WatchStreamProtocol)
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// upgrade answers 101 and serves the watch stream on the hijacked
// connection. The watch is created first, so that a refused one gets the
// usual JSON error. release ends the watch's count towards its identity's
// maximum: close calls it, or upgrade when the stream never starts.
func (h *watchHTTP) upgrade(w http.ResponseWriter, r *http.Request, p watchParams, release func()) {
	rc := http.NewResponseController(w)
	s := &streamConn{h: h, progress: h.progressInterval(), release: release}
	s.rules = authz.NewWatchRules(r.Context(), h.auth, p.filter, authz.SecureRequest(r), s.kick)
	defer func() {
		if s.conn == nil {
			s.rules.Close()
			release()
		}
	}()
	// flushing starts true: batches queued before the connection is ours
	// wait until serve starts the first flush.
	s.flushing.Store(true)
	wt, err := h.hub.Watch(r.Context(), p.filter, p.since, watcher.WithCallback(s.kick), watcher.WithIdentity(p.id))
	if err != nil {
		h.fail(w, err)
		return
	}
	s.wt = wt
	conn, brw, err := rc.Hijack()
	if err != nil {
		wt.Close()
		h.fail(w, apierror.New(api.CodeInternal, "cannot take over the connection for the watch stream: %v", err))
		return
	}
	if brw.Reader.Buffered() > 0 {
		// The client must wait for 101 before anything else.
		wt.Close()
		conn.Close()
		return
	}
	s.conn, s.out = conn, conn
	if wc, ok := conn.(writeConner); ok {
		// Writes skip the wrapper that replays what the port's mux read,
		// so that net.Buffers writes with writev.
		s.out = wc.WriteConn()
	}
	h.metrics.Watchers(1)
	// The HTTP server's deadlines no longer apply.
	_ = conn.SetDeadline(time.Time{})
	head := fmt.Sprintf("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s: %d\r\n%s: %s\r\n\r\n",
		api.WatchStreamProtocol, api.HeaderRev, h.hub.Rev(), api.HeaderProgressInterval, s.progress)
	created := &configdpb.WatchResponse{Kind: configdpb.WatchResponse_CREATED, Rev: h.hub.Rev()}
	if !s.write(net.Buffers{watchwire.AppendFrame([]byte(head), created)}) {
		return
	}
	// Armed only once assigned: tick reads s.timer.
	s.timer = time.AfterFunc(math.MaxInt64, s.tick)
	s.timer.Reset(s.progress)
	go s.readUntilClosed()
	s.flushing.Store(false)
	s.kick()
}

func (h *watchHTTP) progressInterval() time.Duration {
	if h.progress > 0 {
		return h.progress
	}
	return watchwire.DefaultProgressInterval
}

// writeConner is a connection whose writes may go to the one it wraps:
// the port mux's, which replays on reads what it read to route the
// connection, and nothing on writes.
type writeConner interface{ WriteConn() net.Conn }

// streamConn is one watch stream.
type streamConn struct {
	h        *watchHTTP
	conn     net.Conn
	out      io.Writer // conn, or the connection under it (writev)
	wt       *watcher.Watcher
	progress time.Duration
	timer    *time.Timer
	rules    *authz.WatchRules
	release  func()

	// flushing is true while a goroutine sends; only that goroutine touches
	// lastRev and sentSinceTick.
	flushing      atomic.Bool
	progressDue   atomic.Bool
	lastRev       int64
	sentSinceTick bool

	closeOnce sync.Once
	closed    atomic.Bool
}

// kick starts a flush unless one is running. It is the watcher's callback:
// it runs under the hub's lock and only starts a goroutine.
func (s *streamConn) kick() {
	if s.flushing.CompareAndSwap(false, true) {
		go s.flush()
	}
}

// tick asks for a PROGRESS message and re-arms the timer.
func (s *streamConn) tick() {
	if s.closed.Load() {
		return
	}
	s.progressDue.Store(true)
	s.kick()
	s.timer.Reset(s.progress)
}

// flush sends what is queued, then hands back the flushing flag, taking it
// again if something arrived in between (the kick that came then saw the
// flag taken and did nothing).
func (s *streamConn) flush() {
	for {
		if !s.send() {
			return
		}
		s.flushing.Store(false)
		if !s.wt.Pending() && !s.progressDue.Load() {
			return
		}
		if !s.flushing.CompareAndSwap(false, true) {
			return
		}
	}
}

// send writes every queued batch (and a due PROGRESS) in one write. It
// returns false once the stream is over.
func (s *streamConn) send() bool {
	due := s.progressDue.Swap(false)
	// Read the hub's revision before draining: every batch up to it is then
	// queued, so once drained, PROGRESS at that revision is true.
	rev := s.h.hub.Rev()
	var out frameWriter
	end := false
	// cancel ends the stream with the API error of a refusal.
	cancel := func(err error) {
		_, body, _ := errorBody(err)
		out.add(&configdpb.WatchResponse{Kind: configdpb.WatchResponse_CANCELED,
			Rev: s.lastRev, Error: body.Message, Code: body.Code})
		end = true
	}
	if err := s.rules.Check(); err != nil {
		cancel(err) // woken by its token's revocation or new grants
	}
	for out.size < maxStreamWrite && !end {
		b, ok, err := s.wt.TryNext()
		if !ok {
			if err != nil && !errors.Is(err, watcher.ErrResync) {
				// The hub closed: configd is shutting down.
				out.add(&configdpb.WatchResponse{Kind: configdpb.WatchResponse_CANCELED,
					Rev: max(s.lastRev, rev), Error: "configd is shutting down", Code: api.CodeUnavailable})
				end = true
			}
			break
		}
		if err := s.rules.Admit(b); err != nil {
			cancel(err)
			break
		}
		if b.Kind == watcher.KindResync {
			msg := watchwire.Proto(0, b)
			msg.Error = "watch fell behind; watch again from the last applied revision"
			out.add(msg)
			end = true
		} else {
			out.addShared(watchwire.ProtoFrame(b))
		}
		s.h.metrics.Sent(b)
		s.lastRev, s.sentSinceTick = b.Rev, true
	}
	if due && !end {
		if !s.sentSinceTick {
			// Also the stream's keepalive: sent even when the revision
			// has not moved.
			s.lastRev = max(s.lastRev, rev)
			out.add(&configdpb.WatchResponse{Kind: configdpb.WatchResponse_PROGRESS, Rev: s.lastRev})
		}
		s.sentSinceTick = false
	}
	if out.size > 0 && !s.write(out.buffers()) {
		return false
	}
	if end {
		s.close()
		return false
	}
	return true
}

// write sends bufs, closing the stream when the client can't take it:
// when it reads nothing of a streamWriteChunk for the write timeout.
func (s *streamConn) write(bufs net.Buffers) bool {
	timeout := s.h.writeTimeout
	if timeout <= 0 {
		timeout = streamWriteTimeout
	}
	for len(bufs) > 0 {
		var chunk net.Buffers
		chunk, bufs = splitBuffers(bufs, streamWriteChunk)
		_ = s.conn.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := chunk.WriteTo(s.out); err != nil {
			s.close()
			return false
		}
	}
	return true
}

// splitBuffers returns the first n bytes of bufs and the rest, sharing
// their arrays.
func splitBuffers(bufs net.Buffers, n int) (head, rest net.Buffers) {
	for len(bufs) > 0 && n > 0 {
		b := bufs[0]
		if len(b) > n {
			head = append(head, b[:n])
			bufs[0] = b[n:]
			return head, bufs
		}
		head = append(head, b)
		bufs, n = bufs[1:], n-len(b)
	}
	return head, bufs
}

// readUntilClosed notices the client going away: it sends nothing after
// its request, so any read that returns ends the stream.
func (s *streamConn) readUntilClosed() {
	var b [1]byte
	_, _ = s.conn.Read(b[:])
	s.close()
}

func (s *streamConn) close() {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.timer != nil {
			s.timer.Stop()
		}
		s.wt.Close()
		s.rules.Close()
		s.conn.Close()
		s.release()
		s.h.metrics.Watchers(-1)
	})
}
