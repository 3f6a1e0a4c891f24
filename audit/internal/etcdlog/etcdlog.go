// Package etcdlog is the commit log of a configd cluster on etcd: an
// implementation of commit.Replicated that every replica shares. etcd holds
// the log, the one copy that counts; each replica's SQLite database is a
// local index of it, rebuilt from it when the replica is new.
//
// Under the cluster's prefix P, etcd holds:
//
//	P/meta              what the prefix is: {"configd":"commit log","format":1,"cluster":"<id>"}
//	P/head              the newest revision of the log, 20 decimal digits
//	P/log/<rev>         one record per revision, rev in 20 digits (record.go)
//	P/log/compaction/   the compaction records, P/snapshot/ the state at the
//	                    horizon (compaction.go)
//	P/datakeys/, P/tokens/, P/events/
//	                    state outside revisions: data keys, tokens, source
//	                    events (datakeys.go, tokens.go, events.go)
//
// A batch of the writer becomes one etcd transaction (or a few, see
// maxTxnOps) that compares P/head with the revision the batch was decided
// on, puts the batch's records and moves P/head; once etcd acknowledges it
// (a quorum has it), the local SQLite transaction applies the same records
// and commits. A replica that lost the race (the compare failed) gets
// commit.ErrHeadMoved, and nothing was written. A batch that only refused
// or changed nothing still runs the compare, so that what it answered was
// decided on the newest state.
//
// Every replica follows the log (Follow): it reads what it has not applied
// yet, then watches P/log/ from there, and applies each record through the
// writer (commit.Writer.Apply), which checks it against the local chain and
// state before it applies it.
package etcdlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/internal/sqlitelog"
	"github.com/configd/configd/audit/record"
)

// The limits of one etcd transaction that a batch stays under: etcd's
// defaults are 128 operations (--max-txn-ops) and 1.5 MiB a request
// (--max-request-bytes). A batch larger than that is written in several
// transactions, each comparing the head the one before left.
const (
	maxTxnOps   = 100
	maxTxnBytes = 1 << 20
)

// pageSize is how many records a read of the log takes at once.
const pageSize = 256

// Format is the version of the log's layout and records. Every replica of
// a cluster reads and writes its cluster's format and no other: the
// records' decoder is strict, so a record of another format would stop a
// replica (ErrDiverged) in the middle of a rolling upgrade. A replica of
// another format is refused at Join instead (ErrFormat).
const Format = 1

// The SQLite schema levels (migrations) of the configd releases that read
// and write Format: replicas of any of them may run side by side in one
// cluster (a rolling upgrade), since a data dir's schema is its own index
// of the log. A migration that changes what a record holds or how a
// replica applies one (its rows, the chain hash, the state digest) starts
// a new format; one that changes only the local index joins this range.
// TestEveryMigrationHasALogFormat fails until a new migration is placed.
const (
	formatFirstSchema = 10
	formatLastSchema  = 10
)

// ErrFormat: the cluster's log is of another format than this configd's:
// this replica cannot follow it.
var ErrFormat = errors.New("the cluster's commit log is of another format than this configd's")

// metaKind is what P/meta says the prefix holds.
const metaKind = "configd commit log"

// ErrNotALog: the etcd prefix holds keys that are not a configd commit log.
var ErrNotALog = errors.New("the etcd prefix holds something that is not a configd commit log")

// Log is a replica's handle on the shared log. The writer uses it from its
// one goroutine; Follow, Head and After may run beside it.
type Log struct {
	cli     *clientv3.Client
	prefix  string // without its trailing slash
	local   *sqlitelog.Log
	applied func() int64
	timeout time.Duration
	b       batch // the batch under way, reused
	// missed are the records after a batch's base that the transaction
	// which lost the race read, all of them, for After to apply: the
	// writer catches up without another round trip. Writer goroutine only.
	missed []commit.Record
}

var _ commit.Replicated = (*Log)(nil)

// New returns the log under prefix of the etcd that cli reaches, applied
// to the local database through local; applied returns the newest revision
// applied locally. Each call to etcd is bounded by timeout.
func New(cli *clientv3.Client, prefix string, local *sqlitelog.Log, applied func() int64, timeout time.Duration) *Log {
	l := &Log{cli: cli, prefix: strings.TrimSuffix(prefix, "/"), local: local, applied: applied, timeout: timeout}
	l.b.l = l
	return l
}

