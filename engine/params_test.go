package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/mappings"
	"github.com/mapper-dev/mapper/mappings/synth"
)

// editedLlama is the built-in llama mapping with one edit, as bad.map, and
// where the edit's last word (the tensor name it writes) is: "bad.map:L:C".
func editedLlama(t *testing.T, from, to string) (*ir.Mapping, string) {
	t.Helper()
	f, ok := mappings.Lookup("llama")
	if !ok {
		t.Fatal("no built-in llama")
	}
	src := string(f.Source)
	i := strings.Index(src, from)
	if i < 0 {
		t.Fatalf("llama.map has no %q", from)
	}
	ref := i + strings.LastIndex(to, " ") + 1
	at := fmt.Sprintf("bad.map:%d:%d", strings.Count(src[:ref], "\n")+1, ref-strings.LastIndex(src[:ref], "\n"))
	return loadMapping(t, "bad.map", []byte(src[:i]+to+src[i+len(from):])), at
}

func synthLlama(t *testing.T, layers int) string {
	t.Helper()
	a := synth.TinyLlama()
	a.Layers = layers
	dir := filepath.Join(t.TempDir(), "hf")
	if err := synth.Generate(dir, a, 1, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// schemaLine is the line of main.params that holds text.
func schemaLine(t *testing.T, text string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("format", "fastllm", "schema", "main.params"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	i := strings.Index(src, text)
	if i < 0 {
		t.Fatalf("main.params has no %q", text)
	}
	return strings.Count(src[:i], "\n") + 1
}

// TestParamCheckImport: a mapping whose Fast-LLM side names a parameter
// Fast-LLM does not create, or builds one of another shape, is refused
// when it is planned, each problem naming the rule and the schema line.
func TestParamCheckImport(t *testing.T) {
	norm1 := schemaLine(t, "norm_1: norm(")
	kv := schemaLine(t, "key_value: linear(mixer.key_layer, hidden, 2 * groups")
	for _, tc := range []struct {
		name, from, to string
		errors         int
		want           func(at string) []string
	}{
		{"misspelled", "<-> norm_1.weight", "<-> norm_1.wieght", 4, func(at string) []string {
			return []string{
				at + ": error: tensor decoder.0.norm_1.wieght: Fast-LLM main (0.4.0) creates no parameter of this name for the config written; did you mean decoder.0.norm_1.weight?\n",
				at + ": error: tensor decoder.1.norm_1.wieght: Fast-LLM main (0.4.0) creates no parameter of this name for the config written; did you mean decoder.1.norm_1.weight?\n",
				fmt.Sprintf("tensor decoder.0.norm_1.weight: Fast-LLM main (0.4.0) creates it as [64] for the config written (engine/format/fastllm/schema/main.params:%d (part norm, line ", norm1),
				"tensor decoder.1.norm_1.weight: Fast-LLM main (0.4.0) creates it as [64] for the config written",
			}
		}},
		{"wrong axis", "concat(0) <-> mixer.key_value.weight", "concat(1) <-> mixer.key_value.weight", 2, func(at string) []string {
			return []string{
				at + fmt.Sprintf(": error: tensor decoder.0.mixer.key_value.weight: the rule produces it with shape [32 128], but Fast-LLM main (0.4.0) creates it as [64 64] for the config written (engine/format/fastllm/schema/main.params:%d (part linear, line ", kv),
				at + ": error: tensor decoder.1.mixer.key_value.weight: the rule produces it with shape [32 128]",
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, at := editedLlama(t, tc.from, tc.to)
			_, err := NewPlan(m, synthLlama(t, 2), PlanOptions{Workers: 1})
			if err == nil {
				t.Fatal("planned")
			}
			// As diagnostics: the rule's reference to the tensor marked.
			for _, d := range Diagnostics(err) {
				if d.Pos.Line > 0 && (fmt.Sprintf("%s:%d:%d", d.Pos.File, d.Pos.Line, d.Pos.Column) != at || d.End.Offset <= d.Pos.Offset) {
					t.Errorf("diagnostic at %v-%v, want %s", d.Pos, d.End, at)
				}
			}
			for _, w := range tc.want(at) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != tc.errors {
				t.Errorf("%d errors, want %d:\n%v", n, tc.errors, err)
			}
			// The escape hatch plans it (and nothing else stops it).
			p, err := NewPlan(m, synthLlama(t, 2), PlanOptions{Workers: 1, NoParamCheck: true})
			if err != nil {
				t.Fatalf("NoParamCheck: %v", err)
			}
			p.Close()
		})
	}
}

// TestParamCheckGroups: a wrong rule in a loop is reported for a few
// layers and counted for the rest, not once per layer.
func TestParamCheckGroups(t *testing.T) {
	m, at := editedLlama(t, "<-> norm_1.weight", "<-> norm_1.wieght")
	_, err := NewPlan(m, synthLlama(t, 5), PlanOptions{Workers: 1})
	if err == nil {
		t.Fatal("planned")
	}
	msg := err.Error()
	for _, w := range []string{
		at + ": error: tensor decoder.2.norm_1.wieght: Fast-LLM main (0.4.0) creates no parameter of this name for the config written; did you mean decoder.2.norm_1.weight?\n",
		at + ": error: ... and 2 more like it\n",
		"tensor decoder.2.norm_1.weight: Fast-LLM main (0.4.0) creates it as [64]",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not contain %q:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "decoder.3.norm_1.wieght") || strings.Count(msg, "... and 2 more like it") != 2 {
		t.Errorf("not grouped:\n%s", msg)
	}
}

// TestParamCheckExport: on export the input's tensors are held to the
// parameters its config implies. The bad mappings convert one way without
// the check; the other way, their own rules accept the checkpoint (they
// wrote it), the schema does not.
func TestParamCheckExport(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"misspelled", "<-> norm_1.weight", "<-> norm_1.wieght", []string{
			"/model_0.safetensors: tensor decoder.0.norm_1.wieght: Fast-LLM main (0.4.0) creates no parameter of this name for the checkpoint's config; did you mean decoder.0.norm_1.weight?\n",
			"tensor decoder.0.norm_1.weight: Fast-LLM main (0.4.0) creates it as [64] for the checkpoint's config (engine/format/fastllm/schema/main.params:",
			"), but the checkpoint does not hold it",
		}},
		{"wrong axis", "concat(0) <-> mixer.key_value.weight", "concat(1) <-> mixer.key_value.weight", []string{
			"/model_0.safetensors: tensor decoder.0.mixer.key_value.weight: has shape [32 128], but Fast-LLM main (0.4.0) creates it as [64 64] for the checkpoint's config (engine/format/fastllm/schema/main.params:",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := editedLlama(t, tc.from, tc.to)
			fast := filepath.Join(t.TempDir(), "fast")
			p, err := NewPlan(m, synthLlama(t, 2), PlanOptions{Workers: 1, NoParamCheck: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Execute(t.Context(), ExecOptions{Output: fast}); err != nil {
				t.Fatal(err)
			}
			p.Close()
			_, err = NewPlan(m, fast, PlanOptions{Workers: 1})
			if err == nil {
				t.Fatal("planned")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestParamCheckUndescribed: a config the schema does not describe is
// refused, not checked against a wrong parameter set.
func TestParamCheckUndescribed(t *testing.T) {
	m, _ := editedLlama(t, `right decoder.block.normalization.type = "rms_norm"`, `right decoder.block.normalization.type = "group_norm"`)
	_, err := NewPlan(m, synthLlama(t, 2), PlanOptions{Workers: 1})
	want := fmt.Sprintf("the parameter schema of Fast-LLM main (0.4.0) does not describe this config, so the tensors cannot be checked against it: engine/format/fastllm/schema/main.params:%d:3: requires ", schemaLine(t, `require kind == "layer_norm" or kind == "rms_norm" or kind == "gated`))
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `but kind = n.type = "group_norm" (in norm at line `) {
		t.Errorf("got %v\nwant %q", err, want)
	}
}

// TestParamCheckShipped: every shipped mapping's import and export pass the
// check of its target on its synthetic checkpoint (every synth
// architecture, GPT-OSS's dense variant included); a new mapping is held to
// it by being here.
func TestParamCheckShipped(t *testing.T) {
	seen := map[string]bool{}
	for _, arch := range synth.Names() {
		mapping := strings.TrimSuffix(arch, "_dense")
		seen[mapping] = true
		t.Run(arch, func(t *testing.T) {
			a, err := synth.ByName(arch)
			if err != nil {
				t.Fatal(err)
			}
			m := builtin(t, mapping)
			root := t.TempDir()
			hf, fast := filepath.Join(root, "hf"), filepath.Join(root, "fast")
			if err := synth.Generate(hf, a, 1, synth.Options{}); err != nil {
				t.Fatal(err)
			}
			convert(t, m, hf, fast, PlanOptions{Workers: 1})
			if p := planOrFail(t, m, fast, PlanOptions{Workers: 1}); p.Direction != Export {
				t.Fatalf("%v", p.Direction)
			}
		})
	}
	for _, f := range mappings.Builtin() {
		if !seen[f.Name] {
			t.Errorf("mapping %s has no synthetic checkpoint to check", f.Name)
		}
	}
}

// TestParamCheckLeftInput: a mapping with Fast-LLM on the left reads it on
// import, and the input is held to the schema then.
func TestParamCheckLeftInput(t *testing.T) {
	bad, _ := editedLlama(t, "<-> norm_1.weight", "<-> norm_1.wieght")
	fast := filepath.Join(t.TempDir(), "fast")
	p, err := NewPlan(bad, synthLlama(t, 2), PlanOptions{Workers: 1, NoParamCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Execute(t.Context(), ExecOptions{Output: fast}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	rev := loadMapping(t, "rev.map", []byte(`mapping rev oneway
left fast_llm
right hf

config {
  ignore decoder, embeddings, head, hidden_size, tied_embedding_weight, peft
}

tensors {
  embeddings.word_embeddings_weight <-> model.embed_tokens.weight
  head.final_norm.weight <-> model.norm.weight
  head.output_weights <-> lm_head.weight
  each l < decoder.num_blocks: decoder.{l} <-> model.layers.{l} {
    norm_1.wieght <-> input_layernorm.weight
    norm_2.weight <-> post_attention_layernorm.weight
    mixer.query.weight <-> self_attn.q_proj.weight
    mixer.key_value.weight <-> self_attn.kv_proj.weight
    mixer.dense.weight <-> self_attn.o_proj.weight
    mlp.layer_1.weight <-> mlp.gate_up_proj.weight
    mlp.layer_2.weight <-> mlp.down_proj.weight
  }
}
`))
	p, err = NewPlan(rev, fast, PlanOptions{Workers: 1})
	if err == nil {
		p.Close()
		t.Fatal("planned")
	}
	for _, w := range []string{
		"rev.map:14:5: error: ",
		"/model_0.safetensors: tensor decoder.0.norm_1.wieght: Fast-LLM main (0.4.0) creates no parameter of this name for the checkpoint's config; did you mean decoder.0.norm_1.weight?\n",
		"tensor decoder.1.norm_1.weight: Fast-LLM main (0.4.0) creates it as [64] for the checkpoint's config (engine/format/fastllm/schema/main.params:",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}
