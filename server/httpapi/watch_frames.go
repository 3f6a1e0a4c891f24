package httpapi

import (
	"net"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/server/watchwire"
)

// maxCopiedFrame is the largest shared frame that a write copies beside
// the connection's own small frames (one system call for them all); a
// larger one is written where it is.
const maxCopiedFrame = 64 << 10

// frameWriter gathers the frames of one write to a watch stream: the
// connection's own messages and small frames in one buffer, large shared
// frames by reference, written together with writev (net.Buffers).
type frameWriter struct {
	bufs net.Buffers
	own  []byte // the frames since the last shared one
	size int
}

// add appends m, encoded.
func (f *frameWriter) add(m *configdpb.WatchResponse) {
	n := len(f.own)
	f.own = watchwire.AppendFrame(f.own, m)
	f.size += len(f.own) - n
}

// addShared appends a frame that other connections send too.
func (f *frameWriter) addShared(frame []byte) {
	f.size += len(frame)
	if len(frame) <= maxCopiedFrame {
		f.own = append(f.own, frame...)
		return
	}
	f.flushOwn()
	f.bufs = append(f.bufs, frame)
}

// flushOwn moves the own frames so far into bufs; later ones go after
// them in the same array, never over them.
func (f *frameWriter) flushOwn() {
	if len(f.own) > 0 {
		f.bufs = append(f.bufs, f.own)
		f.own = f.own[len(f.own):]
	}
}

// buffers returns everything gathered, in order.
func (f *frameWriter) buffers() net.Buffers {
	f.flushOwn()
	return f.bufs
}
