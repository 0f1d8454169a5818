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
	var layers, vocab int
	fs.Var(countFlag{&layers, 1}, "layers", "layers (default: the architecture's)")
	fs.Var(countFlag{&vocab, 1}, "vocab", "vocabulary size (default: the architecture's)")
	var width string
	fs.Var(newChoice(&width, "tiny", "tiny", "real"), "width", "sizes: tiny, or real (the published widths: gpt-oss-20b, Llama-3-8B, Qwen3-8B, Qwen3-30B-A3B, Phi-3-mini, gemma-4-26B-A4B; "+strings.Join(synth.RealNames(), ", ")+" only)")
	seed := fs.Int64("seed", 1, "random seed")
	byteExact := fs.Bool("byte-exact-mxfp4", false, "put a magnitude-6 code in every MXFP4 group, so re-encoding reproduces the bytes")
	var shard int64
	fs.Var(newSize(&shard, 0), "shard-size", "tensor bytes per file (default 5GB)")
	if code, ok := parseFlags(fs, args, 2); !ok {
		return code
	}
	a, err := synth.ByName(fs.Arg(0))
	if err != nil {
		return usageError(fs, err.Error())
	}
	if width == "real" {
		r, ok := synth.RealWidths(fs.Arg(0))
		if !ok {
			return usageError(fs, "--width real is for "+strings.Join(synth.RealNames(), ", "))
		}
		a = r
	}
	if layers > 0 {
		a.Layers = layers
	}
	if vocab > 0 {
		a.Vocab = vocab
	}
	if err := synth.Generate(fs.Arg(1), a, *seed, synth.Options{ShardBytes: shard, ByteExactMXFP4: *byteExact}); err != nil {
		fmt.Fprintf(stderr, "mapper synth: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s checkpoint (hidden %d, %d layers, vocab %d)\n", fs.Arg(1), strings.ReplaceAll(fs.Arg(0), "_", "-"), a.Hidden, a.Layers, a.Vocab)
	return 0
}
