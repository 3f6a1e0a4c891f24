package audit

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestDiskFullIsErrDiskFullAndLosesNothing: a commit that SQLite cannot
// write for want of room (SQLITE_FULL, here from a page limit on the
// writer's connection, as ENOSPC gives it) fails with ErrDiskFull and is
// counted; what was committed before stays, and the store takes writes
// again once there is room.
func TestDiskFullIsErrDiskFullAndLosesNothing(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	put(t, s, "app/a", "1")
	var pages int64
	if err := s.wdb.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.ExecContext(ctx, `PRAGMA max_page_count = `+itoa(pages)); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 256<<10)
	_, err := s.Commit(ctx, Txn{Actor: "alice", Ops: []Op{Put("app/big", []byte(big), ""), Put("app/a", []byte("2"), "")}})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("commit on a full disk: %v, want ErrDiskFull", err)
	}
	if n := s.DiskFullErrors(); n != 1 {
		t.Errorf("DiskFullErrors = %d, want 1", n)
	}
	if kv, err := s.Get(ctx, "app/a"); err != nil || string(kv.Value) != "1" || s.Rev() != 1 {
		t.Fatalf("after the failed commit: app/a = %q, %v, rev %d; want 1 at rev 1", kv.Value, err, s.Rev())
	}
	if _, err := s.Get(ctx, "app/big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("app/big after the failed commit: %v, want not found", err)
	}
	if _, err := s.wdb.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if r := put(t, s, "app/big", big); r.Rev != 2 {
		t.Fatalf("the next commit once there is room: rev %d, want 2", r.Rev)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
