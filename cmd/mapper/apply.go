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

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// convFlags are the flags apply and plan share.
type convFlags struct {
	to, variant     string
	workers         int
	memory          int64
	shardSize       int64
	format          string
	mappingMismatch string
	keep            []string
	like            likeRef
}

func (c *convFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.to, "to", "", "side to produce (default: the side the input is not)")
	fs.StringVar(&c.variant, "variant", "", "on export, the mapping variant to write (default: the one recorded at import)")
	c.workers = runtime.GOMAXPROCS(0)
	fs.Var(countFlag{&c.workers, 1}, "workers", "chunks computed at once, at least 1 (their writes to disk overlap further work)")
	mem := newSize(&c.memory, engine.DefaultMemory)
	mem.min, mem.why = minMemory, "one chunk's working memory"
	fs.Var(mem, "memory", "working-memory budget, at least "+formatSize(minMemory)+" (e.g. 512MiB, 4GiB); docs/performance.md says what it bounds")
	fs.Var(newSize(&c.shardSize, 0), "shard-size", "tensor bytes per output file (default: the side's default)")
	fs.Var(newFormat(&c.format), "format", "how errors are written to stderr: text, json or github (workflow annotations)")
	fs.Var(newChoice(&c.mappingMismatch, "refuse", "refuse", "allow"), "mapping-mismatch",
		"on export, when the mapping is not the one the import recorded (its name and sha256): refuse, or allow")
	fs.Var(keepFlag{&c.keep}, "keep", "on import (or of --like's config), carry this top-level config key although no rule maps it, at your own risk (repeatable; the plan notes it)")
	c.like.register(fs)
}

// options are the plan options; like is the --like directory, resolved.
func (c *convFlags) options(like string) engine.PlanOptions {
	return engine.PlanOptions{To: c.to, Variant: c.variant, Workers: c.workers, Memory: c.memory, ShardBytes: c.shardSize,
		AllowMappingMismatch: c.mappingMismatch == "allow", Keep: c.keep, Like: like}
}

// resolveInputs resolves the input (arg) and --like, and the mapping (see
// resolveMapping), reporting what goes wrong to eo.
func (c *convFlags) resolveInputs(mapping, arg string, ref *inputRef, eo *errorOut, stderr io.Writer) (in, like string, m *ir.Mapping, ok bool) {
	in, err := ref.resolve(arg, stderr)
	if err == nil {
		like, err = c.like.resolve(stderr)
	}
	if err != nil {
		eo.report(err)
		return "", "", nil, false
	}
	m, src, picked, err := resolveMapping(mapping, in, like)
	eo.src, eo.m = src, m
	if err != nil {
		eo.report(err)
		return "", "", nil, false
	}
	if picked != "" {
		fmt.Fprintln(stderr, picked)
	}
	return in, like, m, true
}

func newFlagSet(name, args string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", strings.TrimSpace("mapper "+name+" "+args))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses the command line of a command taking nargs arguments
// (-1: any number). When parsing ends the command it returns false and the
// exit code: 0 after --help, 2 after a usage error, which it reports with
// the command's usage (pflag, continuing on error, prints neither).
func parseFlags(fs *pflag.FlagSet, args []string, nargs int) (int, bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		return 0, false
	case err != nil:
		return usageError(fs, err.Error()), false
	case nargs == 0 && fs.NArg() > 0:
		return usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0))), false
	case nargs >= 0 && fs.NArg() != nargs:
		return usageError(fs, fmt.Sprintf("want %d arguments, got %d", nargs, fs.NArg())), false
	}
	return 0, true
}

// usageError prints what is wrong with a command line and the command's
// usage, and returns the usage exit status.
func usageError(fs *pflag.FlagSet, msg string) int {
	fmt.Fprintf(fs.Output(), "mapper %s: %s\n", fs.Name(), msg)
	fs.Usage()
	return 2
}

