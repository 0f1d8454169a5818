package configmap

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/engine/format/hf"
)

// roundTrip imports left, passes what was carried through metadata.yaml's
// encoding (as a real checkpoint would), exports, and returns the import
// and the export.
func roundTrip(t *testing.T, m *ir.Mapping, left map[string]any, ex Extras) (*Result, *Result) {
	t.Helper()
	in, err := New(m, fastllm.Side{}).WithExtras(ex).Import(left, leftDoc)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	b, err := fastllm.EncodeMetadata("", in.Out, map[string]string{}, in.Carried)
	if err != nil {
		t.Fatal(err)
	}
	md, err := fastllm.ParseMetadata(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	out, err := exportConfig(m, md.Config, md.Carried, "")
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return in, out
}

// phi3 is the when/else of issue 13: Phi-3 configs either lack
// attention_bias or say false. The condition reads a key only the when's
// own rule claims, so the branch is recorded and the export writes the key
// back exactly when the import read it.
const phi3 = `mapping phi3
left hf
right fast_llm
config {
  hidden_size <-> hidden_size
  when attention_bias == null {
  } else {
    left attention_bias = false
  }
  right decoder.block.mixer.add_linear_biases = false
}
`

func TestRecordedBranchPhi3(t *testing.T) {
	m := loadMapping(t, "phi3.map", []byte(phi3))
	if len(m.Branches) != 1 || m.Branches[0].Key != "attention_bias == null" || !slices.Equal(m.Branches[0].Keys, []string{"attention_bias"}) {
		t.Fatalf("branches %+v: want the when on attention_bias recorded", m.Branches)
	}
	for _, left := range []string{`{"hidden_size": 8, "attention_bias": false}`, `{"hidden_size": 8}`} {
		in, out := roundTrip(t, m, doc(t, left), Extras{})
		_, present := doc(t, left)["attention_bias"]
		if held := in.Carried.Branches["attention_bias == null"]; held == present {
			t.Errorf("%s: recorded %v", left, in.Carried.Branches)
		}
		assertDoc(t, "exported "+left, out.Out, left)
	}
	// Without a record (a checkpoint mapper did not write), the export
	// decides on the config it rebuilds: there the key was never seen.
	res, err := exportConfig(m, doc(t, `{"hidden_size": 8, "decoder": {"block": {"mixer": {"add_linear_biases": false}}}}`), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "no record", res.Out, `{"hidden_size": 8}`)
	// ... and says so, naming how each recorded when went, and the generic
	// keys the left side lists as lost too.
	res, err = New(m, fastllm.Side{}).WithExtras(Extras{Generic: hf.Side{}.GenericKeys()}).
		Export(doc(t, `{"hidden_size": 8}`), nil, rightDoc, "", anyLength)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"has no record of an import by mapper (metadata.mapper): ",
		"transformers' generic config keys the original had are not restored",
		"the recorded whens are decided on the rebuilt config, not as the original's were (attention_bias == null: true)"}
	for _, w := range want {
		if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, w) }) {
			t.Errorf("notes %q do not say %q", res.Notes, w)
		}
	}
	// A wrong value is still refused on import.
	_, err = importConfig(m, doc(t, `{"hidden_size": 8, "attention_bias": true}`))
	assertErr(t, err, "attention_bias: is true; the mapping requires false")
}

// spellings: one right value, two left spellings, nested defaults inside
// the branches.
const spellings = `mapping sp
left hf
right fast_llm
config {
  when params != null {
    params.theta default 10.0 <-> rotary.theta
    params.kind default "plain" <-> rotary.type map { plain = "default", scaled = scaled }
    when params.kind == "scaled" {
      params.factor <-> rotary.scale
    }
  } else {
    theta default 10.0 <-> rotary.theta
    when scaling == null {
      keep scaling
      right rotary.type = "default"
    } else {
      keep scaling.type
      scaling.kind default scaling.type <-> rotary.type map { scaled = scaled }
      scaling.factor <-> rotary.scale
    }
  }
}
`

