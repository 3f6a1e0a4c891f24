package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/configd/configd/api"
)

// TestFullDiskAnswers507AndLosesNothing runs configd on a real file system
// that fills up: a 4 MiB tmpfs, mounted in a mount namespace of its own
// (unshare, as an unprivileged user maps to root there). Writes that do
// not fit are answered 507 disk_full and counted in
// configd_disk_full_total; what was written before stays readable, and
// configd goes on serving.
func TestFullDiskAnswers507AndLosesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "small")
	script := `mkdir -p "$0" && mount -t tmpfs -o size=4m tmpfs "$0" && exec "$1" --data-dir "$0/data" --http-addr 127.0.0.1:0`
	d := launchCmd(t, exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, dir, bin))
	d.Listening()
	d.mustCall(http.MethodPut, "/v1/kv/app/kept", []byte("1"), nil)

	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10/16) // 256 KiB, as text
	var refused *api.ErrorBody
	for i := 0; i < 64 && refused == nil; i++ {
		req, _ := http.NewRequest(http.MethodPut, d.url("/v1/kv/app/big/"+strconv.Itoa(i)), bytes.NewReader(big))
		resp, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusInsufficientStorage:
			var e api.ErrorResponse
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			refused = &e.Error
		default:
			t.Fatalf("write %d on a filling disk: %d %s, want 200 or 507", i, resp.StatusCode, b)
		}
	}
	if refused == nil {
		t.Fatal("64 writes of 256 KiB fit on a 4 MiB file system")
	}
	if refused.Code != api.CodeDiskFull || !strings.Contains(refused.Message, "disk") {
		t.Errorf("507 body %+v, want code disk_full and a message that says the disk is full", refused)
	}
	var kv api.KeyValue
	d.mustCall(http.MethodGet, "/v1/kv/app/kept", nil, &kv)
	if kv.Value != "1" {
		t.Errorf("app/kept = %q after the disk filled, want 1", kv.Value)
	}
	resp, err := d.client.Get(d.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := regexp.MustCompile(`(?m)^configd_disk_full_total ([1-9]\d*)$`).FindSubmatch(metrics); m == nil {
		t.Errorf("configd_disk_full_total is not above 0:\n%s", regexp.MustCompile(`(?m)^configd_disk.*$`).Find(metrics))
	}
	if resp, err := d.client.Get(d.url("/readyz")); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("readyz after the disk filled: %v %v, want 200 (reads go on)", resp, err)
	}
}
