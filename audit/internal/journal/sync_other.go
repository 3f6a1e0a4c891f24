//go:build !linux

package journal

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

// pwrite writes b at off. What a failed write wrote is not known here: it
// counts as all of b, which the caller zeroes.
func pwrite(f *os.File, b []byte, off int64) (int, error) {
	n, err := f.WriteAt(b, off)
	if err != nil {
		n = len(b)
	}
	return n, err
}
