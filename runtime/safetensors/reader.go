package safetensors

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// File is an open, validated safetensors file mapped read-only into memory.
// Its methods may be called from many goroutines; Close must not race them.
// As with any mapping, truncating the file while it is open makes reads of
// the lost pages fault (SIGBUS). The mapping is registered with package
// fault, so code that reads it under fault.Guard gets an error naming the
// file and tensor instead of a crash; Unchanged tells whether the file
// still is as it was opened.
type File struct {
	Path     string
	Metadata map[string]string // nil when the file has no __metadata__
	Tensors  []TensorInfo      // in data order
	// DataStart is the file offset of the data buffer (8 + header length).
	DataStart int64

	f          *os.File
	mm         []byte // the whole file; nil once closed
	unregister func() // forgets mm in package fault
	opened     os.FileInfo
	index      map[string]int
}

// Open maps the file at path and validates it strictly. The returned error is
// a *FormatError naming the file (and tensor) when the content is invalid.
// path may name a link; it must end at a regular file (a FIFO or a device is
// refused without blocking). Files of a checkpoint directory are opened by
// OpenDir and OpenFiles, which also keep them inside it.
func Open(path string) (*File, error) {
	f, err := openRegular(path, path, 0)
	if err != nil {
		return nil, err
	}
	return mapFile(f)
}

// openIn opens the file name of dir (see OpenInput) and maps it.
func openIn(dir, name, listedIn string) (*File, error) {
	f, err := openInput(dir, name, listedIn)
	if err != nil {
		return nil, err
	}
	return mapFile(f)
}

// mapFile validates and maps the regular file f, taking it over: it is
// closed on error.
func mapFile(f *os.File) (*File, error) {
	file, err := openMapped(f)
	if err != nil {
		f.Close()
		return nil, withFile(err, f.Name())
	}
	return file, nil
}

func openMapped(f *os.File) (*File, error) {
	path := f.Name()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", quote.PathError(err))
	}
	if !st.Mode().IsRegular() {
		return nil, formatErr("", "not a regular file (%v)", st.Mode().Type())
	}
	size := st.Size()
	// The header is read, not taken from the mapping: a file that shrinks
	// now fails this read with an error instead of faulting.
	var prefix [8]byte
	if size >= 8 {
		if _, err := readFullAt(f, prefix[:], 0); err != nil {
			return nil, fmt.Errorf("safetensors: %s: reading header length: %w", quote.Name(path), quote.PathError(err))
		}
	}
	n, err := headerLen(prefix, size)
	if err != nil {
		return nil, err
	}
	header := make([]byte, n)
	if _, err := readFullAt(f, header, 8); err != nil {
		return nil, fmt.Errorf("safetensors: %s: reading %d-byte header: %w", quote.Name(path), n, quote.PathError(err))
	}
	h, err := ParseHeader(header, size-8-n)
	if err != nil {
		return nil, err
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("safetensors: %s: %d bytes is too large to map", quote.Name(path), size)
	}
	// The mapping covers the whole file, header included: mmap offsets must be
	// page aligned, and mapping from 0 also means a file with an empty data
	// buffer never asks for a zero-length mapping (size >= 8 here).
	mm, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: mmap: %w", quote.Name(path), err)
	}
	file := &File{
		Path:      path,
		Metadata:  h.Metadata,
		Tensors:   h.Tensors,
		DataStart: h.DataStart,
		f:         f,
		mm:        mm,
		opened:    st,
		index:     make(map[string]int, len(h.Tensors)),
	}
	for i, t := range h.Tensors {
		file.index[t.Name] = i
	}
	file.unregister = fault.Register(mm, path, file.tensorAt)
	return file, nil
}

// tensorAt names the tensor holding file offset off ("" for the header).
func (f *File) tensorAt(off int64) string {
	off -= f.DataStart
	i := sort.Search(len(f.Tensors), func(i int) bool { return f.Tensors[i].End > off })
	if off >= 0 && i < len(f.Tensors) && f.Tensors[i].Begin <= off {
		return f.Tensors[i].Name
	}
	return ""
}

