package journal

import (
	"io"
	"os"
	"syscall"
)

// fdatasync syncs f's data, and its metadata only where reading the data
// needs it (a size that grew).
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// pwrite writes b at off and returns how many bytes it wrote, also when it
// fails part of the way (os.File.WriteAt does not count the bytes of the
// call that failed).
func pwrite(f *os.File, b []byte, off int64) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	n := 0
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Pwrite(int(fd), b[n:], off+int64(n))
			switch {
			case err == syscall.EINTR:
				continue
			case err != nil:
				werr = &os.PathError{Op: "write", Path: f.Name(), Err: err}
				return true
			case m == 0:
				werr = io.ErrShortWrite
				return true
			}
			n += m
		}
		return true
	}); err != nil {
		return n, err
	}
	return n, werr
}
