package syntax

import (
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/participle/v2/lexer"
)

// TestSpineAgrees: probing what may come at an error with the shortened
// prefix (spine) finds the same tokens as probing with the whole
// declaration, on files broken by deleting, replacing or inserting a token.
func TestSpineAgrees(t *testing.T) {
	files, _ := filepath.Glob("../../mappings/*.map")
	more, _ := filepath.Glob("../testdata/*.map")
	files = append(files, more...)
	if len(files) < 3 {
		t.Fatalf("only %d files", len(files))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cases, shorter := 0, 0
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		good, _ := tokenize(file, src)
		for range 25 {
			toks := mutate(rng, good)
			p := &errParser{src: src, lines: newLineTable(file, src), toks: toks, bad: map[int]*ScanError{}}
			_, err := parseTokens(theParser, toks)
			if err == nil {
				continue
			}
			k := p.errIndex(err, 0)
			start, header := p.declStart(0, k)
			if header {
				continue
			}
			cases++
			full := p.expectedAfter(toks[start:k], false, k)
			if got := p.expectedAt(start, false, k); !maps.Equal(got, full) {
				t.Errorf("%s: at %v %q: spine %q gives %v, the declaration %v", file, toks[k].Pos, toks[k].Value,
					values(p.spine(start, k)), got, full)
			}
			if len(p.spine(start, k)) < k-start {
				shorter++
			}
		}
	}
	// The test means something only if the spine is often shorter.
	if cases < 60 || shorter < cases/3 {
		t.Errorf("%d cases, the spine shorter in %d", cases, shorter)
	}
	t.Logf("%d cases, the spine shorter in %d", cases, shorter)
}

// mutate deletes, replaces or inserts one token (keeping positions
// increasing, which the parser's error offsets rely on).
func mutate(rng *rand.Rand, toks []lexer.Token) []lexer.Token {
	out := append([]lexer.Token(nil), toks...)
	i := rng.IntN(len(out) - 1)
	probe := probes[rng.IntN(len(probes)-1)] // not EOF
	switch rng.IntN(3) {
	case 0:
		return append(out[:i], out[i+1:]...)
	case 1:
		probe.Pos = out[i].Pos
		out[i] = probe
		return out
	}
	if i == 0 || out[i].Pos.Offset-out[i-1].Pos.Offset < 2 {
		return out
	}
	probe.Pos = out[i].Pos
	probe.Pos.Offset--
	return append(out[:i], append([]lexer.Token{probe}, out[i:]...)...)
}

func values(toks []lexer.Token) []string {
	var out []string
	for _, t := range toks {
		out = append(out, t.Value)
	}
	return out
}

// TestSpineDType: a dtype is not the start of an item, though the tokens
// before it parse as one (a reference may end at its ":"): an error after
// the dtype of a body's first rule is probed in the whole rule.
func TestSpineDType(t *testing.T) {
	src := []byte("mapping m\nleft hf\nright fast_llm\n\ntensors {\n  each l < n: a.{l} <-> b.{l} {\n    x: BF16[4] | cast(F32) <-> y: F32 = 3\n  }\n}\n")
	toks, _ := tokenize("m.map", src)
	p := &errParser{src: src, lines: newLineTable("m.map", src), toks: toks, bad: map[int]*ScanError{}}
	_, err := parseTokens(theParser, toks)
	if err == nil {
		t.Fatal("the file parses")
	}
	k := p.errIndex(err, 0)
	if toks[k].Value != "=" {
		t.Fatalf("the error is at %q", toks[k].Value)
	}
	start, _ := p.declStart(0, k)
	full := p.expectedAfter(toks[start:k], false, k)
	if got := p.expectedAt(start, false, k); !maps.Equal(got, full) || !got["["] {
		t.Errorf("spine %q gives %v, the declaration %v", values(p.spine(start, k)), got, full)
	}
}
