// Package configdtest gives tests a live configd at the level they need,
// each built the way the daemon builds it, so that no test wires configd's
// parts together by hand:
//
//   - Core: the store and its watch hub, wired by core.Open;
//   - Run and Launch: the whole daemon (server.Run) in the test process;
//   - Spawn and StartProcess: a configd binary as a process of its own (Main
//     builds it), with Log to wait for its log lines instead of sleeping.
package configdtest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/core"
)

// Discard is a logger that logs nothing.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Core opens a store (configd.db in a temporary directory, logging
// nothing unless opts say otherwise) and its hub with core.Open, closed
// when the test ends.
func Core(t testing.TB, opts ...core.Option) *core.Core {
	t.Helper()
	opts = append([]core.Option{core.WithStoreOptions(audit.WithLogger(Discard()))}, opts...)
	c, err := core.Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"), opts...)
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close the store: %v", err)
		}
	})
	return c
}
