package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
)

func snapshotMessage(n int) *configdpb.WatchResponse {
	m := &configdpb.WatchResponse{Kind: configdpb.WatchResponse_SNAPSHOT, Rev: 9}
	for i := range n {
		m.Events = append(m.Events, &configdpb.Event{Kv: &configdpb.KeyValue{Key: fmt.Sprintf("k%d", i), Value: bytes.Repeat([]byte("v"), 300)}})
	}
	return m
}

func TestReadSnapshotCountsTheEventsOfTheSnapshotMessage(t *testing.T) {
	var buf bytes.Buffer
	for _, m := range []*configdpb.WatchResponse{{Kind: configdpb.WatchResponse_CREATED, Rev: 9}, snapshotMessage(500)} {
		if _, err := protodelim.MarshalTo(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	// A small buffer, so that messages cross its refills.
	s, err := readSnapshot(bufio.NewReaderSize(&buf, 16), func(r *bufio.Reader) (int64, error) { return readUvarint(r) })
	if err != nil || s.events != 500 {
		t.Fatalf("snapshot of %d events, %v; want 500", s.events, err)
	}
}

func TestReadSnapshotReportsACanceledWatch(t *testing.T) {
	var buf bytes.Buffer
	protodelim.MarshalTo(&buf, &configdpb.WatchResponse{Kind: configdpb.WatchResponse_CANCELED, Error: "no", Code: "forbidden"})
	if _, err := readSnapshot(bufio.NewReader(&buf), func(r *bufio.Reader) (int64, error) { return readUvarint(r) }); err == nil || !strings.Contains(err.Error(), "no") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadSSESnapshotCountsKeysAcrossBufferRefills(t *testing.T) {
	b := api.WatchBatch{Kind: api.WatchSnapshot, Rev: 9}
	for i := range 700 {
		b.Events = append(b.Events, api.WatchEvent{Key: fmt.Sprintf("k%d", i), Op: "put", Value: strings.Repeat("v", i%50)})
	}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	stream := "id: 9\nevent: progress\ndata: {}\n\nid: 9\nevent: snapshot\ndata: " + string(data) + "\n\n"
	for _, size := range []int{16, 17, 23, 4096} {
		s, err := readSSESnapshot(bufio.NewReaderSize(strings.NewReader(stream), size))
		if err != nil || s.events != 700 {
			t.Fatalf("buffer %d: %d keys, %v; want 700", size, s.events, err)
		}
	}
}
