package etcdapi

import (
	"context"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// A revision fanned out to many etcd watches of the same range, options
// and watch ID (etcd's clients give a stream's first watch ID 0) is the
// same message for each: it is built and encoded once (a gRPC
// PreparedMsg) and sent as it is on every stream, as configd's own watch
// encodes a batch once for every watcher (package watchwire). Only
// streams that gRPC does not compress share a message: their bytes do
// not depend on the stream.

// sharedKey is what makes two watches' messages for one revision the same.
type sharedKey struct {
	rev, id              int64
	r                    keyRange
	prevKV, noPut, noDel bool
	secure               bool // prev_kv of a secret is sent only on secure connections
}

// sharedMsg is the message of one sharedKey, built by the first watch
// that needs it.
type sharedMsg struct {
	once  sync.Once
	empty bool // the revision has no event for these watches
	msg   *grpc.PreparedMsg
	err   error
}

// sharedMsgs holds the messages of the newest revisions fanned out.
type sharedMsgs struct {
	mu   sync.Mutex
	revs map[int64]map[sharedKey]*sharedMsg
}

// keepRevs is how many of the newest revisions keep their messages: a
// watch more than that behind builds its own.
const keepRevs = 4

// get returns the message of k, to build when new.
func (m *sharedMsgs) get(k sharedKey) *sharedMsg {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revs == nil {
		m.revs = map[int64]map[sharedKey]*sharedMsg{}
	}
	byKey, ok := m.revs[k.rev]
	if !ok {
		byKey = map[sharedKey]*sharedMsg{}
		m.revs[k.rev] = byKey
		for rev := range m.revs {
			if rev <= k.rev-keepRevs {
				delete(m.revs, rev)
			}
		}
	}
	sm, ok := byKey[k]
	if !ok {
		sm = &sharedMsg{}
		byKey[k] = sm
	}
	return sm
}

// uncompressed reports whether gRPC sends the stream of ctx uncompressed:
// its client sent no compressed message (the server answers in the
// compression the client used, when it has that compressor).
func uncompressed(ctx context.Context) bool {
	ts, ok := grpc.ServerTransportStreamFromContext(ctx).(interface{ RecvCompress() string })
	if !ok {
		return false
	}
	rc := ts.RecvCompress()
	return rc == "" || rc == encoding.Identity
}

// sendEvents sends ew's message of revision rev, built by build (nil:
// nothing to send), and reports whether it sent something. On a stream
// that gRPC does not compress, the message is built and encoded once for
// every watch that shares it.
func (st *watchStream) sendEvents(ew *etcdWatch, rev int64, build func() *pb.WatchResponse) (bool, error) {
	if !st.share {
		resp := build()
		if resp == nil {
			return false, nil
		}
		return true, st.send(resp)
	}
	k := sharedKey{rev: rev, id: ew.id, r: ew.r, prevKV: ew.prevKV, noPut: ew.noPut, noDel: ew.noDel, secure: st.secure}
	sm := st.s.shared.get(k)
	sm.once.Do(func() {
		resp := build()
		if resp == nil {
			sm.empty = true
			return
		}
		sm.msg = &grpc.PreparedMsg{}
		sm.err = sm.msg.Encode(st.stream, resp)
	})
	if sm.empty {
		return false, nil
	}
	if sm.err != nil {
		return false, sm.err
	}
	return true, st.stream.SendMsg(sm.msg)
}
