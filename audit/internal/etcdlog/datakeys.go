package etcdlog

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit/internal/keyring"
)

// The data keys of secrets are shared through etcd, so that every replica
// opens what any replica sealed: P/datakeys/<id, 20 digits> holds one
// key, wrapped by the master key (which every replica is given, and etcd
// never sees). A replica creates a data key in etcd, under the next free
// id, before it seals anything with it; a replica that meets a ciphertext
// under a key it lacks reads them again.

func (l *Log) dataKeysDir() string { return l.prefix + "/datakeys/" }

type dataKeyJSON struct {
	Prefix      string `json:"prefix"`
	MasterKeyID string `json:"master_key_id"`
	Wrapped     []byte `json:"wrapped"`
	CreatedAt   int64  `json:"created_at"`
}

// DataKeys returns every data key the cluster shares, by id.
func (l *Log) DataKeys(ctx context.Context) ([]keyring.DataKeyRow, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.cli.Get(ctx, l.dataKeysDir(), clientv3.WithPrefix())
	if err != nil {
		return nil, unavailable("read the data keys", err)
	}
	rows := make([]keyring.DataKeyRow, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var id int64
		var j dataKeyJSON
		if _, err := fmt.Sscanf(string(kv.Key[len(l.dataKeysDir()):]), "%d", &id); err != nil || id <= 0 {
			return nil, fmt.Errorf("audit: %w: %s is not a data key's id", ErrNotALog, kv.Key)
		}
		if err := json.Unmarshal(kv.Value, &j); err != nil {
			return nil, fmt.Errorf("audit: %w: %s: %w", ErrNotALog, kv.Key, err)
		}
		rows = append(rows, keyring.DataKeyRow{ID: id, Prefix: j.Prefix, MasterKeyID: j.MasterKeyID, Wrapped: j.Wrapped, CreatedAt: j.CreatedAt})
	}
	return rows, nil
}

// PutDataKeys shares new data keys, all or none: false when another
// replica took one of their ids first.
func (l *Log) PutDataKeys(ctx context.Context, rows []keyring.DataKeyRow) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var cmps []clientv3.Cmp
	var puts []clientv3.Op
	for _, r := range rows {
		key := l.dataKeysDir() + revString(r.ID)
		v, err := json.Marshal(dataKeyJSON{Prefix: r.Prefix, MasterKeyID: r.MasterKeyID, Wrapped: r.Wrapped, CreatedAt: r.CreatedAt})
		if err != nil {
			return false, err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		puts = append(puts, clientv3.OpPut(key, string(v)))
	}
	resp, err := l.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
	if err != nil {
		return false, unavailable("share the data keys", err)
	}
	return resp.Succeeded, nil
}
