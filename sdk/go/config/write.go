package config

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api/configdpb"
)

// Errors of the writes, checked with errors.Is. A write's error also
// carries configd's gRPC status (status.FromError) with its message.
var (
	// ErrConflict is wrapped by the error of a write whose IfModRev did not
	// match the key's revision: nothing was written.
	ErrConflict = errors.New("config: conflict")
	// ErrKeyNotFound is wrapped by the error of a Delete of a key that does
	// not exist.
	ErrKeyNotFound = errors.New("config: key not found")
)

// WriteOption configures one write (Put, Delete, Txn).
type WriteOption func(*writeOptions)

type writeOptions struct {
	reason      string
	contentType string
	secret      bool
	ifModRev    *int64
}

// WithReason is recorded with the write's revision, in configd's audit
// trail (as apiclient's option of the same name).
func WithReason(reason string) WriteOption { return func(o *writeOptions) { o.reason = reason } }

// WithContentType is the media type of a Put's value ("" is text/plain).
func WithContentType(ct string) WriteOption { return func(o *writeOptions) { o.contentType = ct } }

// Secret makes configd store a Put's value encrypted (it needs a master
// key). Reading it back needs TLS or a loopback address.
func Secret() WriteOption { return func(o *writeOptions) { o.secret = true } }

// IfModRev makes a Put or Delete conditional: written only if the key's
// last change is revision rev (0: only if the key does not exist). A
// mismatch is an error wrapping ErrConflict.
func IfModRev(rev int64) WriteOption { return func(o *writeOptions) { o.ifModRev = &rev } }

func writeOpts(opts []WriteOption) writeOptions {
	var o writeOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Put writes value at key, as one revision of configd's store, and
// returns that revision (the current one when the key already held this
// value). key is relative to the client's prefix (WithPrefix), as Get's
// paths are. The write goes over gRPC (Config.Put) to the configd the
// client watches, with the client's token and TLS; the client's copy has
// it once Rev reaches the revision (WaitRev).
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...WriteOption) (int64, error) {
	o := writeOpts(opts)
	full := c.opts.prefix + key
	r, err := c.write(ctx, "put", full, func(cc configdpb.ConfigClient) (*configdpb.WriteResponse, error) {
		return cc.Put(ctx, &configdpb.PutRequest{Key: full, Value: value, ContentType: o.contentType,
			Secret: o.secret, IfModRev: o.ifModRev, Reason: o.reason})
	})
	return r.GetRev(), err
}

// Delete deletes key (relative to the client's prefix) as one revision
// and returns it. Deleting a key that does not exist is an error wrapping
// ErrKeyNotFound.
func (c *Client) Delete(ctx context.Context, key string, opts ...WriteOption) (int64, error) {
	o := writeOpts(opts)
	full := c.opts.prefix + key
	r, err := c.write(ctx, "delete", full, func(cc configdpb.ConfigClient) (*configdpb.WriteResponse, error) {
		return cc.Delete(ctx, &configdpb.DeleteRequest{Key: full, IfModRev: o.ifModRev, Reason: o.reason})
	})
	return r.GetRev(), err
}

// TxnOp is one operation of Txn: a put of Value at Key, or with Delete a
// delete of Key (which then takes no value, content type or secret). Key
// is relative to the client's prefix.
type TxnOp struct {
	Key         string
	Value       []byte
	ContentType string
	Secret      bool
	Delete      bool
	// IfModRev, when set, makes the whole transaction conditional on the
	// key's last change being this revision (0: that it does not exist).
	IfModRev *int64
}

// Txn commits ops as one revision, all or none, and returns it. A key may
// appear once. Only WithReason applies of opts.
func (c *Client) Txn(ctx context.Context, ops []TxnOp, opts ...WriteOption) (int64, error) {
	o := writeOpts(opts)
	req := &configdpb.TxnRequest{Reason: o.reason, Ops: make([]*configdpb.TxnOp, len(ops))}
	for i, op := range ops {
		kind := configdpb.TxnOp_PUT
		if op.Delete {
			kind = configdpb.TxnOp_DELETE
		}
		req.Ops[i] = &configdpb.TxnOp{Op: kind, Key: c.opts.prefix + op.Key, Value: op.Value,
			ContentType: op.ContentType, Secret: op.Secret, IfModRev: op.IfModRev}
	}
	r, err := c.write(ctx, "txn", "", func(cc configdpb.ConfigClient) (*configdpb.WriteResponse, error) {
		return cc.Txn(ctx, req)
	})
	return r.GetRev(), err
}

// write sends one write to the configd the client watches (or its first
// address before any watch) and classifies configd's refusal.
func (c *Client) write(ctx context.Context, what, key string, call func(configdpb.ConfigClient) (*configdpb.WriteResponse, error)) (*configdpb.WriteResponse, error) {
	conn, err := c.writeConn()
	if err != nil {
		return nil, err
	}
	r, err := call(configdpb.NewConfigClient(conn))
	if err == nil {
		return r, nil
	}
	if key != "" {
		what = fmt.Sprintf("%s %q", what, key)
	}
	var kind error
	switch status.Code(err) {
	case codes.Aborted:
		kind = ErrConflict
	case codes.NotFound:
		kind = ErrKeyNotFound
	case codes.Unauthenticated:
		kind = ErrUnauthenticated
	case codes.PermissionDenied:
		kind = ErrForbidden
	default:
		return nil, fmt.Errorf("config: %s: %w", what, err)
	}
	return nil, &writeError{kind: kind, err: fmt.Errorf("config: %s: %w", what, err)}
}

// writeError is a write's error that also wraps one of the package's
// errors.
type writeError struct{ kind, err error }

func (e *writeError) Error() string   { return e.err.Error() }
func (e *writeError) Unwrap() []error { return []error{e.kind, e.err} }

// writeConn is the gRPC connection to the configd the client watches,
// dialed once per address with the watch's options (token, TLS, dial
// options).
func (c *Client) writeConn() (*grpc.ClientConn, error) {
	addr := ""
	if a := c.watched.Load(); a != nil {
		addr = *a
	} else if len(c.opts.addrs) > 0 {
		addr = c.opts.addrs[0]
	} else {
		return nil, fmt.Errorf("%w: no configd watched yet to write to", ErrUnavailable)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if conn := c.wconns[addr]; conn != nil {
		return conn, nil
	}
	if err := c.checkTokenTransport(addr); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, c.dialOptions()...)
	if err != nil {
		return nil, fmt.Errorf("config: connect to %s: %w", addr, err)
	}
	if c.wconns == nil {
		c.wconns = map[string]*grpc.ClientConn{}
	}
	c.wconns[addr] = conn
	return conn, nil
}

func (c *Client) closeWriteConns() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for addr, conn := range c.wconns {
		conn.Close()
		delete(c.wconns, addr)
	}
}
