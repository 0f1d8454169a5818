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
