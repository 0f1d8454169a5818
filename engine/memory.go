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
// A chunk's reservation covers its working memory (the buffers it
// allocates, live) and what it holds outside them (outside): the mapped
// input pages it makes resident and the buffer its writes go through.
//
// Freed buffers are kept for reuse, by exact size (the chunks of one job
// are alike), so that a conversion does not fault in fresh pages for every
// chunk. Live and idle buffers and what running chunks hold outside them
// together never pass the limit: idle buffers are dropped first, when a
// buffer is allocated and when a chunk starts (a chunk's mapped input must
// not come on top of idle buffers). So the memory the executor holds stays
// within the budget.
// Large buffers are mapped outside the Go heap (see allocBuffer): dropping
// one returns its pages to the system at once, and the garbage collector
// never lets dead ones pile up beside the live.
type budget struct {
	limit    int64
	sem      *semaphore.Weighted
	reserved atomic.Int64
	live     atomic.Int64 // changed under mu
	peakRes  atomic.Int64
	peakLive atomic.Int64

	mu        sync.Mutex
	idle      map[int64][][]byte // freed buffers by length
	idleBytes int64
	outside   int64 // held by running chunks beside their buffers
	peakHeld  int64 // the most of live + idleBytes + outside

	// compute, when set, limits how many chunks run their stages at once
	// (the executor's workers); a chunk gives its slot back before it
	// writes, so that another can compute while it waits for the disk.
	compute *semaphore.Weighted
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, sem: semaphore.NewWeighted(limit), idle: map[int64][][]byte{}}
}

// reserve waits until working bytes of buffers and outside bytes held
// beside them fit the budget, and takes them. A need over the whole budget
// takes all of it: the plan refuses chunks that cannot fit, and a copy's
// buffer fits any budget the command accepts, so only tests of tiny
// budgets see this.
func (b *budget) reserve(ctx context.Context, working, outside int64) error {
	n := min(satAdd(working, outside), b.limit)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return err
	}
	raiseTo(&b.peakRes, b.reserved.Add(n))
	b.mu.Lock()
	b.outside += outside
	drop := b.trimIdle(0)
	b.noteHeld()
	b.mu.Unlock()
	freeAll(drop)
	return nil
}

func (b *budget) release(working, outside int64) {
	n := min(satAdd(working, outside), b.limit)
	b.mu.Lock()
	b.outside -= outside
	b.mu.Unlock()
	b.reserved.Add(-n)
	b.sem.Release(n)
}

// trimIdle takes idle buffers off the account until extra more bytes fit
// beside the rest, and returns them for the caller to free once the lock
// is released. b.mu is held.
func (b *budget) trimIdle(extra int64) [][]byte {
	var drop [][]byte
	for size, l := range b.idle {
		if b.idleBytes == 0 || b.live.Load()+b.idleBytes+b.outside+extra <= b.limit {
			break
		}
		for len(l) > 0 && b.live.Load()+b.idleBytes+b.outside+extra > b.limit {
			drop = append(drop, l[len(l)-1])
			l = l[:len(l)-1]
			b.idleBytes -= size
		}
		b.idle[size] = l
	}
	return drop
}

// noteHeld records the memory held now. b.mu is held.
func (b *budget) noteHeld() {
	b.peakHeld = max(b.peakHeld, b.live.Load()+b.idleBytes+b.outside)
}

// held reports the most memory the account held at once: live and idle
// buffers, and what running chunks held beside them.
func (b *budget) held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peakHeld
}

func freeAll(bufs [][]byte) {
	for _, d := range bufs {
		freeBuffer(d)
	}
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

// get returns a live buffer of n bytes, reused when one of that size is
// idle. Its content is whatever the last user left: every kernel writes all
// of its output.
func (b *budget) get(n int64) []byte {
	b.mu.Lock()
	if l := b.idle[n]; len(l) > 0 {
		data := l[len(l)-1]
		b.idle[n] = l[:len(l)-1]
		b.idleBytes -= n
		raiseTo(&b.peakLive, b.live.Add(n))
		b.mu.Unlock()
		return data
	}
	// Drop idle buffers of other sizes until the new one fits.
	drop := b.trimIdle(n)
	raiseTo(&b.peakLive, b.live.Add(n))
	b.noteHeld()
	b.mu.Unlock()
	freeAll(drop)
	return allocBuffer(n)
}

// put takes a buffer off the live ones and keeps it for reuse.
func (b *budget) put(data []byte) {
	b.mu.Lock()
	n := int64(len(data))
	b.live.Add(-n)
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
		freeAll(l)
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
	return buf
}

func (a *arena) free(buf *buffer) {
	if buf == nil || buf.freed {
		return
	}
	buf.freed = true
	a.b.put(buf.data)
	buf.data = nil
}

func (a *arena) freeAll() {
	for _, buf := range a.bufs {
		a.free(buf)
	}
	a.bufs = nil
}
