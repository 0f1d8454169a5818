package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// The scripts under testdata/script (go test ./cmd/mapper -run TestScripts/NAME;
// -update-scripts rewrites their cmp targets) run the mapper command, a copy of this
// test binary, as a separate process (testscript installs it in $PATH), so
// exit codes, signals and files are the real ones.
//
// Commands besides testscript's own:
//
//	mapper ARGS...                  the command under test
//	gen ARCH DIR [flags]            write a synthetic HF checkpoint (synth.Generate)
//	exitcode N PROG ARGS...         run PROG, expect exit status N
//	interrupt [-SIG] DIR PROG ARGS... run PROG (apply with --progress json), send it
//	                                SIGINT (or SIGSIG: -HUP, -TERM, -KILL) once it
//	                                has created its temporary directory beside
//	                                DIR, and report how it exited
//	bind SRC DST                    bind-mount SRC at DST until the script ends
//	                                (guard it with [!bindmount] skip: mounting
//	                                needs root and may be refused even then)
//	ls DIR                          print DIR's entries, hidden ones included
//	truncate FILE SIZE              cut FILE to SIZE bytes (-N: N bytes shorter)
//	set-config DIR KEY JSON|-       set (or with -, delete) a top-level key of config.json
//	drop-tensor DIR NAME            remove a tensor from DIR/model.safetensors
//	add-tensor DIR NAME DTYPE SHAPE add a tensor (SHAPE like 4x8) to DIR/model.safetensors
//	reshape-tensor DIR NAME SHAPE   give a tensor another shape, same dtype, new bytes
//	drop-record [-steps N] DIR      rewrite DIR/metadata.yaml without metadata.mapper,
//	                                as Fast-LLM saves a checkpoint again (with
//	                                -steps, after N training steps)
//	json FILE                       parse FILE as JSON (nothing may follow the value) and
//	                                print each leaf as PATH VALUE, one a line, keys sorted
//
// set-config's KEY and add-tensor's NAME may be Go string literals
// ("a\x1b[2J"), for the characters a script cannot type.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mapper": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
		"gen":    func() { os.Exit(genMain(os.Args[1:], os.Stderr)) },
	})
}

var updateScripts = flag.Bool("update-scripts", false, "rewrite the cmp targets of testdata/script from what the commands print")

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       *updateScripts,
		RequireExplicitExec: false,
		Condition:           scriptCondition,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":          scriptExitCode,
			"interrupt":         scriptInterrupt,
			"bind":              scriptBind,
			"ls":                scriptLs,
			"truncate":          scriptTruncate,
			"set-config":        scriptSetConfig,
			"set-file-metadata": scriptSetFileMetadata,
			"reformat-config":   scriptReformatConfig,
			"drop-tensor":       scriptDropTensor,
			"add-tensor":        scriptAddTensor,
			"reshape-tensor":    scriptReshapeTensor,
			"json":              scriptJSON,
			"drop-record":       scriptDropRecord,
		},
	})
}

// genMain is `gen ARCH DIR [flags]`: a synthetic checkpoint of one of
// synth's small architectures, with sizes overridable.
func genMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Int64("seed", 1, "random seed")
	shard := fs.Int64("shard-bytes", 0, "tensor bytes per shard (0: one file)")
	exact := fs.Bool("byte-exact", false, "MXFP4 groups that re-encode to the same bytes")
	hidden := fs.Int("hidden", 0, "hidden size (0: the architecture's)")
	inter := fs.Int("inter", 0, "intermediate size")
	layers := fs.Int("layers", 0, "layers")
	experts := fs.Int("experts", 0, "experts")
	vocab := fs.Int("vocab", 0, "vocabulary")
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: gen ARCH DIR [flags]")
		return 2
	}
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: gen ARCH DIR [flags]")
		return 2
	}
	a, err := synth.ByName(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, o := range []struct {
		v   int
		dst *int
	}{{*hidden, &a.Hidden}, {*inter, &a.Intermediate}, {*layers, &a.Layers}, {*experts, &a.Experts}, {*vocab, &a.Vocab}} {
		if o.v > 0 {
			*o.dst = o.v
		}
	}
	if err := synth.Generate(args[1], a, *seed, synth.Options{ShardBytes: *shard, ByteExactMXFP4: *exact}); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// command builds an exec.Cmd for PROG (looked up in $PATH, where testscript
// put mapper) running in the script's directory and environment.
func scriptCommand(ts *testscript.TestScript, prog string, args ...string) *exec.Cmd {
	path, err := exec.LookPath(prog)
	ts.Check(err)
	cmd := exec.Command(path, args...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = append(os.Environ(), "WORK="+ts.Getenv("WORK"), "HOME="+ts.Getenv("HOME"), "TMPDIR="+ts.Getenv("TMPDIR"))
	return cmd
}

// scriptExitReport says how a command ended: "exit status N", or "killed
// by signal NAME" when a signal ended it.
func scriptExitReport(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
	}
	return fmt.Sprintf("exit status %d", scriptExitStatus(err))
}

func scriptExitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func scriptExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	cmd := scriptCommand(ts, args[1], args[2:]...)
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	err = cmd.Run()
	if got := scriptExitStatus(err); got != want {
		ts.Fatalf("%s exited with status %d (%v), want %d", args[1], got, err, want)
	}
}

