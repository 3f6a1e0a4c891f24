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

// The encoding writes each nested message in place, with the length it
// computed first: it is byte for byte the one written with a buffer per
// message (nested, below), which journals and etcd logs written before
// hold, and it allocates nothing into a buffer with room.
func TestRecordEncodesInPlace(t *testing.T) {
	for name, rec := range map[string]Record{"sample": sampleRecord(), "empty": {}} {
		got := AppendRecord(nil, &rec)
		if want := nested(&rec); !bytes.Equal(got, want) {
			t.Errorf("%s: in place\n%x\nwith a buffer per message\n%x", name, got, want)
		}
		buf := make([]byte, 0, 4096)
		if n := testing.AllocsPerRun(100, func() { buf = AppendRecord(buf[:0], &rec) }); n != 0 {
			t.Errorf("%s: %v allocations an encoding", name, n)
		}
	}
}

// nested encodes rec with a buffer per nested message.
func nested(rec *Record) []byte {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	num := func(b []byte, n protowire.Number, v int64) []byte {
		if v == 0 {
			return b
		}
		return protowire.AppendVarint(tag(b, n, protowire.VarintType), uint64(v))
	}
	boolean := func(b []byte, n protowire.Number, v bool) []byte {
		if !v {
			return b
		}
		return num(b, n, 1)
	}
	bytesF := func(b []byte, n protowire.Number, v []byte) []byte {
		if len(v) == 0 {
			return b
		}
		return protowire.AppendBytes(tag(b, n, protowire.BytesType), v)
	}
	str := func(b []byte, n protowire.Number, s string) []byte { return bytesF(b, n, []byte(s)) }
	msg := func(b []byte, n protowire.Number, m []byte) []byte {
		return protowire.AppendBytes(tag(b, n, protowire.BytesType), m)
	}
	kv := func(b []byte, n protowire.Number, v *record.KeyValue) []byte {
		if v == nil {
			return b
		}
		m := bytesF(nil, 1, v.Value)
		m = str(m, 2, v.ContentType)
		m = num(m, 3, v.CreateRev)
		m = num(m, 4, v.ModRev)
		m = num(m, 5, v.Version)
		return msg(b, n, boolean(m, 6, v.Secret))
	}
	layer := func(b []byte, n protowire.Number, v *record.LayerValue) []byte {
		if v == nil {
			return b
		}
		m := bytesF(nil, 1, v.Value)
		m = str(m, 2, v.ContentType)
		m = boolean(m, 3, v.Tombstone)
		return msg(b, n, boolean(m, 4, v.Secret))
	}
	r := &rec.Rev
	b := num(nil, 1, r.Rev)
	b = num(b, 2, r.Time.UnixNano())
	b = str(b, 3, r.Actor)
	b = str(b, 4, r.Reason)
	b = str(b, 5, r.Origin)
	b = num(b, 6, r.RollbackTo)
	b = num(b, 7, int64(r.NumChanges))
	for _, c := range r.Changes {
		m := str(nil, 1, c.Key)
		m = num(m, 2, int64(c.Type))
		m = kv(m, 3, c.Old)
		b = msg(b, 8, kv(m, 4, c.New))
	}
	for _, lc := range r.LayerChanges {
		m := str(nil, 1, lc.Layer)
		m = str(m, 2, lc.Key)
		m = layer(m, 3, lc.Old)
		b = msg(b, 9, layer(m, 4, lc.New))
	}
	b = bytesF(b, 10, rec.Hash)
	return bytesF(b, 11, rec.State)
}
