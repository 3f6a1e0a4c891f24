package grpcapi

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/core"
)

// WithReadWait bounds how long a Get or List whose metadata names a
// revision (x-configd-rev) or asks for a consistent read
// (x-configd-consistent: true) waits for the store to catch up (default
// core.DefaultReadWait).
func WithReadWait(d time.Duration) Option { return func(o *options) { o.readWait = d } }

// readFence is what a call's metadata asks of the revision it reads at:
// the HTTP API's min_rev= and consistent=true, as metadata.
func readFence(ctx context.Context) (core.ReadFence, error) {
	var f core.ReadFence
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(api.MetadataMinRev) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return f, apierror.BadRequest("metadata %s: %q is not a revision (a whole number >= 0)", api.MetadataMinRev, apierror.OneLine(v))
		}
		f.MinRev = max(f.MinRev, n)
	}
	for _, v := range md.Get(api.MetadataConsistent) {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, apierror.BadRequest("metadata %s: %q: want true or false", api.MetadataConsistent, apierror.OneLine(v))
		}
		f.Consistent = f.Consistent || b
	}
	return f, nil
}

// awaitFence waits until the store is as new as the call asks.
func (s *configService) awaitFence(ctx context.Context) error {
	f, err := readFence(ctx)
	if err != nil {
		return err
	}
	return f.Await(ctx, s.st, s.opts.readWait)
}
