package safetensors

import (
	"errors"
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"

	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// File is an open, validated safetensors file mapped read-only into memory.
// Its methods may be called from many goroutines; Close must not race them.
// As with any mapping, truncating the file while it is open makes reads of
// the lost pages fault (SIGBUS), so inputs must not change under a reader.
type File struct {
	Path     string
	Metadata map[string]string // nil when the file has no __metadata__
	Tensors  []TensorInfo      // in data order
	// DataStart is the file offset of the data buffer (8 + header length).
	DataStart int64

	f     *os.File
	mm    []byte // the whole file; nil once closed
	index map[string]int
}

// Open maps the file at path and validates it strictly. The returned error is
// a *FormatError naming the file (and tensor) when the content is invalid.
func Open(path string) (*File, error) {
	f, err := os.Open(path) // O_RDONLY
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", quote.PathError(err))
	}
	file, err := openMapped(path, f)
	if err != nil {
		f.Close()
		return nil, withFile(err, path)
	}
	return file, nil
}

func openMapped(path string, f *os.File) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", quote.PathError(err))
	}
	if !st.Mode().IsRegular() {
		return nil, formatErr("", "not a regular file (%v)", st.Mode().Type())
	}
	size := st.Size()
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
	h, err := ParseHeader(mm[8:8+n], size-8-n)
	if err != nil {
		unix.Munmap(mm)
		return nil, err
	}
	file := &File{
		Path:      path,
		Metadata:  h.Metadata,
		Tensors:   h.Tensors,
		DataStart: h.DataStart,
		f:         f,
		mm:        mm,
		index:     make(map[string]int, len(h.Tensors)),
	}
	for i, t := range h.Tensors {
		file.index[t.Name] = i
	}
	return file, nil
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
