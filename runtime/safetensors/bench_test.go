package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// BenchmarkWrite compares filling a planned file with parallel positioned
// writes against writing the same bytes sequentially with plain Write calls,
// in the same chunk size. Both include creating the file and the fsync.
func BenchmarkWrite(b *testing.B) {
	const nTensors, tensorBytes, chunk = 16, 2 << 20, 256 << 10
	var entries []Entry
	for i := range nTensors {
		entries = append(entries, Entry{fmt.Sprintf("t%02d", i), tensor.U8, tensor.Shape{tensorBytes}})
	}
	l, err := NewLayout(entries, nil)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, l.DataSize())
	for i := range data {
		data[i] = byte(i * 7)
	}
	type job struct {
		name string
		off  int64
		p    []byte
	}
	var jobs []job
	for _, t := range l.Tensors {
		for off := int64(0); off < t.Size(); off += chunk {
			jobs = append(jobs, job{t.Name, off, data[t.Begin+off : t.Begin+off+chunk]})
		}
	}
	path := filepath.Join(b.TempDir(), "bench.safetensors")

	b.Run("parallel-WriteAt", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			w, err := Create(path, l)
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			for range runtime.GOMAXPROCS(0) {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(len(jobs)); i = next.Add(1) - 1 {
						j := jobs[i]
						if err := w.WriteAt(j.name, j.off, j.p); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := w.Finish(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("sequential-Write", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		head := binary.LittleEndian.AppendUint64(nil, uint64(len(l.Header)))
		head = append(head, l.Header...)
		for b.Loop() {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(head); err != nil {
				b.Fatal(err)
			}
			for _, j := range jobs {
				if _, err := f.Write(j.p); err != nil {
					b.Fatal(err)
				}
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}
