package fastllm

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// parseYAML reads a YAML document with the package's own reader.
func parseYAML(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	v, err := fromYAML(&doc)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not a mapping: %T", v)
	}
	return m
}

// TestRealMetadata reads every metadata.yaml that Fast-LLM's own code wrote (testdata/real, see its README)
// and checks it has the sections Fast-LLM writes, that its state_index lists exactly the tensors of
// tensors.txt, and that the safetensors __metadata__ strings hold the same config.
func TestRealMetadata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "real", "*", "*", "*", MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d metadata.yaml files under testdata/real, want at least 10", len(files))
	}
	for _, path := range files {
		dir := filepath.Dir(path)
		stage := filepath.Base(dir) // fresh or trained
		t.Run(filepath.ToSlash(dir), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			md, err := ParseMetadata(data)
			if err != nil {
				t.Fatalf("ParseMetadata: %v", err)
			}
			if md.Version != "0.4.0" && md.Version != "0.3.0" {
				t.Errorf("fast_llm_version %q", md.Version)
			}
			if md.Carried != nil {
				t.Errorf("a checkpoint written by Fast-LLM has no metadata.mapper")
			}
			for _, k := range []string{"decoder", "embeddings", "head", "hidden_size", "peft", "tied_embedding_weight"} {
				if _, ok := md.Config[k]; !ok {
					t.Errorf("config.base_model has no %q", k)
				}
			}
			top := parseYAML(t, data)
			if want := ModelOf(md.Config); top["model"] != want {
				t.Errorf("model is %v, want %s", top["model"], want)
			}
			cfg := top["config"].(map[string]any)
			if want := ModelOf(md.Config); cfg["type"] != want {
				t.Errorf("config.type is %v, want %s", cfg["type"], want)
			}
			if _, ok := cfg["distributed"].(map[string]any); !ok {
				t.Errorf("config.distributed is missing")
			}
			meta := top["metadata"].(map[string]any)
			wantShards := []string{"weights"}
			if stage == "trained" {
				wantShards = []string{"weights", "exp_avgs", "exp_avgs_sq"}
				if _, ok := cfg["multi_stage"].(map[string]any); !ok {
					t.Errorf("config.multi_stage is missing")
				}
				if d, _ := cfg["distributed"].(map[string]any); d["compute_dtype"] == nil {
					t.Errorf("config.distributed.compute_dtype is missing")
				}
				for _, k := range []string{"optimizer", "completed_steps", "metrics"} {
					if _, ok := meta[k]; !ok {
						t.Errorf("metadata has no %q", k)
					}
				}
			} else if len(meta) != 1 {
				t.Errorf("metadata of a converted checkpoint holds %d sections, want only state_index", len(meta))
			}
			if !slices.Equal(md.Shards, wantShards) {
				t.Errorf("shards %v, want %v", md.Shards, wantShards)
			}

			// tensors.txt: key, dtype, shape, file; one line per state_index entry. Absent for the formats
			// converted from a config alone (no HF weights, see the README).
			f, err := os.Open(filepath.Join(dir, "tensors.txt"))
			if os.IsNotExist(err) {
				f = nil
			} else if err != nil {
				t.Fatal(err)
			} else {
				defer f.Close()
			}
			listed := map[string]string{}
			for sc := bufio.NewScanner(f); f != nil && sc.Scan(); {
				line := sc.Text()
				if strings.HasPrefix(line, "#") || line == "" {
					continue
				}
				cols := strings.Split(line, "\t")
				if len(cols) != 4 {
					t.Fatalf("tensors.txt: %q has %d columns", line, len(cols))
				}
				if cols[1] != "F32" {
					t.Errorf("tensors.txt: %s is %s, Fast-LLM writes F32", cols[0], cols[1])
				}
				listed[cols[0]] = cols[3]
			}
			if f != nil && !reflect.DeepEqual(listed, md.StateIndex) {
				t.Errorf("state_index (%d entries) and tensors.txt (%d) differ", len(md.StateIndex), len(listed))
			}
			for k := range md.StateIndex {
				i := strings.LastIndex(k, "/")
				if i < 0 || !slices.Contains(md.Shards, k[i+1:]) {
					t.Errorf("state_index key %q is not <parameter>/<shard>", k)
				}
			}

			// The safetensors __metadata__: strings; config, shards and metadata are YAML dumps taken before
			// state_index was added.
			raw, err := os.ReadFile(filepath.Join(dir, "safetensors_metadata.json"))
			if err != nil {
				t.Fatal(err)
			}
			var st map[string]string
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			if st["format"] != "fast_llm" || st["model"] != ModelOf(md.Config) || st["fast_llm_version"] != md.Version {
				t.Errorf("safetensors metadata scalars: %v", st)
			}
			if got := parseYAML(t, []byte(st["config"])); !reflect.DeepEqual(got, cfg) {
				t.Errorf("safetensors metadata config differs from metadata.yaml's config")
			}
			if _, ok := parseYAML(t, []byte(st["metadata"]))["state_index"]; ok {
				t.Errorf("safetensors metadata holds a state_index")
			}
		})
	}
}
