package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/audit/internal/etcdlog"
)

// Replicas of one cluster must read and write its log format: a configd
// of an older or a newer format is refused at Open, with both formats
// named and what to do, and nothing is written to the log or the data
// dir's cluster. A log of the same format created by a release of
// another schema level (a rolling upgrade within the format) is joined.
func (e *replicaEnv) logFormats(t *testing.T) {
	ctx := context.Background()
	cli := e.client(t)
	for _, tc := range []struct {
		name   string
		format int
		schema int
		want   []string // nil: joined
	}{
		{name: "newer", format: 2, schema: 12, want: []string{"format 2, created by a configd of schema level 12", "reads and writes format 1", "upgrade it"}},
		{name: "older", format: 0, want: []string{"is format 0;", "reads and writes format 1", "newer than the cluster", "not upgraded in place"}},
		{name: "same format, newer schema", format: 1, schema: 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := prefix(t)
			meta := fmt.Sprintf(`{"configd":"configd commit log","format":%d,"cluster":"c0ffee","schema":%d}`, tc.format, tc.schema)
			if _, err := cli.Put(ctx, p+"/meta", meta); err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Put(ctx, p+"/head", fmt.Sprintf("%020d", 0)); err != nil {
				t.Fatal(err)
			}
			s, err := Open(ctx, filepath.Join(t.TempDir(), "configd.db"), WithEtcd(cli, p))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("a log of format 1 created at schema level %d: %v", tc.schema, err)
				}
				defer s.Close()
				if r := put(t, s, "app/a", "1"); r.Rev != 1 {
					t.Fatalf("a write: rev %d", r.Rev)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("a log of format %d was joined", tc.format)
			}
			t.Log(err)
			if !errors.Is(err, ErrLogFormat) {
				t.Errorf("err %v, want ErrLogFormat", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if got, err := cli.Get(ctx, p+"/", clientv3.WithPrefix()); err != nil || got.Count != 2 {
				t.Errorf("the prefix holds %d keys (%v), want meta and head alone", got.Count, err)
			}
		})
	}
}

// withFormatSchemas makes the store a release whose log format is read
// and written by the releases of schema levels first to last.
func withFormatSchemas(first, last int) Option {
	return func(o *options) { o.formatSchemas = etcdlog.Schemas{First: first, Last: last} }
}

// A data dir says which log format it followed: the schema level that the
// last configd which opened it left, within the levels of one format. A
// data dir that joined a cluster under a release of an older format is
// refused at Open even when etcd does not answer (and when it does),
// before its schema is migrated, so that the cluster's release can still
// open it; a data dir of this format opens without etcd and serves reads
// (a replica restarted during a rolling upgrade while etcd is down).
func (e *replicaEnv) dataDirFormats(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	down, err := clientv3.New(clientv3.Config{Endpoints: []string{closed}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { down.Close() })
	up := e.client(t)

	r := e.replica(t)
	put(t, r, "app/a", "1")
	path, level := r.Path(), r.Replication().Schema
	r.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	levelIs := func(want int, why string) {
		t.Helper()
		var got int
		if err := db.QueryRow(`SELECT version FROM schema_version`).Scan(&got); err != nil || got != want {
			t.Fatalf("%s: the data dir's schema level is %d (%v), want %d", why, got, err, want)
		}
	}
	refused := func(why string, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: a data dir of an older log format was opened", why)
		}
		t.Logf("%s: %v", why, err)
		if !errors.Is(err, ErrLogFormat) {
			t.Errorf("%s: err %v, want ErrLogFormat", why, err)
		}
		for _, w := range append(want, path, "run the release the cluster's replicas run", "empty data dir") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", why, err, w)
			}
		}
	}

	// This format's data dir, etcd down: it opens, and serves what it has.
	s, err := Open(ctx, path, WithEtcd(down, prefix(t)), WithEtcdTimeout(time.Second))
	if err != nil {
		t.Fatalf("a data dir of this log format, etcd down: %v", err)
	}
	if kv, err := s.Get(ctx, "app/a"); err != nil || string(kv.Value) != "1" || !errors.Is(s.Replication().Err, ErrStoreUnavailable) {
		t.Fatalf("a data dir of this log format, etcd down: %+v, %v, %+v", kv, err, s.Replication())
	}
	s.Close()

	// A later release, whose log format is read and written from the
	// next schema level on: the data dir followed the format before.
	next := withFormatSchemas(level+1, level+1)
	for _, tc := range []struct {
		name string
		cli  *clientv3.Client
	}{{"etcd down", down}, {"etcd up", up}} {
		s, err := Open(ctx, path, WithEtcd(tc.cli, prefix(t)), WithEtcdTimeout(time.Second), next)
		if err == nil {
			s.Close()
		}
		refused("a release of the next format, "+tc.name, err,
			fmt.Sprintf("schema level %d is below this configd's format 1 (schema levels %d to %d)", level, level+1, level+1))
	}

	// A data dir that a release of an older format left, below this
	// format's levels (9: the one before the first release with
	// replicas): refused before the migrations touch it.
	if _, err := db.Exec(`UPDATE schema_version SET version = 9`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cli  *clientv3.Client
	}{{"etcd down", down}, {"etcd up", up}} {
		s, err := Open(ctx, path, WithEtcd(tc.cli, prefix(t)), WithEtcdTimeout(time.Second))
		if err == nil {
			s.Close()
		}
		refused("a data dir of schema level 9, "+tc.name, err, "schema level 9 is below")
		levelIs(9, tc.name)
	}
}
