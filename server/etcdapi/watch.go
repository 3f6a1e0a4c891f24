package etcdapi

import (
	"context"
	"errors"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/watchwire"
	"github.com/configd/configd/watcher"
)

type watchService struct {
	pb.UnimplementedWatchServer
	*server
}

// invalidWatchID is the watch ID of an answer to a progress request
// (etcd's clientv3.InvalidWatchID): it is for every watch of the stream.
const invalidWatchID = -1

// etcdWatch is one etcd watch of a stream over a watch of the hub: the
// smallest segment prefix that holds its range (or its key), whose
// batches it filters by the range and the watch's filters.
type etcdWatch struct {
	id      int64
	r       keyRange
	f       watcher.Filter
	w       *watcher.Watcher
	rules   *authz.WatchRules
	release func()
	metrics *watchwire.Metrics
	prevKV  bool
	noPut   bool
	noDel   bool
	// start drops the revisions before it (a start revision the store
	// has not reached when the watch was created).
	start    int64
	progress bool
	lastRev  int64 // the last revision the hub brought the watch to
	sentTick bool  // something was sent since the last progress tick
}

func (ew *etcdWatch) close() {
	ew.w.Close()
	ew.rules.Close()
	ew.release()
	ew.metrics.Watchers(-1)
}

// watchStream is the state of one Watch stream, owned by its sending
// goroutine.
type watchStream struct {
	s       *server
	ctx     context.Context
	stream  pb.Watch_WatchServer
	notify  chan struct{}
	watches map[int64]*etcdWatch
	nextID  int64
	// share: gRPC sends this stream uncompressed, so it may send the
	// messages other streams share (watchshare.go); secure: it may carry
	// secrets.
	share, secure bool
}

// Watch serves one stream: a receive loop that hands the requests over,
// and this goroutine, the only one that sends, which creates and cancels
// watches and drains every watch of the stream when any has news.
func (ws watchService) Watch(stream pb.Watch_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	reqs := make(chan *pb.WatchRequest, 16)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	st := &watchStream{s: ws.server, ctx: ctx, stream: stream, notify: make(chan struct{}, 1), watches: map[int64]*etcdWatch{},
		share: uncompressed(stream.Context()), secure: authz.SecureGRPC(ctx)}
	defer func() {
		for _, ew := range st.watches {
			ew.close()
		}
	}()
	ticker := time.NewTicker(ws.opts.progress)
	defer ticker.Stop()
	for {
		var err error
		select {
		case req := <-reqs:
			err = st.handle(req)
		case <-st.notify:
			err = st.drainAll()
		case <-ticker.C:
			err = st.tick()
		case err = <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
		if err != nil {
			return err
		}
	}
}

func (st *watchStream) handle(req *pb.WatchRequest) error {
	switch r := req.GetRequestUnion().(type) {
	case *pb.WatchRequest_CreateRequest:
		return st.create(r.CreateRequest)
	case *pb.WatchRequest_CancelRequest:
		id := r.CancelRequest.GetWatchId()
		if ew, ok := st.watches[id]; ok {
			ew.close()
			delete(st.watches, id)
		}
		return st.send(&pb.WatchResponse{Header: st.s.header(st.s.hub.Rev()), WatchId: id, Canceled: true})
	case *pb.WatchRequest_ProgressRequest:
		// Every batch up to rev is queued: once drained, the stream has
		// seen rev.
		rev := st.s.hub.Rev()
		if err := st.drainAll(); err != nil {
			return err
		}
		if rev == 0 {
			// An empty store: etcd's clients take a revision 0 for no
			// progress at all (etcd starts at 1), and there is none.
			return nil
		}
		return st.send(&pb.WatchResponse{Header: st.s.header(rev), WatchId: invalidWatchID})
	}
	return status.Error(codes.InvalidArgument, "watch request has no create, cancel or progress request")
}

func (st *watchStream) send(m *pb.WatchResponse) error { return st.stream.Send(m) }

// refuse answers a create that failed: created and canceled at once, the
// reason in configd's words.
func (st *watchStream) refuse(id int64, err error) error {
	reason := apierror.Classify(err).Message
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		reason = s.Message()
	}
	return st.send(&pb.WatchResponse{Header: st.s.header(st.s.hub.Rev()), WatchId: id, Created: true, Canceled: true, CancelReason: reason})
}

