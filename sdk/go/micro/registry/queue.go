package registry

import "sync"

// DefaultQueueLimit is how many undelivered events a Queue holds before it ends the watch with
// ErrWatcherOverflow.
const DefaultQueueLimit = 4096

// Queue is a Watcher fed by Push, for implementations to build on. Push never blocks, so a slow
// watcher cannot stall the registry; a watcher that falls more than limit events behind is ended
// with ErrWatcherOverflow instead of losing events silently. Next is for one goroutine at a time.
type Queue struct {
	mu     sync.Mutex
	items  []*Result
	err    error
	limit  int
	ready  chan struct{}
	onStop func()
	once   sync.Once
}

var _ Watcher = (*Queue)(nil)

// NewQueue returns a Queue holding at most limit events (DefaultQueueLimit when limit <= 0).
// onStop, if not nil, runs once when the queue is stopped, to unsubscribe it.
func NewQueue(limit int, onStop func()) *Queue {
	if limit <= 0 {
		limit = DefaultQueueLimit
	}
	return &Queue{limit: limit, ready: make(chan struct{}, 1), onStop: onStop}
}

// Push appends r. It reports false when the queue is closed (stopped or overflowed).
func (q *Queue) Push(r *Result) bool {
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		return false
	}
	if len(q.items) >= q.limit {
		q.items, q.err = nil, ErrWatcherOverflow
		q.mu.Unlock()
		q.signal()
		return false
	}
	q.items = append(q.items, r)
	q.mu.Unlock()
	q.signal()
	return true
}

// Fail ends the queue with err once the events already queued are delivered.
func (q *Queue) Fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	q.signal()
}

// Next implements Watcher.
func (q *Queue) Next() (*Result, error) {
	for {
		q.mu.Lock()
		if q.err == ErrWatcherStopped || q.err == ErrWatcherOverflow {
			err := q.err
			q.mu.Unlock()
			return nil, err
		}
		if len(q.items) > 0 {
			r := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return r, nil
		}
		if q.err != nil {
			err := q.err
			q.mu.Unlock()
			return nil, err
		}
		q.mu.Unlock()
		<-q.ready
	}
}

// Stop implements Watcher.
func (q *Queue) Stop() {
	q.mu.Lock()
	q.items, q.err = nil, ErrWatcherStopped
	q.mu.Unlock()
	q.signal()
	q.once.Do(func() {
		if q.onStop != nil {
			q.onStop()
		}
	})
}

func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
