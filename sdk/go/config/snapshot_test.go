package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
)

func TestSnapshotFileRoundTrip(t *testing.T) {
	root := trieOf("db/timeout", "5s", "db/conf", "application/json:{\"a\":1}")
	b := builder{root: root, gen: 2}
	b.put("bin", newEntry([]byte{0, 0xff, 'x'}, api.TypeBinary, 3, 4, 2))
	path := filepath.Join(t.TempDir(), "config.snapshot")
	data, err := encodeSnapshot("app/", nil, 42, b.root, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		t.Fatal(err)
	}
	body, err := readSnapshotFile(path, "app/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if body.Rev != 42 || body.Prefix != "app/" || len(body.KVs) != 3 {
		t.Fatalf("body = %+v", body)
	}
	bin := body.KVs[0]
	if got, _ := bin.Bytes(); bin.Key != "app/bin" || !bytes.Equal(got, []byte{0, 0xff, 'x'}) || bin.ModRev != 4 || bin.ContentType != api.TypeBinary {
		t.Fatalf("binary value = %+v", bin)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600: the file may hold secrets", fi.Mode())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestSnapshotFileRefusals(t *testing.T) {
	good, err := encodeSnapshot("app/", nil, 7, trieOf("k", "v"), time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[bytes.Index(flipped, []byte(`"v"`))+1] = 'w'
	for _, tc := range []struct {
		name   string
		data   []byte
		prefix string
		want   string
	}{
		{"one byte changed", flipped, "app/", "checksum mismatch"},
		{"truncated", good[:len(good)-20], "app/", "checksum"},
		{"cut in the body", good[:40], "app/", "no checksum line"},
		{"another prefix", good, "web/", `prefix "app/"`},
		{"not a snapshot", []byte("hello\nworld\n"), "app/", "not a configd snapshot file"},
		{"newer format", []byte("configd-config-snapshot 2\n{}\nsha256 00\n"), "app/", "not supported"},
		{"empty", nil, "app/", "not a configd snapshot file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			os.WriteFile(path, tc.data, 0o600)
			_, err := readSnapshotFile(path, tc.prefix, nil)
			if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want ErrBadSnapshot naming the file and saying %q", err, tc.want)
			}
		})
	}
	// A file of some keys stands in only for a client of those keys.
	ofKeys, err := encodeSnapshot("app/", []string{"app/k"}, 7, trieOf("k", "v"), time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "s")
	os.WriteFile(path, ofKeys, 0o600)
	if body, err := readSnapshotFile(path, "app/", []string{"app/k"}); err != nil || len(body.KVs) != 1 {
		t.Fatalf("a file of the client's keys: %+v, %v", body, err)
	}
	for _, keys := range [][]string{nil, {"app/j"}, {"app/j", "app/k"}} {
		if _, err := readSnapshotFile(path, "app/", keys); !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "keys") {
			t.Errorf("a file of app/k, read by a client of %q: %v, want ErrBadSnapshot about keys", keys, err)
		}
	}
	os.WriteFile(path, good, 0o600)
	if _, err := readSnapshotFile(path, "app/", []string{"app/k"}); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("a file of the whole prefix, read by a client of one key: %v, want ErrBadSnapshot", err)
	}
	if _, err := readSnapshotFile(filepath.Join(t.TempDir(), "none"), "app/", nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
