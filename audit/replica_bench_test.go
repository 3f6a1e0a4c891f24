package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/internal/testserver"
)

// BenchmarkReplicaCommit measures durable commits (acknowledged by etcd's
// quorum, then applied locally) of 200-byte values through the etcd log,
// on one 3-member cluster on this machine: from 1 and 64 writers on one
// replica, and 64 writers spread over 3 replicas, those also with each
// write allowed by a token (its batch compares the token epoch: token=1);
// and, beside them, bare etcd Puts of the same values from 1 and 64
// clients. etcd-B/rev is what etcd's database file grew by per revision.
func BenchmarkReplicaCommit(b *testing.B) {
	c := testserver.EtcdCluster3(b)
	value := []byte(strings.Repeat("v", 200))
	for _, tc := range []struct {
		writers, replicas int
		token             bool
	}{{1, 1, false}, {64, 1, false}, {64, 3, false}, {64, 3, true}} {
		name := fmt.Sprintf("writers=%d/replicas=%d", tc.writers, tc.replicas)
		ctx := context.Background()
		if tc.token {
			name += "/token=1"
			ctx = WithAuthorization(ctx, benchToken{})
		}
		b.Run(name, func(b *testing.B) {
			cli := etcdClient(b, c)
			pfx := fmt.Sprintf("/bench/%d/%d/%t/%d", tc.writers, tc.replicas, tc.token, time.Now().UnixNano())
			var stores []*Store
			for range tc.replicas {
				s, err := Open(context.Background(), filepath.Join(b.TempDir(), "configd.db"), WithEtcd(cli, pfx))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				stores = append(stores, s)
			}
			dbSize := func() int64 {
				st, err := cli.Status(context.Background(), c.Endpoints[0])
				if err != nil {
					b.Fatal(err)
				}
				return st.DbSize
			}
			before := dbSize()
			var n atomic.Int64
			run(b, tc.writers, func(w int) error {
				i := n.Add(1)
				_, err := stores[w%len(stores)].Commit(ctx, Txn{Actor: "bench", Ops: []Op{
					Put(fmt.Sprintf("bench/%d", i), value, ""),
				}})
				return err
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			// What etcd's database grew by, per revision (etcd's own
			// history of the head included: nothing compacts it here).
			b.ReportMetric(float64(dbSize()-before)/float64(b.N), "etcd-B/rev")
		})
	}
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("bare-etcd-put/clients=%d", clients), func(b *testing.B) {
			clis := make([]*clientv3.Client, clients)
			for i := range clis {
				clis[i] = etcdClient(b, c)
			}
			var n atomic.Int64
			run(b, clients, func(w int) error {
				i := n.Add(1)
				_, err := clis[w].Put(context.Background(), fmt.Sprintf("/bench-put/%d", i), string(value))
				return err
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
		})
	}
}

// benchToken is a write's Authorization whose tokens never change: its
// batch compares the token epoch and nothing more.
type benchToken struct{}

func (benchToken) TokenEpoch() int64 { return 0 }

func (benchToken) Reauthorize([]string) (int64, error) { return 0, nil }

// run calls op b.N times from writers goroutines (each with its number).
func run(b *testing.B, writers int, op func(w int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(w); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkReplicaRetention measures how big etcd's database grows with
// the log of b.N revisions (run it with -benchtime=100000x for the figure
// per 100,000 revisions), on a fresh 3-member cluster each: without
// retention, and with retention keeping 10,000 revisions, compacted every
// 10,000 revisions (the log's records below the horizon deleted, etcd's
// history compacted). 64 writers on one replica put 200-byte values under
// 1,000 keys. It reports etcd's database file (etcd's
// etcd_mvcc_db_total_size_in_bytes, Status' DbSize) and the part of it in
// use (DbSizeInUse), then the file after a defragmentation of every
// member.
func BenchmarkReplicaRetention(b *testing.B) {
	value := []byte(strings.Repeat("v", 200))
	for _, keep := range []int{0, 10000} {
		b.Run(fmt.Sprintf("keep=%d", keep), func(b *testing.B) {
			c := testserver.EtcdCluster3(b)
			cli := etcdClient(b, c)
			opts := []Option{WithEtcd(cli, "/bench"), WithCompactInterval(-1)}
			if keep > 0 {
				opts = append(opts, WithRetention(keep, 0))
			}
			s, err := Open(context.Background(), filepath.Join(b.TempDir(), "configd.db"), opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			status := func() (size, inUse int64) {
				st, err := cli.Status(context.Background(), c.Endpoints[0])
				if err != nil {
					b.Fatal(err)
				}
				return st.DbSize, st.DbSizeInUse
			}
			before, _ := status()
			var n atomic.Int64
			run(b, 64, func(int) error {
				i := n.Add(1)
				if keep > 0 && i%int64(keep) == 0 {
					if _, err := s.Compact(context.Background()); err != nil {
						return err
					}
				}
				v := fmt.Appendf(nil, "%010d", i) // a new value: a revision each
				_, err := s.Commit(context.Background(), Txn{Actor: "bench", Ops: []Op{
					Put(fmt.Sprintf("bench/%d", i%1000), append(v, value[len(v):]...), ""),
				}})
				return err
			})
			b.StopTimer()
			if s.Rev() != int64(b.N) {
				b.Fatalf("%d revisions for %d commits", s.Rev(), b.N)
			}
			size, inUse := status()
			for _, ep := range c.Endpoints {
				if _, err := cli.Defragment(context.Background(), ep); err != nil {
					b.Fatal(err)
				}
			}
			defragged, _ := status()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(size-before)/float64(b.N), "etcd-B/rev")
			b.ReportMetric(float64(size)/1e6, "etcd-MB")
			b.ReportMetric(float64(inUse)/1e6, "etcd-inuse-MB")
			b.ReportMetric(float64(defragged)/1e6, "etcd-defrag-MB")
		})
	}
}
