package httpapi

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/server/watchwire"
)

func TestFrameWriterKeepsOrderAndCopiesOnlySmallFrames(t *testing.T) {
	small := []byte("small shared")
	large := make([]byte, maxCopiedFrame+1)
	for i := range large {
		large[i] = byte(i)
	}
	progress := &configdpb.WatchResponse{Kind: configdpb.WatchResponse_PROGRESS, Rev: 3}
	var f frameWriter
	f.add(progress)
	f.addShared(small)
	f.addShared(large)
	f.add(progress)
	f.addShared(large)
	f.addShared(small)
	want := watchwire.AppendFrame(nil, progress)
	want = append(append(append(want, small...), large...), watchwire.AppendFrame(nil, progress)...)
	want = append(append(want, large...), small...)
	bufs := f.buffers()
	if f.size != len(want) {
		t.Fatalf("size %d, want %d", f.size, len(want))
	}
	for _, b := range bufs {
		if len(b) == len(large) && &b[0] != &large[0] {
			t.Fatal("a large shared frame was copied")
		}
	}
	var got bytes.Buffer
	if _, err := bufs.WriteTo(&got); err != nil || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("wrote %d bytes (%v), want %d in order", got.Len(), err, len(want))
	}
}

func TestSplitBuffersCutsAtMostNBytesInOrder(t *testing.T) {
	bufs := net.Buffers{[]byte("abc"), []byte("defghij"), nil, []byte("k"), []byte("lmnopqrstu")}
	var got []string
	for rest := bufs; len(rest) > 0; {
		var head net.Buffers
		head, rest = splitBuffers(rest, 4)
		var b bytes.Buffer
		head.WriteTo(&b)
		got = append(got, b.String())
	}
	if want := "abcd efgh ijkl mnop qrst u"; strings.Join(got, " ") != want {
		t.Fatalf("chunks %q, want %q", got, want)
	}
}
