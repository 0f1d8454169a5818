package synth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/hf"
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Options tune how a checkpoint is written; the zero value is
// save_pretrained's layout.
type Options struct {
	// ShardBytes limits the tensor data per file (0: 5 GB, save_pretrained's
	// default); a smaller value forces shards and an index.
	ShardBytes int64
	// Naming is "" (save_pretrained's 1-based names) or "hf-zero-based"
	// (GPT-OSS's published names and one-line index).
	Naming string
	// ByteExactMXFP4 puts a magnitude-6 code in every MXFP4 group, so that
	// decoding and re-encoding with the reference quantizer reproduces the
	// bytes (otherwise only the values).
	ByteExactMXFP4 bool
	// NoSideFiles leaves out generation_config.json and tokenizer.json.
	NoSideFiles bool
	// NoFileMetadata leaves out the safetensors __metadata__ {"format":
	// "pt"} that transformers writes in every file (GPT-OSS's published
	// shards have none).
	NoFileMetadata bool
	// Workers is how many goroutines fill tensors (0: GOMAXPROCS). The
	// output does not depend on it.
	Workers int
}

// SegmentBytes is the unit of data generation: every segment of a tensor has
// its own generator, seeded from (seed, tensor name, segment index), so the
// bytes do not depend on how the work is spread.
const SegmentBytes = 4 << 20

