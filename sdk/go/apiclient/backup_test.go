package apiclient_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/sdk/go/apiclient"
)

func TestBackupChecksWhatArrives(t *testing.T) {
	body := []byte("SQLite format 3\x00 and the rest of a database")
	sum := sha256.Sum256(body)
	good := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name    string
		sha     string
		send    []byte
		wantErr bool
	}{
		{"intact", good, body, false},
		{"wrong digest", good[:60] + "0000", body, true},
		{"no digest", "", body, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/backup" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set(api.HeaderBackupSHA256, tc.sha)
				w.Header().Set(api.HeaderRev, "7")
				w.Write(tc.send)
			}))
			defer srv.Close()
			c, err := apiclient.New(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			info, err := c.Backup(t.Context(), &buf)
			if tc.wantErr {
				if !errors.Is(err, apiclient.ErrBackupCorrupt) {
					t.Fatalf("err = %v, want ErrBackupCorrupt", err)
				}
				return
			}
			if err != nil || info.Rev != 7 || info.SHA256 != good || !bytes.Equal(buf.Bytes(), body) {
				t.Fatalf("backup = %+v, %v", info, err)
			}
		})
	}
}

func TestBackupOfAShortBodyFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Header().Set(api.HeaderBackupSHA256, "00")
		w.Write([]byte("only a little"))
	}))
	defer srv.Close()
	c, _ := apiclient.New(srv.URL)
	if _, err := c.Backup(t.Context(), &bytes.Buffer{}); err == nil {
		t.Fatal("a short backup was accepted")
	}
}