// Prefix returns the log's etcd prefix, without its trailing slash.
func (l *Log) Prefix() string { return l.prefix }

func (l *Log) metaKey() string { return l.prefix + "/meta" }
func (l *Log) headKey() string { return l.prefix + "/head" }
func (l *Log) logDir() string  { return l.prefix + "/log/" }

// LogKey returns the etcd key of revision rev's record.
func (l *Log) LogKey(rev int64) string { return l.logDir() + revString(rev) }

func revString(rev int64) string { return fmt.Sprintf("%020d", rev) }

type meta struct {
	Configd string `json:"configd"`
	Format  int    `json:"format"`
	Cluster string `json:"cluster"`
	// Schema is the schema level of the configd that created the log:
	// for the message that refuses a replica of another format.
	Schema int `json:"schema,omitempty"`
}

// Join returns the identity of the log under the prefix, creating the log
// when the prefix is empty. A prefix that holds other keys is ErrNotALog;
// a log of another format is refused.
func (l *Log) Join(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.cli.Get(ctx, l.metaKey())
	if err != nil {
		return "", unavailable("read the log's identity", err)
	}
	if len(resp.Kvs) == 1 {
		return l.parseMeta(resp.Kvs[0].Value)
	}
	any, err := l.cli.Get(ctx, l.prefix+"/", clientv3.WithPrefix(), clientv3.WithLimit(1), clientv3.WithKeysOnly())
	if err != nil {
		return "", unavailable("read the prefix", err)
	}
	if len(any.Kvs) > 0 {
		return "", fmt.Errorf("audit: %w: %q holds %q and no %s: give configd a prefix of its own",
			ErrNotALog, l.prefix+"/", any.Kvs[0].Key, l.metaKey())
	}
	id := make([]byte, 16)
	rand.Read(id)
	m, _ := json.Marshal(meta{Configd: metaKind, Format: Format, Cluster: hex.EncodeToString(id), Schema: formatLastSchema})
	txn, err := l.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(l.metaKey()), "=", 0)).
		Then(clientv3.OpPut(l.metaKey(), string(m)), clientv3.OpPut(l.headKey(), revString(0))).
		Else(clientv3.OpGet(l.metaKey())).Commit()
	if err != nil {
		return "", unavailable("create the log", err)
	}
	if !txn.Succeeded { // another replica created it first
		return l.parseMeta(txn.Responses[0].GetResponseRange().Kvs[0].Value)
	}
	return l.parseMeta(m)
}

func (l *Log) parseMeta(v []byte) (string, error) {
	var m meta
	if err := json.Unmarshal(v, &m); err != nil || m.Configd != metaKind || m.Cluster == "" {
		return "", fmt.Errorf("audit: %w: %s is %q", ErrNotALog, l.metaKey(), v)
	}
	if m.Format != Format {
		return "", formatError(l.prefix, m)
	}
	return m.Cluster, nil
}

// formatError refuses a replica of another format than the cluster's m,
// naming both and what to do.
func formatError(prefix string, m meta) error {
	by := ""
	if m.Schema > 0 {
		by = fmt.Sprintf(", created by a configd of schema level %d", m.Schema)
	}
	ours := fmt.Sprintf("format %d (schema levels %d to %d)", Format, formatFirstSchema, formatLastSchema)
	todo := "this configd is older than the cluster: upgrade it to the release the cluster's replicas run (configctl replicas lists their versions)"
	if m.Format < Format {
		todo = "this configd is newer than the cluster: run the release the cluster's replicas run (configctl replicas lists their versions); a log format is not upgraded in place (docs/ha.md, \"Versions and upgrades\")"
	}
	return fmt.Errorf("audit: %w: the commit log under %s is format %d%s; this configd reads and writes %s: %s",
		ErrFormat, prefix, m.Format, by, ours, todo)
}

// Schemas are the schema levels of the releases that read and write one
// log format, from First to Last.
type Schemas struct{ First, Last int }

// FormatSchemas returns the schema levels of Format's releases
// (formatFirstSchema to formatLastSchema).
func FormatSchemas() Schemas { return Schemas{First: formatFirstSchema, Last: formatLastSchema} }

