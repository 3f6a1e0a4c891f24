package commit

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/configd/configd/audit/record"
)

func sampleRecord() Record {
	return Record{
		Rev: record.Revision{
			Rev: 42, Time: time.Unix(1700000000, 123456789).UTC(), Actor: "alice", Reason: "why", Origin: "api",
			RollbackTo: 7, NumChanges: 3,
			Changes: []record.Change{
				{Key: "app/a", Type: record.OpPut, New: &record.KeyValue{Key: "app/a", Value: []byte("1"), ContentType: "text/plain", CreateRev: 42, ModRev: 42, Version: 1}},
				{Key: "app/b", Type: record.OpPut,
					Old: &record.KeyValue{Key: "app/b", Value: []byte{}, ContentType: "text/plain", CreateRev: 3, ModRev: 5, Version: 2},
					New: &record.KeyValue{Key: "app/b", Value: []byte("\x00sealed"), ContentType: "text/plain", CreateRev: 3, ModRev: 42, Version: 3, Secret: true}},
				{Key: "app/c", Type: record.OpDelete, Old: &record.KeyValue{Key: "app/c", Value: []byte("x"), ContentType: "application/json", CreateRev: 1, ModRev: 1, Version: 1}},
			},
			LayerChanges: []record.LayerChange{
				{Layer: "store", Key: "app/a", New: &record.LayerValue{Value: []byte("1"), ContentType: "text/plain"}},
				{Layer: "store", Key: "app/c", Old: &record.LayerValue{Value: []byte("x"), ContentType: "application/json"}, New: &record.LayerValue{Tombstone: true}},
				{Layer: "file", Key: "app/d", Old: &record.LayerValue{Value: []byte{}, ContentType: "text/plain", Secret: true}},
			},
		},
		Hash:  bytes.Repeat([]byte{1}, 32),
		State: bytes.Repeat([]byte{2}, 32),
	}
}

// A record decodes to what was encoded, values as stored (an empty value
// stays an empty value, a tombstone a tombstone), and encodes the same way
// every time.
func TestRecordRoundTrips(t *testing.T) {
	rec := sampleRecord()
	enc := AppendRecord(nil, &rec)
	got, err := DecodeRecord(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rec) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, rec)
	}
	if again := AppendRecord(nil, &got); !bytes.Equal(again, enc) {
		t.Fatal("the decoded record encodes differently")
	}
}

// The decoder refuses what the encoder never writes: unknown fields,
// fields out of order or twice, wrong wire types, truncated messages.
func TestRecordDecoderIsStrict(t *testing.T) {
	rec := sampleRecord()
	enc := AppendRecord(nil, &rec)
	bad := map[string][]byte{
		"truncated":     enc[:len(enc)-3],
		"unknown field": protowire.AppendVarint(protowire.AppendTag(append([]byte{}, enc...), 99, protowire.VarintType), 1),
		"twice":         append(append([]byte{}, enc...), protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 42)...),
		"wrong type":    protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "x"),
		"bad bool":      badBool(),
	}
	for name, b := range bad {
		if _, err := DecodeRecord(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// badBool is a record whose change's old value has secret = 2.
func badBool() []byte {
	kv := protowire.AppendVarint(protowire.AppendTag(nil, 6, protowire.VarintType), 2)
	change := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), kv)
	return protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType), change)
}
