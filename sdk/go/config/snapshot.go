package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
)

// The snapshot file holds the client's copy so that a service can start
// while configd is down. It is three parts, each ending in a newline:
//
//	configd-config-snapshot 1
//	{"prefix":"app/","rev":42,"saved_at":"...","kvs":[{"key":"app/db/timeout","value":"5s",...}]}
//	sha256 <hex of the bytes of the two lines above>
//
// The first line names the format and its version, the second is JSON
// (keys in full; values as in configd's HTTP API: the text itself, or
// base64 with "encoding":"base64" when it is not UTF-8), the last a
// checksum that catches a torn or edited file. It is written to a
// temporary file in the same directory, synced and renamed over the old
// one, so a crash leaves either the old file or the new one.

const snapshotMagic = "configd-config-snapshot 1"

type snapshotBody struct {
	Prefix string `json:"prefix"`
	// Keys are the client's keys (WithKeys, in full), absent when it
	// mirrors its whole prefix.
	Keys    []string       `json:"keys,omitempty"`
	Rev     int64          `json:"rev"`
	SavedAt time.Time      `json:"saved_at"`
	KVs     []api.KeyValue `json:"kvs"`
}

// encodeSnapshot renders the trie root (keys relative to prefix) at rev,
// of a client of prefix and keys (nil: the whole prefix).
func encodeSnapshot(prefix string, keys []string, rev int64, root *node, now time.Time) ([]byte, error) {
	body := snapshotBody{Prefix: prefix, Keys: keys, Rev: rev, SavedAt: now.UTC(), KVs: []api.KeyValue{}}
	walk(root, "", func(key string, e *entry) {
		v, enc := api.EncodeValue(e.raw)
		body.KVs = append(body.KVs, api.KeyValue{Key: prefix + key, Value: v, Encoding: enc,
			ContentType: e.contentType, CreateRev: e.createRev, ModRev: e.modRev, Version: e.version})
	})
	js, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(snapshotMagic + "\n")
	buf.Write(js)
	buf.WriteByte('\n')
	sum := sha256.Sum256(buf.Bytes())
	buf.WriteString("sha256 " + hex.EncodeToString(sum[:]) + "\n")
	return buf.Bytes(), nil
}

// decodeSnapshot checks and parses a snapshot file written for prefix and
// keys.
func decodeSnapshot(data []byte, prefix string, keys []string) (snapshotBody, error) {
	var body snapshotBody
	head, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok || string(head) != snapshotMagic {
		if ok && strings.HasPrefix(string(head), "configd-config-snapshot ") {
			return body, fmt.Errorf("format %q is not supported by this SDK (it reads %q)", head, snapshotMagic)
		}
		return body, errors.New("not a configd snapshot file")
	}
	js, trailer, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return body, errors.New("truncated: no checksum line")
	}
	hexSum, found := strings.CutPrefix(strings.TrimSuffix(string(trailer), "\n"), "sha256 ")
	want, err := hex.DecodeString(hexSum)
	if !found || err != nil || len(want) != sha256.Size {
		return body, errors.New("truncated or damaged checksum line")
	}
	got := sha256.Sum256(data[:len(head)+1+len(js)+1])
	if !bytes.Equal(got[:], want) {
		return body, errors.New("checksum mismatch: the file is corrupt or was edited")
	}
	if err := json.Unmarshal(js, &body); err != nil {
		return body, fmt.Errorf("body: %v", err)
	}
	if body.Prefix != prefix {
		return body, fmt.Errorf("written by a client of prefix %q, this client mirrors %q", body.Prefix, prefix)
	}
	if !slices.Equal(body.Keys, keys) {
		return body, fmt.Errorf("written by a client of keys %q, this client mirrors %q", body.Keys, keys)
	}
	for _, kv := range body.KVs {
		if !keyspace.InPrefix(kv.Key, prefix) || keyspace.Validate(kv.Key) != nil || kv.Key == prefix {
			return body, fmt.Errorf("key %q is not a valid key under prefix %q", kv.Key, prefix)
		}
		if keys != nil && !slices.Contains(keys, kv.Key) {
			return body, fmt.Errorf("key %q is not one of the client's keys", kv.Key)
		}
	}
	return body, nil
}

// readSnapshotFile reads and checks the snapshot file at path; a missing
// file is os.ErrNotExist, any other failure wraps ErrBadSnapshot.
func readSnapshotFile(path, prefix string, keys []string) (snapshotBody, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return snapshotBody{}, err
	}
	if err != nil {
		return snapshotBody{}, fmt.Errorf("%w: %s: %v", ErrBadSnapshot, path, err)
	}
	body, err := decodeSnapshot(data, prefix, keys)
	if err != nil {
		return snapshotBody{}, fmt.Errorf("%w: %s: %v", ErrBadSnapshot, path, err)
	}
	return body, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, synced, renamed over path, and the directory synced.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		// The rename is durable only once the directory is.
		err = d.Sync()
		d.Close()
	}
	return err
}