// CheckDataDir refuses the data dir at path, which joined a cluster, when
// schema, its schema level as the last configd that opened it left it
// (before this one migrates it), is below r, the levels of this
// release's format: that configd read and wrote an older log format, the
// format of the data dir's cluster (ErrFormat). A level above r is a
// newer release's, which the migrations refuse (ErrSchemaTooNew); one
// within r is this format's, whatever release created the cluster's log
// (a rolling upgrade). It needs no etcd: the data dir says it.
func (r Schemas) CheckDataDir(path string, schema int) error {
	if schema >= r.First {
		return nil
	}
	return fmt.Errorf("audit: %w: the data dir %s followed a commit log of an older format: its schema level %d is below this configd's "+
		"format %d (schema levels %d to %d): this configd is newer than the data dir's cluster: run the release the cluster's replicas run "+
		"(configctl replicas lists their versions), or start this replica on an empty data dir to join a cluster of format %d; "+
		"a log format is not upgraded in place (docs/ha.md, \"Versions and upgrades\"); the data dir was left as it was",
		ErrFormat, path, schema, Format, r.First, r.Last, Format)
}

// Head returns the newest revision of the log, read from etcd's quorum
// (a linearizable read).
func (l *Log) Head(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.cli.Get(ctx, l.headKey())
	if err != nil {
		return 0, unavailable("read the log's head", err)
	}
	if len(resp.Kvs) != 1 {
		return 0, fmt.Errorf("audit: %w: %s is missing", ErrNotALog, l.headKey())
	}
	rev, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("audit: %w: %s is %q", ErrNotALog, l.headKey(), resp.Kvs[0].Value)
	}
	return rev, nil
}

// Begin starts a batch decided on the newest applied revision: a local
// SQLite transaction whose Commit first appends the batch to the log.
func (l *Log) Begin(ctx context.Context) (commit.Batch, error) {
	local, err := l.local.Begin(ctx)
	if err != nil {
		return nil, err
	}
	l.b.Batch, l.b.base = local, l.applied()
	clear(l.b.recs)
	l.b.recs, l.b.fences, l.b.epoch = l.b.recs[:0], l.b.fences[:0], -1
	return &l.b, nil
}

// BeginApply starts a batch of records the log holds: a local SQLite
// transaction alone.
func (l *Log) BeginApply(ctx context.Context) (commit.Batch, error) { return l.local.Begin(ctx) }

// After returns the records after revision rev, in order.
func (l *Log) After(ctx context.Context, rev int64) ([]commit.Record, error) {
	missed := l.missed
	l.missed = nil
	if len(missed) > 0 && missed[0].Rev.Rev == rev+1 {
		return missed, nil
	}
	var out []commit.Record
	_, err := l.Scan(ctx, rev, func(recs []commit.Record) error {
		out = append(out, recs...)
		return nil
	}, nil)
	return out, err
}

