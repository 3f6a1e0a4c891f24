package tcp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/configd/configd/sdk/go/micro/transport"
)

// The multiplexed wire format, version 1 (see the package doc).
const (
	muxVersion = "mux1"

	frameData    = 0 // a message for the stream
	frameClose   = 1 // the sender closed the stream
	frameRefused = 2 // server → client: the stream was not accepted, nothing of it was processed
	frameGoAway  = 3 // server → client: open no new streams on this connection (stream id 0)

	// muxOverhead is the most a mux frame adds to a plain one: a uvarint stream id and a type.
	muxOverhead = binary.MaxVarintLen64 + 1
	// inboxSize is how many received messages a stream buffers before its reader waits.
	inboxSize = 4
	// batchSize: a writer with less queued yields once before writing, so more can join.
	batchSize = 16 << 10
)

// muxPreface opens a multiplexed connection, both ways: a length no plain frame can announce,
// then the version.
var muxPreface = []byte("\xff\xff\xff\xff" + muxVersion)

// errRefused is what Recv returns on a stream the server refused.
var errRefused = fmt.Errorf("%w: %w", transport.ErrClosed, transport.ErrRefused)

// muxConn is one connection carrying many streams: a reader goroutine dispatches frames to
// the streams by id, and a writer goroutine writes every frame queued since its last write in
// one write, so concurrent senders share syscalls.
type muxConn struct {
	c      net.Conn
	r      *bufio.Reader
	max    int
	server bool
	accept func(transport.Socket) // server: serves a new stream
	onDead func(*muxConn)         // called once when the connection ends

	wmu      sync.Mutex
	wcond    sync.Cond
	wbuf     []byte // frames queued for the writer
	werr     error  // the writer stopped
	shutdown bool   // close the connection once the queue is written

	mu      sync.Mutex
	socks   map[*vsock]struct{} // the open streams
	streams map[uint64]*vsock   // those with an id, by id
	lastID  uint64              // client: the last id given out; server: the highest id seen
	goaway  bool                // no new streams
	err     error               // the connection is dead
	done    chan struct{}
}

func newMuxConn(c net.Conn, r *bufio.Reader, max int, server bool) *muxConn {
	mc := &muxConn{c: c, r: r, max: max, server: server, socks: map[*vsock]struct{}{}, streams: map[uint64]*vsock{}, done: make(chan struct{})}
	mc.wcond.L = &mc.wmu
	return mc
}

func (mc *muxConn) start() {
	go mc.readLoop()
	go mc.writeLoop()
}

