package backend

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mapper-dev/mapper/runtime/kernels"
)

// TestDecodeMXFP4ToBF16Exhaustive: every block byte at every scale, against
// the reference kernel.
func TestDecodeMXFP4ToBF16Exhaustive(t *testing.T) {
	const groups = 256 * 16 // 16 groups (all 256 block bytes) per scale
	blocks := make([]byte, 16*groups)
	scales := make([]byte, groups)
	for g := range groups {
		scales[g] = byte(g / 16)
		for j := range 16 {
			blocks[16*g+j] = byte(16*(g%16) + j)
		}
	}
	want := make([]byte, 64*groups)
	if err := kernels.DecodeMXFP4ToBF16(want, blocks, scales); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	decodeMXFP4ToBF16(got, blocks, scales)
	for g := range groups {
		if !bytes.Equal(got[64*g:64*g+64], want[64*g:64*g+64]) {
			t.Fatalf("scale %d, block bytes %d..%d: got % x, want % x", scales[g], 16*(g%16), 16*(g%16)+15,
				got[64*g:64*g+64], want[64*g:64*g+64])
		}
	}
}

// TestEncodeMXFP4FromBF16Exhaustive: for every scale byte the encoder can
// choose (the group maximum at, and just above, 6 * 2^(s-127)), every BF16
// value not above that maximum, both signs, in groups led by the maximum;
// and the zero group. Blocks and scales must be the reference's.
func TestEncodeMXFP4FromBF16Exhaustive(t *testing.T) {
	var src []byte
	put := func(v uint16) { src = le.AppendUint16(src, v) }
	for s := range 255 {
		six := math.Float32bits(float32(math.Ldexp(6, s-127))) >> 16
		for _, amax := range []uint16{uint16(six), uint16(six) + 1, uint16(six) - 1} {
			if amax == 0 || amax >= 0x7f80 {
				continue
			}
			n := 0
			for v := uint16(0); v <= amax; v++ {
				if n%31 == 0 {
					put(amax | uint16(n%2)<<15)
				}
				put(v | uint16(n&2)<<14)
				n++
			}
			for n%31 != 0 {
				put(0)
				n++
			}
		}
	}
	for range 32 {
		put(0x8000)
	}
	groups := len(src) / 64
	wb, ws := make([]byte, 16*groups), make([]byte, groups)
	if err := kernels.EncodeMXFP4FromBF16(wb, ws, src); err != nil {
		t.Fatal(err)
	}
	gb, gs := make([]byte, 16*groups), make([]byte, groups)
	if err := encodeMXFP4FromBF16(gb, gs, src); err != nil {
		t.Fatal(err)
	}
	for g := range groups {
		if gs[g] != ws[g] || !bytes.Equal(gb[16*g:16*g+16], wb[16*g:16*g+16]) {
			t.Fatalf("group %d (% x): scale %d blocks % x, want scale %d blocks % x", g, src[64*g:64*g+64],
				gs[g], gb[16*g:16*g+16], ws[g], wb[16*g:16*g+16])
		}
	}
}

// TestEncodeMXFP4FromBF16NonFinite: the error is the reference's, with the
// element index counted from the start of the buffer.
func TestEncodeMXFP4FromBF16NonFinite(t *testing.T) {
	for _, bad := range []uint16{0x7f80, 0xff80, 0x7fc1} {
		src := make([]byte, 64*5)
		for i := range 160 {
			le.PutUint16(src[2*i:], 0x3f80+uint16(i%7))
		}
		le.PutUint16(src[2*100:], bad)
		err := encodeMXFP4FromBF16(make([]byte, 16*5), make([]byte, 5), src)
		var nf *NonFiniteError
		if !errors.As(err, &nf) || nf.Index != 100 {
			t.Fatalf("%#04x: err = %v, want a non-finite error at 100", bad, err)
		}
	}
}

// BenchmarkMXFP4Paths times the reference kernels against the integer paths
// the CPU backend uses, single-threaded, on 1 Mi groups (64 MiB of BF16).
func BenchmarkMXFP4Paths(b *testing.B) {
	const g = 1 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	blocks := randBytes(rng, 16*g)
	scales := make([]byte, g)
	for i := range scales {
		scales[i] = byte(118 + rng.IntN(7))
	}
	bf := make([]byte, 64*g)
	kernels.ConvertF32ToBF16(bf, finiteF32(rng, 32*g))
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"decode/reference", func() { kernels.DecodeMXFP4ToBF16(bf, blocks, scales) }},
		{"decode/backend", func() { decodeMXFP4ToBF16(bf, blocks, scales) }},
		{"encode/reference", func() { kernels.EncodeMXFP4FromBF16(blocks, scales, bf) }},
		{"encode/backend", func() { encodeMXFP4FromBF16(blocks, scales, bf) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(64 * g)
			for range b.N {
				c.f()
			}
		})
	}
}
