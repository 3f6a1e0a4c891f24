package memory_test

import (
	"errors"
	"testing"

	"github.com/configd/configd/source"
	"github.com/configd/configd/source/internal/sourcetest"
	"github.com/configd/configd/source/memory"
)

func TestMemoryFollowsTheContract(t *testing.T) {
	src := memory.New("fake")
	v := source.Value{Data: []byte("db1"), ContentType: source.TypeText}
	src.Set(map[string]source.Value{"db/host": v}) // before Run: emitted when it starts
	r := sourcetest.Run(t, src)
	if u := r.NextSnapshot(); string(u.Snapshot["db/host"].Data) != "db1" || u.Status.Revision != 1 {
		t.Fatalf("first update = %+v", u)
	}
	src.Set(map[string]source.Value{"db/host": v}) // unchanged: not emitted
	src.Fail(errors.New("down"))
	if err := r.NextError(); err.Error() != "down" {
		t.Fatalf("error = %v", err)
	}
	src.Set(nil)
	if u := r.NextSnapshot(); len(u.Snapshot) != 0 || u.Status.State != source.StateOK {
		t.Fatalf("after recovery = %+v", u)
	}
	if src.Name() != "fake" {
		t.Fatal(src.Name())
	}
}