func TestRecordedBranchSpellings(t *testing.T) {
	m := loadMapping(t, "sp.map", []byte(spellings))
	var keys []string
	for _, b := range m.Branches {
		keys = append(keys, b.Key)
	}
	// params.kind == "scaled" reads a key the rename beside it restores: it
	// is decided again, not recorded.
	if !slices.Equal(keys, []string{"params != null", "scaling == null"}) {
		t.Fatalf("recorded whens %q", keys)
	}
	cases := []struct{ left, right string }{
		{`{"theta": 5.0, "scaling": null}`, `{"rotary": {"theta": 5.0, "type": "default"}}`},
		{`{}`, `{"rotary": {"theta": 10.0, "type": "default"}}`},
		{`{"scaling": {"kind": "scaled", "factor": 2.0}}`, `{"rotary": {"theta": 10.0, "type": "scaled", "scale": 2.0}}`},
		{`{"scaling": {"type": "scaled", "factor": 2.0}}`, `{"rotary": {"theta": 10.0, "type": "scaled", "scale": 2.0}}`},
		{`{"params": {"theta": 5.0}}`, `{"rotary": {"theta": 5.0, "type": "default"}}`},
		{`{"params": {"theta": 5.0, "kind": "scaled", "factor": 3.0}}`, `{"rotary": {"theta": 5.0, "type": "scaled", "scale": 3.0}}`},
	}
	for _, tc := range cases {
		in, out := roundTrip(t, m, doc(t, tc.left), Extras{})
		assertDoc(t, "imported "+tc.left, in.Out, tc.right)
		assertDoc(t, "exported "+tc.left, out.Out, tc.left)
	}
}

