package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocTranscripts runs the transcripts of docs/common-tasks.md, which
// quotes real output: every plain fenced block (no language) that starts
// with a `$ ` line is a series of `$ mapper ARGS` commands, each followed by
// what it prints (stdout and stderr as a terminal shows them, interleaved).
// The commands run in order in one directory, prepared as the page says its
// files were made (docPrepare). Each output must equal the page's lines
// except for docVarying and docProgress, and a line that is only "..."
// (indented or not) stands for one or more lines the page leaves out.
// -update-docs rewrites the blocks that differ from what the commands print,
// keeping the page's "..." lines where they still stand for something.
//
// The page's checkpoint has Llama-3-8B's real widths but one layer and a
// small vocabulary, so that the test takes a few seconds and about 2 GiB of
// temporary disk.
func TestDocTranscripts(t *testing.T) {
	const page = "docs/common-tasks.md"
	text, err := os.ReadFile(filepath.Join("../..", page))
	if err != nil {
		t.Fatal(err)
	}
	// The page says how its checkpoint was made; it must be the one made here.
	if prose := strings.Join(strings.Fields(string(text)), " "); !strings.Contains(prose, "`mapper "+strings.Join(docSynth, " ")+"`") {
		t.Fatalf("%s does not say its checkpoint is `mapper %s`, the one the test makes", page, strings.Join(docSynth, " "))
	}
	lines := strings.Split(string(text), "\n")
	cmds, err := parseTranscripts(lines)
	if err != nil {
		t.Fatalf("%s:%v", page, err)
	}
	dir := t.TempDir()
	if out, err := runDocCommand(dir, docSynth); err != nil {
		t.Fatalf("mapper %s: %v\n%s", strings.Join(docSynth, " "), err, out)
	}
	prepared := map[string]bool{}
	rewritten := slices.Clone(lines)
	// Later blocks first, so that a rewrite keeps the earlier ones' line numbers.
	var rewrites []func()
	for _, c := range cmds {
		cmdline := strings.Join(c.args, " ")
		if p, ok := docPrepare[cmdline]; ok && !prepared[cmdline] {
			prepared[cmdline] = true
			if err := p.do(dir); err != nil {
				t.Fatalf("%s:%d: preparing for %s (%s): %v", page, c.line, cmdline, p.what, err)
			}
		}
		out, err := runDocCommand(dir, c.args[1:])
		if err != nil {
			t.Errorf("%s:%d: $ %s: %v\n%s", page, c.line, cmdline, err, out)
			continue
		}
		var got []string
		if out != "" {
			got = slices.DeleteFunc(strings.Split(strings.TrimSuffix(out, "\n"), "\n"), docProgress.MatchString)
		}
		want := lines[c.start:c.end]
		if docMatch(want, got) {
			continue
		}
		render := docRender(want, got)
		if *updateDocs {
			rewrites = append(rewrites, func() {
				rewritten = slices.Concat(rewritten[:c.start], render, rewritten[c.end:])
			})
			continue
		}
		t.Errorf("%s:%d: $ %s: the output differs from the page (-page +output; go test ./cmd/mapper -run TestDocTranscripts -update-docs rewrites the page):\n%s",
			page, c.line, cmdline, docDiff(want, render, c.start+1))
	}
	for cmdline := range docPrepare {
		if !prepared[cmdline] {
			t.Errorf("%s has no command `%s`, before which the test prepares %s: update docPrepare", page, cmdline, docPrepare[cmdline].what)
		}
	}
	if len(rewrites) > 0 {
		for _, r := range slices.Backward(rewrites) {
			r()
		}
		if err := os.WriteFile(filepath.Join("../..", page), []byte(strings.Join(rewritten, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %d outputs in %s", len(rewrites), page)
	}
}

var updateDocs = flag.Bool("update-docs", false, "rewrite the transcripts of docs/common-tasks.md from what the commands print")

// docSynth makes the page's checkpoint, llama-3-8b.
var docSynth = []string{"synth", "llama", "llama-3-8b", "--width", "real", "--layers", "1", "--vocab", "1024"}

// docPrepare makes, before the first run of a command (its arguments joined
// by spaces), the files it needs that the page does not show being made.
var docPrepare = map[string]struct {
	what string
	do   func(dir string) error
}{
	// Fast-LLM saved llama-3-8b-fast-llm again after training: its own
	// files only (no tokenizer or other side file) and its own metadata
	// fields (the notes name metadata.completed_steps), the weights
	// unchanged.
	"mapper apply --progress none llama trained trained-hf": {"trained, llama-3-8b-fast-llm as Fast-LLM saves it after training", func(dir string) error {
		from, trained := filepath.Join(dir, "llama-3-8b-fast-llm"), filepath.Join(dir, "trained")
		if err := os.Mkdir(trained, 0o755); err != nil {
			return err
		}
		for _, name := range []string{"metadata.yaml", "model_0.safetensors", "ok"} {
			data, err := os.ReadFile(filepath.Join(from, name))
			if err == nil {
				err = os.WriteFile(filepath.Join(trained, name), data, 0o644)
			}
			if err != nil {
				return err
			}
		}
		return dropRecord(trained, 1000)
	}},
	// A copy of llama.map with a typo lint finds, and a wrong axis only a
	// plan finds.
	"mapper lint my_llama.map": {"my_llama.map, llama.map with `tranpose` and `concat(1)`", func(dir string) error {
		return editBuiltin(dir, "llama", "my_llama.map",
			"| transpose(0, 1) <-> mlp.layer_2.weight", "| tranpose(0, 1) <-> mlp.layer_2.weight",
			"| concat(0) <-> mixer.key_value.weight", "| concat(1) <-> mixer.key_value.weight")
	}},
	// The page fixes the typo lint found before it plans.
	"mapper plan my_llama.map llama-3-8b": {"my_llama.map with the typo fixed", func(dir string) error {
		return editFile(filepath.Join(dir, "my_llama.map"), "| tranpose(0, 1)", "| transpose(0, 1)")
	}},
}

// docVarying are the parts of an output that differ from run to run, each
// replaced by a fixed text in the page's lines and the output's before they
// are compared. What depends on the machine is fixed instead by
// runDocCommand's environment (the worker count).
var docVarying = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(` written in [0-9]+\.[0-9]s \(`), " written in 0.0s ("}, // apply's run time
}

// docProgress is a line --progress plain prints every 2 s of a conversion:
// how many there are depends on the machine's speed, so the output's are
// left out before it is compared (the page quotes none).
var docProgress = regexp.MustCompile(`^[0-9.]+ (B|[KMGTPE]iB) / [0-9.]+ (B|[KMGTPE]iB) \([0-9]+%\) (--|[0-9.]+) (B|[KMGTPE]iB)/s ETA (--|[0-9hms]+)$`)

// docCommand is a `$ mapper ...` line of a transcript and the lines
// [start, end) of the page that quote what it prints.
type docCommand struct {
	line       int // 1-based
	args       []string
	start, end int // 0-based
}

// parseTranscripts finds the commands of the fenced blocks without a
// language whose first line starts with "$ ". Only mapper commands, with arguments a shell would
// not change, can be run.
func parseTranscripts(lines []string) ([]docCommand, error) {
	var cmds []docCommand
	in, transcript := false, false
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "```"):
			if in && len(cmds) > 0 && transcript {
				cmds[len(cmds)-1].end = i
			}
			in, transcript = !in, false
			if in && l == "```" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "$ ") {
				transcript = true
			}
		case transcript && strings.HasPrefix(l, "$ "):
			args := strings.Fields(l[2:])
			if args[0] != "mapper" {
				return nil, fmt.Errorf("%d: %s: only mapper commands can be checked", i+1, l)
			}
			if j := strings.IndexAny(l[2:], "|&;<>()$'\"\\`*?~"); j >= 0 {
				return nil, fmt.Errorf("%d: %s: %q is for a shell, which the test does not run", i+1, l, l[2+j])
			}
			if n := len(cmds); n > 0 && cmds[n-1].end == 0 {
				cmds[n-1].end = i
			}
			cmds = append(cmds, docCommand{line: i + 1, args: args, start: i + 1})
		}
	}
	if in {
		return nil, fmt.Errorf("%d: a fenced block is not closed", len(lines))
	}
	return cmds, nil
}

