package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/runtime/quote"
)

// reporter renders engine events: a byte bar with rate and ETA on a
// terminal, a line every few seconds otherwise, or JSON lines. The rate and
// ETA are the rateMeter's in every mode.
type reporter struct {
	mode  string
	w     io.Writer
	now   func() time.Time
	mu    sync.Mutex
	bar   *mpb.Bar
	prog  *mpb.Progress
	meter *rateMeter
	last  time.Time
	enc   *json.Encoder
}

func newReporter(mode string, w io.Writer) (*reporter, error) {
	r := &reporter{mode: mode, w: w, now: time.Now}
	switch mode {
	case "auto":
		r.mode = "plain"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			r.mode = "bar"
		}
	case "bar", "plain", "none":
	case "json":
		r.enc = json.NewEncoder(quote.JSONWriter(w))
	default:
		return nil, fmt.Errorf("--progress %q: want auto, bar, plain, json or none", mode)
	}
	return r, nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func (r *reporter) event(e engine.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Kind {
	case engine.EventStart:
		r.meter = newRateMeter(r.now, e.Total)
		r.last = r.now()
	case engine.EventProgress:
		if r.meter != nil {
			r.meter.add(e.Bytes)
		}
	}
	switch r.mode {
	case "json":
		r.json(e)
	case "bar":
		switch e.Kind {
		case engine.EventStart:
			r.prog = mpb.New(mpb.WithOutput(r.w), mpb.WithWidth(40))
			r.bar = r.prog.AddBar(max(e.Total, 1),
				mpb.PrependDecorators(decor.Name("converting "), decor.CountersKibiByte("% .1f / % .1f")),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return r.meter.text() })))
		case engine.EventProgress:
			if r.bar != nil {
				r.bar.IncrInt64(e.Bytes)
			}
		}
	case "plain":
		switch e.Kind {
		case engine.EventStart:
			fmt.Fprintf(r.w, "converting %s\n", engine.FormatBytes(e.Total))
		case engine.EventProgress:
			if now := r.now(); now.Sub(r.last) > 2*time.Second {
				r.last = now
				done, _, _, _ := r.meter.figures()
				fmt.Fprintf(r.w, "%s / %s (%.0f%%) %s\n", engine.FormatBytes(done), engine.FormatBytes(r.meter.total),
					100*float64(done)/float64(max(r.meter.total, 1)), r.meter.text())
			}
		case engine.EventPhase:
			fmt.Fprintf(r.w, "%s\n", e.Phase)
		}
	}
}

// json writes one event as a JSON line; progress events carry the bytes
// done so far and, once the meter has a figure, the rate and time left.
func (r *reporter) json(e engine.Event) {
	line := struct {
		Event   string   `json:"event"`
		Tensor  string   `json:"tensor,omitempty"`
		Phase   string   `json:"phase,omitempty"`
		Bytes   int64    `json:"bytes,omitempty"`
		Total   int64    `json:"total,omitempty"`
		Done    int64    `json:"done,omitempty"`
		Rate    *float64 `json:"bytes_per_second,omitempty"`
		ETA     *float64 `json:"eta_seconds,omitempty"`
		Elapsed float64  `json:"elapsed_seconds"`
	}{Event: [...]string{"start", "progress", "phase", "done"}[e.Kind], Tensor: e.Tensor, Phase: e.Phase, Bytes: e.Bytes, Total: e.Total}
	if r.meter != nil {
		line.Elapsed = r.now().Sub(r.meter.start).Seconds()
		if e.Kind == engine.EventProgress {
			done, rate, eta, ok := r.meter.figures()
			line.Done = done
			if ok {
				secs := eta.Seconds()
				line.Rate, line.ETA = &rate, &secs
			}
		}
	}
	r.enc.Encode(line)
}

// finish stops the bar (aborting it when the run failed).
func (r *reporter) finish(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		if !ok {
			r.bar.Abort(false)
		} else {
			r.bar.SetTotal(-1, true)
		}
		r.prog.Wait()
	}
}
