package publish

import (
	"context"
	"errors"
	"testing"

	"github.com/configd/configd/source"
)

func snap(kv ...string) map[string]source.Value {
	m := map[string]source.Value{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = source.Value{Data: []byte(kv[i+1]), ContentType: source.TypeText}
	}
	return m
}

func TestPublisherContract(t *testing.T) {
	p := New()
	var got []source.Update
	if _, _, err := p.Start(context.Background(), func(u source.Update) { got = append(got, u) }); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.State != source.StateStarting {
		t.Fatalf("state before any update = %s", st.State)
	}
	p.Snapshot(snap("a", "1"), nil, 1)
	p.Snapshot(snap("a", "1"), nil, 2) // same: not sent
	p.Error(errors.New("down"))
	p.Error(errors.New("down")) // same error: not sent
	p.Error(errors.New("still down, differently"))
	p.Snapshot(snap("a", "1"), nil, 3)                                          // same as before the errors: sent, to say healthy
	p.Snapshot(snap("a", "1"), []source.Warning{{Where: "k", Problem: "p"}}, 4) // new warnings: sent
	p.Synced(5)

	if len(got) != 5 {
		t.Fatalf("%d updates, want 5: %+v", len(got), got)
	}
	if got[1].Err == nil || got[1].Snapshot != nil || got[1].Status.State != source.StateDegraded {
		t.Fatalf("update 2 = %+v, want an error", got[1])
	}
	if got[3].Err != nil || got[3].Status.State != source.StateOK || got[3].Status.LastError == "" {
		t.Fatalf("update 4 = %+v, want the recovery snapshot, keeping the last error", got[3])
	}
	st := p.Status()
	if st.Revision != 5 || st.Warnings != 1 || st.Keys != 1 {
		t.Fatalf("status = %+v", st)
	}
	if _, _, err := p.Start(context.Background(), nil); !errors.Is(err, source.ErrRunning) {
		t.Fatalf("second Start: %v", err)
	}
	p.Close()
	p.Error(errors.New("after close"))
	if len(got) != 5 || p.Status().State != source.StateClosed {
		t.Fatalf("after Close: %d updates, state %s", len(got), p.Status().State)
	}
}