// scriptInterrupt runs PROG ARGS... (an apply writing its progress as JSON to
// stderr), waits for the start event and for the temporary directory beside
// the output DIR, sends SIGINT (or the signal a -SIG first argument names),
// and prints how the command exited and its stderr. The program blocks
// writing progress into the pipe while this side does not read, so it cannot
// finish between the start event and the signal.
func scriptInterrupt(ts *testscript.TestScript, neg bool, args []string) {
	sig := syscall.SIGINT
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		signals := map[string]syscall.Signal{"-INT": syscall.SIGINT, "-HUP": syscall.SIGHUP, "-TERM": syscall.SIGTERM, "-KILL": syscall.SIGKILL}
		s, ok := signals[args[0]]
		if !ok {
			ts.Fatalf("interrupt: unknown signal %s (known: -INT, -HUP, -TERM, -KILL)", args[0])
		}
		sig, args = s, args[1:]
	}
	if neg || len(args) < 2 {
		ts.Fatalf("usage: interrupt [-SIG] OUTDIR PROG ARGS...")
	}
	out := ts.MkAbs(args[0])
	cmd := scriptCommand(ts, args[1], args[2:]...)
	pipe, err := cmd.StderrPipe()
	ts.Check(err)
	cmd.Stdout = ts.Stdout()
	ts.Check(cmd.Start())
	r := bufio.NewReader(pipe)
	var log strings.Builder
	for {
		line, err := r.ReadString('\n')
		log.WriteString(line)
		if err != nil {
			cmd.Wait()
			ts.Fatalf("%s ended before it started converting:\n%s", args[1], log.String())
		}
		if strings.Contains(line, `"event":"start"`) {
			break
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*"))
	if len(tmps) != 1 {
		ts.Fatalf("no temporary directory beside %s once converting (found %q)", out, tmps)
	}
	ts.Check(cmd.Process.Signal(sig))
	// Let the signal land while the program may be blocked on the pipe.
	time.Sleep(100 * time.Millisecond)
	rest, _ := io.ReadAll(r)
	log.Write(rest)
	err = cmd.Wait()
	fmt.Fprintln(ts.Stdout(), scriptExitReport(err))
	// The progress lines are noise; keep what is not an event.
	for _, l := range strings.Split(log.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, `{"event":`) {
			fmt.Fprintln(ts.Stderr(), l)
		}
	}
}

// canBindMount reports whether this process may bind-mount (root with
// CAP_SYS_ADMIN, outside a sandbox that forbids it): the bindmount condition.
var canBindMount = sync.OnceValue(func() bool {
	dir, err := os.MkdirTemp("", "mapper-bindmount-*")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if os.Mkdir(src, 0o755) != nil || os.Mkdir(dst, 0o755) != nil {
		return false
	}
	if unix.Mount(src, dst, "", unix.MS_BIND, "") != nil {
		return false
	}
	return unix.Unmount(dst, unix.MNT_DETACH) == nil
})

func scriptCondition(cond string) (bool, error) {
	if cond == "bindmount" {
		return canBindMount(), nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// scriptBind bind-mounts SRC at DST (a file over a file, or a directory over
// a directory, created if missing) and unmounts it when the script ends.
func scriptBind(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: bind SRC DST")
	}
	src, dst := ts.MkAbs(args[0]), ts.MkAbs(args[1])
	if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
		ts.Check(os.MkdirAll(dst, 0o755))
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		ts.Fatalf("bind %s %s: %v", src, dst, err)
	}
	ts.Defer(func() {
		if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil {
			ts.Logf("unmounting %s: %v", dst, err)
		}
	})
}