// Scan calls fn with the records after revision rev, in order, a page at a
// time, then compacted (unless nil) with each compaction record, oldest
// first, all read as of one etcd revision, which it returns: a watch from
// the one after it misses nothing. (If etcd's history is compacted under
// it, it reads the rest as of a newer revision: the records it read
// already do not change, and it returns the newer one.)
func (l *Log) Scan(ctx context.Context, rev int64, fn func([]commit.Record) error, compacted func(chain.Compaction) error) (int64, error) {
	from, end := l.LogKey(rev+1), l.compactionDir()
	var at int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize)}
		if at > 0 {
			opts = append(opts, clientv3.WithRev(at))
		}
		gctx, cancel := context.WithTimeout(ctx, l.timeout)
		resp, err := l.cli.Get(gctx, from, opts...)
		cancel()
		if errors.Is(err, rpctypes.ErrCompacted) && at > 0 {
			at = 0
			continue
		}
		if err != nil {
			return 0, unavailable("read the log", err)
		}
		if at == 0 {
			at = resp.Header.Revision
		}
		recs := make([]commit.Record, 0, len(resp.Kvs))
		for _, kv := range resp.Kvs {
			rec, err := l.decode(kv.Key, kv.Value)
			if err != nil {
				return 0, err
			}
			recs = append(recs, rec)
		}
		if len(recs) > 0 {
			if err := fn(recs); err != nil {
				return 0, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if compacted == nil {
		return at, nil
	}
	cs, _, err := l.compactions(ctx, at) // (its header names etcd's newest revision, not at)
	if err != nil {
		return 0, err
	}
	for i := range cs {
		if err := compacted(cs[i].record()); err != nil {
			return 0, err
		}
	}
	return at, nil
}

// decode decodes the record stored under key. A record that does not
// decode, or not under its revision's key, is not the log's: ErrDiverged.
func (l *Log) decode(key, value []byte) (commit.Record, error) {
	rec, err := commit.DecodeRecord(value)
	if err != nil {
		return commit.Record{}, fmt.Errorf("%w: %s: %w", commit.ErrDiverged, key, err)
	}
	if want := l.LogKey(rec.Rev.Rev); string(key) != want {
		return commit.Record{}, fmt.Errorf("%w: %s holds the record of revision %d", commit.ErrDiverged, key, rec.Rev.Rev)
	}
	return rec, nil
}

// append writes recs, decided on revision base, to the log: in one etcd
// transaction when they fit, each comparing the head, checking every
// fence (its key exists with its creation revision) and, unless epoch is
// negative, that the token epoch is epoch. A first transaction refused
// with the head where it was is refused by a fence: a *commit.FenceError
// names the fences that no longer hold; one refused with the token epoch
// moved is a *commit.TokensMovedError.
func (l *Log) append(ctx context.Context, base int64, recs []commit.Record, fences []record.Fence, epoch int64) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	head := base
	var buf []byte
	for first := true; first || len(recs) > 0; first = false {
		ops := make([]clientv3.Op, 0, min(len(recs), maxTxnOps)+1)
		n, size := 0, 0
		for n < len(recs) && n < maxTxnOps {
			buf = commit.AppendRecord(buf[:0], &recs[n])
			if n > 0 && size+len(buf) > maxTxnBytes {
				break
			}
			ops = append(ops, clientv3.OpPut(l.LogKey(recs[n].Rev.Rev), string(buf)))
			size += len(buf)
			n++
		}
		next := head
		if n > 0 {
			next = recs[n-1].Rev.Rev
			ops = append(ops, clientv3.OpPut(l.headKey(), revString(next)))
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.Value(l.headKey()), "=", revString(head))}
		orElse := []clientv3.Op{clientv3.OpGet(l.LogKey(head+1), clientv3.WithRange(l.compactionDir()), clientv3.WithLimit(pageSize))}
		if len(fences) > 0 || epoch >= 0 {
			orElse = append(orElse, clientv3.OpGet(l.headKey()))
			for _, f := range fences {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev))
				orElse = append(orElse, clientv3.OpGet(f.Key, clientv3.WithKeysOnly()))
			}
		}
		if epoch >= 0 {
			// A missing key's mod revision compares as 0: no token was
			// ever revoked.
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(l.tokenEpochKey()), "=", epoch))
			orElse = append(orElse, clientv3.OpGet(l.tokenEpochKey(), clientv3.WithKeysOnly()))
		}
		resp, err := l.cli.Txn(ctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
		switch {
		case err != nil && !first:
			return fmt.Errorf("%w: the log holds the batch's revisions up to %d, the rest is unknown: %w", record.ErrStoreUnavailable, head, unavailable("append", err))
		case err != nil:
			return unavailable("append", err)
		case !resp.Succeeded && !first:
			return fmt.Errorf("%w: the log holds the batch's revisions up to %d, and another replica wrote after them, a fence fell or the tokens changed", commit.ErrHeadMoved, head)
		case !resp.Succeeded:
			headMoved := !headIs(resp.Responses, revString(head))
			if !headMoved {
				if stale := fallen(fences, resp.Responses); len(stale) > 0 {
					return &commit.FenceError{Fences: stale}
				}
			}
			l.keepMissed(resp.Responses[0].GetResponseRange())
			if now, ok := epochNow(resp.Responses, epoch); ok && now != epoch {
				return &commit.TokensMovedError{Epoch: now, HeadMoved: headMoved}
			}
			return commit.ErrHeadMoved
		}
		head, recs = next, recs[n:]
	}
	return nil
}