// Generate writes the checkpoint of a, drawn from seed, into dir, which
// must be empty or absent.
func Generate(dir string, a Arch, seed int64, opts Options) error {
	if a.Float != tensor.Invalid && a.Float != tensor.BF16 {
		return fmt.Errorf("synth: data is drawn as BF16; %s is for skeletons only", a.Float)
	}
	cfg, err := Config(a)
	if err != nil {
		return err
	}
	ts, err := Tensors(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("synth: %w", err)
	} else if len(ents) > 0 {
		return fmt.Errorf("synth: %s is not empty", dir)
	}
	entries := make([]safetensors.Entry, len(ts))
	kinds := make(map[string]Kind, len(ts))
	data := map[string][]byte{}
	for i, t := range ts {
		entries[i] = t.Entry
		kinds[t.Name] = t.Kind
		if t.Data != nil {
			data[t.Name] = t.Data
		}
	}
	out := &format.Output{Config: cfg, Tensors: entries, ShardBytes: opts.ShardBytes, Naming: opts.Naming}
	side := hf.Side{}
	shards, err := side.Layout(out)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	for i := range shards {
		// The side gives every file transformers' {"format": "pt"}.
		if opts.NoFileMetadata {
			shards[i].Metadata = nil
		}
	}
	if err := writeShards(dir, shards, kinds, data, seed, opts); err != nil {
		return err
	}
	if err := side.WriteMeta(dir, out, shards); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if opts.NoSideFiles {
		return nil
	}
	gen, err := pyjson.Encode(GenerationConfig(a), 2, true)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	tok, err := pyjson.Encode(Tokenizer(min(a.Vocab, 256)), 2, false)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	for name, data := range map[string][]byte{"generation_config.json": gen, "tokenizer.json": tok} {
		if err := os.WriteFile(filepath.Join(dir, name), append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	return nil
}

// Tokenizer is a small tokenizer.json (Hugging Face tokenizers' format): a
// word-level model over n tokens, "<unk>" first.
func Tokenizer(n int) pyjson.Object {
	vocab := pyjson.Object{{Key: "<unk>", Value: int64(0)}}
	for i := 1; i < n; i++ {
		vocab = append(vocab, pyjson.Member{Key: fmt.Sprintf("t%d", i), Value: int64(i)})
	}
	return pyjson.Object{
		{Key: "version", Value: "1.0"},
		{Key: "truncation", Value: nil},
		{Key: "padding", Value: nil},
		{Key: "added_tokens", Value: []any{pyjson.Object{
			{Key: "id", Value: int64(0)}, {Key: "content", Value: "<unk>"}, {Key: "single_word", Value: false},
			{Key: "lstrip", Value: false}, {Key: "rstrip", Value: false}, {Key: "normalized", Value: false},
			{Key: "special", Value: true},
		}}},
		{Key: "normalizer", Value: nil},
		{Key: "pre_tokenizer", Value: pyjson.Object{{Key: "type", Value: "Whitespace"}}},
		{Key: "post_processor", Value: nil},
		{Key: "decoder", Value: nil},
		{Key: "model", Value: pyjson.Object{
			{Key: "type", Value: "WordLevel"}, {Key: "vocab", Value: vocab}, {Key: "unk_token", Value: "<unk>"},
		}},
	}
}

type unit struct {
	w    *safetensors.Writer
	name string
	kind Kind
	seg  int64
	size int64 // bytes of this segment
}

// writeShards writes the shards' tensors: data's bytes where it has them,
// else drawn by kind.
func writeShards(dir string, shards []format.Shard, kinds map[string]Kind, data map[string][]byte, seed int64, opts Options) (err error) {
	var writers []*safetensors.Writer
	defer func() {
		if err != nil {
			for _, w := range writers {
				w.Close()
			}
		}
	}()
	var units []unit
	for _, s := range shards {
		l, err := safetensors.NewLayout(s.Entries, s.Metadata)
		if err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		w, err := safetensors.Create(filepath.Join(dir, s.File), l)
		if err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		writers = append(writers, w)
		for _, e := range s.Entries {
			size, _ := e.Size()
			for seg := int64(0); seg*SegmentBytes < size; seg++ {
				units = append(units, unit{w: w, name: e.Name, kind: kinds[e.Name], seg: seg,
					size: min(SegmentBytes, size-seg*SegmentBytes)})
			}
		}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	next := make(chan unit)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			buf := make([]byte, SegmentBytes)
			for u := range next {
				if errs[i] != nil {
					continue
				}
				b := buf[:u.size]
				if d, ok := data[u.name]; ok {
					copy(b, d[u.seg*SegmentBytes:])
				} else {
					Fill(b, u.kind, seed, u.name, u.seg, opts.ByteExactMXFP4)
				}
				if err := u.w.WriteAt(u.name, u.seg*SegmentBytes, b); err != nil {
					errs[i] = fmt.Errorf("synth: %w", err)
				}
			}
		}(i)
	}
	for _, u := range units {
		next <- u
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, w := range writers {
		if err := w.Finish(); err != nil {
			for _, rest := range writers[i+1:] {
				rest.Close()
			}
			writers = nil
			return fmt.Errorf("synth: %w", err)
		}
	}
	return nil
}

// Fill writes segment seg of the named tensor's data into b (at most
// SegmentBytes; a multiple of 16 bytes except at a tensor's end).
func Fill(b []byte, kind Kind, seed int64, name string, seg int64, byteExact bool) {
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(uint64(seed), h.Sum64()+uint64(seg)*0x9e3779b97f4a7c15))
	switch kind {
	case Weight, Norm:
		table := &weightTable
		if kind == Norm {
			table = &normTable
		}
		i := 0
		for ; i+4 <= len(b); i += 4 {
			x := r.Uint64()
			binary.LittleEndian.PutUint16(b[i:], table[irwinHall(uint32(x))])
			binary.LittleEndian.PutUint16(b[i+2:], table[irwinHall(uint32(x>>32))])
		}
		if i+2 <= len(b) {
			binary.LittleEndian.PutUint16(b[i:], table[irwinHall(uint32(r.Uint64()))])
		}
	case MXFP4Blocks:
		fillCodes(r, b)
		if byteExact {
			for g := 0; g+16 <= len(b); g += 16 {
				x := r.Uint32()
				pos, sign := int(x&31), byte(x>>5&1)
				code := 7 | sign<<3 // +-6
				j := g + pos/2
				if pos%2 == 0 {
					b[j] = b[j]&0xf0 | code
				} else {
					b[j] = b[j]&0x0f | code<<4
				}
			}
		}
	case MXFP4Scales:
		fillBytes(r, b)
		for i := range b {
			b[i] = 118 + b[i]%7
		}
	}
}

// fillCodes fills block bytes with E2M1 codes of random sign whose
// magnitude code is the smaller of two uniform 3-bit draws, so small
// magnitudes are the more frequent (as in quantized weights) and about one
// group in eight has no magnitude above 3: such a group decodes and
// re-encodes to the same values under a smaller scale, not the same bytes.
func fillCodes(r *rand.Rand, b []byte) {
	i := 0
	for ; i+4 <= len(b); i += 4 {
		x := r.Uint64()
		b[i] = codeByte[x&0x3fff]
		b[i+1] = codeByte[x>>14&0x3fff]
		b[i+2] = codeByte[x>>28&0x3fff]
		b[i+3] = codeByte[x>>42&0x3fff]
	}
	if i < len(b) {
		x := r.Uint64()
		for ; i < len(b); i++ {
			b[i] = codeByte[x&0x3fff]
			x >>= 14
		}
	}
}

// codeByte maps 14 random bits to a block byte: per nibble 7 bits, two
// 3-bit magnitude draws and a sign.
var codeByte = func() (t [1 << 14]byte) {
	for x := range t {
		var by byte
		for k := 0; k < 2; k++ {
			v := byte(x >> (7 * k) & 0x7f)
			m := min(v&7, v>>3&7)
			by |= (m | (v>>6)<<3) << (4 * k)
		}
		t[x] = by
	}
	return t
}()

func fillBytes(r *rand.Rand, b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	if i < len(b) {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], r.Uint64())
		copy(b[i:], tail[:])
	}
}

// irwinHall sums the four bytes of x: a bell-shaped value in 0..1020, mean
// 510, standard deviation sqrt(4 * (256^2 - 1) / 12).
func irwinHall(x uint32) int {
	return int(x&0xff) + int(x>>8&0xff) + int(x>>16&0xff) + int(x>>24)
}

var weightTable, normTable = bellTable(0, 0.02), bellTable(1, 0.02)

// bellTable maps an Irwin-Hall sum to BF16 bits of mean + std * z. Only
// single, explicitly rounded float32 operations: no fused multiply-add can
// make the table differ between machines.
func bellTable(mean, std float64) [1021]uint16 {
	var t [1021]uint16
	scale := float32(std / math.Sqrt(4*(256*256-1)/12.0))
	for k := range t {
		v := float32(float32(k-510) * scale)
		v = float32(float32(mean) + v)
		t[k] = kernels.F32ToBF16(v)
	}
	return t
}
