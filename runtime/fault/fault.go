// Package fault turns a fault on a memory-mapped input into an error that
// names the file, instead of a crash.
//
// Reading a page of a file mapping that lies past the file's current end
// (another process truncated the file) or whose storage fails raises SIGBUS,
// and the Go runtime crashes the whole process on it unless the faulting
// goroutine has asked for a panic instead (runtime/debug.SetPanicOnFault).
// Mappings are registered here with the file they show; Catch and Guard run
// code with faults turned into panics and turn a fault inside a registered
// mapping into an *Error. Faults anywhere else are bugs and still panic.
//
// SetPanicOnFault is per goroutine: every goroutine that reads mapped bytes
// must run under Catch or Guard. A worker pool catches in each worker and
// re-raises the *Error with panic in the goroutine that waits for it, whose
// own Guard then returns it.
package fault

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"syscall"
	"unsafe"

	"github.com/mapper-dev/mapper/runtime/quote"
)

// Error reports that a mapped input could not be read: its file changed
// (shrank) while mapper was reading it, or its storage failed.
type Error struct {
	Path   string // the file
	Offset int64  // file offset of the byte that could not be read
	Tensor string // the tensor holding that byte, "" when not known
	Mapped int64  // the file's size when it was mapped
	Now    int64  // its size now; -1 when it cannot be found out
}

func (e *Error) Error() string {
	where := fmt.Sprintf("byte %d", e.Offset)
	if e.Tensor != "" {
		where += fmt.Sprintf(" (tensor %q)", e.Tensor)
	}
	// The path may name a file of the checkpoint's (a shard an index
	// lists): escaped, as the tensor name is by %q.
	return fmt.Sprintf("%s: cannot read %s: %s", quote.Name(e.Path), where, e.why())
}

// Reason is the error without the file and the tensor, for a report that
// names them apart (a diagnostic's subject): "cannot read byte N: the file
// shrank ...; inputs must not change during a conversion".
func (e *Error) Reason() string {
	return fmt.Sprintf("cannot read byte %d: %s", e.Offset, e.why())
}

func (e *Error) why() string {
	var why string
	switch {
	case e.Now < 0:
		why = "the file can no longer be examined (removed?)"
	case e.Now < e.Mapped:
		why = fmt.Sprintf("the file shrank from %d to %d bytes while being read", e.Mapped, e.Now)
	default:
		why = "the file changed while being read, or its storage failed"
	}
	return why + "; inputs must not change during a conversion"
}

type region struct {
	base, end uintptr // [base, end)
	path      string
	size      int64
	tensorAt  func(off int64) string
}

var (
	mu      sync.RWMutex
	regions []region // sorted by base, disjoint
)

// Register records that mem maps the whole file at path (from offset 0);
// tensorAt, when not nil, names the tensor holding a file offset. It returns
// the function that forgets the mapping, to be called before it is unmapped.
func Register(mem []byte, path string, tensorAt func(off int64) string) (unregister func()) {
	if len(mem) == 0 {
		return func() {}
	}
	r := region{base: uintptr(unsafe.Pointer(unsafe.SliceData(mem))), path: path,
		size: int64(len(mem)), tensorAt: tensorAt}
	r.end = r.base + uintptr(len(mem))
	mu.Lock()
	i := sort.Search(len(regions), func(i int) bool { return regions[i].base >= r.base })
	regions = append(regions, region{})
	copy(regions[i+1:], regions[i:])
	regions[i] = r
	mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			for i := range regions {
				if regions[i].base == r.base {
					regions = append(regions[:i], regions[i+1:]...)
					return
				}
			}
		})
	}
}

// lookup returns the region holding addr.
func lookup(addr uintptr) (region, bool) {
	mu.RLock()
	defer mu.RUnlock()
	i := sort.Search(len(regions), func(i int) bool { return regions[i].end > addr })
	if i < len(regions) && regions[i].base <= addr {
		return regions[i], true
	}
	return region{}, false
}

// errorAt builds the Error for a fault at addr, nil when addr lies in no
// registered mapping.
func errorAt(addr uintptr) *Error {
	r, ok := lookup(addr)
	if !ok {
		return nil
	}
	e := &Error{Path: r.path, Offset: int64(addr - r.base), Mapped: r.size, Now: -1}
	if r.tensorAt != nil {
		e.Tensor = r.tensorAt(e.Offset)
	}
	if st, err := os.Stat(r.path); err == nil {
		e.Now = st.Size()
	}
	return e
}

// asError converts a recovered panic value into an *Error when it is one, or
// a memory fault inside a registered mapping.
func asError(v any) *Error {
	switch v := v.(type) {
	case *Error:
		return v
	case interface{ Addr() uintptr }:
		// A runtime.Error from a fault under SetPanicOnFault.
		if _, ok := v.(error); ok {
			return errorAt(v.Addr())
		}
	}
	return nil
}

// Catch runs fn on the calling goroutine with faults turned into panics. A
// fault inside a registered mapping, or an *Error panic raised by a worker
// fn waited for, stops fn and is returned; any other panic goes on.
func Catch(fn func()) (fe *Error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if fe = asError(r); fe == nil {
				panic(r)
			}
		}
	}()
	fn()
	return nil
}

// Guard is Catch for a function that returns an error: the *Error of a
// fault, or fn's own error.
func Guard(fn func() error) error {
	var err error
	if fe := Catch(func() { err = fn() }); fe != nil {
		return fe
	}
	return err
}

// Locate explains an EFAULT from a system call that read parts (a write
// from mapped memory makes the kernel fail the call where a read in user
// space would have faulted): it returns the *Error of the first part inside
// a registered mapping whose file no longer covers it, or nil when err is
// not EFAULT or no part explains it.
func Locate(err error, parts [][]byte) *Error {
	if !errors.Is(err, syscall.EFAULT) {
		return nil
	}
	var first *Error
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		addr := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
		e := errorAt(addr)
		if e == nil {
			continue
		}
		if end := e.Offset + int64(len(p)); e.Now < 0 || e.Now < end {
			// The first byte that is gone: the file's new end, when it cuts
			// into this part.
			e.Offset = max(e.Offset, e.Now)
			if r, ok := lookup(addr); ok && r.tensorAt != nil {
				e.Tensor = r.tensorAt(e.Offset)
			}
			return e
		}
		if first == nil {
			first = e
		}
	}
	return first
}
