package safetensors

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// TestDirectWrites fills tensors of a few MiB at unaligned offsets from
// concurrent goroutines, in chunks cut at random places, with WriteAt and
// with WriteParts of uneven pieces, with direct I/O (where the filesystem
// allows it), without, and with direct I/O failing with EINVAL after the
// first write; the file must hold exactly the bytes written.
func TestDirectWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	entries := []Entry{
		{"odd", tensor.U8, tensor.Shape{4099}},
		{"big", tensor.U8, tensor.Shape{5<<20 + 17}},
		{"mid", tensor.U8, tensor.Shape{1<<20 - 3}},
		{"small", tensor.U8, tensor.Shape{300}},
	}
	data := map[string][]byte{}
	for _, e := range entries {
		n, _ := e.Size()
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		data[e.Name] = b
	}
	for _, mode := range []string{"direct", "cached", "einval"} {
		t.Run(mode, func(t *testing.T) {
			l, err := NewLayout(entries, nil)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "d.safetensors")
			w, err := Create(path, l)
			if err != nil {
				t.Fatal(err)
			}
			switch mode {
			case "direct":
				if w.d == nil {
					t.Skip("the filesystem of the test directory refuses O_DIRECT")
				}
			case "cached":
				w.noDirect.Store(true)
			case "einval":
				if w.d == nil {
					t.Skip("the filesystem of the test directory refuses O_DIRECT")
				}
				// A direct write at an offset that is not a multiple of
				// the block size fails with EINVAL: the writer must write
				// those bytes through the page cache and stop writing
				// directly. (The bytes are big's own, so the file checks.)
				ti, _ := l.Tensor("big")
				abs := l.FileOffset(ti)
				off := (directAlign + 1 - abs%directAlign) % directAlign
				c := partCursor{parts: [][]byte{data["big"][off : off+directAlign]}}
				if err := w.writeDirect(abs+off, &c, directAlign); err != nil {
					t.Fatal(err)
				}
				if !w.noDirect.Load() {
					t.Error("direct writes still on after EINVAL")
				}
			}
			var wg sync.WaitGroup
			for _, e := range entries {
				b := data[e.Name]
				// Random cut points; each chunk by WriteAt or WriteParts.
				cuts := []int{0}
				for c := 0; c < len(b); {
					c = min(len(b), c+1+rng.IntN(3<<20))
					cuts = append(cuts, c)
				}
				for k := 1; k < len(cuts); k++ {
					lo, hi := cuts[k-1], cuts[k]
					parts := k%2 == 0
					wg.Go(func() {
						var err error
						if parts {
							var ps [][]byte
							for x := lo; x < hi; {
								y := min(hi, x+1+(x*7919)%70000)
								ps = append(ps, b[x:y])
								x = y
							}
							err = w.WriteParts(e.Name, int64(lo), ps)
						} else {
							err = w.WriteAt(e.Name, int64(lo), b[lo:hi])
						}
						if err != nil {
							t.Error(err)
						}
					})
				}
			}
			wg.Wait()
			if err := w.Finish(); err != nil {
				t.Fatal(err)
			}
			if mode == "direct" && w.noDirect.Load() {
				t.Error("direct writes were turned off")
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, e := range entries {
				got, _ := f.Data(e.Name)
				if !bytes.Equal(got, data[e.Name]) {
					t.Errorf("%s: %d bytes differ", e.Name, countDiff(got, data[e.Name]))
				}
			}
		})
	}
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + max(len(a), len(b)) - min(len(a), len(b))
}

// TestWriteBuffer: the bounce buffer a direct write maps is never larger
// than WriteBuffer says for the write, so a caller reserving WriteBuffer
// per write in flight accounts for all of them; only full-size buffers are
// kept once the write is done.
func TestWriteBuffer(t *testing.T) {
	for _, n := range []int64{0, directMin - 1, directMin, directMin + 1, 3 << 20, bounceSize, bounceSize + 1, 64 << 20} {
		want := int64(0)
		if n >= directMin {
			want = min(bounceSize, (n+directAlign-1)/directAlign*directAlign)
		}
		if got := WriteBuffer(n); got != want {
			t.Errorf("WriteBuffer(%d) = %d, want %d", n, got, want)
		}
		if n < directMin {
			continue // written through the page cache, no bounce buffer
		}
		// writeDirect asks for the aligned body, at most n bytes.
		body := n / directAlign * directAlign
		b := getBounce(body)
		if b == nil {
			t.Skip("no anonymous mappings here")
		}
		if int64(len(b)) > WriteBuffer(n) {
			t.Errorf("a direct write of %d bytes maps %d bytes of bounce buffer, WriteBuffer says %d", n, len(b), WriteBuffer(n))
		}
		putBounce(b)
	}
	if len(bounces) > KeptBuffers {
		t.Errorf("%d bounce buffers kept, at most %d", len(bounces), KeptBuffers)
	}
	for len(bounces) > 0 {
		if b := <-bounces; len(b) != bounceSize {
			t.Errorf("a %d-byte bounce buffer was kept; only full ones are", len(b))
		}
	}
}
