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
// replica, and 64 writers spread over 3 replicas; and, beside them, bare
// etcd Puts of the same values from 1 and 64 clients. etcd-B/rev is what
// etcd's database file grew by per revision.
func BenchmarkReplicaCommit(b *testing.B) {
	c := testserver.EtcdCluster3(b)
	value := []byte(strings.Repeat("v", 200))
	for _, tc := range []struct{ writers, replicas int }{{1, 1}, {64, 1}, {64, 3}} {
		b.Run(fmt.Sprintf("writers=%d/replicas=%d", tc.writers, tc.replicas), func(b *testing.B) {
			cli := etcdClient(b, c)
			pfx := fmt.Sprintf("/bench/%d/%d/%d", tc.writers, tc.replicas, time.Now().UnixNano())
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
				_, err := stores[w%len(stores)].Commit(context.Background(), Txn{Actor: "bench", Ops: []Op{
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
