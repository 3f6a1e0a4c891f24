package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/record"
)

// testSize is the preallocated size of the journals under test: small,
// so that every test reads a whole file quickly.
const testSize = 64 << 10

// rec is revision n, with a value of valueLen bytes: a record as a store
// journals it (a put and a delete, its hash and state).
func rec(n int64, valueLen int) commit.Record {
	key := fmt.Sprintf("app/k%d", n)
	return commit.Record{
		Rev: record.Revision{
			Rev: n, Time: time.Unix(1700000000+n, 123456789).UTC(), Actor: "alice", Reason: "why", Origin: "api",
			NumChanges: 2,
			Changes: []record.Change{
				{Key: key, Type: record.OpPut, New: &record.KeyValue{Key: key, Value: bytes.Repeat([]byte{'v'}, valueLen),
					ContentType: "text/plain", CreateRev: n, ModRev: n, Version: 1}},
				{Key: "app/gone", Type: record.OpDelete, Old: &record.KeyValue{Key: "app/gone", Value: []byte("x"),
					ContentType: "application/json", CreateRev: 1, ModRev: 1, Version: 1}},
			},
		},
		Hash:  bytes.Repeat([]byte{byte(n)}, 32),
		State: bytes.Repeat([]byte{byte(n) + 1}, 32),
	}
}

// recs is revisions from..to, each with a value of valueLen bytes.
func recs(from, to int64, valueLen int) []commit.Record {
	var out []commit.Record
	for n := from; n <= to; n++ {
		out = append(out, rec(n, valueLen))
	}
	return out
}

// frames is the frames of rs, as a batch writes them.
func frames(rs ...commit.Record) []byte {
	var b []byte
	for i := range rs {
		b = AppendFrame(b, &rs[i])
	}
	return b
}

// normalised returns r with its times in UTC, as the codec decodes them.
func normalised(r Recovered) Recovered {
	out := r
	out.Records = nil
	for _, x := range r.Records {
		x.Rev.Time = x.Rev.Time.UTC()
		out.Records = append(out.Records, x)
	}
	return out
}

func wantRecovered(t *testing.T, what string, got, want Recovered) {
	t.Helper()
	if g, w := normalised(got), normalised(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s: got %s\nwant %s", what, describe(g), describe(w))
	}
}

// describe names what r holds (the revisions), for failure messages.
func describe(r Recovered) string {
	revs := make([]int64, len(r.Records))
	for i, x := range r.Records {
		revs[i] = x.Rev.Rev
	}
	return fmt.Sprintf("{Valid:%v Base:%d revisions:%v}", r.Valid, r.Base, revs)
}

