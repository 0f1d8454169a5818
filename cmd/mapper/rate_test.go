package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/mapper-dev/mapper/engine"
)

// fakeClock is the meter's time source in tests: no test here waits.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

type completion struct {
	at    time.Duration // since the start
	bytes int64
}

// workers simulates w workers converting total bytes in chunks of chunk
// bytes at rate bytes/s in all, each chunk taking its share of time with
// +-jitter, the workers in lockstep when jitter is 0 (every chunk of a
// round completes at the same instant: the burstiest case).
func workers(r *rand.Rand, total, chunk int64, w int, rate, jitter float64) []completion {
	var out []completion
	per := float64(chunk) / (rate / float64(w)) // seconds per chunk per worker
	clock := make([]float64, w)
	for done := int64(0); done < total; {
		i := slices.Index(clock, slices.Min(clock))
		n := min(chunk, total-done)
		clock[i] += per * float64(n) / float64(chunk) * (1 + jitter*(2*r.Float64()-1))
		out = append(out, completion{time.Duration(clock[i] * float64(time.Second)), n})
		done += n
	}
	slices.SortFunc(out, func(a, b completion) int { return int(a.at - b.at) })
	return out
}

// TestRateMeter replays simulated conversions on a fake clock and checks
// that, from a few seconds in, the rate is within 20% of the true one and
// the ETA within 20% of the time really left (while at least a second is).
func TestRateMeter(t *testing.T) {
	const mib = 1 << 20
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name   string
		events []completion
		rate   float64 // bytes/s
		from   time.Duration
		// minLeft: the ETA is checked while at least this much is left;
		// the last chunks' own jitter is more than 20% of a shorter time.
		minLeft time.Duration
	}{
		// The run of the report: 3.2 GiB in 4.2 s on 2 workers.
		{"short, 2 workers", workers(r, 3277*mib, 48*mib, 2, 780*mib, 0.3), 780 * mib, 2 * time.Second, time.Second},
		// 16 workers in lockstep: every round lands at one instant (8
		// whole rounds: a last round with idle workers is slower, which
		// nothing can foresee).
		{"lockstep bursts", workers(r, 3072*mib, 24*mib, 16, 780*mib, 0), 780 * mib, 2 * time.Second, time.Second},
		// 40 minutes at 50 MiB/s, 4 workers each taking 5 s a chunk.
		{"long", workers(r, 120000*mib, 64*mib, 4, 50*mib, 0.2), 50 * mib, 30 * time.Second, 30 * time.Second},
		// 1 worker taking 4 s per 512 MiB chunk.
		{"coarse chunks", workers(r, 20000*mib, 512*mib, 1, 128*mib, 0.2), 128 * mib, 20 * time.Second, 20 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1e9, 0)}
			start := clk.t
			var total int64
			for _, e := range c.events {
				total += e.bytes
			}
			end := c.events[len(c.events)-1].at
			m := newRateMeter(clk.now, total)
			next, checked := 0, 0
			for at := time.Duration(0); at < end; at += 10 * time.Millisecond {
				clk.t = start.Add(at)
				for next < len(c.events) && c.events[next].at <= at {
					m.add(c.events[next].bytes)
					next++
				}
				_, rate, eta, ok := m.figures()
				if at < c.from {
					continue
				}
				if !ok {
					t.Fatalf("at %v: no figures", at)
				}
				if math.Abs(rate-c.rate) > 0.2*c.rate {
					t.Fatalf("at %v: rate %.1f MiB/s, true %.1f MiB/s", at, rate/mib, c.rate/mib)
				}
				if left := end - at; left >= c.minLeft && math.Abs(float64(eta-left)) > 0.2*float64(left) {
					t.Fatalf("at %v: ETA %v, really %v left", at, eta, left)
				}
				checked++
			}
			if checked == 0 {
				t.Fatal("nothing checked")
			}
		})
	}
}

// TestRateMeterWarmup: no figure before a second has passed or while
// nothing has completed; up to a typical gap after the last completion
// counts as work in flight, beyond it the rate falls.
func TestRateMeterWarmup(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	m := newRateMeter(clk.now, 1000)
	clk.t = clk.t.Add(500 * time.Millisecond)
	m.add(100)
	if _, _, _, ok := m.figures(); ok {
		t.Error("figures during the warm-up")
	}
	clk.t = clk.t.Add(500 * time.Millisecond)
	m.add(100)
	clk.t = clk.t.Add(250 * time.Millisecond) // half a gap in flight
	_, rate, eta, ok := m.figures()
	if !ok || rate != 200 || eta != 3750*time.Millisecond {
		t.Errorf("at 1.25 s: rate %v eta %v ok %v, want 200 B/s, 3.75 s", rate, eta, ok)
	}
	clk.t = clk.t.Add(1250 * time.Millisecond) // 2 s after the last completion: 1.5 s of stall
	if _, rate, _, _ := m.figures(); rate != 100 {
		t.Errorf("after a stall: rate %v, want 100 (200 B over 2 s: 2.5 s less one gap in flight)", rate)
	}
	if got := newRateMeter(clk.now, 10).text(); got != "-- MiB/s ETA --" {
		t.Errorf("text without figures: %q", got)
	}
}

// TestProgressJSON: --progress json carries the meter's figures.
func TestProgressJSON(t *testing.T) {
	var b bytes.Buffer
	r, err := newReporter("json", &b)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	r.now = clk.now
	r.event(engine.Event{Kind: engine.EventStart, Total: 4000})
	for range 4 {
		clk.t = clk.t.Add(time.Second)
		r.event(engine.Event{Kind: engine.EventProgress, Tensor: "w", Bytes: 500})
	}
	var last struct {
		Done    int64    `json:"done"`
		Rate    *float64 `json:"bytes_per_second"`
		ETA     *float64 `json:"eta_seconds"`
		Elapsed float64  `json:"elapsed_seconds"`
	}
	lines := bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil {
		t.Fatal(err)
	}
	if last.Done != 2000 || last.Rate == nil || *last.Rate != 500 || last.ETA == nil || *last.ETA != 4 || last.Elapsed != 4 {
		t.Errorf("last progress line %s: want done 2000, 500 B/s, ETA 4 s, 4 s elapsed", lines[len(lines)-1])
	}
}
