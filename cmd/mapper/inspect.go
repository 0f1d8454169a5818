package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/quote"
)

func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("inspect", "DIR|ORG/NAME", stderr)
	var ref inputRef
	ref.register(fs)
	if code, ok := parseFlags(fs, args, 1); !ok {
		return code
	}
	dir, err := ref.resolve(fs.Arg(0), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	src, err := engine.OpenAny(dir)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	defer src.Close()
	var total int64
	for _, t := range src.Tensors {
		total += t.Info.Size()
	}
	fmt.Fprintf(stdout, "%s: %s checkpoint, %d tensors, %s in %d files\n", src.Dir, src.Format, len(src.Tensors), engine.FormatBytes(total), len(src.Checkpoint.Files))
	if src.Version != "" {
		fmt.Fprintf(stdout, "written by %s %s\n", src.Format, src.Version)
	}
	if src.Carried != nil {
		variant := ""
		if src.Carried.Variant != "" {
			variant = fmt.Sprintf(" (variant %q)", src.Carried.Variant)
		}
		fmt.Fprintf(stdout, "converted by mapper from %s with mapping %s%s\n", quote.Name(src.Carried.From), quote.Name(src.Carried.Mapping), variant)
	}
	for _, n := range src.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	// The config in its side's own syntax: JSON for config.json, YAML for
	// metadata.yaml's config.base_model.
	side, err := format.Lookup(src.Format)
	if err == nil {
		var cfg []byte
		if cfg, err = side.RenderConfig(src.Config); err == nil {
			text := "  " + strings.ReplaceAll(strings.TrimSuffix(string(cfg), "\n"), "\n", "\n  ")
			fmt.Fprintf(stdout, "\nconfig (%s):\n%s\n\ntensors:\n", side.ConfigDoc(src.Dir), text)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	// The names below are the checkpoint author's: escaped where they would
	// not print as themselves (the config's encoders escape it).
	for _, t := range src.Tensors {
		fmt.Fprintf(stdout, "  %-60s %-8s %-22v %10s  %s\n", quote.Name(t.Name), t.DType, t.Shape, engine.FormatBytes(t.Info.Size()), quote.Name(fileBase(t.File.Path)))
	}
	for _, f := range src.SideFiles {
		fmt.Fprintf(stdout, "side file: %s\n", quote.Name(f))
	}
	return 0
}

func fileBase(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("diff", "A B (each a directory or ORG/NAME)", stderr)
	all := fs.Bool("all", false, "list identical tensors (and with --files, files) too")
	files := fs.Bool("files", false, "list the files that differ (a shard's __metadata__, config.json's bytes, a side file...), and let them count in the exit status")
	var ref inputRef
	ref.register(fs)
	if code, ok := parseFlags(fs, args, 2); !ok {
		return code
	}
	a, err := ref.resolve(fs.Arg(0), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	b, err := ref.resolve(fs.Arg(1), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	rep, err := engine.Diff(a, b)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	counts := map[engine.DiffKind]int{}
	for _, d := range rep.Tensors {
		counts[d.Kind]++
		if d.Kind == engine.Identical && !*all {
			continue
		}
		line := fmt.Sprintf("%-14s %s", d.Kind, quote.Name(d.Name))
		if d.Kind == engine.Different {
			line += fmt.Sprintf("  max abs difference %g", d.MaxAbs)
		}
		if d.Detail != "" {
			line += "  (" + d.Detail + ")"
		}
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "%d tensors: %d identical, %d equal values, %d different, %d shape differs, %d only in A, %d only in B\n",
		len(rep.Tensors), counts[engine.Identical], counts[engine.EqualValues], counts[engine.Different], counts[engine.ShapeDiffers], counts[engine.OnlyInA], counts[engine.OnlyInB])
	// The files: always a summary line, so that a difference the tensors
	// do not show (what cmp would see) is never silent; --files lists them
	// and makes them count.
	if rep.SideA != rep.SideB {
		fmt.Fprintf(stdout, "files: not compared (a %s and a %s checkpoint)\n", rep.SideA, rep.SideB)
	} else {
		fileCounts := map[engine.FileKind]int{}
		for _, d := range rep.Files {
			fileCounts[d.Kind]++
			if !*files || (d.Kind == engine.FileIdentical && !*all) {
				continue
			}
			line := fmt.Sprintf("file %-10s %s", d.Kind, quote.Name(d.Name))
			if d.Detail != "" {
				line += "  (" + d.Detail + ")"
			}
			fmt.Fprintln(stdout, line)
		}
		line := fmt.Sprintf("%d files: %d identical, %d differ, %d only in A, %d only in B",
			len(rep.Files), fileCounts[engine.FileIdentical], fileCounts[engine.FileDiffers], fileCounts[engine.FileOnlyInA], fileCounts[engine.FileOnlyInB])
		if !rep.SameFiles() && !*files {
			line += " (--files lists them)"
		}
		fmt.Fprintln(stdout, line)
	}
	if !rep.Same() || (*files && !rep.SameFiles()) {
		return 1
	}
	return 0
}