// queue appends one frame for the writer: stream id, type and, for data, m. Data of a socket
// passes the socket as s, and the socket's id is used (given out on its first frame).
func (mc *muxConn) queue(id uint64, typ byte, m *transport.Message, s ...*vsock) error {
	mc.wmu.Lock()
	defer mc.wmu.Unlock()
	if mc.werr != nil || mc.shutdown {
		return fmt.Errorf("%w: connection ended", transport.ErrClosed)
	}
	if len(s) > 0 { // data of stream s
		mc.mu.Lock()
		if _, open := mc.socks[s[0]]; !open {
			mc.mu.Unlock()
			return fmt.Errorf("%w: socket closed", transport.ErrClosed)
		}
		if s[0].id == 0 { // a client stream's first frame: ids are given out in wire order
			mc.lastID++
			s[0].id = mc.lastID
			mc.streams[s[0].id] = s[0]
		}
		id = s[0].id
		mc.mu.Unlock()
	}
	start := len(mc.wbuf)
	b := append(mc.wbuf, 0, 0, 0, 0)
	b = binary.AppendUvarint(b, id)
	b = append(b, typ)
	if m != nil {
		plain := len(b)
		b = appendMessage(b, m)
		if n := len(b) - plain; n > mc.max {
			mc.wbuf = b[:start]
			return fmt.Errorf("%w: %d bytes, max %d", transport.ErrFrameTooLarge, n, mc.max)
		}
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	mc.wbuf = b
	if start == 0 {
		mc.wcond.Signal()
	}
	return nil
}

func (mc *muxConn) writeLoop() {
	var spare []byte
	for {
		mc.wmu.Lock()
		for len(mc.wbuf) == 0 && mc.werr == nil && !mc.shutdown {
			mc.wcond.Wait()
		}
		if mc.werr != nil || len(mc.wbuf) == 0 { // failed, or shut down with nothing left
			mc.wmu.Unlock()
			mc.kill(fmt.Errorf("%w: connection shut down", transport.ErrClosed))
			return
		}
		if len(mc.wbuf) < batchSize && !mc.shutdown {
			// Let the senders that are runnable queue their frames too: one write for all.
			mc.wmu.Unlock()
			runtime.Gosched()
			mc.wmu.Lock()
		}
		b := mc.wbuf
		mc.wbuf = spare[:0]
		mc.wmu.Unlock()
		if _, err := mc.c.Write(b); err != nil {
			mc.kill(fail(mc.c, err))
			return
		}
		if cap(b) <= 1<<20 {
			spare = b
		} else {
			spare = nil
		}
	}
}

// closeWhenWritten closes the connection once the queued frames are written.
func (mc *muxConn) closeWhenWritten() {
	mc.wmu.Lock()
	mc.shutdown = true
	mc.wcond.Signal()
	mc.wmu.Unlock()
}

// kill ends the connection and every stream on it with err.
func (mc *muxConn) kill(err error) {
	mc.mu.Lock()
	if mc.err != nil {
		mc.mu.Unlock()
		return
	}
	mc.err = err
	socks := mc.socks
	mc.socks, mc.streams = map[*vsock]struct{}{}, map[uint64]*vsock{}
	close(mc.done)
	mc.mu.Unlock()
	mc.c.Close()
	mc.wmu.Lock()
	if mc.werr == nil {
		mc.werr = err
	}
	mc.wcond.Signal()
	mc.wmu.Unlock()
	for s := range socks {
		s.end(err)
	}
	if mc.onDead != nil {
		mc.onDead(mc)
	}
}

func (mc *muxConn) readLoop() {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(mc.r, hdr[:]); err != nil {
			mc.kill(fail(mc.c, err))
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if int64(n) > int64(mc.max)+muxOverhead {
			mc.kill(fmt.Errorf("%w: %d bytes announced, max %d", transport.ErrFrameTooLarge, n, mc.max))
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(mc.r, frame); err != nil {
			mc.kill(fail(mc.c, err))
			return
		}
		id, k := binary.Uvarint(frame)
		if k <= 0 || k >= len(frame) {
			mc.kill(fmt.Errorf("%w: bad stream id", transport.ErrMalformedFrame))
			return
		}
		typ, body := frame[k], frame[k+1:]
		switch typ {
		case frameData:
			var m transport.Message
			if err := decode(body, &m); err != nil {
				mc.kill(err)
				return
			}
			if s := mc.streamFor(id); s != nil {
				s.deliver(&m)
			}
		case frameClose:
			mc.mu.Lock()
			s := mc.streams[id]
			if s != nil {
				delete(mc.streams, id)
				delete(mc.socks, s)
			}
			mc.mu.Unlock()
			if s != nil {
				s.end(fmt.Errorf("%w: closed by the peer", transport.ErrClosed))
				mc.released()
			}
		case frameRefused, frameGoAway:
			if mc.server {
				mc.kill(fmt.Errorf("%w: frame type %d from a client", transport.ErrMalformedFrame, typ))
				return
			}
			mc.mu.Lock()
			mc.goaway = true
			s := mc.streams[id]
			if s != nil && typ == frameRefused {
				delete(mc.streams, id)
				delete(mc.socks, s)
			}
			mc.mu.Unlock()
			if s != nil && typ == frameRefused {
				s.end(errRefused)
			}
			mc.released()
		default:
			mc.kill(fmt.Errorf("%w: unknown frame type %d", transport.ErrMalformedFrame, typ))
			return
		}
	}
}

// streamFor returns the stream a data frame is for; on a server, a new id opens a stream
// (or is refused after goAway). Frames for streams already closed are dropped.
func (mc *muxConn) streamFor(id uint64) *vsock {
	mc.mu.Lock()
	if s := mc.streams[id]; s != nil || !mc.server || id <= mc.lastID {
		mc.mu.Unlock()
		return s
	}
	mc.lastID = id
	if mc.goaway || mc.err != nil {
		mc.mu.Unlock()
		mc.queue(id, frameRefused, nil)
		return nil
	}
	s := newVsock(mc, id)
	mc.streams[id] = s
	mc.socks[s] = struct{}{}
	mc.mu.Unlock()
	go mc.accept(s)
	return s
}

// open starts a client stream, unless the connection is dead or going away.
func (mc *muxConn) open() *vsock {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.err != nil || mc.goaway {
		return nil
	}
	s := newVsock(mc, 0) // its id comes with its first frame, so ids reach the server in order
	mc.socks[s] = struct{}{}
	return s
}

// usable tells whether new streams may open on the connection.
func (mc *muxConn) usable() bool {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return mc.err == nil && !mc.goaway
}

// goAway stops new streams (server: the listener closed) and ends the connection when it has
// none left.
func (mc *muxConn) goAway() {
	mc.mu.Lock()
	already := mc.goaway
	mc.goaway = true
	mc.mu.Unlock()
	if !already && mc.server {
		mc.queue(0, frameGoAway, nil)
	}
	mc.released()
}

// released ends a connection going away once its last stream closed, and a client connection
// once it has no stream: the pool closed them all.
func (mc *muxConn) released() {
	mc.mu.Lock()
	idle := len(mc.socks) == 0 && mc.err == nil && (mc.goaway || !mc.server)
	if idle && !mc.server {
		mc.goaway = true // no stream may open on a connection about to close
	}
	mc.mu.Unlock()
	if idle {
		mc.closeWhenWritten()
	}
}

// vsock is one stream of a muxConn, a transport.Socket.
type vsock struct {
	mc *muxConn
	id uint64
	in chan *transport.Message

	rmu  sync.Mutex
	once sync.Once
	done chan struct{}
	err  error // why the stream ended; set before done closes
}

func newVsock(mc *muxConn, id uint64) *vsock {
	return &vsock{mc: mc, id: id, in: make(chan *transport.Message, inboxSize), done: make(chan struct{})}
}

// deliver hands m to the stream, waiting while its inbox is full; a stream that ends drops it.
func (s *vsock) deliver(m *transport.Message) {
	select {
	case s.in <- m:
	case <-s.done:
	}
}

// end marks the stream ended with err; it reports whether this call ended it.
func (s *vsock) end(err error) bool {
	ended := false
	s.once.Do(func() {
		s.err = err
		close(s.done)
		ended = true
	})
	return ended
}

func (s *vsock) Local() string  { return s.mc.c.LocalAddr().String() }
func (s *vsock) Remote() string { return s.mc.c.RemoteAddr().String() }

// Closed reports whether the stream ended, so a pool can skip it.
func (s *vsock) Closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *vsock) Send(m *transport.Message) error {
	select {
	case <-s.done:
		return s.err
	default:
	}
	return s.mc.queue(0, frameData, m, s)
}

func (s *vsock) Recv(m *transport.Message) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	select {
	case x := <-s.in:
		*m = *x
		return nil
	case <-s.done:
		select { // what arrived before the end is still delivered
		case x := <-s.in:
			*m = *x
			return nil
		default:
			return s.err
		}
	}
}