// TestDecidedWhenFollowsTheRight: a when whose key a rule outside it
// restores is decided on the export's own config, so a changed right value
// is followed rather than the import's branch.
func TestDecidedWhenFollowsTheRight(t *testing.T) {
	m := loadMapping(t, "d.map", []byte(`mapping d
left hf
right fast_llm
config {
  tie <-> tied
  when tie {
    left head = "shared"
  } else {
    left head = "own"
  }
}
`))
	if len(m.Branches) != 0 {
		t.Fatalf("recorded %+v; tie is renamed outside the when", m.Branches[0])
	}
	in, err := importConfig(m, doc(t, `{"tie": true, "head": "shared"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Carried.Branches) != 0 {
		t.Errorf("recorded %v", in.Carried.Branches)
	}
	res, err := exportConfig(m, doc(t, `{"tied": false}`), in.Carried, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "export", res.Out, `{"tie": false, "head": "own"}`)
}

// extrasMapping claims only what the tests need; transformers.js_config
// in a keep rule names a nested path, not the dotted top-level key.
const extrasMapping = `mapping ex
left hf
right fast_llm
config {
  hidden_size <-> hidden_size
  rope.theta <-> rotary.theta
  keep transformers.js_config
}
`

func TestExtras(t *testing.T) {
	m := loadMapping(t, "ex.map", []byte(extrasMapping))
	generic := hf.Side{}.GenericKeys()
	left := `{"hidden_size": 8, "rope": {"theta": 1.0}, "_name_or_path": "x/y", "dtype": "bfloat16",
	  "use_cache": true, "eos_token_id": [1, 2], "is_encoder_decoder": false, "task_specific_params": {"a": {"b": 1}},
	  "transformers.js_config": {"kv_cache_dtype": {"q4f16": "float16"}}, "is_llama_config": true}`
	in, out := roundTrip(t, m, doc(t, left), Extras{Generic: generic, Keep: []string{"is_llama_config", "absent_key", "hidden_size"}})
	assertDoc(t, "export", out.Out, left)
	var extra []string
	for k := range in.Carried.Extra {
		extra = append(extra, k)
	}
	slices.Sort(extra)
	want := []string{"_name_or_path", "dtype", "eos_token_id", "is_encoder_decoder", "is_llama_config", "task_specific_params",
		"transformers.js_config", "use_cache"}
	if !slices.Equal(extra, want) {
		t.Errorf("carried extras %q, want %q", extra, want)
	}
	notes := strings.Join(in.Notes, "\n")
	for _, s := range []string{
		"--keep absent_key: config.json has no such top-level key",
		"--keep hidden_size does nothing: a rule of ex maps that key",
		"config key is_llama_config carried as asked (--keep)",
		"config keys carried for the way back as transformers' generic config keys (no rule of ex names them): _name_or_path, dtype, eos_token_id, is_encoder_decoder, task_specific_params, transformers.js_config, use_cache",
	} {
		if !strings.Contains(notes, s) {
			t.Errorf("notes lack %q:\n%s", s, notes)
		}
	}

	// Without the generic list or --keep, each is refused, by its path:
	// the keep rule's transformers.js_config is the nested path
	// transformers -> js_config, not the dotted key.
	_, err := importConfig(m, doc(t, left))
	assertErr(t, err, "_name_or_path: not claimed", "is_llama_config: not claimed",
		"transformers.js_config.kv_cache_dtype.q4f16: not claimed", "--keep transformers.js_config")

	// A pinned generic key at another value changes the model.
	_, err = New(m, fastllm.Side{}).WithExtras(Extras{Generic: generic}).Import(
		doc(t, `{"hidden_size": 8, "is_encoder_decoder": true, "pruned_heads": {"0": [1]}}`), leftDoc)
	assertErr(t, err, "is_encoder_decoder: is true; as one of transformers' generic config keys it travels only at false",
		`pruned_heads: is {"0": [1]}; as one of transformers' generic config keys it travels only at {}`)
	// --keep carries it anyway, at the user's risk.
	in, err = New(m, fastllm.Side{}).WithExtras(Extras{Generic: generic, Keep: []string{"is_encoder_decoder"}}).Import(
		doc(t, `{"hidden_size": 8, "is_encoder_decoder": true}`), leftDoc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in.Carried.Extra, map[string]any{"is_encoder_decoder": true}) {
		t.Errorf("extra %v", in.Carried.Extra)
	}
}

// TestExtrasYieldToRules: a key a rule claims, even in part, is the
// rule's; an extra never carries its unclaimed rest.
func TestExtrasYieldToRules(t *testing.T) {
	m := loadMapping(t, "ex.map", []byte(extrasMapping))
	_, err := New(m, fastllm.Side{}).WithExtras(Extras{Keep: []string{"rope"}}).Import(
		doc(t, `{"hidden_size": 8, "rope": {"theta": 1.0, "scale": 2.0}}`), leftDoc)
	assertErr(t, err, "rope.scale: not claimed by any config rule of ex (map it, or add it to keep or ignore)")
	if strings.Contains(err.Error(), "--keep rope") {
		t.Errorf("suggests --keep for a key a rule claims in part: %v", err)
	}
}

// TestCarriedEncoding: branches, extras and the keys' records survive metadata.yaml, keys
// with dots and spaces included.
func TestCarriedEncoding(t *testing.T) {
	c := &format.Carried{Mapping: "m", From: "hf",
		Extra:      map[string]any{"transformers.js_config": map[string]any{"a": int64(1)}, "_name_or_path": "x"},
		Branches:   map[string]bool{`rope_parameters != null`: true, `x.kind == "a: b"`: false},
		Absent:     []string{"head_dim"},
		ForDefault: []string{"ssm_cfg.dt_rank", "a key"}}
	b, err := fastllm.EncodeMetadata("", map[string]any{}, map[string]string{}, c)
	if err != nil {
		t.Fatal(err)
	}
	md, err := fastllm.ParseMetadata(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(md.Carried, c) {
		t.Errorf("decoded %+v\nwant %+v\n%s", md.Carried, c, b)
	}
}
