package safetensors

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

func shardFiles(ss []Shard) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.File)
	}
	return out
}

func shardNames(ss []Shard) [][]string {
	var out [][]string
	for _, s := range ss {
		var names []string
		for _, e := range s.Entries {
			names = append(names, e.Name)
		}
		out = append(out, names)
	}
	return out
}

func TestPlanShards(t *testing.T) {
	u8 := func(name string, n int) Entry { return Entry{name, tensor.U8, tensor.Shape{n}} }
	entries := []Entry{u8("a", 40), u8("b", 40), u8("c", 30), u8("d", 100), u8("e", 10), u8("f", 0)}

	ss, err := PlanShards(entries, 80, NamingHF)
	if err != nil {
		t.Fatal(err)
	}
	// a+b fill 80 exactly; c would pass it; d is larger than the limit and
	// sits alone; e and the empty f share the last file.
	wantNames := [][]string{{"a", "b"}, {"c"}, {"d"}, {"e", "f"}}
	if got := shardNames(ss); !slices.EqualFunc(got, wantNames, slices.Equal) {
		t.Errorf("shards %v, want %v", got, wantNames)
	}
	for i, want := range []int64{80, 30, 100, 10} {
		if ss[i].Bytes != want {
			t.Errorf("shard %d: %d bytes, want %d", i, ss[i].Bytes, want)
		}
	}

	// Shard sizes and the index's total_size are sums of tensor sizes.
	if _, err := PlanShards(hugeEntries(16, 0), 0, NamingHF); err == nil || !strings.Contains(err.Error(), `tensor "w15": total size 8646911284551352320 + 576460752303423488 overflows`) {
		t.Errorf("PlanShards of 2^63 bytes: %v", err)
	}

	for _, tc := range []struct {
		naming Naming
		multi  []string
		single string
	}{
		{NamingHF, []string{"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
			"model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors"}, "model.safetensors"},
		{NamingHFZeroBased, []string{"model-00000-of-00003.safetensors", "model-00001-of-00003.safetensors",
			"model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"}, "model.safetensors"},
		{NamingFastLLM, []string{"model_0.safetensors", "model_1.safetensors", "model_2.safetensors",
			"model_3.safetensors"}, "model_0.safetensors"},
	} {
		ss, _ := PlanShards(entries, 80, tc.naming)
		if got := shardFiles(ss); !slices.Equal(got, tc.multi) {
			t.Errorf("%v: files %v, want %v", tc.naming, got, tc.multi)
		}
		ss, _ = PlanShards(entries, 0, tc.naming) // no limit
		if got := shardFiles(ss); !slices.Equal(got, []string{tc.single}) || len(ss[0].Entries) != len(entries) {
			t.Errorf("%v unlimited: files %v", tc.naming, got)
		}
	}
	// GPT-OSS 20b publishes three files 0-based: 00000..00002 of 00002.
	if got := NamingHFZeroBased.FileName(2, 3); got != "model-00002-of-00002.safetensors" {
		t.Errorf("zero-based last name %q", got)
	}

	ss, _ = PlanShards(nil, 80, NamingHF)
	if len(ss) != 1 || len(ss[0].Entries) != 0 || ss[0].File != "model.safetensors" {
		t.Errorf("no entries: %+v", ss)
	}
	// A too-large first tensor does not leave an empty shard in front of it.
	ss, _ = PlanShards([]Entry{u8("big", 200), u8("x", 1)}, 80, NamingFastLLM)
	if got := shardNames(ss); !slices.EqualFunc(got, [][]string{{"big"}, {"x"}}, slices.Equal) {
		t.Errorf("big first: %v", got)
	}
	if _, err := PlanShards([]Entry{{"bad", tensor.F32, tensor.Shape{-1}}}, 80, NamingHF); err == nil ||
		!strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("invalid entry: %v", err)
	}
}

