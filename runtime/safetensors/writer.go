package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/quote"
)

// Writer fills a file planned by a Layout. WriteAt and CopyFrom may be called
// from many goroutines at once: every write is positioned (pwrite or
// copy_file_range), so nothing is shared but the descriptor.
type Writer struct {
	Path   string
	layout *Layout
	f      *os.File
	cov    []coverage // per tensor, indexed like layout.Tensors
	closed bool
	// d is the file opened again for direct I/O (nil where refused);
	// noDirect turns it off after the first EINVAL (see direct.go).
	d        *os.File
	noDirect atomic.Bool
}

// Create creates (or truncates) the file at path, writes l's header, and sizes
// the file to l.Size, reserving the space where the filesystem allows. l must
// come from NewLayout and not be modified afterwards.
func Create(path string, l *Layout) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", quote.PathError(err))
	}
	fail := func(err error) (*Writer, error) {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("safetensors: create %s: %w", quote.Name(path), quote.PathError(err))
	}
	if err := preallocate(f, l.Size); err != nil {
		return fail(fmt.Errorf("reserving %d bytes: %w", l.Size, err))
	}
	if err := f.Truncate(l.Size); err != nil {
		return fail(err)
	}
	head := make([]byte, 8, l.DataStart)
	binary.LittleEndian.PutUint64(head, uint64(len(l.Header)))
	head = append(head, l.Header...)
	if _, err := f.WriteAt(head, 0); err != nil {
		return fail(err)
	}
	return &Writer{Path: path, layout: l, f: f, cov: make([]coverage, len(l.Tensors)), d: openDirect(path)}, nil
}

// Layout returns the plan the writer fills.
func (w *Writer) Layout() *Layout { return w.layout }

// span locates bytes [off, off+n) of the named tensor, checking that they
// lie inside it.
func (w *Writer) span(name string, off, n int64) (int, int64, error) {
	i, ok := w.layout.index[name]
	if !ok {
		return 0, 0, fmt.Errorf("safetensors: %s: no tensor %q in the layout", quote.Name(w.Path), name)
	}
	t := w.layout.Tensors[i]
	if off < 0 || n < 0 || off > t.Size()-n {
		return 0, 0, fmt.Errorf("safetensors: %s: tensor %q: write of %d bytes at offset %d leaves its %d bytes",
			quote.Name(w.Path), name, n, off, t.Size())
	}
	return i, w.layout.FileOffset(t) + off, nil
}

// WriteAt writes p at offset off within the named tensor's data.
//
// Large writes go to the device directly where the filesystem allows it
// (see direct.go); what goes through the page cache has its write-back
// started at once (startWriteback), so the disk works while later chunks
// are computed. Durability comes from the fsync at Close alone.
func (w *Writer) WriteAt(name string, off int64, p []byte) error {
	return w.WriteParts(name, off, [][]byte{p})
}

// WriteParts writes parts back to back at offset off within the named
// tensor's data: a gathered write, for data that lies in pieces in memory.
func (w *Writer) WriteParts(name string, off int64, parts [][]byte) error {
	var n int64
	for _, p := range parts {
		n += int64(len(p))
	}
	i, abs, err := w.span(name, off, n)
	if err != nil {
		return err
	}
	if err := w.writeParts(abs, parts); err != nil {
		// Parts that alias a mapped input whose file shrank make the
		// kernel refuse the write (EFAULT): say which input, not "bad
		// address".
		if fe := fault.Locate(err, parts); fe != nil {
			return fe
		}
		return fmt.Errorf("safetensors: tensor %q: %w", name, quote.PathError(err))
	}
	w.cov[i].add(off, off+n)
	return nil
}

// CopyFrom copies all of src's tensor srcName into the named tensor at offset
// off, by kernel copy where possible (see CopyRange). The dtypes must match;
// the shapes need not, so one call can place a tensor as a slice of a larger
// one (stacking experts, say) or reshape it.
func (w *Writer) CopyFrom(name string, off int64, src *File, srcName string) error {
	st, ok := src.Tensor(srcName)
	if !ok {
		return fmt.Errorf("safetensors: %s: no tensor %q", quote.Name(src.Path), srcName)
	}
	if src.f == nil {
		return fmt.Errorf("safetensors: %s: file is closed", quote.Name(src.Path))
	}
	i, abs, err := w.span(name, off, st.Size())
	if err != nil {
		return err
	}
	if dt := w.layout.Tensors[i].DType; dt != st.DType {
		return fmt.Errorf("safetensors: %s: tensor %q is %v, cannot copy %v tensor %q of %s into it",
			quote.Name(w.Path), name, dt, st.DType, srcName, quote.Name(src.Path))
	}
	if err := CopyRange(w.f, abs, src.f, src.FileOffset(st), st.Size()); err != nil {
		return fmt.Errorf("safetensors: tensor %q from %q: %w", name, srcName, err)
	}
	startWriteback(w.f, abs, st.Size())
	w.cov[i].add(off, off+st.Size())
	return nil
}

// Written reports how many distinct bytes of the named tensor have been
// written so far (bytes written twice count once).
func (w *Writer) Written(name string) int64 {
	i, ok := w.layout.index[name]
	if !ok {
		return 0
	}
	return w.cov[i].covered()
}

// Finish checks that every byte of every tensor was written, then closes the
// file (see Close). The error names the first incomplete tensor.
func (w *Writer) Finish() error {
	var incomplete []string
	var first error
	for i, t := range w.layout.Tensors {
		if got := w.cov[i].covered(); got != t.Size() {
			if first == nil {
				first = fmt.Errorf("safetensors: %s: tensor %q: only %d of %d bytes written", quote.Name(w.Path), t.Name, got, t.Size())
			}
			incomplete = append(incomplete, t.Name)
		}
	}
	if len(incomplete) > 1 {
		first = fmt.Errorf("%w (and %d more incomplete tensors)", first, len(incomplete)-1)
	}
	return errors.Join(first, w.Close())
}

// Close flushes the file to stable storage and closes it without checking
// that it is complete; use it to give up on a file. Closing twice is a no-op.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	var derr error
	if w.d != nil {
		derr = w.d.Close()
	}
	serr := w.f.Sync()
	cerr := w.f.Close()
	if err := errors.Join(derr, serr, cerr); err != nil {
		return fmt.Errorf("safetensors: closing %s: %w", quote.Name(w.Path), quote.PathError(err))
	}
	return nil
}

// coverage is the set of byte ranges of one tensor written so far, kept as
// sorted, disjoint, non-adjacent spans. A plain byte counter would be fooled
// by a range written twice while another was never written.
type coverage struct {
	mu    sync.Mutex
	spans [][2]int64
}

func (c *coverage) add(begin, end int64) {
	if begin >= end {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// First span that touches or follows [begin, end).
	i := sort.Search(len(c.spans), func(i int) bool { return c.spans[i][1] >= begin })
	j := i
	for j < len(c.spans) && c.spans[j][0] <= end {
		begin, end = min(begin, c.spans[j][0]), max(end, c.spans[j][1])
		j++
	}
	c.spans = slices.Replace(c.spans, i, j, [2]int64{begin, end})
}

func (c *coverage) covered() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, s := range c.spans {
		n += s[1] - s[0]
	}
	return n
}
