package grpcapi

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/watchwire"
	"github.com/configd/configd/watcher"
)

// watchControl is a request from the stream's receive loop to its sender.
type watchControl struct {
	id      int64
	w       *watcher.Watcher  // a new watch, or nil for a cancel
	rules   *authz.WatchRules // w's
	refuse  error             // a create that failed
	release func()            // ends w's count towards the identity's maximum
}

type streamWatch struct {
	w        *watcher.Watcher
	rules    *authz.WatchRules
	release  func()
	lastRev  int64 // the last revision sent
	sentTick bool  // something was sent since the last progress tick
}

// close ends the watch and frees its place.
func (sw *streamWatch) close(m *watchwire.Metrics) {
	sw.w.Close()
	sw.rules.Close()
	sw.release()
	m.Watchers(-1)
}

// Watch serves one stream: a receive loop that creates and cancels watches,
// and this goroutine, the only one that sends, which drains every watch of
// the stream when any of them has news.
func (s *configService) Watch(stream configdpb.Config_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	id, err := identity(ctx)
	if err != nil {
		return err
	}
	notify := make(chan struct{}, 1)
	ctrl := make(chan watchControl, 16)
	recvErr := make(chan error, 1)
	go s.watchRecv(ctx, stream, id, notify, ctrl, recvErr)

	watches := map[int64]*streamWatch{}
	defer func() {
		for _, sw := range watches {
			sw.close(s.opts.metrics)
		}
	}()
	ticker := time.NewTicker(s.opts.progress)
	defer ticker.Stop()
	for {
		select {
		case c := <-ctrl:
			if err := s.control(stream, watches, c); err != nil {
				return err
			}
		case <-notify:
			for id, sw := range watches {
				if err := s.drain(stream, watches, id, sw); err != nil {
					return err
				}
			}
		case <-ticker.C:
			// Read the hub's revision first: every batch up to it is then
			// queued, so once drained, PROGRESS at that revision is true.
			rev := s.hub.Rev()
			for id, sw := range watches {
				if err := s.drain(stream, watches, id, sw); err != nil {
					return err
				}
				if _, still := watches[id]; !still || sw.sentTick || rev <= sw.lastRev {
					sw.sentTick = false
					continue
				}
				sw.lastRev = rev
				if err := stream.Send(&configdpb.WatchResponse{WatchId: id, Kind: configdpb.WatchResponse_PROGRESS, Rev: rev}); err != nil {
					return err
				}
			}
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (s *configService) control(stream configdpb.Config_WatchServer, watches map[int64]*streamWatch, c watchControl) error {
	switch {
	case c.refuse != nil:
		return stream.Send(&configdpb.WatchResponse{WatchId: c.id, Kind: configdpb.WatchResponse_CANCELED,
			Rev: s.hub.Rev(), Error: c.refuse.Error(), Code: errorCode(c.refuse)})
	case c.w != nil:
		if old, dup := watches[c.id]; dup {
			old.close(s.opts.metrics)
		}
		sw := &streamWatch{w: c.w, rules: c.rules, release: c.release}
		watches[c.id] = sw
		s.opts.metrics.Watchers(1)
		if err := stream.Send(&configdpb.WatchResponse{WatchId: c.id, Kind: configdpb.WatchResponse_CREATED, Rev: s.hub.Rev()}); err != nil {
			return err
		}
		return s.drain(stream, watches, c.id, sw)
	default:
		if sw, ok := watches[c.id]; ok {
			sw.close(s.opts.metrics)
			delete(watches, c.id)
		}
		return stream.Send(&configdpb.WatchResponse{WatchId: c.id, Kind: configdpb.WatchResponse_CANCELED, Rev: s.hub.Rev()})
	}
}

// drain sends every batch queued for one watch.
func (s *configService) drain(stream configdpb.Config_WatchServer, watches map[int64]*streamWatch, id int64, sw *streamWatch) error {
	// refuse ends the watch with a refusal of its rules: a revoked token
	// ends the whole stream (UNAUTHENTICATED), as it would any new watch;
	// anything else (grants narrowed, a secret on a plain connection)
	// cancels this watch, and the stream's others go on.
	refuse := func(err error) error {
		delete(watches, id)
		sw.close(s.opts.metrics)
		if errorCode(err) == api.CodeUnauthenticated {
			return status.Error(codes.Unauthenticated, err.Error())
		}
		return stream.Send(&configdpb.WatchResponse{WatchId: id, Kind: configdpb.WatchResponse_CANCELED,
			Rev: sw.lastRev, Error: err.Error(), Code: errorCode(err)})
	}
	if err := sw.rules.Check(); err != nil {
		return refuse(err) // woken by its token's revocation or new grants
	}
	for {
		b, ok, err := sw.w.TryNext()
		if !ok {
			if err != nil && !errors.Is(err, watcher.ErrResync) {
				// The hub is closing: the server is shutting down.
				return status.Error(codes.Unavailable, "configd is shutting down")
			}
			return nil
		}
		if err := sw.rules.Admit(b); err != nil {
			return refuse(err)
		}
		var msg any = &sharedResponse{id: id, msg: protoMessage(b)}
		if b.Kind == watcher.KindResync {
			delete(watches, id)
			sw.close(s.opts.metrics)
			m := watchwire.Proto(id, b)
			m.Error = "watch fell behind; create it again from the last applied revision"
			msg = m
		}
		if err := stream.SendMsg(msg); err != nil {
			return err
		}
		s.opts.metrics.Sent(b)
		sw.lastRev, sw.sentTick = b.Rev, true
		if b.Kind == watcher.KindResync {
			return nil
		}
	}
}

func (s *configService) watchRecv(ctx context.Context, stream configdpb.Config_WatchServer, id rollout.Identity, notify chan struct{}, ctrl chan<- watchControl, recvErr chan<- error) {
	for {
		req, err := stream.Recv()
		if err != nil {
			recvErr <- err
			return
		}
		var c watchControl
		switch r := req.GetRequest().(type) {
		case *configdpb.WatchRequest_Create:
			c.id = r.Create.GetWatchId()
			f := watcher.Filter{Keys: r.Create.GetKeys(), Prefixes: r.Create.GetPrefixes()}
			if s.opts.auth != nil {
				c.refuse = s.opts.auth.CheckWatch(authz.PrincipalFrom(ctx), f)
			}
			if c.refuse == nil {
				// On a replica, a client may come with the revision
				// another replica had sent it.
				c.refuse = core.AwaitWatch(ctx, s.st, s.hub, r.Create.GetSince(), s.opts.readWait)
			}
			if c.refuse == nil {
				c.release, c.refuse = s.opts.limits.OpenWatchUntilDone(ctx)
			}
			if c.refuse == nil {
				c.rules = authz.NewWatchRules(ctx, s.opts.auth, f, authz.SecureGRPC(ctx), func() { signal(notify) })
				if c.w, c.refuse = s.hub.Watch(ctx, f, r.Create.GetSince(), watcher.WithNotify(notify), watcher.WithIdentity(id)); c.refuse != nil {
					c.rules.Close()
					c.release()
				}
			}
		case *configdpb.WatchRequest_Cancel:
			c.id = r.Cancel.GetWatchId()
		default:
			recvErr <- status.Error(codes.InvalidArgument, "watch request has neither create nor cancel")
			return
		}
		select {
		case ctrl <- c:
		case <-ctx.Done():
			if c.w != nil {
				c.w.Close()
				c.rules.Close()
				c.release()
			}
			return
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

// identity reads the client's identity, for rollouts, from the stream's
// metadata (api.HeaderInstance and api.HeaderLabels in lower case).
func identity(ctx context.Context) (rollout.Identity, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(name string) string {
		if v := md.Get(name); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var id rollout.Identity
	var err error
	id.Instance, id.Labels, err = api.ParseIdentity(first(strings.ToLower(api.HeaderInstance)), first(strings.ToLower(api.HeaderLabels)))
	if err != nil {
		return rollout.Identity{}, status.Error(codes.InvalidArgument, err.Error())
	}
	return id, nil
}
