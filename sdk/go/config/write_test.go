package config

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
)

// TestWritesGoToTheWatchedConfigdRelativeToThePrefix: Put, Txn and Delete
// of a client of app/ write app/... as revisions the client then mirrors,
// over either watch transport.
func TestWritesGoToTheWatchedConfigdRelativeToThePrefix(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := context.Background()
			d := startConfigd(t)
			d.put("app/color", "red")
			c := connect(t, []string{d.addr}, append([]Option{WithPrefix("app")}, tr.opts...)...)

			rev, err := c.Put(ctx, "color", []byte("blue"), WithReason("launch"), WithContentType("text/plain"))
			if err != nil {
				t.Fatal(err)
			}
			waitRev(t, c, rev)
			if got := c.Get("color").String(""); got != "blue" {
				t.Fatalf("color = %q, want blue", got)
			}
			r, err := d.st.Revision(ctx, rev)
			if err != nil {
				t.Fatal(err)
			}
			if r.Reason != "launch" || r.Origin != "api" || len(r.Changes) != 1 || r.Changes[0].Key != "app/color" {
				t.Fatalf("revision %d = %+v, want app/color for launch from api", rev, r)
			}

			_, err = c.Put(ctx, "color", []byte("green"), IfModRev(rev-1))
			if !errors.Is(err, ErrConflict) || status.Code(err) != codes.Aborted {
				t.Fatalf("Put with a stale IfModRev: %v, want ErrConflict", err)
			}

			rev, err = c.Txn(ctx, []TxnOp{{Key: "size", Value: []byte("xl")}, {Key: "color", Delete: true}}, WithReason("swap"))
			if err != nil {
				t.Fatal(err)
			}
			waitRev(t, c, rev)
			if c.Get("color").Exists() || c.Get("size").String("") != "xl" {
				t.Fatalf("after the txn: color exists %v, size %q", c.Get("color").Exists(), c.Get("size").String(""))
			}

			if _, err := c.Delete(ctx, "color"); !errors.Is(err, ErrKeyNotFound) {
				t.Fatalf("Delete of a deleted key: %v, want ErrKeyNotFound", err)
			}
			if rev, err = c.Delete(ctx, "size"); err != nil {
				t.Fatal(err)
			}
			waitRev(t, c, rev)
			if c.Get("size").Exists() {
				t.Fatal("size still exists after Delete")
			}
		})
	}
}

// TestWritesCarryTheClientsToken: a token with write on app/ writes as
// itself; a reader's write is refused with ErrForbidden.
func TestWritesCarryTheClientsToken(t *testing.T) {
	ctx := context.Background()
	d, readerSecret := startAuthConfigd(t)
	writerSecret, _, err := d.auth.CreateToken(ctx, "app-writer", []api.Grant{{Permission: api.PermissionWrite, Prefix: "app/"}})
	if err != nil {
		t.Fatal(err)
	}
	d.put("app/x", "1")

	reader := connect(t, []string{d.addr}, WithPrefix("app"), WithToken(readerSecret))
	if _, err := reader.Put(ctx, "x", []byte("2")); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Put by a reader: %v, want ErrForbidden", err)
	}
	writer := connect(t, []string{d.addr}, WithPrefix("app"), WithToken(writerSecret))
	rev, err := writer.Put(ctx, "x", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.st.Revision(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	if r.Actor != "app-writer" {
		t.Fatalf("actor %q, want app-writer", r.Actor)
	}
}

func TestWritesAfterCloseAreRefused(t *testing.T) {
	d := startConfigd(t)
	c := connect(t, []string{d.addr})
	c.Close()
	if _, err := c.Put(context.Background(), "k", []byte("v")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
}
