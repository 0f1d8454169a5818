// Command mapper converts model checkpoints between layouts (Hugging Face,
// Fast-LLM) from declarative .map rule files, in either direction.
//
// Usage:
//
//	mapper demo [ARCH]                convert a built-in example (GPT-OSS by default) there and back
//	mapper apply MAPPING IN OUT       convert a checkpoint (MAPPING auto: the one IN needs)
//	mapper plan MAPPING IN            show what apply would do
//	mapper inspect DIR                list a checkpoint's tensors and config
//	mapper diff [--files] A B         compare two checkpoints tensor by tensor (and file by file)
//	mapper lint [FILES|DIRS]          check .map files
//	mapper fmt [-l] [-w] [FILES|DIRS] format .map files
//	mapper synth ARCH DIR             write a synthetic checkpoint (gpt_oss, llama, ...)
//	mapper version                    print the version and VCS revision (also --version)
//
// Exit status: 0 success, 1 failure (or differences, or diagnostics), 2 usage.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

type command struct {
	run     func(args []string, stdout, stderr io.Writer) int
	summary string
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"demo":    {runDemo, "convert a built-in example to Fast-LLM and back, and check it: demo [ARCH] (default gpt_oss, MXFP4)"},
		"apply":   {runApply, "convert a checkpoint: apply MAPPING IN OUT (MAPPING auto: detected from IN)"},
		"plan":    {runPlan, "show what apply would do, without writing: plan MAPPING IN"},
		"inspect": {runInspect, "list a checkpoint's tensors and config: inspect DIR"},
		"diff":    {runDiff, "compare two checkpoints tensor by tensor, and file by file: diff [--files] A B"},
		"lint":    {runLint, "check .map files: lint [FILES|DIRS] (default: the built-in mappings)"},
		"fmt":     {runFmt, "format .map files: fmt [-l] [-w] [FILES|DIRS]"},
		"synth":   {runSynth, "write a synthetic HF checkpoint for trying things out: synth ARCH DIR"},
		"version": {runVersion, "print mapper's version and VCS revision"},
	}
}

func main() {
	os.Exit(profiled(func() int { return run(os.Args[1:], os.Stdout, os.Stderr) }))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mapper: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "mapper converts model checkpoints between layouts from .map rule files.\n\nUsage: mapper COMMAND [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'mapper COMMAND --help' for a command's flags.")
}
