package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/configd/configd/internal/syncbuf"
)

// TestBufferTakesConcurrentWrites: writes from many goroutines all land, whole, while String
// is read (go test -race sees no race).
func TestBufferTakesConcurrentWrites(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("line\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "line\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}