func peek(t *testing.T, path string) Recovered {
	t.Helper()
	r, err := Peek(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func open(t *testing.T, path string) (*File, Recovered) {
	t.Helper()
	j, r, err := Open(path, testSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.f.Close() }) // a crash: no Close(base)
	return j, r
}

// newCycle opens a new journal and writes rs in a cycle on top of base.
func newCycle(t *testing.T, base int64, rs ...commit.Record) (string, *File) {
	t.Helper()
	path := journalPath(t)
	j, _ := open(t, path)
	j.Reset(base)
	write(t, j, rs...)
	return path, j
}

// closeAt closes j on top of base, the newest revision of the database.
func closeAt(t *testing.T, j *File, base int64) {
	t.Helper()
	if err := j.Close(base); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, j *File, rs ...commit.Record) {
	t.Helper()
	if err := j.Write(frames(rs...)); err != nil {
		t.Fatal(err)
	}
}

// journalPath is the journal's path in a new directory.
func journalPath(t *testing.T) string { return filepath.Join(t.TempDir(), "db.commits") }

// A new journal holds no cycle, and is preallocated with zeros to the size
// asked for, readable by its owner alone.
func TestOpenNewFilePreallocates(t *testing.T) {
	path := journalPath(t)
	j, r := open(t, path)
	wantRecovered(t, "a new journal", r, Recovered{})
	if j.Size() != testSize || j.Used() != 0 {
		t.Fatalf("Size %d, Used %d; want %d, 0", j.Size(), j.Used(), testSize)
	}
	if got := fileSize(t, path); got != testSize {
		t.Fatalf("the file holds %d bytes, want %d", got, testSize)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file's mode is %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, make([]byte, testSize)) {
		t.Fatal("a new journal is not all zeros")
	}
}

// Open with size 0 preallocates DefaultSize; a file already larger than
// the size asked for is left as it is.
func TestOpenSizes(t *testing.T) {
	path := journalPath(t)
	j, _, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	j.f.Close()
	if got := fileSize(t, path); got != DefaultSize || j.Size() != DefaultSize {
		t.Fatalf("Open(path, 0): the file holds %d bytes, Size() %d; want %d", got, j.Size(), DefaultSize)
	}
	open(t, path) // testSize < DefaultSize
	if got := fileSize(t, path); got != DefaultSize {
		t.Fatalf("reopened with a smaller size: the file holds %d bytes; want it left at %d", got, DefaultSize)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Records written in several Writes of one cycle read back whole and in
// order, by Peek, by Open of the file left open (a crash) and by Current.
func TestWritesAppendToTheCycle(t *testing.T) {
	path := journalPath(t)
	j, _ := open(t, path)
	j.Reset(0)
	all := recs(1, 6, 20)
	write(t, j, all[0:3]...)
	write(t, j, all[3:5]...)
	write(t, j, all[5])
	if want := int64(headerSize + len(frames(all...))); j.Used() != want {
		t.Fatalf("Used %d, want %d (header and frames)", j.Used(), want)
	}
	want := Recovered{Valid: true, Base: 0, Records: all}
	wantRecovered(t, "Peek", peek(t, path), want)
	cur, err := j.Current()
	if err != nil {
		t.Fatal(err)
	}
	wantRecovered(t, "Current", cur, want)
	_, r := open(t, path) // without closing j: what a crash leaves
	wantRecovered(t, "Open", r, want)
}

// A new cycle overwrites the older one from offset 0; what the older one
// left beyond the new cycle's end is not read.
func TestNewCycleHidesTheOlderOne(t *testing.T) {
	path, j := newCycle(t, 0, recs(1, 10, 500)...)
	old := j.Used()
	j.Reset(10)
	if j.Used() != 0 {
		t.Fatalf("Used after Reset: %d", j.Used())
	}
	write(t, j, recs(11, 12, 5)...)
	if j.Used() >= old {
		t.Fatalf("the new cycle (%d bytes) does not end within the older one (%d bytes)", j.Used(), old)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(data[j.Used():old], []byte("app/k9")) == 0 {
		t.Fatal("the older cycle's records are not in the file beyond the new cycle: the test proves nothing")
	}
	if base := int64(binary.LittleEndian.Uint64(data[len(magic):])); base != 10 {
		t.Fatalf("the header names base %d, want 10", base)
	}
	wantRecovered(t, "Peek", peek(t, path), Recovered{Valid: true, Base: 10, Records: recs(11, 12, 5)})
}

// A cycle with its header and frames 1..3, in a file of testSize bytes,
// and where each frame starts.
func threeFrames(t *testing.T) (path string, starts []int) {
	t.Helper()
	rs := recs(1, 3, 40)
	path, _ = newCycle(t, 0, rs...)
	off := headerSize
	for i := range rs {
		starts = append(starts, off)
		off += len(frames(rs[i]))
	}
	starts = append(starts, off) // the end of the cycle
	return path, starts
}

func patch(t *testing.T, path string, edit func(data []byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Reading stops at the first frame that is not whole or whose checksum
// fails, and keeps the frames before it; a header that is not whole or
// fails its checksum holds no cycle.
func TestTornTail(t *testing.T) {
	lastTwo := Recovered{Valid: true, Records: recs(1, 2, 40)}
	for _, c := range []struct {
		name string
		edit func(data []byte, starts []int) []byte
		want Recovered
	}{
		{"payload byte flipped", func(d []byte, s []int) []byte { d[s[3]-3] ^= 0x40; return d }, lastTwo},
		{"checksum flipped", func(d []byte, s []int) []byte { d[s[2]+5] ^= 1; return d }, lastTwo},
		{"last bytes zeroed", func(d []byte, s []int) []byte { clear(d[s[3]-10 : s[3]]); return d }, lastTwo},
		{"frame head zeroed", func(d []byte, s []int) []byte { clear(d[s[2] : s[2]+frameHead]); return d }, lastTwo},
		{"cut within the last frame", func(d []byte, s []int) []byte { return d[:s[3]-1] }, lastTwo},
		{"cut within the last frame's head", func(d []byte, s []int) []byte { return d[:s[2]+3] }, lastTwo},
		{"length past the end of the file", func(d []byte, s []int) []byte {
			binary.LittleEndian.PutUint32(d[s[2]:], uint32(len(d)-s[2]-frameHead+1))
			return d
		}, lastTwo},
		{"length 2^32-1", func(d []byte, s []int) []byte {
			binary.LittleEndian.PutUint32(d[s[2]:], 1<<32-1)
			return d
		}, lastTwo},
		{"length one short", func(d []byte, s []int) []byte {
			binary.LittleEndian.PutUint32(d[s[2]:], uint32(s[3]-s[2]-frameHead-1))
			return d
		}, lastTwo},
		{"first frame flipped", func(d []byte, s []int) []byte { d[s[0]+frameHead+2] ^= 0xff; return d },
			Recovered{Valid: true}},
		{"header base flipped", func(d []byte, s []int) []byte { d[len(magic)] ^= 1; return d }, Recovered{}},
		{"header checksum flipped", func(d []byte, s []int) []byte { d[headerSize-1] ^= 1; return d }, Recovered{}},
		{"magic changed", func(d []byte, s []int) []byte { d[0] = 'X'; return d }, Recovered{}},
		{"header cut short", func(d []byte, s []int) []byte { return d[:headerSize-1] }, Recovered{}},
		{"empty file", func(d []byte, s []int) []byte { return nil }, Recovered{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, starts := threeFrames(t)
			wantRecovered(t, "before the edit", peek(t, path), Recovered{Valid: true, Records: recs(1, 3, 40)})
			patch(t, path, func(d []byte) []byte { return c.edit(d, starts) })
			wantRecovered(t, "Peek", peek(t, path), c.want)
			_, r := open(t, path)
			wantRecovered(t, "Open", r, c.want)
		})
	}
}

// Reading stops at the first frame whose revision does not follow the one
// before it (the cycle's base for the first).
func TestRevisionGapStopsReading(t *testing.T) {
	for _, c := range []struct {
		name    string
		base    int64
		written []commit.Record
		want    []commit.Record
	}{
		{"1, 2, 4", 0, []commit.Record{rec(1, 8), rec(2, 8), rec(4, 8), rec(5, 8)}, recs(1, 2, 8)},
		{"2, 2", 1, []commit.Record{rec(2, 8), rec(2, 8), rec(3, 8)}, recs(2, 2, 8)},
		{"3, 2", 1, []commit.Record{rec(2, 8), rec(3, 8), rec(2, 8)}, recs(2, 3, 8)},
		{"first after a gap", 5, []commit.Record{rec(7, 8), rec(8, 8)}, nil},
		{"first at the base", 5, []commit.Record{rec(5, 8), rec(6, 8)}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, _ := newCycle(t, c.base, c.written...)
			wantRecovered(t, "Peek", peek(t, path), Recovered{Valid: true, Base: c.base, Records: c.want})
		})
	}
}

// A frame whose checksum holds but whose payload is not a record stops the
// reading too.
func TestUndecodableFrameStopsReading(t *testing.T) {
	path := journalPath(t)
	j, _ := open(t, path)
	j.Reset(0)
	b := frames(rec(1, 8))
	garbage := []byte{0xff, 0xff, 0xff}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(garbage)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(garbage, castagnoli))
	b = append(b, garbage...)
	b = append(b, frames(rec(2, 8))...)
	if err := j.Write(b); err != nil {
		t.Fatal(err)
	}
	wantRecovered(t, "Peek", peek(t, path), Recovered{Valid: true, Records: recs(1, 1, 8)})
}

// Close(base), when the database holds every record of the cycle, leaves
// an empty cycle on top of base, which later Opens find nothing in.
func TestCloseWritesAnEmptyCycle(t *testing.T) {
	for _, base := range []int64{3, 9} {
		t.Run(fmt.Sprint(base), func(t *testing.T) {
			path, j := newCycle(t, 0, recs(1, 3, 30)...)
			closeAt(t, j, base)
			want := Recovered{Valid: true, Base: base}
			wantRecovered(t, "Peek", peek(t, path), want)
			j, r := open(t, path)
			wantRecovered(t, "Open", r, want)
			// The next process starts its cycle on top of base.
			j.Reset(base)
			write(t, j, rec(base+1, 30))
			wantRecovered(t, "after a write", peek(t, path), Recovered{Valid: true, Base: base, Records: recs(base+1, base+1, 30)})
		})
	}
}

// Close(base), when the database lacks records of the cycle, leaves them
// for the next Open; so does a Close after Reset whose cycle has no Write
// yet (the file still holds the older cycle).
func TestCloseKeepsRecordsTheDatabaseLacks(t *testing.T) {
	path, j := newCycle(t, 0, recs(1, 3, 30)...)
	closeAt(t, j, 2)
	want := Recovered{Valid: true, Records: recs(1, 3, 30)}
	wantRecovered(t, "Peek", peek(t, path), want)

	j, r := open(t, path)
	wantRecovered(t, "Open", r, want)
	j.Reset(1) // a database at 1: the file keeps 1..3 until a Write
	closeAt(t, j, 1)
	wantRecovered(t, "Peek after Reset and Close", peek(t, path), want)
}

// Close of a journal that never held a cycle writes an empty one.
func TestCloseNewJournal(t *testing.T) {
	path := journalPath(t)
	j, _ := open(t, path)
	closeAt(t, j, 7)
	wantRecovered(t, "Peek", peek(t, path), Recovered{Valid: true, Base: 7})
}

// Peek of a missing file: no cycle, no error; and it creates nothing.
func TestPeekMissingFile(t *testing.T) {
	path := journalPath(t)
	r, err := Peek(path)
	if err != nil || !reflect.DeepEqual(r, Recovered{}) {
		t.Fatalf("Peek = %+v, %v; want Recovered{}, nil", r, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Peek created the file: %v", err)
	}
}

// Peek of a path it cannot read fails.
func TestPeekUnreadable(t *testing.T) {
	if _, err := Peek(t.TempDir()); err == nil {
		t.Fatal("Peek of a directory: no error")
	}
}

func TestRecoveredLast(t *testing.T) {
	for _, c := range []struct {
		r    Recovered
		want int64
	}{
		{Recovered{}, 0},
		{Recovered{Valid: true, Base: 12}, 12},
		{Recovered{Valid: true, Base: 12, Records: recs(13, 13, 1)}, 13},
		{Recovered{Valid: true, Base: 12, Records: recs(13, 15, 1)}, 15},
	} {
		if got := c.r.Last(); got != c.want {
			t.Errorf("%s.Last() = %d, want %d", describe(c.r), got, c.want)
		}
	}
}

// A Write to a closed file fails, without ErrFailed: nothing was synced.
func TestWriteToClosedFileFails(t *testing.T) {
	j, _ := open(t, journalPath(t))
	j.Reset(0)
	j.f.Close()
	err := j.Write(frames(rec(1, 8)))
	if err == nil {
		t.Fatal("a Write to a closed file succeeded")
	}
	if errors.Is(err, ErrFailed) {
		t.Fatalf("a failed write is reported as a failed sync: %v", err)
	}
}

// A failed write is not sticky: the cycle stays as it was, and the next
// Write goes to the same place.
func TestFailedWriteIsNotSticky(t *testing.T) {
	path, j := newCycle(t, 0, recs(1, 2, 8)...)
	used := j.Used()

	good := j.f
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	j.f = ro // WriteAt fails: EBADF
	err = j.Write(frames(rec(3, 8)))
	if err == nil || errors.Is(err, ErrFailed) {
		t.Fatalf("Write on a read-only file = %v; want a write error, not ErrFailed", err)
	}
	if j.Used() != used {
		t.Fatalf("Used %d after a failed write, want %d", j.Used(), used)
	}

	j.f = good
	write(t, j, recs(3, 4, 8)...)
	wantRecovered(t, "Peek", peek(t, path), Recovered{Valid: true, Records: recs(1, 4, 8)})
}

// A failed fdatasync is sticky: that Write and every later one fail with
// ErrFailed, even on a file that would sync, and Close writes nothing.
// The failure is real: fdatasync of /dev/null fails (EINVAL), while its
// WriteAt succeeds.
func TestFailedSyncIsSticky(t *testing.T) {
	path, j := newCycle(t, 0, recs(1, 2, 8)...)

	good := j.f
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	j.f = null
	err = j.Write(frames(rec(3, 8)))
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("Write with a failing fdatasync = %v; want ErrFailed", err)
	}
	if !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("the error %v does not wrap the sync's (EINVAL)", err)
	}

	j.f = good
	if err := j.Write(frames(rec(3, 8))); !errors.Is(err, ErrFailed) {
		t.Fatalf("Write after a failed sync = %v; want ErrFailed", err)
	}
	if err := j.Write(nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("a second Write after a failed sync = %v; want ErrFailed", err)
	}
	want := Recovered{Valid: true, Records: recs(1, 2, 8)}
	wantRecovered(t, "Peek", peek(t, path), want)
	closeAt(t, j, 2)
	// Close wrote no empty cycle: the next process reads what is on disk.
	wantRecovered(t, "Peek after Close", peek(t, path), want)
}

// BUG (journal.go, File.Write, lines 230-232): this test fails on the
// current code. A WriteAt that fails after writing part of its bytes
// returns an error but leaves the whole frames it wrote in the file, right
// after the cycle's end, where every reader takes them: Current (sqlitelog's
// replay), Close's check and the next Open. Write's contract says "A failed
// write leaves the cycle as it was"; the batch is aborted and the writer
// reuses its revisions, so these were never acknowledged. Here
// (RLIMIT_FSIZE makes the kernel cut the write within frame 7, as ENOSPC
// or EIO can) the Write of 5, 6, 7 fails, yet:
//   - Current reads 1..6, not 1..4;
//   - the writer's next batch, another revision 5 of the same size, goes
//     over the old 5, and the cycle reads 1..4, 5', 6: a revision 6 of the
//     failed batch, chained onto a 5 that no longer exists;
//   - Close(5) (the database holds 5') keeps that cycle, and the next Open
//     returns 6 to apply.
//
// A fix that passes every test here: on a failed write of b at j.off,
// write zeros over the n bytes it did write and fdatasync, failing the
// journal (sticky ErrFailed) if that fails too. os.File.WriteAt's n does
// not count the bytes of its last, failed pwrite (0 here), so n must come
// from pwrite itself (f.SyscallConn); zeroing all of len(b) instead would
// make TestFailedWriteIsNotSticky's failure (EBADF) sticky. This test
// accepts either outcome after the failure: later Writes work, or they
// fail with ErrFailed.
func TestFailedPartialWriteLeavesNoFrames(t *testing.T) {
	path, j := newCycle(t, 0, recs(1, 4, 30)...)
	acked := j.Used()
	before := Recovered{Valid: true, Records: recs(1, 4, 30)}

	failed := frames(recs(5, 7, 30)...)
	limit := acked + int64(len(frames(recs(5, 6, 30)...))) + 5 // within frame 7
	err := withFileSizeLimit(t, limit, func() error { return j.Write(failed) })
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Write past RLIMIT_FSIZE = %v; want EFBIG", err)
	}
	if j.Used() != acked {
		t.Fatalf("Used %d after a failed write, want %d", j.Used(), acked)
	}
	cur, err := j.Current()
	if err != nil {
		t.Fatal(err)
	}
	if describe(cur) != describe(before) {
		t.Errorf("after the failed Write of 5..7, the cycle reads %s, want %s: it holds revisions whose Write failed",
			describe(cur), describe(before))
	}

	// The writer's next batch: another revision 5, of the same size.
	again := rec(5, 30)
	again.Rev.Actor = "bobby" // as long as "alice"
	again.Hash = bytes.Repeat([]byte{0x55}, 32)
	err = j.Write(frames(again))
	switch {
	case errors.Is(err, ErrFailed): // the journal refuses: nothing more reaches the file
		closeAt(t, j, 5)
		if got := peek(t, path); describe(got) != describe(before) {
			t.Errorf("after the journal failed, the next Open would read %s, want %s", describe(got), describe(before))
		}
	case err != nil:
		t.Fatalf("Write after a failed write = %v; want nil or ErrFailed", err)
	default:
		want := Recovered{Valid: true, Records: append(recs(1, 4, 30), again)}
		if got := peek(t, path); !reflect.DeepEqual(normalised(got), normalised(want)) {
			t.Errorf("after revision 5 was written again, the cycle reads %s, want %s", describe(got), describe(want))
		}
		closeAt(t, j, 5)
		if got := peek(t, path); describe(got) != describe(Recovered{Valid: true, Base: 5}) {
			t.Errorf("after Close(5), the next Open would read %s, want an empty cycle on top of 5", describe(got))
		}
	}
}

// withFileSizeLimit runs f with the process's RLIMIT_FSIZE at limit bytes:
// a write that crosses it is cut there (the kernel's SIGXFSZ is ignored
// by the Go runtime, and the write fails with EFBIG).
func withFileSizeLimit(t *testing.T, limit int64, f func() error) error {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(limit)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}()
	return f()
}

// Undo takes back every frame of the last Write: a same-size record
// written where the first of them was does not bring the others back.
func TestUndoTakesBackEveryFrame(t *testing.T) {
	path, j := newCycle(t, 0, recs(1, 4, 20)...)
	from := j.Used()
	write(t, j, recs(5, 6, 20)...)
	if err := j.Undo(from); err != nil {
		t.Fatal(err)
	}
	wantRecovered(t, "after Undo", peek(t, path), Recovered{Valid: true, Records: recs(1, 4, 20)})
	write(t, j, rec(5, 20))
	wantRecovered(t, "after a same-size revision 5", peek(t, path), Recovered{Valid: true, Records: recs(1, 5, 20)})
	// Undo of a Write that started the cycle leaves an empty cycle.
	j.Reset(5)
	write(t, j, rec(6, 20))
	if err := j.Undo(0); err != nil {
		t.Fatal(err)
	}
	wantRecovered(t, "after Undo of a cycle's first Write", peek(t, path), Recovered{Valid: true, Base: 5})
	write(t, j, rec(6, 20))
	wantRecovered(t, "after the cycle's next Write", peek(t, path), Recovered{Valid: true, Base: 5, Records: recs(6, 6, 20)})
}