func scriptLs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: ls DIR")
	}
	es, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	for _, e := range es {
		fmt.Fprintln(ts.Stdout(), e.Name())
	}
}

func scriptTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: truncate FILE SIZE")
	}
	path := ts.MkAbs(args[0])
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	if n < 0 {
		st, err := os.Stat(path)
		ts.Check(err)
		n += st.Size()
	}
	ts.Check(os.Truncate(path, n))
}

func scriptSetConfig(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: set-config DIR KEY JSON|-")
	}
	path := filepath.Join(ts.MkAbs(args[0]), "config.json")
	data, err := os.ReadFile(path)
	ts.Check(err)
	v, err := pyjson.Decode(data)
	ts.Check(err)
	cfg := v.(map[string]any)
	key := scriptString(ts, args[1])
	if args[2] == "-" {
		delete(cfg, key)
	} else {
		x, err := pyjson.Decode([]byte(args[2]))
		ts.Check(err)
		cfg[key] = x
	}
	out, err := pyjson.Encode(cfg, 2, true)
	ts.Check(err)
	ts.Check(os.WriteFile(path, append(out, '\n'), 0o644))
}

// scriptDropRecord is drop-record [-steps N] DIR: see dropRecord.
func scriptDropRecord(ts *testscript.TestScript, neg bool, args []string) {
	steps := -1
	if len(args) == 3 && args[0] == "-steps" {
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		steps, args = n, args[2:]
	}
	if neg || len(args) != 1 {
		ts.Fatalf("usage: drop-record [-steps N] DIR")
	}
	ts.Check(dropRecord(ts.MkAbs(args[0]), steps))
}

// dropRecord rewrites dir/metadata.yaml without metadata.mapper, the record
// of the import: what Fast-LLM leaves when it saves the checkpoint again
// (after training, always). steps >= 0 also writes metadata.completed_steps,
// the count of training steps such a save records.
func dropRecord(dir string, steps int) error {
	path := filepath.Join(dir, fastllm.MetadataFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	md, err := fastllm.ParseMetadata(data)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if md.Carried == nil {
		return fmt.Errorf("%s has no metadata.mapper", path)
	}
	out, err := fastllm.EncodeMetadata(md.Version, md.Config, md.StateIndex, nil)
	if err != nil {
		return err
	}
	if steps >= 0 {
		if out, err = setCompletedSteps(out, steps); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
	}
	return os.WriteFile(path, out, 0o644)
}

// setCompletedSteps adds metadata.completed_steps to the metadata.yaml
// text data (EncodeMetadata writes no training state).
func setCompletedSteps(data []byte, steps int) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "metadata" {
			top.Content[i+1].Content = append(top.Content[i+1].Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "completed_steps"},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(steps)})
			var buf bytes.Buffer
			enc := yaml.NewEncoder(&buf)
			enc.SetIndent(2)
			if err := enc.Encode(&doc); err != nil {
				return nil, err
			}
			if err := enc.Close(); err != nil {
				return nil, err
			}
			return buf.Bytes(), nil
		}
	}
	return nil, fmt.Errorf("no metadata section")
}

// scriptRewriteTensors rewrites DIR/model.safetensors through edit, which gets
// the entries and their bytes and may change both.
func scriptRewriteTensors(ts *testscript.TestScript, dir string, edit func(es []safetensors.Entry, data map[string][]byte) []safetensors.Entry) {
	scriptRewrite(ts, dir, edit, func(m map[string]string) map[string]string { return m })
}

// scriptRewrite is scriptRewriteTensors that also changes the file's
// __metadata__ through meta.
func scriptRewrite(ts *testscript.TestScript, dir string, edit func(es []safetensors.Entry, data map[string][]byte) []safetensors.Entry, meta func(map[string]string) map[string]string) {
	path := filepath.Join(ts.MkAbs(dir), "model.safetensors")
	f, err := safetensors.Open(path)
	ts.Check(err)
	var es []safetensors.Entry
	data := map[string][]byte{}
	for _, t := range f.Tensors {
		es = append(es, safetensors.Entry{Name: t.Name, DType: t.DType, Shape: t.Shape.Clone()})
		b, err := f.Data(t.Name)
		ts.Check(err)
		data[t.Name] = append([]byte(nil), b...)
	}
	md := meta(f.Metadata)
	ts.Check(f.Close())
	es = edit(es, data)
	l, err := safetensors.NewLayout(es, md)
	ts.Check(err)
	tmp := path + ".new"
	w, err := safetensors.Create(tmp, l)
	ts.Check(err)
	for _, e := range es {
		ts.Check(w.WriteAt(e.Name, 0, data[e.Name]))
	}
	ts.Check(w.Finish())
	ts.Check(os.Rename(tmp, path))
}