func runApply(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("apply", "MAPPING IN OUT (MAPPING a built-in name, a .map file or auto; IN a directory or ORG/NAME)", stderr)
	var cf convFlags
	cf.register(fs)
	var ref inputRef
	ref.register(fs)
	force := fs.Bool("force", false, "replace OUT if it exists and is a checkpoint directory (only checkpoint files, no subdirectory; see the README)")
	var progress, backendName string
	fs.Var(newChoice(&progress, "auto", "auto", "bar", "plain", "json", "none"), "progress", "progress output: auto, bar, plain, json, none")
	// auto is the default: it costs nothing without a CUDA driver or below
	// the work a GPU's start could pay back, and otherwise routes each kind
	// of transform to what measured faster (see selectBackend).
	fs.Var(newChoice(&backendName, "auto", backendNames...), "backend",
		"where heavy transforms run: cpu, cuda, or auto (each kind of transform where it measures faster, a GPU only for conversions large enough to pay for its start)")
	if code, ok := parseFlags(fs, args, 3); !ok {
		return code
	}
	if code, ok := cf.like.usage(fs); !ok {
		return code
	}
	eo := &errorOut{format: cf.format, stderr: stderr}
	in, like, m, ok := cf.resolveInputs(fs.Arg(0), fs.Arg(1), &ref, eo, stderr)
	if !ok {
		return 1
	}
	out := fs.Arg(2)
	// Lstat: a link, even a dangling one, is something that exists.
	if _, err := os.Lstat(out); err == nil && !*force {
		eo.report(fmt.Errorf("%s already exists; use --force to replace it", out))
		return 1
	}
	// Before planning, so that a refused output costs nothing; Execute checks
	// again.
	var also []string
	if like != "" {
		also = append(also, like)
	}
	if err := engine.CheckOutput(in, out, *force, also...); err != nil {
		d := diag.Diagnostic{Severity: diag.Error, Message: err.Error()}
		if errors.Is(err, safetensors.ErrNotReplaceable) {
			d.Hint = `--force replaces only a directory holding a checkpoint and nothing else; see "What it guarantees" in the README`
		}
		eo.write(diag.List{d})
		return 1
	}
	noteLeftovers(out, stderr)
	// Keep the heap near the budget: the executor's buffers are accounted,
	// this bounds what the garbage collector lets pile up beside them.
	debug.SetMemoryLimit(int64(cf.memory) + 256<<20)
	plan, err := engine.NewPlan(m, in, cf.options(like))
	if err != nil {
		eo.report(err)
		return 1
	}
	defer plan.Close()
	// Notes (a lossy quantization, a key carried for the way back) come
	// first, so that a user can stop a long run that is not what they want.
	for _, n := range plan.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	be, err := selectBackend(backendName, cf.workers, plan.HeavyBytes(), stderr)
	if err != nil {
		eo.report(err)
		return 2
	}
	defer be.Close()
	// SIGHUP too: a closed terminal must clean up like Ctrl-C.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rep, err := newReporter(progress, stderr)
	if err != nil {
		eo.report(err)
		return 2
	}
	stats, err := plan.Execute(ctx, engine.ExecOptions{Output: out, Force: *force, Backend: be, Progress: rep.event})
	rep.finish(err == nil)
	if err != nil {
		eo.report(err)
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
	// The names come from the disk: escaped where they would not print as
	// themselves, in the list and in the command alike.
	fmt.Fprintf(stderr, "note: %s: left beside it by earlier runs that did not finish (killed, or still running): %s\n", out, strings.Join(quote.Names(left), ", "))
	fmt.Fprintf(stderr, "note: if no other mapper run is writing %s, remove them with: rm -r -- %s\n", out, strings.Join(quoted, " "))
}

// shellQuote quotes s for a POSIX shell when it holds anything but the
// characters that never need it. A name that would not print as itself (a
// control character, invalid UTF-8) is written as $'...' with the escapes
// quote.Name uses, so that the command is safe to print and still names the
// directory (bash, zsh, ksh and POSIX.1-2024 shells read $'...').
func shellQuote(s string) string {
	if q := quote.Name(s); q != s {
		return "$'" + strings.ReplaceAll(q[1:len(q)-1], "'", `\'`) + "'"
	}
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
	if code, ok := cf.like.usage(fs); !ok {
		return code
	}
	eo := &errorOut{format: cf.format, stderr: stderr}
	in, like, m, ok := cf.resolveInputs(fs.Arg(0), fs.Arg(1), &ref, eo, stderr)
	if !ok {
		return 1
	}
	plan, err := engine.NewPlan(m, in, cf.options(like))
	if err != nil {
		eo.report(err)
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
		eo.report(err)
		return 1
	}
	return 0
}
