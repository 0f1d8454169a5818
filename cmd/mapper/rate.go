package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/mapper-dev/mapper/engine"
)

// rateMeter estimates a conversion's throughput and time left from the
// bytes completed so far. Chunks complete in bursts (several workers at
// once, a large chunk after a long computation, whole-tensor copies), so a
// rate taken between two consecutive reports swings by orders of magnitude
// (what mpb's moving average did with them). The meter instead divides the
// bytes completed over a span that covers at least rateWindow of wall time,
// an eighth of the run so far (counting whole chunks over a few chunk
// durations is off by a chunk per worker) and rateMinBursts completions (the
// whole run until then), and credits the
// work in flight: up to one typical gap between completions after the last
// one is taken as time spent on chunks not yet reported, not as a stall.
// Beyond that the rate falls, as it truly does when nothing completes.
type rateMeter struct {
	now func() time.Time

	mu      sync.Mutex
	start   time.Time
	total   int64
	done    int64
	samples []rateSample // one per burst of completions, oldest first
}

type rateSample struct {
	at   time.Time
	done int64 // bytes completed by then
}

const (
	rateWindow    = 10 * time.Second
	rateMinBursts = 16
	// rateBurst merges completions this close together into one sample:
	// workers finishing a round together are one observation, not many.
	rateBurst = 5 * time.Millisecond
	// rateWarmup is how long the meter stays silent: before it, a run has
	// usually finished too few chunks for any figure to mean much.
	rateWarmup = time.Second
)

func newRateMeter(now func() time.Time, total int64) *rateMeter {
	return &rateMeter{now: now, start: now(), total: total}
}

// add records n more bytes completed.
func (m *rateMeter) add(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done += n
	t := m.now()
	if k := len(m.samples); k > 0 && t.Sub(m.samples[k-1].at) < rateBurst {
		m.samples[k-1] = rateSample{t, m.done}
	} else {
		m.samples = append(m.samples, rateSample{t, m.done})
	}
	if b := m.base(t); b > 0 {
		m.samples = m.samples[b:]
	}
}

// base is the index of the sample the rate is measured from (-1: the
// start): the newest one old enough (see rateMeter) that leaves
// rateMinBursts samples after it.
func (m *rateMeter) base(t time.Time) int {
	window := max(rateWindow, t.Sub(m.start)/8)
	b := -1
	for i, s := range m.samples {
		if s.at.After(t.Add(-window)) {
			break
		}
		b = i
	}
	return min(b, len(m.samples)-1-rateMinBursts)
}

// figures returns the bytes done, the rate in bytes per second and the
// estimated time left; ok is false during the warm-up or while nothing has
// completed.
func (m *rateMeter) figures() (done int64, rate float64, eta time.Duration, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.now()
	if t.Sub(m.start) < rateWarmup || len(m.samples) == 0 {
		return m.done, 0, 0, false
	}
	base, bursts := rateSample{m.start, 0}, len(m.samples)
	if b := m.base(t); b >= 0 {
		base, bursts = m.samples[b], len(m.samples)-1-b
	}
	last := m.samples[len(m.samples)-1]
	gap := last.at.Sub(base.at) / time.Duration(bursts)
	inFlight := min(t.Sub(last.at), gap)
	span := t.Add(-inFlight).Sub(base.at).Seconds()
	if span <= 0 || last.done == base.done {
		return m.done, 0, 0, false
	}
	rate = float64(last.done-base.done) / span
	left := float64(max(m.total-m.done, 0))/rate - inFlight.Seconds()
	return m.done, rate, time.Duration(max(left, 0) * float64(time.Second)), true
}

// text is the rate and time left as the bar and the plain lines show them.
func (m *rateMeter) text() string {
	_, rate, eta, ok := m.figures()
	if !ok {
		return "-- MiB/s ETA --"
	}
	return fmt.Sprintf("%s/s ETA %s", engine.FormatBytes(int64(rate)), eta.Round(time.Second))
}
