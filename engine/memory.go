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
//
// Freed buffers are kept for reuse, by exact size (the chunks of one job
// are alike), so that a conversion does not fault in fresh pages for every
// chunk; live and idle buffers together never pass the limit (idle ones are
// dropped first), so the process's buffer memory stays within the budget.
// Large buffers are mapped outside the Go heap (see allocBuffer): dropping
// one returns its pages to the system at once, and the garbage collector
// never lets dead ones pile up beside the live.
type budget struct {
	limit    int64
	sem      *semaphore.Weighted
	reserved atomic.Int64
	live     atomic.Int64
	peakRes  atomic.Int64
	peakLive atomic.Int64

	mu        sync.Mutex
	idle      map[int64][][]byte // freed buffers by length
	idleBytes int64

	// compute, when set, limits how many chunks run their stages at once
	// (the executor's workers); a chunk gives its slot back before it
	// writes, so that another can compute while it waits for the disk.
	compute *semaphore.Weighted
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, sem: semaphore.NewWeighted(limit), idle: map[int64][][]byte{}}
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

// enterCompute waits for a compute slot and returns the function that
// gives it back (once, however often it is called).
func (b *budget) enterCompute() (leave func()) {
	if b.compute == nil {
		return func() {}
	}
	_ = b.compute.Acquire(context.Background(), 1) // cannot fail without a deadline
	left := false
	return func() {
		if !left {
			left = true
			b.compute.Release(1)
		}
	}
}

// get returns a buffer of n bytes, reused when one of that size is idle.
// Its content is whatever the last user left: every kernel writes all of
// its output.
func (b *budget) get(n int64) []byte {
	b.mu.Lock()
	if l := b.idle[n]; len(l) > 0 {
		data := l[len(l)-1]
		b.idle[n] = l[:len(l)-1]
		b.idleBytes -= n
		b.mu.Unlock()
		return data
	}
	// Drop idle buffers of other sizes until the new one fits beside the
	// live ones.
	var drop [][]byte
	for size, l := range b.idle {
		if b.idleBytes == 0 || b.live.Load()+b.idleBytes+n <= b.limit {
			break
		}
		for len(l) > 0 && b.live.Load()+b.idleBytes+n > b.limit {
			drop = append(drop, l[len(l)-1])
			l = l[:len(l)-1]
			b.idleBytes -= size
		}
		b.idle[size] = l
	}
	b.mu.Unlock()
	for _, d := range drop {
		freeBuffer(d)
	}
	return allocBuffer(n)
}

// put keeps a freed buffer for reuse.
func (b *budget) put(data []byte) {
	b.mu.Lock()
	n := int64(len(data))
	b.idle[n] = append(b.idle[n], data)
	b.idleBytes += n
	b.mu.Unlock()
}

// close drops every idle buffer; the budget stays usable.
func (b *budget) close() {
	b.mu.Lock()
	idle := b.idle
	b.idle, b.idleBytes = map[int64][][]byte{}, 0
	b.mu.Unlock()
	for _, l := range idle {
		for _, d := range l {
			freeBuffer(d)
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
	buf := &buffer{data: a.b.get(n)}
	a.bufs = append(a.bufs, buf)
	raiseTo(&a.b.peakLive, a.b.live.Add(n))
	return buf
}

func (a *arena) free(buf *buffer) {
	if buf == nil || buf.freed {
		return
	}
	buf.freed = true
	a.b.live.Add(-int64(len(buf.data)))
	a.b.put(buf.data)
	buf.data = nil
}

func (a *arena) freeAll() {
	for _, buf := range a.bufs {
		a.free(buf)
	}
	a.bufs = nil
}
