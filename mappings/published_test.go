package mappings_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/mappings"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/pyjson"
)

// sizeKeys are the config keys that fix tensor shapes.
var sizeKeys = regexp.MustCompile(`"(hidden_size|intermediate_size|num_hidden_layers|num_attention_heads|num_key_value_heads|vocab_size|head_dim|num_local_experts|num_experts_per_tok|max_window_layers)": *[0-9]+`)

// published writes a synthetic checkpoint of a (tensors, side files) whose
// config.json is the published config in dir, its text as published but
// with the keys that fix tensor shapes set to a's small sizes, so that the
// round trip sees the published file's form: key order, spellings,
// indentation, line endings, final newline.
func published(t *testing.T, hubDir string, a synth.Arch) string {
	t.Helper()
	text := string(readFile(t, filepath.Join("testdata", "hub", hubDir, "config.json")))
	v, err := pyjson.Decode([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if tied, ok := v.(map[string]any)["tie_word_embeddings"].(bool); ok {
		a.TieEmbeddings = tied
	}
	dir := generate(t, a, synth.Options{})
	small, err := synth.Config(a)
	if err != nil {
		t.Fatal(err)
	}
	text = sizeKeys.ReplaceAllStringFunc(text, func(m string) string {
		key := sizeKeys.FindStringSubmatch(m)[1]
		n, ok := small[key].(int64)
		if key == "max_window_layers" {
			n, ok = int64(a.Layers), true
		}
		if !ok {
			t.Fatalf("%s: no small value for %s", hubDir, key)
		}
		i := len(m) - len(regexp.MustCompile(`[0-9]+$`).FindString(m))
		return m[:i] + strconv.FormatInt(n, 10)
	})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// keeping is a copy of a built-in mapping that keeps the given keys as
// they are. The built-in mappings refuse them for now (a llama3
// rope_scaling, _name_or_path, use_mrope); these tests are about the bytes
// of config.json, which a keep carries through like any other key.
func keeping(t *testing.T, name string, keys ...string) *ir.Mapping {
	t.Helper()
	f, ok := mappings.Lookup(name)
	if !ok {
		t.Fatalf("no built-in mapping %s", name)
	}
	src := strings.Replace(string(f.Source), "mapping "+name+"\n", "mapping "+name+"_keeping\n", 1)
	src = strings.Replace(src, "  when rope_scaling == null {\n    keep rope_scaling\n  } else {\n    left rope_scaling = null\n  }\n", "", 1)
	i := strings.LastIndex(src, "\n}\n\ntensors {")
	if i < 0 {
		t.Fatalf("%s: no end of the config section", name)
	}
	src = src[:i] + "\n  keep " + strings.Join(keys, ", ") + src[i:]
	return loadSource(t, name+"_keeping.map", src)
}

// TestPublishedConfigsRoundTrip: published config.json files, in their
// published form (keys unsorted, no final newline, CRLF...), come back byte
// for byte after HF -> Fast-LLM -> HF.
func TestPublishedConfigsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		hub     string
		mapping func(t *testing.T) *ir.Mapping
		arch    synth.Arch
	}{
		{"meta-llama--Meta-Llama-3-8B", builtin("llama"), synth.TinyLlama()},
		// rope_scaling keys unsorted, no final newline.
		{"meta-llama--Llama-3.1-8B", keep("llama", "rope_scaling"), synth.TinyLlama()},
		{"meta-llama--Llama-3.1-70B", keep("llama", "rope_scaling"), synth.TinyLlama()},
		{"meta-llama--Llama-3.2-1B", keep("llama", "rope_scaling"), synth.TinyLlama()},
		{"meta-llama--Llama-3.2-3B-Instruct", keep("llama", "rope_scaling"), synth.TinyLlama()},
		{"meta-llama--Llama-2-7b-hf", keep("llama", "_name_or_path", "rope_scaling"), synth.TinyLlama()},
		{"mistralai--Mistral-7B-v0.1", builtin("mistral"), synth.TinyMistral()},
		{"mistralai--Mistral-7B-Instruct-v0.2", builtin("mistral"), synth.TinyMistral()},
		{"mistralai--Mistral-7B-Instruct-v0.3", builtin("mistral"), synth.TinyMistral()},
		{"mistralai--Mixtral-8x7B-v0.1", builtin("mixtral"), synth.TinyMixtral()},
		{"mistralai--Mixtral-8x22B-v0.1", builtin("mixtral"), synth.TinyMixtral()},
		{"Qwen--Qwen2.5-1.5B", keep("qwen2", "use_mrope"), synth.TinyQwen2()},
		{"Qwen--Qwen2.5-7B", keep("qwen2", "use_mrope"), synth.TinyQwen2()},
	} {
		t.Run(c.hub, func(t *testing.T) {
			t.Parallel()
			m := c.mapping(t)
			hf0 := published(t, c.hub, c.arch)
			fl, imp := convert(t, m, hf0, engine.PlanOptions{})
			hf1, exp := convert(t, m, fl, engine.PlanOptions{})
			checkHFRoundTrip(t, hf0, hf1, false)
			// Files in save_pretrained form need no record; the others are
			// recorded, restored and noted.
			_, recorded := imp.Carried.Texts["config.json"]
			if canon := canonicalJSON(t, filepath.Join(hf0, "config.json")); canon == recorded {
				t.Errorf("config.json in save_pretrained form: %v; its text recorded: %v", canon, recorded)
			}
			if recorded {
				checkNote(t, "export", exp.Notes, "config.json: written as the original text recorded at import")
			}
		})
	}
}

func builtin(name string) func(t *testing.T) *ir.Mapping {
	return func(t *testing.T) *ir.Mapping { return load(t, name) }
}

func keep(name string, keys ...string) func(t *testing.T) *ir.Mapping {
	return func(t *testing.T) *ir.Mapping { return keeping(t, name, keys...) }
}

// canonicalJSON reports whether the file is exactly what save_pretrained
// writes for its content.
func canonicalJSON(t *testing.T, path string) bool {
	t.Helper()
	raw := readFile(t, path)
	v, err := pyjson.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pyjson.Encode(v, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	return string(append(b, '\n')) == string(raw)
}