// Unchanged reports, as an error naming the file, when the file is no
// longer the one opened: another size or modification time, or gone from
// its path. A conversion checks it before committing, so an input rewritten
// while it was read (which faults only when it shrinks, and only past the
// last page) cannot yield a silently mixed output.
func (f *File) Unchanged() error {
	if f.f == nil {
		return fmt.Errorf("safetensors: %s: file is closed", quote.Name(f.Path))
	}
	st, err := f.f.Stat()
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", quote.Name(f.Path), err)
	}
	if st.Size() != f.opened.Size() || !st.ModTime().Equal(f.opened.ModTime()) {
		return fmt.Errorf("safetensors: %s: the file changed while being read (%d bytes modified %s, was %d bytes modified %s); inputs must not change during a conversion",
			quote.Name(f.Path), st.Size(), st.ModTime().Format(time.RFC3339Nano), f.opened.Size(), f.opened.ModTime().Format(time.RFC3339Nano))
	}
	return nil
}

// Tensor returns the description of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// FileOffset is the absolute file offset of t's first byte.
func (f *File) FileOffset(t TensorInfo) int64 { return f.DataStart + t.Begin }

// Header returns the header's bytes as in the file (the JSON and its
// padding, without the 8-byte length): a read-only slice of the mapping,
// valid until Close; nil once closed.
func (f *File) Header() []byte {
	if f.mm == nil {
		return nil
	}
	return f.mm[8:f.DataStart]
}

// Data returns the named tensor's bytes: a read-only slice of the mapping,
// valid until Close. Writing to it faults.
func (f *File) Data(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: no tensor %q", quote.Name(f.Path), name)
	}
	if f.mm == nil {
		return nil, fmt.Errorf("safetensors: %s: file is closed", quote.Name(f.Path))
	}
	a, b := f.FileOffset(t), f.DataStart+t.End
	return f.mm[a:b:b], nil // capped, so an append cannot reach the next tensor
}

// Release tells the kernel that this process is done, for now, with bytes
// [off, off+n) of the named tensor's data: the pages of the mapping wholly
// inside that range leave the process's resident set (madvise
// MADV_DONTNEED). The file's pages stay in the page cache, and reading them
// again through Data just maps them back, so this changes no byte anyone
// reads; it keeps a reader that streams through a large file from holding
// all of it resident. Pages the range covers only in part are kept (rounding
// inward), since a neighbouring range may still be in use. Release must not
// race Close; it does nothing on a closed file or an empty range.
func (f *File) Release(name string, off, n int64) {
	t, ok := f.Tensor(name)
	if !ok || f.mm == nil || off < 0 || n <= 0 || off > t.Size()-n {
		return
	}
	a := f.FileOffset(t) + off
	releaseMapped(f.mm, a, a+n)
}

// ReleaseAll is Release of the whole file, header included.
func (f *File) ReleaseAll() {
	if f.mm != nil {
		releaseMapped(f.mm, 0, int64(len(f.mm)))
	}
}

// releaseMapped drops the whole pages of mm[a:b] from the resident set.
func releaseMapped(mm []byte, a, b int64) {
	page := int64(os.Getpagesize())
	a = (a + page - 1) / page * page
	b = b / page * page
	if a < b {
		// Advisory: a failure leaves the pages resident, nothing worse.
		_ = unix.Madvise(mm[a:b], unix.MADV_DONTNEED)
	}
}

// Load returns the named tensor with its data aliasing the mapping (see Data).
func (f *File) Load(name string) (tensor.Tensor, error) {
	data, err := f.Data(name)
	if err != nil {
		return tensor.Tensor{}, err
	}
	t, _ := f.Tensor(name)
	return tensor.Tensor{DType: t.DType, Shape: t.Shape, Data: data}, nil
}

// Close unmaps and closes the file. Slices returned by Data become invalid.
// Closing twice is a no-op.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	var errs []error
	if f.mm != nil {
		f.unregister()
		if err := unix.Munmap(f.mm); err != nil {
			errs = append(errs, fmt.Errorf("safetensors: %s: munmap: %w", quote.Name(f.Path), err))
		}
		f.mm = nil
	}
	if err := f.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("safetensors: %w", quote.PathError(err)))
	}
	f.f = nil
	return errors.Join(errs...)
}