func (s *vsock) Close() error {
	if !s.end(fmt.Errorf("%w: socket closed", transport.ErrClosed)) {
		return nil
	}
	mc := s.mc
	mc.mu.Lock()
	_, open := mc.socks[s]
	delete(mc.socks, s)
	id := s.id
	if id != 0 {
		delete(mc.streams, id)
	}
	mc.mu.Unlock()
	if open && id != 0 {
		mc.queue(id, frameClose, nil)
	}
	if open {
		mc.released()
	}
	return nil
}

// peer is the shared connections to one address.
type peer struct {
	mu      sync.Mutex
	conns   []*muxConn
	dialing chan struct{} // closed when the dial in progress ends
	legacy  bool          // the server does not speak mux1: dial plain connections
	next    int
}

// DialShared implements transport.Multiplexer: a stream over one of a few connections to addr
// shared by every caller of this transport.
func (t *Transport) DialShared(ctx context.Context, addr string) (transport.Socket, error) {
	t.pmu.Lock()
	p := t.peers[addr]
	if p == nil {
		p = &peer{}
		t.peers[addr] = p
	}
	t.pmu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("tcp: dial %s: %w", addr, err)
		}
		p.mu.Lock()
		if p.legacy {
			p.mu.Unlock()
			return t.Dial(ctx, addr)
		}
		live := p.conns[:0]
		for _, mc := range p.conns {
			if mc.usable() {
				live = append(live, mc)
			}
		}
		clear(p.conns[len(live):])
		p.conns = live
		if len(live) >= t.conns || (len(live) > 0 && p.dialing != nil) {
			p.next++
			mc := live[p.next%len(live)]
			p.mu.Unlock()
			if s := mc.open(); s != nil {
				return s, nil
			}
			continue
		}
		if wait := p.dialing; wait != nil {
			p.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
			}
			continue
		}
		wait := make(chan struct{})
		p.dialing = wait
		p.mu.Unlock()
		mc, legacy, err := t.dialMux(ctx, addr)
		p.mu.Lock()
		p.dialing = nil
		close(wait)
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		if legacy {
			p.legacy = true
			p.mu.Unlock()
			return t.Dial(ctx, addr)
		}
		p.conns = append(p.conns, mc)
		p.mu.Unlock()
		if s := mc.open(); s != nil {
			return s, nil
		}
	}
}

// dialMux dials a connection and opens it for multiplexing; legacy reports a server that
// closed the connection on the preface (one from before mux1).
func (t *Transport) dialMux(ctx context.Context, addr string) (mc *muxConn, legacy bool, err error) {
	c, err := t.dial(ctx, addr)
	if err != nil {
		return nil, false, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(t.opts.DialTimeout)
	}
	c.SetDeadline(dl)
	r := bufio.NewReaderSize(c, 32<<10)
	var ack [8]byte
	_, err = c.Write(muxPreface)
	if err == nil {
		_, err = io.ReadFull(r, ack[:])
	}
	if err != nil {
		c.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("tcp: dial %s: %w", addr, err)
	}
	if string(ack[:]) != string(muxPreface) {
		c.Close()
		return nil, false, fmt.Errorf("tcp: dial %s: %w: unexpected preface answer %q", addr, transport.ErrMalformedFrame, ack[:])
	}
	c.SetDeadline(time.Time{})
	mc = newMuxConn(c, r, t.opts.MaxFrameSize, false)
	mc.start()
	return mc, false, nil
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
