// Package journal is the durability of a store on SQLite alone: an
// append-only file of the records of its batches (commit.Record, encoded
// by commit.AppendRecord). A batch is acknowledged once its records are
// written with one write and synced with one fdatasync; package sqlitelog
// applies them to the database in the same SQLite transaction as the
// batches before and after it, and commits that transaction (fsync'd) now
// and then, which amortizes the b-tree pages that many batches touch.
//
// The file is a sequence of cycles, each overwriting the one before from
// offset 0. A cycle starts when the database holds every record of the
// previous one (Reset): a header naming its base revision, then frames,
// one per record, whose revisions follow base without a gap:
//
//	header: "CFGDJNL1" | base int64 | crc32c(magic, base) uint32   (little endian)
//	frame:  len uint32 | crc32c(payload) uint32 | payload (len bytes)
//
// Reading stops at the first frame that is not whole, whose checksum fails
// or whose revision does not follow: what a write cut short or an older
// cycle left there. The file is preallocated with zeros (Open), so that
// an fdatasync within it writes data, not metadata.
//
// A failed fdatasync is sticky: the kernel may have dropped the pages it
// could not write and report success next time, so the journal refuses
// every later write (ErrFailed) until the process starts again and reads
// what is really on disk.
package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/internal/sqlitedb"
)

const (
	magic      = "CFGDJNL1"
	headerSize = len(magic) + 8 + 4
	frameHead  = 8
	// DefaultSize is the size the file is preallocated to: a cycle holds
	// the batches made durable between two settles (at most
	// commit.DefaultMaxUnsettled, 250 ms: about 1 MiB at 10,000 small
	// writes a second; the writer settles early once a cycle holds half
	// the file), and grows the file beyond it when it must.
	DefaultSize = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrFailed: an earlier write or sync of the journal failed; nothing more
// is written until the process restarts.
var ErrFailed = errors.New("audit: the journal failed to sync earlier; restart configd to recover from it")

// File is an open journal. Its methods are called from one goroutine (the
// store's writer).
type File struct {
	f      *os.File
	path   string
	size   int64 // preallocated size
	off    int64 // where the next write goes; 0: the cycle's header first
	base   int64 // the cycle's base revision
	buf    []byte
	failed error
}

// Recovered is what Open read from the journal's current cycle: its base
// revision and its records, in order, base+1 first. Valid is false when
// the file held no cycle (new, or a header cut short).
type Recovered struct {
	Valid   bool
	Base    int64
	Records []commit.Record
}

// Last returns the newest revision that r holds: Base when it has no
// records.
func (r Recovered) Last() int64 {
	if n := len(r.Records); n > 0 {
		return r.Records[n-1].Rev.Rev
	}
	return r.Base
}

// Open opens (creating it 0600 if needed) the journal at path, reads its
// current cycle, and preallocates the file to size bytes (DefaultSize when
// size is 0).
func Open(path string, size int64) (*File, Recovered, error) {
	if size <= 0 {
		size = DefaultSize
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, Recovered{}, fmt.Errorf("audit: open the journal: %w", err)
	}
	j := &File{f: f, path: path, size: size}
	rec, err := j.read()
	if err == nil {
		err = j.preallocate()
	}
	if err != nil {
		f.Close()
		return nil, Recovered{}, err
	}
	return j, rec, nil
}

// Peek reads the current cycle of the journal at path without writing
// anything; a missing file holds no cycle.
func Peek(path string) (Recovered, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Recovered{}, nil
	}
	if err != nil {
		return Recovered{}, fmt.Errorf("audit: open the journal: %w", err)
	}
	defer f.Close()
	return (&File{f: f, path: path}).read()
}

// Current reads the current cycle from the file again.
func (j *File) Current() (Recovered, error) { return j.read() }

// read reads the current cycle.
func (j *File) read() (Recovered, error) {
	data, err := io.ReadAll(io.NewSectionReader(j.f, 0, 1<<62))
	if err != nil {
		return Recovered{}, fmt.Errorf("audit: read the journal %s: %w", j.path, err)
	}
	if len(data) < headerSize || string(data[:len(magic)]) != magic ||
		crc32.Checksum(data[:headerSize-4], castagnoli) != binary.LittleEndian.Uint32(data[headerSize-4:]) {
		return Recovered{}, nil
	}
	out := Recovered{Valid: true, Base: int64(binary.LittleEndian.Uint64(data[len(magic):]))}
	next := out.Base + 1
	for p := data[headerSize:]; len(p) >= frameHead; {
		size := uint64(binary.LittleEndian.Uint32(p)) // as uint64: no negative int on 32 bits
		if size == 0 || size > uint64(len(p)-frameHead) {
			break
		}
		n := int(size)
		payload := p[frameHead : frameHead+n]
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(p[4:]) {
			break
		}
		rec, err := commit.DecodeRecord(payload)
		if err != nil || rec.Rev.Rev != next {
			break
		}
		out.Records = append(out.Records, rec)
		next++
		p = p[frameHead+n:]
	}
	return out, nil
}

