package safetensors

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// TestRelease: dropping mapped pages changes nothing a reader sees, for
// ranges that cover whole pages, parts of pages or nothing, and is a no-op
// for bad names and ranges and on a closed file.
func TestRelease(t *testing.T) {
	page := os.Getpagesize()
	data := make([]byte, 5*page+123)
	for i := range data {
		data[i] = byte(i * 31)
	}
	header := fmt.Sprintf(`{"a":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]},"b":{"dtype":"U8","shape":[3],"data_offsets":[%d,%d]}}`,
		len(data)-3, len(data)-3, len(data)-3, len(data))
	f, err := Open(writeFile(t, t.TempDir(), "r.safetensors", craft(header, data)))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		a, _ := f.Data("a")
		b, _ := f.Data("b")
		if !bytes.Equal(append(append([]byte{}, a...), b...), data) {
			t.Fatalf("%s: data changed", what)
		}
	}
	check("before")
	for _, r := range [][2]int64{{0, int64(len(data) - 3)}, {1, 10}, {int64(page) - 7, int64(2*page) + 9}, {0, 0}, {-1, 5}, {10, int64(len(data))}} {
		f.Release("a", r[0], r[1])
		check(fmt.Sprintf("Release(a, %d, %d)", r[0], r[1]))
	}
	f.Release("b", 0, 3)
	f.Release("nope", 0, 1)
	f.ReleaseAll()
	check("ReleaseAll")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f.Release("a", 0, 1)
	f.ReleaseAll()
}
