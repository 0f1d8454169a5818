package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/quote"
)

// runDemo makes a small GPT-OSS MXFP4 checkpoint (or one of the
// architecture named), converts it to Fast-LLM and back with the built-in
// mapping of its family, and checks that nothing was lost.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[ARCH] (default gpt_oss; one of "+strings.Join(synth.Names(), ", ")+")", stderr)
	keep := fs.Bool("keep", false, "keep the demo's directories and print where they are")
	if code, ok := parseFlags(fs, args, -1); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return usageError(fs, fmt.Sprintf("want at most 1 argument, got %d", fs.NArg()))
	}
	name := "gpt_oss"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	arch, err := synth.ByName(name)
	if err != nil {
		return usageError(fs, err.Error())
	}
	if err := demo(stdout, arch, *keep); err != nil {
		fmt.Fprintf(stderr, "mapper demo: %v\n", err)
		return 1
	}
	return 0
}

func demo(w io.Writer, arch synth.Arch, keep bool) error {
	root, err := os.MkdirTemp("", "mapper-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(root)
	}
	hfDir, fastDir, backDir := filepath.Join(root, "hf"), filepath.Join(root, "fast_llm"), filepath.Join(root, "hf_back")

	if arch.Family == synth.GPTOSS && arch.MXFP4 {
		arch.Hidden, arch.Intermediate, arch.Layers, arch.Experts, arch.Vocab = 256, 256, 4, 8, 1024
		fmt.Fprintf(w, "mapper demo: GPT-OSS with MXFP4 experts (hidden %d, %d layers alternating sliding/full, %d experts, vocab %d)\n\n",
			arch.Hidden, arch.Layers, arch.Experts, arch.Vocab)
	} else {
		fmt.Fprintf(w, "mapper demo: %s (hidden %d, %d layers, vocab %d)\n\n", arch.Family, arch.Hidden, arch.Layers, arch.Vocab)
	}
	t0 := time.Now()
	// Every 32-value group holds a code of magnitude 6, so re-encoding the
	// experts on the way back reproduces their bytes, not only their values.
	if err := synth.Generate(hfDir, arch, 1, synth.Options{ByteExactMXFP4: true}); err != nil {
		return fmt.Errorf("generating the checkpoint: %w", err)
	}
	fmt.Fprintf(w, "1. generated an HF checkpoint           %s  (%.2fs)\n", describeDir(hfDir), time.Since(t0).Seconds())

	// A family is named as its mapping.
	m, _, err := loadMapping(string(arch.Family))
	if err != nil {
		return fmt.Errorf("the built-in %s mapping does not check: %w", arch.Family, err)
	}
	convert := func(step int, in, out, what string) error {
		t := time.Now()
		plan, err := engine.NewPlan(m, in, engine.PlanOptions{Workers: 2})
		if err != nil {
			return err
		}
		defer plan.Close()
		stats, err := plan.Execute(context.Background(), engine.ExecOptions{Output: out})
		if err != nil {
			return err
		}
		variant := ""
		if plan.Variant != "" {
			variant = ", variant " + plan.Variant
		}
		fmt.Fprintf(w, "%d. %-36s %s  (%s %s -> %s%s, %.2fs, peak working memory %s)\n", step, what, describeDir(out),
			plan.Direction, plan.From, plan.To, variant, time.Since(t).Seconds(), engine.FormatBytes(stats.PeakLive))
		return nil
	}
	if err := convert(2, hfDir, fastDir, "converted to Fast-LLM"); err != nil {
		return err
	}
	if err := convert(3, fastDir, backDir, "converted back to HF"); err != nil {
		return err
	}

	rep, err := engine.Diff(hfDir, backDir)
	if err != nil {
		return err
	}
	identical := 0
	for _, d := range rep.Tensors {
		if d.Kind == engine.Identical {
			identical++
		}
	}
	fmt.Fprintf(w, "\nchecks:\n  tensors identical byte for byte:         %d of %d\n", identical, len(rep.Tensors))
	failed := identical != len(rep.Tensors)
	// Every file, shards and config included, as `mapper diff --files`.
	sameFiles := 0
	for _, f := range rep.Files {
		if f.Kind == engine.FileIdentical {
			sameFiles++
		}
	}
	fmt.Fprintf(w, "  %-40s %d of %d\n", "files identical byte for byte:", sameFiles, len(rep.Files))
	failed = failed || len(rep.Files) == 0 || !rep.SameFiles()
	if keep {
		fmt.Fprintf(w, "\ndirectories kept under %s\n", root)
	}
	if failed {
		for _, d := range rep.Tensors {
			if d.Kind != engine.Identical {
				fmt.Fprintf(w, "  %s: %s %s\n", quote.Name(d.Name), d.Kind, d.Detail)
			}
		}
		for _, f := range rep.Files {
			if f.Kind != engine.FileIdentical {
				fmt.Fprintf(w, "  %s: %s %s\n", quote.Name(f.Name), f.Kind, f.Detail)
			}
		}
		return fmt.Errorf("the round trip lost something")
	}
	fmt.Fprintf(w, "\nverdict: HF -> Fast-LLM -> HF is lossless (total %.2fs)\n", time.Since(t0).Seconds())
	return nil
}

// describeDir says how many files and bytes a directory holds.
func describeDir(dir string) string {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return fmt.Sprintf("%d files, %s", len(ents), engine.FormatBytes(n))
}
