package source

import (
	"strings"
	"testing"
)

func TestBuilderRefusesKeysTooLongOnceMounted(t *testing.T) {
	mount := strings.Repeat("m", 300) + "/"
	b := NewBuilder(mount, 4)
	key := strings.Repeat("k", 300) // valid alone, 601 bytes once mounted
	if b.Add("src", key, Value{Data: []byte("v")}) {
		t.Fatal("Add took a key that is too long once mounted")
	}
	if b.Add("src", "big", Value{Data: []byte("12345")}) {
		t.Fatal("Add took a value over the size limit")
	}
	if !b.Add("src", "ok", Value{Data: []byte("1234")}) {
		t.Fatal("Add refused a value at the size limit")
	}
	snap, w := b.Result()
	if len(snap) != 1 || len(w) != 2 {
		t.Fatalf("snapshot %v, warnings %v; want 1 key, 2 warnings", snap, w)
	}
}