func (st *watchStream) create(cr *pb.WatchCreateRequest) error {
	s := st.s
	id := cr.GetWatchId()
	if id == 0 { // etcd's AutoWatchID: the next free ID
		for st.watches[st.nextID] != nil {
			st.nextID++
		}
		id = st.nextID
		st.nextID++
	} else if st.watches[id] != nil {
		return st.refuse(id, status.Error(codes.InvalidArgument, "etcdserver: duplicate watch ID"))
	}
	r, err := s.keys.parseRange(cr.GetKey(), cr.GetRangeEnd())
	if err == nil && r.none {
		err = s.keys.noneWatched(cr.GetKey(), cr.GetRangeEnd())
	}
	if err != nil {
		return st.refuse(id, err)
	}
	f := watcher.Filter{Prefixes: []string{r.prefix}}
	if r.single {
		f = watcher.Filter{Keys: []string{r.key}}
	}
	if s.opts.auth != nil {
		if err := s.opts.auth.CheckWatch(authz.PrincipalFrom(st.ctx), f); err != nil {
			return st.refuse(id, err)
		}
	}
	ew := &etcdWatch{id: id, r: r, f: f, prevKV: cr.GetPrevKv(), progress: cr.GetProgressNotify()}
	for _, ft := range cr.GetFilters() {
		switch ft {
		case pb.WatchCreateRequest_NOPUT:
			ew.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			ew.noDel = true
		}
	}
	// etcd watches from start_revision (0: from now); the hub from the
	// revision a watch has applied.
	now := s.hub.Rev()
	start := cr.GetStartRevision()
	since := now
	if start > 0 {
		if h := s.st.Horizon(); start < h {
			if err := st.send(&pb.WatchResponse{Header: s.header(now), WatchId: id, Created: true}); err != nil {
				return err
			}
			return st.send(&pb.WatchResponse{Header: s.header(now), WatchId: id, Canceled: true, CompactRevision: h,
				CancelReason: "etcdserver: mvcc: required revision has been compacted"})
		}
		since = min(start-1, now)
		ew.start = start
	}
	var first []*mvccpb.Event
	if since == 0 && now > 0 {
		// The hub answers since 0 with a snapshot, which etcd has no
		// word for: send revision 1 from the store, watch from 1.
		if first, err = st.revisionOne(ew); err != nil {
			return st.refuse(id, err)
		}
		since = 1
	}
	ew.lastRev = since
	if ew.release, err = s.opts.limits.OpenWatchUntilDone(st.ctx); err != nil {
		return st.refuse(id, err)
	}
	ew.rules = authz.NewWatchRules(st.ctx, s.opts.auth, f, authz.SecureGRPC(st.ctx), func() { signal(st.notify) })
	if ew.w, err = s.hub.Watch(st.ctx, f, since, watcher.WithNotify(st.notify)); err != nil {
		ew.rules.Close()
		ew.release()
		return st.refuse(id, err)
	}
	st.watches[id] = ew
	ew.metrics = s.opts.metrics
	ew.metrics.Watchers(1)
	if err := st.send(&pb.WatchResponse{Header: s.header(now), WatchId: id, Created: true}); err != nil {
		return err
	}
	if len(first) > 0 {
		if err := st.send(&pb.WatchResponse{Header: s.header(1), WatchId: id, Events: first}); err != nil {
			return err
		}
		ew.sentTick = true
	}
	return st.drain(ew)
}

// revisionOne is the events of revision 1 that ew selects.
func (st *watchStream) revisionOne(ew *etcdWatch) ([]*mvccpb.Event, error) {
	r, err := st.s.st.Revision(st.ctx, 1)
	if err != nil {
		return nil, err
	}
	if err := plainSecretChanges(st.ctx, r.Changes); err != nil {
		return nil, err
	}
	b := watcher.Batch{Kind: watcher.KindChanges, Rev: 1}
	for _, c := range r.Changes {
		e := watcher.Event{Key: c.Key, Type: c.Type}
		if c.New != nil {
			e.Value, e.CreateRev, e.ModRev, e.Version = c.New.Value, c.New.CreateRev, c.New.ModRev, c.New.Version
		}
		b.Events = append(b.Events, e)
	}
	return st.events(ew, b), nil
}

// plainSecretChanges refuses changes of secrets on a connection without
// TLS (the store withholds their values from Revision).
func plainSecretChanges(ctx context.Context, cs []audit.Change) error {
	if authz.SecureGRPC(ctx) {
		return nil
	}
	for _, c := range cs {
		if c.IsSecret() {
			return status.Error(codes.PermissionDenied, authz.PlainSecretMessage(c.Key))
		}
	}
	return nil
}

func (st *watchStream) drainAll() error {
	for _, ew := range st.watches {
		if err := st.drain(ew); err != nil {
			return err
		}
	}
	return nil
}