// The answers of a refused transaction's else branch are the missed
// records, then, when it has fences or compares the token epoch: the
// head, each fence's key, and the token epoch's key.

// headIs reports whether the else branch's answers show the head still
// at head (false when they do not show it).
func headIs(answers []*etcdserverpb.ResponseOp, head string) bool {
	if len(answers) < 2 {
		return false
	}
	h := answers[1].GetResponseRange()
	return h != nil && len(h.Kvs) == 1 && string(h.Kvs[0].Value) == head
}

// epochNow returns the token epoch the else branch's answers show, when
// the transaction compared it (epoch >= 0).
func epochNow(answers []*etcdserverpb.ResponseOp, epoch int64) (int64, bool) {
	if epoch < 0 || len(answers) < 3 {
		return 0, false
	}
	r := answers[len(answers)-1].GetResponseRange()
	if r == nil {
		return 0, false
	}
	if len(r.Kvs) == 0 {
		return 0, true
	}
	return r.Kvs[0].ModRevision, true
}

// fallen returns the fences that no longer hold, given the answers of a
// refused transaction's else branch whose head did not move: then the
// transaction was refused by them (or by the token epoch). When the head
// moved the writer catches up and tries again, and the fences are checked
// again then.
func fallen(fences []record.Fence, answers []*etcdserverpb.ResponseOp) []record.Fence {
	if len(fences) == 0 || len(answers) < 2+len(fences) {
		return nil
	}
	var stale []record.Fence
	for i, f := range fences {
		kvs := answers[2+i].GetResponseRange().GetKvs()
		if len(kvs) != 1 || kvs[0].CreateRevision != f.Rev {
			stale = append(stale, f)
		}
	}
	return stale
}

// keepMissed keeps the records that a transaction which lost the race read,
// when they are all the log holds after it.
func (l *Log) keepMissed(r *etcdserverpb.RangeResponse) {
	l.missed = l.missed[:0]
	if r == nil || r.More {
		return
	}
	for _, kv := range r.Kvs {
		rec, err := l.decode(kv.Key, kv.Value)
		if err != nil {
			l.missed = l.missed[:0] // After reads them again, and reports it
			return
		}
		l.missed = append(l.missed, rec)
	}
}

// unavailable wraps an error of etcd: record.ErrStoreUnavailable, but for
// a request etcd refuses whatever its state (too large, too many
// operations), which is a limit to raise.
func unavailable(what string, err error) error {
	if errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrTooManyOps) {
		return fmt.Errorf("audit: etcd: %s: %w (raise etcd's --max-request-bytes or --max-txn-ops, or lower configd's max value size)", what, err)
	}
	return fmt.Errorf("%w: %s: %w", record.ErrStoreUnavailable, what, err)
}

// batch is the Log's batch: a local batch whose Commit first appends the
// records to the log.
type batch struct {
	commit.Batch // the local SQLite transaction
	l            *Log
	base         int64 // the revision the batch is decided on
	recs         []commit.Record
	fences       []record.Fence
	epoch        int64 // the token epoch to compare; negative: none
}

var (
	_ commit.Fencer      = (*batch)(nil)
	_ commit.TokenFencer = (*batch)(nil)
)

// Fence makes the batch's transactions check f (see commit.Fencer).
func (b *batch) Fence(f record.Fence) {
	if !slices.Contains(b.fences, f) {
		b.fences = append(b.fences, f)
	}
}

// FenceTokens makes the batch's transactions check that the token epoch
// is epoch (see commit.TokenFencer).
func (b *batch) FenceTokens(epoch int64) { b.epoch = epoch }

func (b *batch) Append(rec commit.Record) {
	b.Batch.Append(rec)
	b.recs = append(b.recs, rec)
}

// Commit appends the records to the log, then commits them locally. A
// batch without records still compares the head: what it decided (a
// conflict, a change of nothing) was decided on the newest revision.
func (b *batch) Commit(ctx context.Context) error {
	if err := b.l.append(ctx, b.base, b.recs, b.fences, b.epoch); err != nil {
		b.Batch.Abort()
		return err
	}
	return b.Batch.Commit(ctx)
}
