package cuda

import (
	"math/rand/v2"
	"testing"
)

// The chunks of a transpose cover every (o, a, m, b) once and fit a
// staging buffer unless one run alone does not; the tiles fit the kernel's.
func TestTransposeBoxes(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for range 300 {
		g := transposeGeom{outer: 1 + r.IntN(3), A: 1 + r.IntN(70), mid: 1 + r.IntN(5), B: 1 + r.IntN(70), run: 1 + r.IntN(40)}
		old := chunkBytes
		chunkBytes = 64 + r.IntN(4096)
		seen := make([]int, g.outer*g.A*g.mid*g.B)
		for _, x := range g.boxes() {
			if n := x.ext(0) * x.ext(1) * x.ext(2) * x.ext(3) * g.run; n > chunkBytes && x.ext(0)*x.ext(1)*x.ext(2) > 1 {
				t.Fatalf("%+v, chunks of %d: box %+v holds %d bytes", g, chunkBytes, x, n)
			}
			for o := x.lo[0]; o < x.hi[0]; o++ {
				for a := x.lo[1]; a < x.hi[1]; a++ {
					for m := x.lo[2]; m < x.hi[2]; m++ {
						for b := x.lo[3]; b < x.hi[3]; b++ {
							seen[((o*g.A+a)*g.mid+m)*g.B+b]++
						}
					}
				}
			}
			w := g.itemWidth()
			ta, tm, tb, ti := boxTile(x.ext(1), x.ext(2), x.ext(3), g.run/w, w)
			if ta < 1 || tm < 1 || tb < 1 || ti < 1 || ta*tm*tb*ti*w > max(tileBytes, w) {
				t.Fatalf("%+v: tile %d x %d x %d x %d of %d bytes", g, ta, tm, tb, ti, w)
			}
		}
		chunkBytes = old
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("%+v: element %d in %d chunks", g, i, n)
			}
		}
	}
}