// cancel ends ew with reason; compact, when set, is the revision it must
// start from at the earliest.
func (st *watchStream) cancel(ew *etcdWatch, reason string, compact int64) error {
	delete(st.watches, ew.id)
	ew.close()
	return st.send(&pb.WatchResponse{Header: st.s.header(ew.lastRev), WatchId: ew.id, Canceled: true, CancelReason: reason, CompactRevision: compact})
}

// drain sends what the hub queued for ew.
func (st *watchStream) drain(ew *etcdWatch) error {
	// A revoked token ends the stream, as it would any new call; grants
	// narrowed, or a secret on a plain connection, cancel this watch.
	refuse := func(err error) error {
		c := apierror.Classify(err)
		if c.GRPC == codes.Unauthenticated {
			return status.Error(codes.Unauthenticated, c.Message)
		}
		return st.cancel(ew, c.Message, 0)
	}
	if err := ew.rules.Check(); err != nil {
		return refuse(err)
	}
	for {
		b, ok, err := ew.w.TryNext()
		if !ok {
			if err != nil && !errors.Is(err, watcher.ErrResync) {
				return status.Error(codes.Unavailable, "configd is shutting down")
			}
			return nil
		}
		if err := ew.rules.Admit(b); err != nil {
			return refuse(err)
		}
		switch b.Kind {
		case watcher.KindResync:
			// The watch fell behind: watch again from where it is, from
			// the store's history; nothing is missed.
			ew.w.Close()
			w, err := st.s.hub.Watch(st.ctx, ew.f, ew.lastRev, watcher.WithNotify(st.notify))
			if err != nil {
				return st.cancel(ew, apierror.Classify(err).Message, compactRev(err, st.s.st))
			}
			ew.w = w
			continue
		case watcher.KindSnapshot:
			if len(b.Events) > 0 {
				// The history the watch needed was compacted away.
				return st.cancel(ew, "etcdserver: mvcc: required revision has been compacted", max(st.s.st.Horizon(), 1))
			}
			ew.lastRev = max(ew.lastRev, b.Rev)
			continue
		}
		ew.lastRev = b.Rev
		if b.Rev < ew.start {
			continue
		}
		sent, err := st.sendEvents(ew, b.Rev, func() *pb.WatchResponse {
			evs := st.events(ew, b)
			if len(evs) == 0 {
				return nil
			}
			return &pb.WatchResponse{Header: st.s.header(b.Rev), WatchId: ew.id, Events: evs}
		})
		if err != nil {
			return err
		}
		if !sent {
			continue
		}
		ew.metrics.Sent(b)
		ew.sentTick = true
	}
}

// compactRev is the compact revision of a refused watch: the horizon when
// its revision was compacted away.
func compactRev(err error, s Store) int64 {
	if errors.Is(err, audit.ErrRevisionGone) {
		return max(s.Horizon(), 1)
	}
	return 0
}

// events are b's events that ew selects, as etcd's.
func (st *watchStream) events(ew *etcdWatch, b watcher.Batch) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, e := range b.Events {
		if !ew.r.holds(e.Key) {
			continue
		}
		ev := &mvccpb.Event{}
		if e.Type == audit.OpPut {
			if ew.noPut {
				continue
			}
			ev.Kv = &mvccpb.KeyValue{Key: st.s.keys.out(e.Key), Value: e.Value, CreateRevision: e.CreateRev, ModRevision: e.ModRev, Version: e.Version}
		} else {
			if ew.noDel {
				continue
			}
			ev.Type = mvccpb.Event_DELETE
			ev.Kv = &mvccpb.KeyValue{Key: st.s.keys.out(e.Key), ModRevision: b.Rev}
		}
		if ew.prevKV && b.Rev > 1 {
			prev, err := st.s.st.Get(st.ctx, e.Key, audit.AtRev(b.Rev-1))
			if err == nil && (!prev.Secret || st.secure) {
				ev.PrevKv = st.s.keys.pbKV(prev, false)
			}
		}
		out = append(out, ev)
	}
	return out
}

// tick tells each idle watch that asked for progress the revision.
func (st *watchStream) tick() error {
	rev := st.s.hub.Rev()
	for id, ew := range st.watches {
		if err := st.drain(ew); err != nil {
			return err
		}
		if _, still := st.watches[id]; !still || !ew.progress || ew.sentTick || rev == 0 {
			ew.sentTick = false
			continue
		}
		if err := st.send(&pb.WatchResponse{Header: st.s.header(rev), WatchId: id}); err != nil {
			return err
		}
	}
	return nil
}

// signal wakes whoever waits on ch, without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
