package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/mapper-dev/mapper/mappings/synth"
)

// runSynth writes a deterministic synthetic HF checkpoint: test data for
// trying mappings, benchmarks and the GPU check, without downloading a model.
func runSynth(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("synth", "ARCH DIR", stderr)
	layers := fs.Int("layers", 0, "layers (default: the architecture's)")
	vocab := fs.Int("vocab", 0, "vocabulary size (default: the architecture's)")
	width := fs.String("width", "tiny", "sizes: tiny, or real (the published widths: gpt-oss-20b, Llama-3-8B, Qwen3-8B, Qwen3-30B-A3B, Phi-3-mini; "+strings.Join(synth.RealNames(), ", ")+" only)")
	seed := fs.Int64("seed", 1, "random seed")
	byteExact := fs.Bool("byte-exact-mxfp4", false, "put a magnitude-6 code in every MXFP4 group, so re-encoding reproduces the bytes")
	var shard sizeFlag
	fs.Var(&shard, "shard-size", "tensor bytes per file (default 5GB)")
	if code, ok := parseFlags(fs, args, 2); !ok {
		return code
	}
	a, err := synth.ByName(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "mapper synth: %v\n", err)
		return 2
	}
	switch *width {
	case "tiny":
	case "real":
		r, ok := synth.RealWidths(fs.Arg(0))
		if !ok {
			fmt.Fprintf(stderr, "mapper synth: --width real is for %s\n", strings.Join(synth.RealNames(), ", "))
			return 2
		}
		a = r
	default:
		fmt.Fprintf(stderr, "mapper synth: --width %q: want tiny or real\n", *width)
		return 2
	}
	if *layers > 0 {
		a.Layers = *layers
	}
	if *vocab > 0 {
		a.Vocab = *vocab
	}
	if err := synth.Generate(fs.Arg(1), a, *seed, synth.Options{ShardBytes: int64(shard), ByteExactMXFP4: *byteExact}); err != nil {
		fmt.Fprintf(stderr, "mapper synth: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s checkpoint (hidden %d, %d layers, vocab %d)\n", fs.Arg(1), strings.ReplaceAll(fs.Arg(0), "_", "-"), a.Hidden, a.Layers, a.Vocab)
	return 0
}