// preallocate fills the file with zeros up to its size and syncs it and
// its directory, once. On a disk without room for it, the file stays as
// it was, and its size is what it holds (Full then asks for a Settle
// after every batch: a full disk's store commits each batch to SQLite).
func (j *File) preallocate() error {
	fi, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("audit: journal: %w", err)
	}
	if fi.Size() >= j.size {
		return nil
	}
	zeros := make([]byte, 1<<20)
	for off := fi.Size(); off < j.size; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), j.size-off)
		if _, err := j.f.WriteAt(zeros[:n], off); err != nil {
			if terr := j.f.Truncate(fi.Size()); terr != nil {
				return fmt.Errorf("audit: preallocate the journal: %w (and truncate it back: %w)", err, terr)
			}
			j.size = fi.Size()
			return nil
		}
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("audit: preallocate the journal: %w", err)
	}
	return syncDir(filepath.Dir(j.path))
}

func syncDir(dir string) error {
	if err := sqlitedb.SyncDir(dir); err != nil {
		return fmt.Errorf("audit: journal: %w", err)
	}
	return nil
}

// AppendFrame appends rec's frame to b.
func AppendFrame(b []byte, rec *commit.Record) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHead)...)
	b = commit.AppendRecord(b, rec)
	payload := b[start+frameHead:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// Reset starts a new cycle on top of base, the newest revision the
// database holds: the next Write goes to offset 0, after a header naming
// base.
func (j *File) Reset(base int64) { j.off, j.base = 0, base }

// Used returns how many bytes the current cycle holds.
func (j *File) Used() int64 { return j.off }

// Size returns the size the file is preallocated to.
func (j *File) Size() int64 { return j.size }

// Write appends frames (AppendFrame's, of the records that follow the
// cycle's last one) to the cycle with one write, and syncs them: when it
// returns nil they survive a crash. A failed write leaves the cycle as it
// was (the next Write goes to the same place); a failed sync fails this
// and every later Write (ErrFailed).
func (j *File) Write(frames []byte) error {
	if j.failed != nil {
		return j.failed
	}
	b := j.buf[:0]
	if j.off == 0 {
		b = append(b, magic...)
		b = binary.LittleEndian.AppendUint64(b, uint64(j.base))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	b = append(b, frames...)
	j.buf = b
	if n, err := pwrite(j.f, b, j.off); err != nil {
		// Frames written whole before the failure would be read:
		// zero what was written, durably, or write nothing more.
		if zerr := j.zero(j.off, j.off+int64(n)); zerr != nil {
			j.failed = fmt.Errorf("%w: take back a write cut short: %w", ErrFailed, zerr)
		}
		return fmt.Errorf("audit: write the journal: %w", err)
	}
	if err := fdatasync(j.f); err != nil {
		j.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		return j.failed
	}
	j.off += int64(len(b))
	if cap(j.buf) > 4<<20 {
		j.buf = nil // a large batch's buffer is not kept
	}
	return nil
}

// Undo takes back the frames of the last Write, which began at offset
// from (Used before it): it zeroes them and syncs, so that reading stops before them; the next Write goes there. A
// Write that started the cycle (from 0) leaves its header: an empty
// cycle. When Undo fails, the frames may be read at the next Open, and
// the journal fails every later Write (ErrFailed).
func (j *File) Undo(from int64) error {
	if j.failed != nil {
		return j.failed
	}
	if err := j.zero(max(from, int64(headerSize)), j.off); err != nil {
		j.failed = fmt.Errorf("%w: take back a failed batch: %w", ErrFailed, err)
		return j.failed
	}
	if from > 0 {
		j.off = from
	} else {
		j.off = int64(headerSize)
	}
	return nil
}

// zero overwrites the bytes from..to with zeros and syncs them (nothing
// to do when the range is empty).
func (j *File) zero(from, to int64) error {
	if to <= from {
		return nil
	}
	if _, err := pwrite(j.f, make([]byte, to-from), from); err != nil {
		return err
	}
	return fdatasync(j.f)
}

// Close closes the file. When the database holds every record of the
// cycle (base, its newest revision, is at least the cycle's last), it
// first writes an empty cycle on top of base, so that a later Open finds
// nothing to apply; records the database lacks stay for the next Open.
func (j *File) Close(base int64) error {
	var err error
	if rec, rerr := j.read(); j.failed == nil && rerr == nil && rec.Last() <= base {
		j.Reset(base)
		err = j.Write(nil)
	}
	return errors.Join(err, j.f.Close())
}
