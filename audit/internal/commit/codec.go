package commit

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/configd/configd/audit/record"
)

// A record is encoded (in etcd by package etcdlog, in the journal by
// package journal) as a protocol buffer message, written
// deterministically: fields in number order, scalars that are zero left
// out, a nested message present exactly when its value is (an old or new
// value). The schema, in proto3:
//
//	message Record {            // one revision: what sqlitelog stores of it
//	  int64  rev = 1;  int64 ts = 2;  // Unix nanoseconds, UTC
//	  string actor = 3;  string reason = 4;  string origin = 5;
//	  int64  rollback_to = 6;  int64 num_changes = 7;
//	  repeated Change changes = 8;  repeated LayerChange layer_changes = 9;
//	  bytes  hash = 10;  bytes state = 11;  // chain hash, state digest
//	}
//	message Change { string key = 1; int32 op = 2; KV old = 3; KV new = 4; }
//	message KV { bytes value = 1; string content_type = 2; int64 create_rev = 3;
//	             int64 mod_rev = 4; int64 version = 5; bool secret = 6; }
//	message LayerChange { string layer = 1; string key = 2; Layer old = 3; Layer new = 4; }
//	message Layer { bytes value = 1; string content_type = 2; bool tombstone = 3; bool secret = 4; }
//
// Values are as stored: a secret's ciphertext, never sealed again. The
// decoder is strict: an unknown field, a field out of order or given twice
// (but for the repeated ones), or a truncated message is an error.

// AppendRecord appends rec's encoding to b. A nested message's size is
// computed before it is written (size*), so that it is written in place:
// no buffer per message, nothing allocated when b has room.
func AppendRecord(b []byte, rec *Record) []byte {
	r := &rec.Rev
	b = appendInt(b, 1, r.Rev)
	b = appendInt(b, 2, r.Time.UnixNano())
	b = appendString(b, 3, r.Actor)
	b = appendString(b, 4, r.Reason)
	b = appendString(b, 5, r.Origin)
	b = appendInt(b, 6, r.RollbackTo)
	b = appendInt(b, 7, int64(r.NumChanges))
	for i := range r.Changes {
		c := &r.Changes[i]
		b = appendHead(b, 8, sizeString(1, c.Key)+sizeInt(2, int64(c.Type))+sizeKVField(3, c.Old)+sizeKVField(4, c.New))
		b = appendString(b, 1, c.Key)
		b = appendInt(b, 2, int64(c.Type))
		b = appendKV(b, 3, c.Old)
		b = appendKV(b, 4, c.New)
	}
	for i := range r.LayerChanges {
		lc := &r.LayerChanges[i]
		b = appendHead(b, 9, sizeString(1, lc.Layer)+sizeString(2, lc.Key)+sizeLayerField(3, lc.Old)+sizeLayerField(4, lc.New))
		b = appendString(b, 1, lc.Layer)
		b = appendString(b, 2, lc.Key)
		b = appendLayer(b, 3, lc.Old)
		b = appendLayer(b, 4, lc.New)
	}
	b = appendBytes(b, 10, rec.Hash)
	return appendBytes(b, 11, rec.State)
}

// appendHead appends the tag and length of a present message of size
// bytes (even an empty one), whose fields follow.
func appendHead(b []byte, num protowire.Number, size int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(size))
}

// The sizes of what the append functions of the same name write.

func sizeInt(num protowire.Number, v int64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(uint64(v))
}

func sizeBool(num protowire.Number, v bool) int {
	if !v {
		return 0
	}
	return sizeInt(num, 1)
}

func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func sizeBytes(num protowire.Number, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(v))
}

// sizeField is the size of a present message field of size bytes.
func sizeField(num protowire.Number, size int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(size)
}

func sizeKV(kv *record.KeyValue) int {
	return sizeBytes(1, kv.Value) + sizeString(2, kv.ContentType) + sizeInt(3, kv.CreateRev) +
		sizeInt(4, kv.ModRev) + sizeInt(5, kv.Version) + sizeBool(6, kv.Secret)
}

func sizeKVField(num protowire.Number, kv *record.KeyValue) int {
	if kv == nil {
		return 0
	}
	return sizeField(num, sizeKV(kv))
}

func sizeLayer(v *record.LayerValue) int {
	return sizeBytes(1, v.Value) + sizeString(2, v.ContentType) + sizeBool(3, v.Tombstone) + sizeBool(4, v.Secret)
}

