package safetensors

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/mapper-dev/mapper/runtime/quote"
)

// Every file mapper reads from an input checkpoint (config, index,
// metadata, shards, side files) is opened by OpenInput: its name and links
// come from whoever made the checkpoint, so none may lead out of the
// directory, and a FIFO or device must not hang or flood the reader.

// MaxDocBytes caps the JSON and YAML documents read from an input:
// config.json, model.safetensors.index.json, Fast-LLM's metadata.yaml. The
// largest published indexes are a few MiB; the cap keeps a hostile or
// mistaken file from exhausting memory before it is parsed.
const MaxDocBytes = 64 << 20

// OpenInput opens the file name of the input directory dir for reading.
// name must be a plain file name; symbolic links are followed only when the
// file they end at lies inside dir, or in the blob store of a Hugging Face
// hub cache snapshot (see ResolveIn); and that file must be a regular file.
// The open cannot block: it is made with O_NONBLOCK (a FIFO would otherwise
// wait for a writer) and the descriptor's type checked before use, so a
// file swapped for a FIFO or a device after the links were checked is
// refused too. The returned file's Name is dir/name, its offset 0, and its
// reads block as usual.
func OpenInput(dir, name string) (*os.File, error) {
	return openInput(dir, name, dir)
}

// ReadInput reads the whole of the input file name of dir (see OpenInput),
// refusing a file of more than limit bytes.
func ReadInput(dir, name string, limit int64) ([]byte, error) {
	f, err := OpenInput(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", quote.PathError(err))
	}
	tooLarge := func(size string) error {
		return fmt.Errorf("safetensors: %s: %s bytes is over the %s limit for this file", quote.Name(f.Name()), size, sizeString(limit))
	}
	if st.Size() > limit {
		return nil, tooLarge(fmt.Sprint(st.Size()))
	}
	// Read one byte past the limit: a file may grow after the stat.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("safetensors: reading %s: %w", quote.Name(f.Name()), quote.PathError(err))
	}
	if int64(len(data)) > limit {
		return nil, tooLarge("more than " + fmt.Sprint(limit))
	}
	return data, nil
}

// sizeString writes a byte count in whole MiB or KiB where it is one.
func sizeString(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d-byte", n)
}

// openInput is OpenInput; listedIn names where name came from (an index,
// a metadata file, or dir itself), for error messages.
func openInput(dir, name, listedIn string) (*os.File, error) {
	path, real, err := resolveIn(dir, name, listedIn)
	if err != nil {
		return nil, err
	}
	// The links were resolved and checked: open where they led, and refuse
	// a link put there since (O_NOFOLLOW).
	return openRegular(real, path, unix.O_NOFOLLOW)
}

// openRegular opens path read-only, without blocking, and checks that it
// is a regular file; name is what the returned file and errors call it
// (escaped there: it may come from the checkpoint).
func openRegular(path, name string, flags int) (*os.File, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY|flags, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) && flags&unix.O_NOFOLLOW != 0 {
			return nil, fmt.Errorf("safetensors: %s: became a symbolic link while being opened", quote.Name(name))
		}
		return nil, fmt.Errorf("safetensors: %w", &fs.PathError{Op: "open", Path: quote.Name(name), Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("safetensors: %w", &fs.PathError{Op: "stat", Path: quote.Name(name), Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("safetensors: %s: not a regular file (%s)", quote.Name(name), fileKind(uint32(st.Mode)))
	}
	// O_NONBLOCK has no effect on a regular file's reads, but the os
	// package would take the descriptor for a pollable one: clear it.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("safetensors: %w", &fs.PathError{Op: "fcntl", Path: quote.Name(name), Err: err})
	}
	return os.NewFile(uintptr(fd), name), nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return fmt.Sprintf("mode %#o", mode&unix.S_IFMT)
}
