package fault

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mapTruncated maps a file of three pages, then truncates it to one page:
// reading the second or third page of the mapping faults (SIGBUS).
func mapTruncated(t *testing.T) (mem []byte, path string) {
	t.Helper()
	page := os.Getpagesize()
	path = filepath.Join(t.TempDir(), "shard.safetensors")
	if err := os.WriteFile(path, make([]byte, 3*page), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err = unix.Mmap(int(f.Fd()), 0, 3*page, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	if err := os.Truncate(path, int64(page)); err != nil {
		t.Fatal(err)
	}
	return mem, path
}

// sink keeps the compiler from dropping reads whose value is unused.
var sink atomic.Int64

func sum(b []byte) int {
	s := 0
	for _, c := range b {
		s += int(c)
	}
	sink.Add(int64(s))
	return s
}

func TestGuardRegistered(t *testing.T) {
	mem, path := mapTruncated(t)
	page := os.Getpagesize()
	unregister := Register(mem, path, func(off int64) string {
		if off >= int64(page) {
			return "w"
		}
		return ""
	})
	defer unregister()

	// The surviving page reads fine.
	if err := Guard(func() error { _ = sum(mem[:page]); return nil }); err != nil {
		t.Fatalf("reading the first page: %v", err)
	}
	err := Guard(func() error { _ = sum(mem[page+10:]); return nil })
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("reading a lost page: %v, want a *fault.Error", err)
	}
	if fe.Path != path || fe.Offset != int64(page+10) || fe.Tensor != "w" || fe.Mapped != int64(3*page) || fe.Now != int64(page) {
		t.Errorf("error %+v", fe)
	}
	for _, want := range []string{path, "byte " + strconv.Itoa(page+10), `tensor "w"`, "shrank from", "inputs must not change"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// fn's own error passes through.
	own := errors.New("own")
	if err := Guard(func() error { return own }); err != own {
		t.Errorf("Guard returned %v, want fn's error", err)
	}
}

// TestCatchUnregistered: a fault outside every registered mapping is not
// ours to explain; it still panics (here with the runtime's error).
func TestCatchUnregistered(t *testing.T) {
	mem, _ := mapTruncated(t)
	page := os.Getpagesize()
	var r any
	func() {
		defer func() { r = recover() }()
		Catch(func() { _ = sum(mem[2*page:]) })
	}()
	if _, ok := r.(interface{ Addr() uintptr }); !ok {
		t.Fatalf("recovered %v (%T), want the runtime's fault panic", r, r)
	}
	// And unregistering forgets the mapping.
	path := filepath.Join(t.TempDir(), "x")
	Register(mem, path, nil)()
	func() {
		defer func() { r = recover() }()
		Catch(func() { _ = sum(mem[2*page:]) })
	}()
	if _, ok := r.(interface{ Addr() uintptr }); !ok {
		t.Fatalf("after unregister: recovered %v (%T), want the runtime's fault panic", r, r)
	}
}

// TestWorkerForwarding is the pattern worker pools use: each worker
// catches, the waiting goroutine re-raises, and its Guard returns the error.
func TestWorkerForwarding(t *testing.T) {
	mem, path := mapTruncated(t)
	defer Register(mem, path, nil)()
	page := os.Getpagesize()
	err := Guard(func() error {
		var wg sync.WaitGroup
		errs := make([]*Error, 4)
		for i := range errs {
			wg.Go(func() {
				errs[i] = Catch(func() { _ = sum(mem[i*page/2 : (i+2)*page/2]) })
			})
		}
		wg.Wait()
		for _, fe := range errs {
			if fe != nil {
				panic(fe)
			}
		}
		return nil
	})
	var fe *Error
	if !errors.As(err, &fe) || fe.Path != path {
		t.Fatalf("got %v, want the fault of %s", err, path)
	}
}

// TestLocate: a write from a lost page fails with EFAULT (the kernel does
// not raise SIGBUS for it); Locate names the file and the first lost byte.
func TestLocate(t *testing.T) {
	mem, path := mapTruncated(t)
	defer Register(mem, path, func(int64) string { return "w" })()
	page := os.Getpagesize()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	parts := [][]byte{make([]byte, 10), mem[page/2:]}
	_, werr := out.WriteAt(parts[1], 0)
	if !errors.Is(werr, syscall.EFAULT) {
		t.Fatalf("write from a lost page: %v, want EFAULT", werr)
	}
	fe := Locate(werr, parts)
	if fe == nil || fe.Path != path || fe.Offset != int64(page) || fe.Tensor != "w" {
		t.Fatalf("Locate = %+v", fe)
	}
	if Locate(errors.New("disk full"), parts) != nil {
		t.Error("Locate explained an error that is not EFAULT")
	}
	if Locate(werr, parts[:1]) != nil {
		t.Error("Locate explained EFAULT by a part in no mapping")
	}
}

// TestErrorEscapesNames: the file and tensor an Error names may come from
// a checkpoint (a shard its index lists): both print escaped.
func TestErrorEscapesNames(t *testing.T) {
	e := &Error{Path: "in/a\x1b[2J.safetensors", Offset: 9, Tensor: "w\n", Mapped: 10, Now: 5}
	got := e.Error()
	want := `"in/a\x1b[2J.safetensors": cannot read byte 9 (tensor "w\n"): the file shrank from 10 to 5 bytes while being read; inputs must not change during a conversion`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestReason: Reason is the error less the file and the tensor, which a
// diagnostic names apart (and escapes) as its subject.
func TestReason(t *testing.T) {
	e := &Error{Path: "in/a\x1b[2J.safetensors", Offset: 9, Tensor: "w\n", Mapped: 10, Now: 5}
	const want = "cannot read byte 9: the file shrank from 10 to 5 bytes while being read; inputs must not change during a conversion"
	if got := e.Reason(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
