package commit

import (
	"testing"
	"time"
)

// take gathers a batch: without a deadline only what is queued already,
// with one also what comes before it fires; never more than asked, and
// never past a request that must run alone.
func TestTakeGathersABatch(t *testing.T) {
	txn := func() revisionRequest { return &txnRequest{} }
	w := &Writer{queue: make(chan request, 8)}

	w.queue <- txn()
	w.queue <- txn()
	w.queue <- txn()
	batch := []revisionRequest{txn()}
	if alone := w.take(&batch, 3, nil); alone != nil || len(batch) != 3 || len(w.queue) != 1 {
		t.Fatalf("up to 3: batch of %d, %d left queued, alone %v; want 3, 1 and none", len(batch), len(w.queue), alone)
	}
	if alone := w.take(&batch, 8, nil); alone != nil || len(batch) != 4 {
		t.Fatalf("what is queued: batch of %d, alone %v; want 4 and none", len(batch), alone)
	}

	a := &aloneRequest{}
	w.queue <- txn()
	w.queue <- a
	w.queue <- txn()
	batch = batch[:1]
	if alone := w.take(&batch, 8, nil); alone != a || len(batch) != 2 || len(w.queue) != 1 {
		t.Fatalf("before work alone: batch of %d, alone %v, %d left queued; want 2, the alone one and 1", len(batch), alone, len(w.queue))
	}
	<-w.queue

	// With a deadline, requests sent after take began are taken (the
	// queue is unbuffered here: each send returns once take has it); take
	// returns when the deadline fires.
	w.queue = make(chan request)
	until := make(chan time.Time)
	done := make(chan *aloneRequest)
	batch = batch[:1]
	go func() { done <- w.take(&batch, 4, until) }()
	w.queue <- txn()
	w.queue <- txn()
	close(until)
	if alone := <-done; alone != nil || len(batch) != 3 {
		t.Fatalf("until the deadline: batch of %d, alone %v; want 3 and none", len(batch), alone)
	}
	w.queue = make(chan request, 8)

	// Up to the count, without waiting for the deadline.
	w.queue <- txn()
	if alone := w.take(&batch, 4, make(chan time.Time)); alone != nil || len(batch) != 4 {
		t.Fatalf("up to 4 with a deadline: batch of %d, alone %v", len(batch), alone)
	}

	close(w.queue)
	if alone := w.take(&batch, 8, make(chan time.Time)); alone != nil || len(batch) != 4 {
		t.Fatalf("a closed queue: batch of %d, alone %v; want 4 and none", len(batch), alone)
	}
}

// Only a lone request lingers, only between larger batches, and only on a
// log of its own: a replica's batches wait for etcd, not a local sync.
func TestLingersOnlyAloneBetweenLargerBatches(t *testing.T) {
	w := &Writer{avgBatch: 1}
	if w.lingers(1) {
		t.Error("a lone writer (batches of one) lingers")
	}
	w.avgBatch = 6
	if !w.lingers(1) {
		t.Error("a lone request between batches of six does not linger")
	}
	if w.lingers(2) {
		t.Error("a batch of two lingers")
	}
	w.replica = struct{ Replicated }{}
	if w.lingers(1) {
		t.Error("a replica lingers")
	}
}
