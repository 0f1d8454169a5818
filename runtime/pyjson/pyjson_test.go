package pyjson

import (
	"bytes"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// gptOSS20b is openai/gpt-oss-20b's config.json as Go values; its Python
// rendering (testdata/gpt-oss-20b-config.json, 1806 bytes like the
// published file) was made with json.dumps(c, indent=2, sort_keys=True).
func gptOSS20b() map[string]any {
	layerTypes := make([]any, 24)
	for i := range layerTypes {
		layerTypes[i] = "sliding_attention"
		if i%2 == 1 {
			layerTypes[i] = "full_attention"
		}
	}
	return map[string]any{
		"architectures":           []any{"GptOssForCausalLM"},
		"attention_bias":          true,
		"attention_dropout":       0.0,
		"eos_token_id":            int64(200002),
		"experts_per_token":       int64(4),
		"head_dim":                int64(64),
		"hidden_act":              "silu",
		"hidden_size":             int64(2880),
		"initial_context_length":  int64(4096),
		"initializer_range":       0.02,
		"intermediate_size":       int64(2880),
		"layer_types":             layerTypes,
		"max_position_embeddings": int64(131072),
		"model_type":              "gpt_oss",
		"num_attention_heads":     int64(64),
		"num_experts_per_tok":     int64(4),
		"num_hidden_layers":       int64(24),
		"num_key_value_heads":     int64(8),
		"num_local_experts":       int64(32),
		"output_router_logits":    false,
		"pad_token_id":            int64(199999),
		"quantization_config": map[string]any{
			"modules_to_not_convert": []any{"model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"},
			"quant_method":           "mxfp4",
		},
		"rms_norm_eps": 1e-05,
		"rope_scaling": map[string]any{
			"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
			"original_max_position_embeddings": int64(4096), "rope_type": "yarn", "truncate": false,
		},
		"rope_theta":           int64(150000),
		"router_aux_loss_coef": 0.9,
		"sliding_window":       int64(128),
		"swiglu_limit":         7.0,
		"tie_word_embeddings":  false,
		"transformers_version": "4.55.0.dev0",
		"use_cache":            true,
		"vocab_size":           int64(201088),
	}
}

func TestGPTOSSConfigGolden(t *testing.T) {
	want, err := os.ReadFile("testdata/gpt-oss-20b-config.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 1806 {
		t.Fatalf("golden is %d bytes, the published file 1806", len(want))
	}
	got, err := Encode(gptOSS20b(), 2, true)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode differs from Python:\n%s", firstDiff(got, want))
	}
	// And back: Decode gives the same values, Encode the same bytes.
	v, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v, gptOSS20b()) {
		t.Fatalf("Decode = %#v", v)
	}
	again, err := Encode(v, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(again, '\n'), want) {
		t.Fatal("Decode -> Encode is not the identity on the golden")
	}
}

func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-60)
	return "at byte " + itoa(i) + "\n got: ..." + string(got[lo:min(len(got), i+60)]) +
		"\nwant: ..." + string(want[lo:min(len(want), i+60)])
}

func itoa(i int) string { return strconv.Itoa(i) }

// sum adds at run time (constant arithmetic would be exact).
func sum(a, b float64) float64 { return a + b }

