package journal

import (
	"os"

	"syscall"
)

// fdatasync syncs f's data, and its metadata only where reading the data
// needs it (a size that grew).
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