func sizeLayerField(num protowire.Number, v *record.LayerValue) int {
	if v == nil {
		return 0
	}
	return sizeField(num, sizeLayer(v))
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return appendInt(b, num, 1)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendKV(b []byte, num protowire.Number, kv *record.KeyValue) []byte {
	if kv == nil {
		return b
	}
	b = appendHead(b, num, sizeKV(kv))
	b = appendBytes(b, 1, kv.Value)
	b = appendString(b, 2, kv.ContentType)
	b = appendInt(b, 3, kv.CreateRev)
	b = appendInt(b, 4, kv.ModRev)
	b = appendInt(b, 5, kv.Version)
	return appendBool(b, 6, kv.Secret)
}

func appendLayer(b []byte, num protowire.Number, v *record.LayerValue) []byte {
	if v == nil {
		return b
	}
	b = appendHead(b, num, sizeLayer(v))
	b = appendBytes(b, 1, v.Value)
	b = appendString(b, 2, v.ContentType)
	b = appendBool(b, 3, v.Tombstone)
	return appendBool(b, 4, v.Secret)
}

// DecodeRecord decodes a record encoded by AppendRecord.
func DecodeRecord(b []byte) (Record, error) {
	var rec Record
	r := &rec.Rev
	var ts int64
	err := message(b, []protowire.Number{8, 9},
		func(d *field) { r.Rev = d.int() },
		func(d *field) { ts = d.int() },
		func(d *field) { r.Actor = d.string() },
		func(d *field) { r.Reason = d.string() },
		func(d *field) { r.Origin = d.string() },
		func(d *field) { r.RollbackTo = d.int() },
		func(d *field) { r.NumChanges = int(d.int()) },
		func(d *field) { r.Changes = append(r.Changes, decodeChange(d)) },
		func(d *field) { r.LayerChanges = append(r.LayerChanges, decodeLayerChange(d)) },
		func(d *field) { rec.Hash = d.bytes() },
		func(d *field) { rec.State = d.bytes() },
	)
	if err != nil {
		return Record{}, fmt.Errorf("record: %w", err)
	}
	r.Time = time.Unix(0, ts).UTC()
	return rec, nil
}

// decodeChange decodes the Change in field d.
func decodeChange(d *field) record.Change {
	var c record.Change
	d.nested("change",
		func(d *field) { c.Key = d.string() },
		func(d *field) { c.Type = record.OpType(d.int()) },
		func(d *field) { c.Old = decodeKV(d) },
		func(d *field) { c.New = decodeKV(d) },
	)
	for _, kv := range []*record.KeyValue{c.Old, c.New} {
		if kv != nil {
			kv.Key = c.Key
		}
	}
	return c
}

// decodeKV decodes the KV in field d.
func decodeKV(d *field) *record.KeyValue {
	kv := &record.KeyValue{Value: []byte{}}
	d.nested("value",
		func(d *field) { kv.Value = d.bytes() },
		func(d *field) { kv.ContentType = d.string() },
		func(d *field) { kv.CreateRev = d.int() },
		func(d *field) { kv.ModRev = d.int() },
		func(d *field) { kv.Version = d.int() },
		func(d *field) { kv.Secret = d.bool() },
	)
	return kv
}

// decodeLayerChange decodes the LayerChange in field d.
func decodeLayerChange(d *field) record.LayerChange {
	var lc record.LayerChange
	d.nested("layer change",
		func(d *field) { lc.Layer = d.string() },
		func(d *field) { lc.Key = d.string() },
		func(d *field) { lc.Old = decodeLayer(d) },
		func(d *field) { lc.New = decodeLayer(d) },
	)
	return lc
}

// decodeLayer decodes the Layer in field d.
func decodeLayer(d *field) *record.LayerValue {
	v := &record.LayerValue{}
	d.nested("layer value",
		func(d *field) { v.Value = d.bytes() },
		func(d *field) { v.ContentType = d.string() },
		func(d *field) { v.Tombstone = d.bool() },
		func(d *field) { v.Secret = d.bool() },
	)
	if !v.Tombstone && v.Value == nil {
		v.Value = []byte{}
	}
	return v
}

// field is the value of one field being decoded.
type field struct {
	num protowire.Number
	typ protowire.Type
	b   []byte // the message from the field's value on
	n   int    // the value's length, once read
	err error
}

func (d *field) int() int64 {
	if d.typ != protowire.VarintType {
		d.err = fmt.Errorf("field %d: not a varint", d.num)
		return 0
	}
	v, n := protowire.ConsumeVarint(d.b)
	d.n = n
	return int64(v)
}

func (d *field) bool() bool {
	v := d.int()
	if d.err == nil && v != 0 && v != 1 {
		d.err = fmt.Errorf("field %d: not a bool", d.num)
	}
	return v == 1
}

func (d *field) bytes() []byte {
	if d.typ != protowire.BytesType {
		d.err = fmt.Errorf("field %d: not bytes", d.num)
		return nil
	}
	v, n := protowire.ConsumeBytes(d.b)
	d.n = n
	if n < 0 {
		return nil
	}
	return append([]byte{}, v...)
}

func (d *field) string() string { return string(d.bytes()) }

// message decodes message b: setters[n-1] reads field n, and sets the
// field's err when it fails. Fields must come in increasing number order,
// each once, but for the repeated ones; an unknown field is an error.
func message(b []byte, repeated []protowire.Number, setters ...func(*field)) error {
	var last protowire.Number
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num < last || num == last && !isRepeated(num, repeated) {
			return fmt.Errorf("field %d out of order or given twice", num)
		}
		if int(num) > len(setters) {
			return fmt.Errorf("unknown field %d", num)
		}
		last = num
		d := field{num: num, typ: typ, b: b, n: -1}
		if setters[num-1](&d); d.err != nil {
			return d.err
		}
		if d.n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(d.n))
		}
		b = b[d.n:]
	}
	return nil
}

// nested decodes the message that is d's value, a what, with setters (see
// message).
func (d *field) nested(what string, setters ...func(*field)) {
	if d.typ != protowire.BytesType {
		d.err = fmt.Errorf("field %d: not a message", d.num)
		return
	}
	b, n := protowire.ConsumeBytes(d.b)
	if d.n = n; n < 0 {
		return
	}
	if err := message(b, nil, setters...); err != nil {
		d.err = fmt.Errorf("%s: %w", what, err)
	}
}

func isRepeated(num protowire.Number, repeated []protowire.Number) bool {
	for _, r := range repeated {
		if r == num {
			return true
		}
	}
	return false
}
