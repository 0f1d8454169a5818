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
)

// reporter renders engine events: a byte bar with rate and ETA on a
// terminal, a line every few seconds otherwise, or JSON lines.
type reporter struct {
	mode  string
	w     io.Writer
	mu    sync.Mutex
	bar   *mpb.Bar
	prog  *mpb.Progress
	total int64
	done  int64
	last  time.Time
	start time.Time
	enc   *json.Encoder
}

func newReporter(mode string, w io.Writer) (*reporter, error) {
	r := &reporter{mode: mode, w: w, start: time.Now()}
	switch mode {
	case "auto":
		r.mode = "plain"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			r.mode = "bar"
		}
	case "bar", "plain", "none":
	case "json":
		r.enc = json.NewEncoder(w)
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
	switch r.mode {
	case "none":
	case "json":
		kind := [...]string{"start", "progress", "phase", "done"}[e.Kind]
		r.enc.Encode(struct {
			Event  string `json:"event"`
			Tensor string `json:"tensor,omitempty"`
			Phase  string `json:"phase,omitempty"`
			Bytes  int64  `json:"bytes,omitempty"`
			Total  int64  `json:"total,omitempty"`
		}{kind, e.Tensor, e.Phase, e.Bytes, e.Total})
	case "bar":
		switch e.Kind {
		case engine.EventStart:
			r.prog = mpb.New(mpb.WithOutput(r.w), mpb.WithWidth(40))
			r.bar = r.prog.AddBar(max(e.Total, 1),
				mpb.PrependDecorators(decor.Name("converting "), decor.CountersKibiByte("% .1f / % .1f")),
				mpb.AppendDecorators(decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30), decor.Name(" ETA "), decor.EwmaETA(decor.ET_STYLE_GO, 30)))
			r.last = time.Now()
		case engine.EventProgress:
			if r.bar != nil {
				now := time.Now()
				r.bar.EwmaIncrInt64(e.Bytes, now.Sub(r.last))
				r.last = now
			}
		}
	case "plain":
		switch e.Kind {
		case engine.EventStart:
			r.total = e.Total
			fmt.Fprintf(r.w, "converting %s\n", engine.FormatBytes(e.Total))
		case engine.EventProgress:
			r.done += e.Bytes
			if time.Since(r.last) > 2*time.Second {
				r.last = time.Now()
				fmt.Fprintf(r.w, "%s / %s (%.0f%%)\n", engine.FormatBytes(r.done), engine.FormatBytes(r.total), 100*float64(r.done)/float64(max(r.total, 1)))
			}
		case engine.EventPhase:
			fmt.Fprintf(r.w, "%s\n", e.Phase)
		}
	}
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