func TestIndexEncodeGolden(t *testing.T) {
	ss, err := PlanShards([]Entry{
		{"model.embed_tokens.weight", tensor.BF16, tensor.Shape{4, 2}},
		{"model.norm.weight", tensor.BF16, tensor.Shape{2}},
		{"lm_head.weight", tensor.F32, tensor.Shape{4, 2}},
		{"caf\u00e9 \"q\"\U0001F600", tensor.U8, tensor.Shape{3}},
	}, 20, NamingHF)
	if err != nil {
		t.Fatal(err)
	}
	// Python: json.dumps(index, indent=2, sort_keys=True) + "\n".
	want := `{
  "metadata": {
    "total_size": 55
  },
  "weight_map": {
    "caf\u00e9 \"q\"\ud83d\ude00": "model-00003-of-00003.safetensors",
    "lm_head.weight": "model-00002-of-00003.safetensors",
    "model.embed_tokens.weight": "model-00001-of-00003.safetensors",
    "model.norm.weight": "model-00001-of-00003.safetensors"
  }
}
`
	got := string(NewIndex(ss).Encode())
	if got != want {
		t.Errorf("index\n got:\n%s\nwant:\n%s", got, want)
	}
	ix, err := ParseIndex([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if ix.TotalSize != 55 || len(ix.WeightMap) != 4 || ix.WeightMap["caf\u00e9 \"q\"\U0001F600"] != "model-00003-of-00003.safetensors" {
		t.Errorf("parsed back: %+v", ix)
	}
	empty := string((&Index{}).Encode())
	if empty != "{\n  \"metadata\": {\n    \"total_size\": 0\n  },\n  \"weight_map\": {}\n}\n" {
		t.Errorf("empty index %q", empty)
	}
}

func TestParseIndex(t *testing.T) {
	ix, err := ParseIndex([]byte(`{"metadata": {"total_size": 1.2e1, "format": "pt", "nested": {"a": [1]}},
		"weight_map": {"a": "x.safetensors"}, "future_key": [1, 2]}`))
	if err != nil {
		t.Fatal(err)
	}
	if ix.TotalSize != 12 || len(ix.Metadata) != 3 || ix.WeightMap["a"] != "x.safetensors" {
		t.Errorf("index %+v", ix)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"weight_map": {"a": "x", "a": "y"}}`, `tensor "a": listed twice`},
		{`{"metadata": {}}`, `no "weight_map"`},
		{`{"weight_map": {"a": 1}}`, "want a file name"},
		{`{"weight_map": {}, "metadata": {"total_size": "big"}}`, "total_size"},
		{`{"weight_map": {}, "metadata": {"total_size": 1.5}}`, "total_size"},
		{`{"weight_map": {}} x`, "after the JSON object"},
		{`[]`, "invalid index JSON"},
		{`{"weight_map": {"a": "x"}`, "invalid index JSON"},
	} {
		if _, err := ParseIndex([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseIndex(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestWriteShardedCheckpoint goes the whole way: plan shards, write each in
// an OutputDir, write the index, commit, and read the result back with
// OpenDir and both readers.
func TestWriteShardedCheckpoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	ts := randomTensors(rng, 40, "model.layers.")
	entries := entriesOf(ts)
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	for _, naming := range []Naming{NamingHF, NamingHFZeroBased, NamingFastLLM} {
		t.Run(naming.String(), func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "out")
			od, err := NewOutputDir(target, OutputOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer od.Abort()
			ss, err := PlanShards(entries, 20_000, naming)
			if err != nil {
				t.Fatal(err)
			}
			if len(ss) < 3 {
				t.Fatalf("only %d shards; the test wants several", len(ss))
			}
			for _, s := range ss {
				part := make(map[string]tensor.Tensor)
				for _, e := range s.Entries {
					part[e.Name] = ts[e.Name]
				}
				writeTensors(t, filepath.Join(od.Path(), s.File), part, nil)
			}
			var names []string
			if naming == NamingFastLLM {
				names = shardFiles(ss) // Fast-LLM lists them in metadata.yaml
			} else if err := WriteIndex(filepath.Join(od.Path(), IndexFile), NewIndex(ss)); err != nil {
				t.Fatal(err)
			}
			if err := od.Commit(); err != nil {
				t.Fatal(err)
			}
			var c *Checkpoint
			if names != nil {
				c, err = OpenFiles(target, names)
			} else {
				c, err = OpenDir(target)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got, want := c.Names(), sortedKeys(ts); !slices.Equal(got, want) {
				t.Fatalf("names %v, want %v", got, want)
			}
			if names == nil && c.Index.TotalSize != sumBytes(ss) {
				t.Errorf("index total_size %d, want %d", c.Index.TotalSize, sumBytes(ss))
			}
			for name, want := range ts {
				f, _, ok := c.Lookup(name)
				if !ok {
					t.Fatalf("Lookup(%q) failed", name)
				}
				got, err := f.Load(name)
				if err != nil || got.DType != want.DType || !got.Shape.Equal(want.Shape) || string(got.Data) != string(want.Data) {
					t.Errorf("tensor %q differs (%v)", name, err)
				}
			}
			if _, err := os.Stat(od.Path()); !os.IsNotExist(err) {
				t.Errorf("temp dir still there after Commit: %v", err)
			}
		})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func sumBytes(ss []Shard) int64 {
	var n int64
	for _, s := range ss {
		n += s.Bytes
	}
	return n
}
