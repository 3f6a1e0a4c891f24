package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
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
