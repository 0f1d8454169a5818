package engine

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// budget is the executor's working-memory account: chunks reserve their
// estimated need before they start, and every buffer they allocate is
// counted, so a test can check that the budget was never exceeded.
type budget struct {
	limit    int64
	sem      *semaphore.Weighted
	reserved atomic.Int64
	live     atomic.Int64
	peakRes  atomic.Int64
	peakLive atomic.Int64
	pool     sync.Pool // *[]byte, reused buffers
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, sem: semaphore.NewWeighted(limit)}
}

func (b *budget) reserve(ctx context.Context, n int64) error {
	n = min(n, b.limit)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return err
	}
	raiseTo(&b.peakRes, b.reserved.Add(n))
	return nil
}

func (b *budget) release(n int64) {
	n = min(n, b.limit)
	b.reserved.Add(-n)
	b.sem.Release(n)
}

func raiseTo(peak *atomic.Int64, v int64) {
	for {
		p := peak.Load()
		if v <= p || peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// buffer is one allocation of a chunk.
type buffer struct {
	data  []byte
	freed bool
}

// arena allocates a chunk's buffers and frees them stage by stage.
type arena struct {
	b    *budget
	bufs []*buffer
}

func (a *arena) alloc(n int64) *buffer {
	var data []byte
	// Reuse only exact sizes (chunks of one job are alike), so that the
	// account never holds more than the chunk asked for.
	if p, ok := a.b.pool.Get().(*[]byte); ok && int64(cap(*p)) == n {
		data = (*p)[:n]
	} else {
		if ok {
			a.b.pool.Put(p)
		}
		data = make([]byte, n)
	}
	buf := &buffer{data: data}
	a.bufs = append(a.bufs, buf)
	raiseTo(&a.b.peakLive, a.b.live.Add(int64(cap(data))))
	return buf
}

func (a *arena) free(buf *buffer) {
	if buf == nil || buf.freed {
		return
	}
	buf.freed = true
	a.b.live.Add(-int64(cap(buf.data)))
	d := buf.data[:cap(buf.data)]
	a.b.pool.Put(&d)
	buf.data = nil
}

func (a *arena) freeAll() {
	for _, buf := range a.bufs {
		a.free(buf)
	}
	a.bufs = nil
}
