package engine

import "testing"

// TestBudgetReuse: freed buffers are reused by exact size, and live plus
// idle buffers never pass the limit (idle ones are dropped first).
func TestBudgetReuse(t *testing.T) {
	const mib = 1 << 20
	b := newBudget(8 * mib)
	defer b.close()
	a := &arena{b: b}
	x := a.alloc(2 * mib) // mapped (>= mmapMin)
	x.data[0] = 7
	first := &x.data[0]
	a.free(x)
	y := a.alloc(2 * mib)
	if &y.data[0] != first {
		t.Error("a freed buffer of the same size was not reused")
	}
	a.free(y)
	// 2 MiB idle; 3 MiB + 3 MiB live; a 1 MiB buffer fits beside them
	// only once the idle 2 MiB is dropped.
	p, q := a.alloc(3*mib), a.alloc(3*mib)
	r := a.alloc(mib)
	if live, idle := b.live.Load(), b.idleBytes; live+idle > 8*mib {
		t.Errorf("live %d + idle %d bytes, over the 8 MiB limit", live, idle)
	}
	a.freeAll()
	_, _, _ = p, q, r
	if b.live.Load() != 0 || b.idleBytes != 7*mib {
		t.Errorf("after freeAll: live %d, idle %d", b.live.Load(), b.idleBytes)
	}
	b.close()
	if b.idleBytes != 0 || len(b.idle) != 0 {
		t.Errorf("after close: %d idle bytes", b.idleBytes)
	}
}

// TestBudgetHeldBesideIdle: what a starting chunk holds outside its buffers
// (mapped input, a write buffer) takes the place of idle buffers: they are
// dropped until live, idle and outside bytes fit the limit together. Idle
// buffers counted only beside live ones let a 235 MB concatenation read from
// the mapping come on top of an idle 117 MB transpose buffer: 356 MiB of RSS
// for a 256 MiB budget.
func TestBudgetHeldBesideIdle(t *testing.T) {
	const mib = 1 << 20
	b := newBudget(8 * mib)
	defer b.close()
	a := &arena{b: b}
	if err := b.reserve(t.Context(), 5*mib, 0); err != nil {
		t.Fatal(err)
	}
	a.free(a.alloc(5 * mib))
	b.release(5*mib, 0)
	if b.idleBytes != 5*mib {
		t.Fatalf("%d idle bytes, want the freed 5 MiB", b.idleBytes)
	}
	// A chunk that reads 6 MiB of mapped input and allocates nothing.
	if err := b.reserve(t.Context(), 0, 6*mib); err != nil {
		t.Fatal(err)
	}
	if b.idleBytes != 0 {
		t.Errorf("%d idle bytes kept beside 6 MiB held outside, limit 8 MiB", b.idleBytes)
	}
	// A buffer beside it: 2 MiB fit.
	a.alloc(2 * mib)
	if held := b.held(); held != 8*mib {
		t.Errorf("held %d bytes at most, want 8 MiB (5 MiB buffer, then 6 MiB outside and 2 MiB live)", held)
	}
	a.freeAll()
	b.release(0, 6*mib)
	if b.outside != 0 || b.live.Load() != 0 {
		t.Errorf("after the chunk: %d bytes outside, %d live", b.outside, b.live.Load())
	}
}
