package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// convFlags are the flags apply and plan share.
type convFlags struct {
	to, variant string
	workers     int
	memory      sizeFlag
	shardSize   sizeFlag
}

func (c *convFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.to, "to", "", "side to produce (default: the side the input is not)")
	fs.StringVar(&c.variant, "variant", "", "on export, the mapping variant to write (default: the one recorded at import)")
	fs.IntVar(&c.workers, "workers", runtime.GOMAXPROCS(0), "chunks computed at once (their writes to disk overlap further work)")
	c.memory = sizeFlag(engine.DefaultMemory)
	fs.Var(&c.memory, "memory", "working-memory budget (e.g. 512MiB, 4GiB)")
	fs.Var(&c.shardSize, "shard-size", "tensor bytes per output file (default: the side's default)")
}

func (c *convFlags) options() engine.PlanOptions {
	return engine.PlanOptions{To: c.to, Variant: c.variant, Workers: max(c.workers, 1), Memory: int64(c.memory), ShardBytes: int64(c.shardSize)}
}

func newFlagSet(name, args string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mapper %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and returns the exit code to use when parsing ends the command.
func parseFlags(fs *pflag.FlagSet, args []string, nargs int) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() != nargs {
		fs.Usage()
		return 2, false
	}
	return 0, true
}

func runApply(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("apply", "MAPPING IN OUT (MAPPING a built-in name, a .map file or auto; IN a directory or ORG/NAME)", stderr)
	var cf convFlags
	cf.register(fs)
	var ref inputRef
	ref.register(fs)
	force := fs.Bool("force", false, "replace OUT if it exists and is a checkpoint directory (only checkpoint files, no subdirectory; see the README)")
	progress := fs.String("progress", "auto", "progress output: auto, bar, plain, json, none")
	// The default stays cpu until the CUDA backend has passed bench/gpu.sh on
	// real hardware; auto and cuda are there for whoever runs that check.
	backendName := fs.String("backend", "cpu", "where heavy transforms run: cpu, auto (a GPU when one is usable) or cuda")
	if code, ok := parseFlags(fs, args, 3); !ok {
		return code
	}
	in, err := ref.resolve(fs.Arg(1), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	m, ok := resolveMapping(fs.Arg(0), in, stderr)
	if !ok {
		return 1
	}
	out := fs.Arg(2)
	// Lstat: a link, even a dangling one, is something that exists.
	if _, err := os.Lstat(out); err == nil && !*force {
		fmt.Fprintf(stderr, "mapper: %s already exists; use --force to replace it\n", out)
		return 1
	}
	// Before planning, so that a refused output costs nothing; Execute checks
	// again.
	if err := engine.CheckOutput(in, out, *force); err != nil {
		if errors.Is(err, safetensors.ErrNotReplaceable) {
			fmt.Fprintf(stderr, "mapper: %v\n(--force replaces only a directory holding a checkpoint and nothing else; see \"What it guarantees\" in the README)\n", err)
		} else {
			fmt.Fprintf(stderr, "mapper: %v\n", err)
		}
		return 1
	}
	noteLeftovers(out, stderr)
	// Keep the heap near the budget: the executor's buffers are accounted,
	// this bounds what the garbage collector lets pile up beside them.
	debug.SetMemoryLimit(int64(cf.memory) + 256<<20)
	plan, err := engine.NewPlan(m, in, cf.options())
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	defer plan.Close()
	// Notes (a lossy quantization, a key carried for the way back) come
	// first, so that a user can stop a long run that is not what they want.
	for _, n := range plan.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	be, err := selectBackend(*backendName, cf.workers, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 2
	}
	defer be.Close()
	// SIGHUP too: a closed terminal must clean up like Ctrl-C.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rep, err := newReporter(*progress, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 2
	}
	stats, err := plan.Execute(ctx, engine.ExecOptions{Output: out, Force: *force, Backend: be, Progress: rep.event})
	rep.finish(err == nil)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s -> %s: %d tensors, %s written in %.1fs (%s %s -> %s, backend %s)\n",
		in, out, stats.Tensors, engine.FormatBytes(stats.BytesWritten), stats.Duration.Seconds(),
		plan.Direction, plan.From, plan.To, be.Name())
	return 0
}

// noteLeftovers names the temporary and moved-aside directories that
// earlier runs writing out left beside it (a run killed outright cannot
// remove its own) and how to remove them. It does not remove them: another
// run writing out may still be going.
func noteLeftovers(out string, stderr io.Writer) {
	left, err := safetensors.Leftovers(out)
	if err != nil {
		fmt.Fprintf(stderr, "note: %v\n", err)
		return
	}
	if len(left) == 0 {
		return
	}
	quoted := make([]string, len(left))
	for i, l := range left {
		quoted[i] = shellQuote(l)
	}
	fmt.Fprintf(stderr, "note: %s: left beside it by earlier runs that did not finish (killed, or still running): %s\n", out, strings.Join(left, ", "))
	fmt.Fprintf(stderr, "note: if no other mapper run is writing %s, remove them with: rm -r -- %s\n", out, strings.Join(quoted, " "))
}

// shellQuote quotes s for a POSIX shell when it holds anything but the
// characters that never need it.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("plan", "MAPPING IN (MAPPING a built-in name, a .map file or auto; IN a directory or ORG/NAME)", stderr)
	var cf convFlags
	cf.register(fs)
	var ref inputRef
	ref.register(fs)
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	if code, ok := parseFlags(fs, args, 2); !ok {
		return code
	}
	in, err := ref.resolve(fs.Arg(1), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	m, ok := resolveMapping(fs.Arg(0), in, stderr)
	if !ok {
		return 1
	}
	plan, err := engine.NewPlan(m, in, cf.options())
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	defer plan.Close()
	s := plan.Summarize()
	if *asJSON {
		err = s.WriteJSON(stdout)
	} else {
		err = s.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return 1
	}
	return 0
}