// runDocCommand runs mapper ARGS in dir (this test binary, which runs
// mapper when called by that name: see TestMain), with stdout and stderr
// in one stream. An exit status of 1 is a result (a problem the command
// reports); a usage error (2) or a signal is an error.
func runDocCommand(dir string, args []string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = "mapper"
	cmd.Dir = dir
	// A fixed worker count (it sets the plan's peak memory, and the page says
	// 2 workers), no Hub cache, no profile.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOMAXPROCS=") || strings.HasPrefix(kv, "HF_") || strings.HasPrefix(kv, "MAPPER_") || strings.HasPrefix(kv, "HOME=")
	})
	cmd.Env = append(cmd.Env, "GOMAXPROCS=2", "HOME="+dir, "HF_HOME="+filepath.Join(dir, ".hf"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 1 {
		err = nil
	}
	return out.String(), err
}

// editBuiltin writes the built-in mapping name's file to dir/to with each
// old, new pair of edits applied.
func editBuiltin(dir, name, to string, edits ...string) error {
	src, err := os.ReadFile(filepath.Join("../../mappings", name+".map"))
	if err != nil {
		return err
	}
	path := filepath.Join(dir, to)
	if err := os.WriteFile(path, src, 0o644); err != nil {
		return err
	}
	return editFile(path, edits...)
}

// editFile replaces, for each old, new pair, the one occurrence of old in
// the file; none or several is an error, so an edit cannot silently miss.
func editFile(path string, edits ...string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	for i := 0; i+1 < len(edits); i += 2 {
		if n := strings.Count(s, edits[i]); n != 1 {
			return fmt.Errorf("%s: %q occurs %d times, want once", path, edits[i], n)
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func docNormal(l string) string {
	for _, v := range docVarying {
		l = v.re.ReplaceAllString(l, v.with)
	}
	return l
}

func docElided(l string) bool { return strings.TrimSpace(l) == "..." }

// docMatch reports whether got is what want quotes: line by line, each
// "..." standing for one or more lines.
func docMatch(want, got []string) bool {
	// m[i][j]: want[i:] matches got[j:].
	m := make([][]bool, len(want)+1)
	for i := range m {
		m[i] = make([]bool, len(got)+1)
	}
	m[len(want)][len(got)] = true
	for i := len(want) - 1; i >= 0; i-- {
		for j := len(got) - 1; j >= 0; j-- {
			if docElided(want[i]) {
				m[i][j] = m[i+1][j+1] || m[i][j+1]
			} else {
				m[i][j] = docNormal(want[i]) == docNormal(got[j]) && m[i+1][j+1]
			}
		}
	}
	return m[0][0]
}

// docRender is got as the page would quote it: the page's lines where
// they match (so a run time does not change), and its "..." lines where the
// output still has lines between the same neighbours.
func docRender(want, got []string) []string {
	var out []string
	prevW, prevG := -1, -1
	pairs := append(lcs(want, got, func(w, g string) bool { return !docElided(w) && docNormal(w) == docNormal(g) }), [2]int{len(want), len(got)})
	for _, p := range pairs {
		gap, g := want[prevW+1:p[0]], got[prevG+1:p[1]]
		first, last := slices.IndexFunc(gap, docElided), -1
		for i, l := range gap {
			if docElided(l) {
				last = i
			}
		}
		if first < 0 {
			out = append(out, g...)
		} else {
			// The page's lines before the first "..." and after the last stand
			// for as many of the output's; the "..." for what is between.
			front := min(first, len(g))
			back := max(len(g)-(len(gap)-1-last), front)
			out = append(out, g[:front]...)
			if back > front {
				out = append(out, gap[first])
			}
			out = append(out, g[back:]...)
		}
		if p[0] < len(want) {
			out = append(out, want[p[0]])
		}
		prevW, prevG = p[0], p[1]
	}
	return out
}

// docDiff shows want (the page's lines from line first) against got, a
// line per row: " " both, "-" the page only, "+" the output only.
func docDiff(want, got []string, first int) string {
	var b strings.Builder
	i, j := 0, 0
	for _, p := range append(lcs(want, got, func(w, g string) bool { return w == g }), [2]int{len(want), len(got)}) {
		for ; i < p[0]; i++ {
			fmt.Fprintf(&b, "-%5d  %s\n", first+i, want[i])
		}
		for ; j < p[1]; j++ {
			fmt.Fprintf(&b, "+       %s\n", got[j])
		}
		if i < len(want) {
			fmt.Fprintf(&b, " %5d  %s\n", first+i, want[i])
		}
		i, j = p[0]+1, p[1]+1
	}
	return b.String()
}

// lcs returns the index pairs of a longest common subsequence of a and b
// under eq, in order.
func lcs(a, b []string, eq func(a, b string) bool) [][2]int {
	n := make([][]int, len(a)+1)
	for i := range n {
		n[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if eq(a[i], b[j]) {
				n[i][j] = n[i+1][j+1] + 1
			} else {
				n[i][j] = max(n[i+1][j], n[i][j+1])
			}
		}
	}
	var out [][2]int
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case eq(a[i], b[j]):
			out = append(out, [2]int{i, j})
			i, j = i+1, j+1
		case n[i+1][j] >= n[i][j+1]:
			i++
		default:
			j++
		}
	}
	return out
}

func TestDocMatch(t *testing.T) {
	for _, tc := range []struct {
		want, got string // lines separated by |
		match     bool
		render    string
	}{
		{"a|b", "a|b", true, "a|b"},
		{"a|b", "a|c", false, "a|c"},
		{"a|...|d", "a|b|c|d", true, "a|...|d"},
		{"a|...|d", "a|d", false, "a|d"}, // "..." stands for at least one line
		{"a|  ...", "a|b", true, "a|  ..."},
		{"...", "", false, ""},
		{"a|x|...|d", "a|y|b|c|d", false, "a|y|...|d"}, // a changed line before an elision stays shown
		{"a|...|x|d", "a|b|c|y|d", false, "a|...|y|d"},
		{"a|...", "a|b|new|c", true, "a|..."},
		{"a|b|...", "new|a|b|c", false, "new|a|b|..."},
		{"x written in 0.7s (y)", "x written in 12.3s (y)", true, "x written in 0.7s (y)"}, // docVarying
		{"x written in 0.7s (y)", "x written in 1s (y)", false, "x written in 1s (y)"},
	} {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "|")
		}
		want, got := split(tc.want), split(tc.got)
		if m := docMatch(want, got); m != tc.match {
			t.Errorf("docMatch(%q, %q) = %v, want %v", tc.want, tc.got, m, tc.match)
		}
		if r := strings.Join(docRender(want, got), "|"); r != tc.render {
			t.Errorf("docRender(%q, %q) = %q, want %q", tc.want, tc.got, r, tc.render)
		}
	}
}

func TestParseTranscripts(t *testing.T) {
	page := strings.Split("text\n```\n$ mapper a b\nout 1\n...\n$ mapper c\n```\n```diff\n$ x\n```\n```\nnot a transcript\n$ mapper d\n```\n```\n$ mapper e\n```\n", "\n")
	cmds, err := parseTranscripts(page)
	if err != nil {
		t.Fatal(err)
	}
	want := []docCommand{
		{line: 3, args: []string{"mapper", "a", "b"}, start: 3, end: 5},
		{line: 6, args: []string{"mapper", "c"}, start: 6, end: 6},
		{line: 16, args: []string{"mapper", "e"}, start: 16, end: 16},
	}
	if fmt.Sprint(cmds) != fmt.Sprint(want) {
		t.Errorf("parseTranscripts = %v, want %v", cmds, want)
	}
	for _, bad := range []string{"```\n$ ls\n```", "```\n$ mapper a | head\n```", "```\n$ mapper a && mapper b\n```", "```\n$ mapper a\n"} {
		if _, err := parseTranscripts(strings.Split(bad, "\n")); err == nil {
			t.Errorf("parseTranscripts(%q) accepted it", bad)
		}
	}
}