// The expected strings are Python 3's json.dumps output.
func TestFloats(t *testing.T) {
	cases := []struct {
		f    float64
		want string
	}{
		{0.0, "0.0"}, {32.0, "32.0"}, {7.0, "7.0"}, {1e-05, "1e-05"}, {0.02, "0.02"},
		{150000, "150000.0"}, {1e16, "1e+16"}, {1e-07, "1e-07"}, {0.0001, "0.0001"},
		{123456789.0, "123456789.0"}, {1.2345678901234568e+17, "1.2345678901234568e+17"},
		{math.Copysign(0, -1), "-0.0"}, {1.5e-07, "1.5e-07"}, {1e15, "1000000000000000.0"},
		{1234567890123456.0, "1234567890123456.0"}, {sum(0.1, 0.2), "0.30000000000000004"},
		{5e-324, "5e-324"}, {math.MaxFloat64, "1.7976931348623157e+308"}, {-2.5e-5, "-2.5e-05"},
		{0.00012345, "0.00012345"}, {1e22, "1e+22"}, {1e100, "1e+100"},
		{math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"},
		{9007199254740993.0, "9007199254740992.0"}, {1.5e-323, "1.5e-323"}, {0.3, "0.3"},
		{0.9, "0.9"}, {-1.0, "-1.0"}, {2.5, "2.5"},
	}
	for _, c := range cases {
		if got := string(AppendFloat(nil, c.f)); got != c.want {
			t.Errorf("AppendFloat(%v) = %s, want %s", c.f, got, c.want)
		}
		// Through Decode the same text comes back as the same float.
		v, err := Decode([]byte(c.want))
		if err != nil {
			t.Errorf("Decode(%s): %v", c.want, err)
			continue
		}
		f, ok := v.(float64)
		if !ok || (math.Float64bits(f) != math.Float64bits(c.f) && !(math.IsNaN(f) && math.IsNaN(c.f))) {
			t.Errorf("Decode(%s) = %#v, want %v", c.want, v, c.f)
		}
	}
	if got, _ := Encode(float32(0.5), 2, true); string(got) != "0.5" {
		t.Errorf("float32 0.5 = %s", got)
	}
}

func TestEncodeShapes(t *testing.T) {
	nested := map[string]any{
		"b": []any{int64(1), map[string]any{}},
		"a": map[string]any{"x": []any{}, "é": "\u00e9\U0001F600\x01\x7f\"\\/\n\r\t\b\f"},
	}
	ordered := Object{{"b", []any{1, Object{}}}, {"a", Object{{"x", []any{}}, {"y", nil}, {"z", true}}}}
	cases := []struct {
		name   string
		v      any
		indent int
		sort   bool
		want   string
	}{
		{"indent sorted", nested, 2, true,
			"{\n  \"a\": {\n    \"x\": [],\n    \"\\u00e9\": \"\\u00e9\\ud83d\\ude00\\u0001\\u007f\\\"\\\\/\\n\\r\\t\\b\\f\"\n  },\n  \"b\": [\n    1,\n    {}\n  ]\n}"},
		{"compact ordered", ordered, -1, false, `{"b": [1, {}], "a": {"x": [], "y": null, "z": true}}`},
		{"compact ordered sorted", ordered, -1, true, `{"a": {"x": [], "y": null, "z": true}, "b": [1, {}]}`},
		{"indent 0", []any{1, []any{2, []any{}}}, 0, false, "[\n1,\n[\n2,\n[]\n]\n]"},
		{"object keeps order", Object{{"z", 1}, {"a", 2}}, -1, false, `{"z": 1, "a": 2}`},
		{"typed map and slice", map[string][]string{"k": {"v"}}, -1, false, `{"k": ["v"]}`},
		{"ints", []any{int64(math.MinInt64), uint64(math.MaxUint64), int8(-3)}, -1, false,
			"[-9223372036854775808, 18446744073709551615, -3]"},
		{"empty", map[string]any{}, 2, true, "{}"},
		{"null", nil, 2, true, "null"},
	}
	for _, c := range cases {
		got, err := Encode(c.v, c.indent, c.sort)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, v := range []any{
		map[string]any{"a": []any{"\xff"}},
		map[string]any{"a": struct{}{}},
		map[int]any{1: 2},
		map[string]any{"a": func() {}},
	} {
		if _, err := Encode(v, 2, true); err == nil {
			t.Errorf("Encode(%#v) succeeded", v)
		}
	}
	_, err := Encode(map[string]any{"a": []any{1, "\xff"}}, 2, true)
	if err == nil || !strings.Contains(err.Error(), "a[1]") {
		t.Errorf("error %v does not name a[1]", err)
	}
}

func TestDecodeValues(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{`1`, int64(1)}, {`-0`, int64(0)}, {`1.0`, 1.0}, {`1e2`, 100.0}, {`1E+2`, 100.0}, {`-1.5e-3`, -0.0015},
		{`9223372036854775807`, int64(math.MaxInt64)}, {`-9223372036854775808`, int64(math.MinInt64)},
		{` "a\u00e9\ud83d\ude00\/" `, "aé\U0001F600/"}, {`"é"`, "é"},
		{`[true, false, null]`, []any{true, false, nil}},
		{`{"a": {"b": []}}`, map[string]any{"a": map[string]any{"b": []any{}}}},
		{`Infinity`, math.Inf(1)}, {`-Infinity`, math.Inf(-1)}, {`[-Infinity,Infinity]`, []any{math.Inf(-1), math.Inf(1)}},
		{`1e400`, math.Inf(1)},
	}
	for _, c := range cases {
		got, err := Decode([]byte(c.in))
		if err != nil {
			t.Errorf("Decode(%s): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Decode(%s) = %#v, want %#v", c.in, got, c.want)
		}
	}
	v, err := Decode([]byte("NaN"))
	if f, ok := v.(float64); err != nil || !ok || !math.IsNaN(f) {
		t.Errorf("Decode(NaN) = %#v, %v", v, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"a": 1, "a": 2}`, `duplicate key "a"`},
		{`{"x": {"rope": {"f": 1, "f": 1}}}`, `duplicate key "x.rope.f"`},
		{`{"x": [0, {"k": 1, "k": 2}]}`, `duplicate key "x[1].k"`},
		{`{} x`, "unexpected data after"},
		{`{}{}`, "unexpected data after"},
		{`1.`, "unexpected data after"},
		{`01`, "unexpected data after"},
		{`9223372036854775808`, "does not fit in int64"},
		{`-`, "invalid number"},
		{`.5`, "invalid character"},
		{`+1`, "invalid character"},
		{`nan`, "invalid character"},
		{`"a` + "\n" + `"`, "control character"},
		{`"\ud800"`, "lone surrogate"},
		{`"\udc00"`, "lone surrogate"},
		{`"\ud800\u0041"`, "lone surrogate"},
		{"\"\xff\"", "invalid UTF-8"},
		// The path names the key whose value is not text, or the object
		// whose key is not.
		{"{\"a\": {\"b\": \"x\xffy\"}}", "(at a.b): invalid UTF-8 in a string"},
		{"{\"a\": {\"k\xff\": 1}}", "(at a): invalid UTF-8 in a key"},
		{`"\x"`, "invalid escape"},
		{`"\u12"`, "\\u escape"},
		{`[1,]`, "invalid character"},
		{`{"a" 1}`, "want ':'"},
		{`{1: 2}`, "want a string key"},
		{`[1 2]`, "want ',' or ']'"},
		{``, "unexpected end"},
		{`[`, "unexpected end"},
		{"\ufeff{}", "invalid character"},
		{strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), "nesting deeper"},
	}
	for _, c := range cases {
		_, err := Decode([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%q) = %v, want an error containing %q", c.in, err, c.want)
		}
	}
	if _, err := Decode([]byte(strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth))); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
}

func TestDecodeOrdered(t *testing.T) {
	in := `{"z": 1, "a": {"y": 2.0, "b": [{"q": null}]}}`
	v, err := DecodeOrdered([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	o := v.(Object)
	if !reflect.DeepEqual(o.Keys(), []string{"z", "a"}) {
		t.Fatalf("keys %v", o.Keys())
	}
	got, err := Encode(o, -1, false)
	if err != nil || string(got) != in {
		t.Fatalf("Encode = %s, %v; want %s", got, err, in)
	}
	want := map[string]any{"z": int64(1), "a": map[string]any{"y": 2.0, "b": []any{map[string]any{"q": nil}}}}
	if !reflect.DeepEqual(o.Map(), want) {
		t.Fatalf("Map = %#v", o.Map())
	}
	if a, ok := o.Get("a"); !ok || a.(Object)[0].Key != "y" {
		t.Fatalf("Get(a) = %#v", a)
	}
	o.Set("a", 3)
	o.Set("new", true)
	if got, _ := Encode(o, -1, false); string(got) != `{"z": 1, "a": 3, "new": true}` {
		t.Fatalf("after Set: %s", got)
	}
	if _, err := DecodeOrdered([]byte(`{"a":1,"a":1}`)); err == nil {
		t.Fatal("DecodeOrdered accepted a duplicate key")
	}
}

// Canonical inputs (what json.dumps writes) come back byte for byte.
func TestRoundTripCanonical(t *testing.T) {
	for _, in := range []struct {
		s      string
		indent int
	}{
		{"{\n  \"a\": [\n    1,\n    2.5,\n    -0.0,\n    1e-05,\n    NaN,\n    \"\\u00e9\\ud83d\\ude00\"\n  ],\n  \"b\": {},\n  \"c\": []\n}", 2},
		{`{"a": [1, 2.5, {"b": null}], "c": "\"\\\b\f\n\r\t\u0000"}`, -1},
		{`[1e+16, 123456789.0, 1.2345678901234568e+17, 0.0001, Infinity, -Infinity]`, -1},
	} {
		v, err := Decode([]byte(in.s))
		if err != nil {
			t.Fatalf("Decode(%s): %v", in.s, err)
		}
		out, err := Encode(v, in.indent, true)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != in.s {
			t.Errorf("round trip:\n got %s\nwant %s", out, in.s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []string{`{}`, `[]`, `{"a": [1, 2.5, -0.0, "x\u00e9"]}`, `NaN`, `-Infinity`, `1e400`,
		`{"a": {"a": {"a": 1}}}`, `"\ud83d\ude00"`, `[1.0, 1e-05, 123456789012345678]`}
	if b, err := os.ReadFile("testdata/gpt-oss-20b-config.json"); err == nil {
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ordered := range []bool{false, true} {
			dec := Decode
			if ordered {
				dec = DecodeOrdered
			}
			v, err := dec(data)
			if err != nil {
				return
			}
			for _, indent := range []int{-1, 2} {
				b1, err := Encode(v, indent, !ordered)
				if err != nil {
					t.Fatalf("Encode of decoded %q: %v", data, err)
				}
				v2, err := dec(b1)
				if err != nil {
					t.Fatalf("Decode of encoded %q: %v", b1, err)
				}
				b2, err := Encode(v2, indent, !ordered)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b1, b2) {
					t.Fatalf("unstable: %q -> %q", b1, b2)
				}
			}
		}
	})
}