// scriptString reads a Go string literal, or takes any other argument as
// it is.
func scriptString(ts *testscript.TestScript, arg string) string {
	if !strings.HasPrefix(arg, `"`) {
		return arg
	}
	s, err := strconv.Unquote(arg)
	ts.Check(err)
	return s
}

func scriptParseShape(ts *testscript.TestScript, s string) tensor.Shape {
	var out tensor.Shape
	for _, d := range strings.Split(s, "x") {
		n, err := strconv.Atoi(d)
		ts.Check(err)
		out = append(out, n)
	}
	return out
}

// scriptSetFileMetadata sets the __metadata__ of DIR/model.safetensors to
// a JSON object of strings, or removes it (-).
func scriptSetFileMetadata(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: set-file-metadata DIR JSON|-")
	}
	var md map[string]string
	if args[1] != "-" {
		ts.Check(json.Unmarshal([]byte(args[1]), &md))
	}
	scriptRewrite(ts, args[0], func(es []safetensors.Entry, _ map[string][]byte) []safetensors.Entry { return es },
		func(map[string]string) map[string]string { return md })
}

// scriptReformatConfig writes DIR/config.json again with the same content,
// indented by 4 and without a trailing newline.
func scriptReformatConfig(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: reformat-config DIR")
	}
	path := filepath.Join(ts.MkAbs(args[0]), "config.json")
	data, err := os.ReadFile(path)
	ts.Check(err)
	v, err := pyjson.DecodeOrdered(data)
	ts.Check(err)
	out, err := pyjson.Encode(v, 4, false)
	ts.Check(err)
	ts.Check(os.WriteFile(path, out, 0o644))
}

func scriptDropTensor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: drop-tensor DIR NAME")
	}
	scriptRewriteTensors(ts, args[0], func(es []safetensors.Entry, data map[string][]byte) []safetensors.Entry {
		for i, e := range es {
			if e.Name == args[1] {
				return append(es[:i], es[i+1:]...)
			}
		}
		ts.Fatalf("no tensor %s", args[1])
		return nil
	})
}

func scriptAddTensor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: add-tensor DIR NAME DTYPE SHAPE")
	}
	dt, err := tensor.ParseDType(args[2])
	ts.Check(err)
	e := safetensors.Entry{Name: scriptString(ts, args[1]), DType: dt, Shape: scriptParseShape(ts, args[3])}
	n, err := e.Size()
	ts.Check(err)
	scriptRewriteTensors(ts, args[0], func(es []safetensors.Entry, data map[string][]byte) []safetensors.Entry {
		data[e.Name] = make([]byte, n)
		return append(es, e)
	})
}

func scriptReshapeTensor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: reshape-tensor DIR NAME SHAPE")
	}
	shape := scriptParseShape(ts, args[2])
	scriptRewriteTensors(ts, args[0], func(es []safetensors.Entry, data map[string][]byte) []safetensors.Entry {
		for i, e := range es {
			if e.Name == args[1] {
				es[i].Shape = shape
				n, err := es[i].Size()
				ts.Check(err)
				data[e.Name] = make([]byte, n)
				return es
			}
		}
		ts.Fatalf("no tensor %s", args[1])
		return nil
	})
}

// scriptJSON prints the leaves of a JSON file, so that a script can check
// that machine-readable output parses and holds the fields it should:
//
//	[0].line 8
//	[0].message "undefined name x"
func scriptJSON(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: json FILE")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.UseNumber()
	var v any
	ts.Check(dec.Decode(&v))
	if _, err := dec.Token(); err != io.EOF {
		ts.Fatalf("%s: more after the JSON value", args[0])
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(path+"."+k, x[k])
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		default:
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			ts.Check(enc.Encode(x))
			fmt.Fprintf(ts.Stdout(), "%s %s", path, b.String())
		}
	}
	walk("", v)
}
