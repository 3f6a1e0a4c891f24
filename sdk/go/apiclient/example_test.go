package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/server/httpapi"
)

func Example() {
	ctx := context.Background()

	// A configd to talk to: its HTTP API over a store in a temporary
	// directory. A real program only needs the address, e.g. "127.0.0.1:7700".
	dir, err := os.MkdirTemp("", "configd-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := audit.Open(ctx, filepath.Join(dir, "configd.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(httpapi.NewHandler(st))
	defer srv.Close()

	c, err := apiclient.New(srv.URL, apiclient.WithActor("deploy-bot"))
	if err != nil {
		log.Fatal(err)
	}

	wr, err := c.Put(ctx, "app/db/timeout", []byte("5s"), apiclient.WithReason("slower disks"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("set at rev", wr.Rev)

	kv, err := c.Get(ctx, "app/db/timeout")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %s (mod_rev %d)\n", kv.Key, kv.Value, kv.ModRev)

	// Compare-and-set: IfModRev(0) creates the key only if it does not exist.
	_, err = c.Put(ctx, "app/db/timeout", []byte("10s"), apiclient.IfModRev(0))
	fmt.Println("conflict:", errors.Is(err, apiclient.ErrConflict))

	_, err = c.Get(ctx, "app/db/missing")
	fmt.Println("not found:", errors.Is(err, apiclient.ErrNotFound))

	h, err := c.History(ctx, apiclient.HistoryQuery{Key: "app/db/timeout"})
	if err != nil {
		log.Fatal(err)
	}
	r := h.Revisions[0]
	fmt.Printf("rev %d by %s: %s\n", r.Rev, r.Actor, r.Reason)

	// Output:
	// set at rev 1
	// app/db/timeout = 5s (mod_rev 1)
	// conflict: true
	// not found: true
	// rev 1 by deploy-bot: slower disks
}
