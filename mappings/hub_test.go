package mappings_test

// Published config.json files (testdata/hub, with their provenance in its
// README) on header-exact skeletons: the real config as it is, and the
// tensors its model has, with their real shapes and dtypes in
// save_pretrained's shards, the data left as holes of sparse files. Every
// config of a shipped family must plan, and its config must come back
// from Fast-LLM as it was; the small ones go all the way there and back.

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/configmap"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/engine/format/hf"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// hubFamilies are the model_types the shipped mappings convert.
var hubFamilies = map[string]string{"llama": "llama", "mistral": "mistral", "mixtral": "mixtral", "qwen2": "qwen2", "gpt_oss": "gpt_oss",
	"qwen3": "qwen3", "qwen3_moe": "qwen3_moe", "phi3": "phi3"}

// hubRefused are the published configs a shipped mapping refuses, with
// what the refusal says.
var hubRefused = map[string]string{
	"microsoft--Phi-3-mini-128k-instruct": "Phi-3's long-context rotary embedding (longrope, called su in older configs) has no Fast-LLM counterpart",
}

// smallHub bounds the checkpoints converted there and back (bytes of
// tensor data; the data is zeros read from holes, but written for real).
const smallHub = 300 << 20

func TestHubSkeletons(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "hub", "*", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no published configs in testdata/hub: the test data moved?")
	}
	shipped := 0
	for _, path := range paths {
		name := filepath.Base(filepath.Dir(path))
		raw := readFile(t, path)
		v, err := pyjson.Decode(raw)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		cfg := v.(map[string]any)
		mt, _ := cfg["model_type"].(string)
		mapping, ok := hubFamilies[mt]
		if !ok {
			t.Logf("%s: model_type %q has no shipped mapping", name, mt)
			continue
		}
		shipped++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, err := synth.FromConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Where the published index is here, the skeleton holds its
			// tensors: the rotary buffers older Llamas were saved with
			// too (Llama-2), which the config does not tell.
			index, hasIndex := hubIndex(t, filepath.Dir(path))
			a.RotaryBuffers = slices.ContainsFunc(slices.Collect(maps.Keys(index.names)), func(n string) bool {
				return strings.HasSuffix(n, ".self_attn.rotary_emb.inv_freq")
			})
			dir := filepath.Join(t.TempDir(), name)
			if err := synth.Skeleton(dir, raw, a, synth.Options{}); err != nil {
				t.Fatal(err)
			}
			if hasIndex {
				checkHubIndex(t, index, dir)
			}
			m := load(t, mapping)
			p, err := engine.NewPlan(m, dir, engine.PlanOptions{Workers: 1})
			if want, ok := hubRefused[name]; ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("plan: %v, want a refusal saying %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			for _, n := range p.Notes {
				t.Logf("note: %s", n)
			}
			p.Close()
			// What the mapping ignores is dropped, said, and not recorded
			// to come back.
			if buffers := a.Layers; a.RotaryBuffers {
				if len(p.Ignored) != buffers {
					t.Errorf("%d tensors ignored, want the %d rotary buffers", len(p.Ignored), buffers)
				}
				if note := fmt.Sprintf("%d tensors dropped", buffers); !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.HasPrefix(n, note) }) {
					t.Errorf("no note says %q", note)
				}
				for _, n := range p.Ignored {
					if _, ok := p.Carried.Files[n]; ok {
						t.Errorf("the record of the input's files names %s, which does not come back", n)
					}
				}
			} else if len(p.Ignored) > 0 {
				t.Errorf("ignored %v", p.Ignored)
			}
			checkHubConfigRoundTrip(t, m, cfg, raw)
			if p.BytesIn > smallHub {
				return
			}
			if testing.Short() {
				t.Skip("-short: no conversion")
			}
			fl, _ := convert(t, m, dir, engine.PlanOptions{})
			back, _ := convert(t, m, fl, engine.PlanOptions{})
			checkHubBytes(t, raw, readFile(t, filepath.Join(back, hf.ConfigFile)))
			checkHFRoundTrip(t, dir, back, false)
		})
	}
	if shipped == 0 {
		t.Errorf("none of the %d configs in testdata/hub is of a shipped family", len(paths))
	}
}

// hubIndexFile is a published model.safetensors.index.json: its tensor
// names and total_size.
type hubIndexFile struct {
	names     map[string]bool
	totalSize int64
}

// hubIndex reads dir's model.safetensors.index.json, if it has one.
func hubIndex(t *testing.T, dir string) (hubIndexFile, bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, safetensors.IndexFile))
	if errors.Is(err, os.ErrNotExist) {
		return hubIndexFile{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	v, err := pyjson.Decode(raw)
	if err != nil {
		t.Fatalf("%s: %v", safetensors.IndexFile, err)
	}
	doc, _ := v.(map[string]any)
	wm, _ := doc["weight_map"].(map[string]any)
	md, _ := doc["metadata"].(map[string]any)
	size, _ := md["total_size"].(int64)
	if len(wm) == 0 || size <= 0 {
		t.Fatalf("%s: no weight_map or total_size", safetensors.IndexFile)
	}
	out := hubIndexFile{names: map[string]bool{}, totalSize: size}
	for n := range wm {
		out.names[n] = true
	}
	return out, true
}

// checkHubIndex requires the skeleton in dir to hold the published index's
// tensors, no more and no fewer, and as many bytes (so dtypes and shapes
// add up as the publisher's did).
func checkHubIndex(t *testing.T, want hubIndexFile, dir string) {
	t.Helper()
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	got := map[string]bool{}
	var size int64
	for _, f := range ck.Files {
		for _, ti := range f.Tensors {
			got[ti.Name] = true
			size += ti.Size()
		}
	}
	for n := range want.names {
		if !got[n] {
			t.Errorf("the published index lists %s; the skeleton has no such tensor", n)
		}
	}
	for n := range got {
		if !want.names[n] {
			t.Errorf("the skeleton has %s; the published index lists no such tensor", n)
		}
	}
	if size != want.totalSize {
		t.Errorf("the skeleton's tensors take %d bytes; the published index says %d", size, want.totalSize)
	}
}

// checkHubConfigRoundTrip imports a config, passes what the import writes
// through metadata.yaml and exports it again, as apply there and back
// does: config.json must come back.
func checkHubConfigRoundTrip(t *testing.T, m *ir.Mapping, cfg map[string]any, raw []byte) {
	t.Helper()
	ex := configmap.Extras{Generic: hf.Side{}.GenericKeys()}
	in, err := configmap.New(m, fastllm.Side{}).WithExtras(ex).Import(cfg, hf.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := fastllm.EncodeMetadata("", in.Out, map[string]string{}, in.Carried)
	if err != nil {
		t.Fatal(err)
	}
	md, err := fastllm.ParseMetadata(meta)
	if err != nil {
		t.Fatal(err)
	}
	out, err := configmap.New(m, fastllm.Side{}).Export(md.Config, md.Carried, fastllm.MetadataFile, "", 1<<20)
	if err != nil {
		t.Fatalf("export: %v\n%s", err, meta)
	}
	if !reflect.DeepEqual(out.Out, cfg) {
		t.Errorf("the config does not come back:\n got %v\nwant %v", out.Out, cfg)
	}
	got, err := pyjson.Encode(out.Out, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	checkHubBytes(t, raw, append(got, '\n'))
}

// checkHubBytes requires config.json byte for byte where the published
// file is in save_pretrained's form (json.dumps with indent 2 and sorted
// keys, and a newline). A file in another form (keys unsorted, no final
// newline: see testdata/hub/README.md) comes back here with the same
// content; apply restores its bytes from the text the import records
// (TestPublishedConfigsRoundTrip).
func checkHubBytes(t *testing.T, published, back []byte) {
	t.Helper()
	if bytes.Equal(published, back) {
		return
	}
	v, _ := pyjson.Decode(published)
	canon, err := pyjson.Encode(v, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if canonical := bytes.Equal(append(canon, '\n'), published); canonical {
		t.Errorf("config.json is in save_pretrained's form but does not come back byte for byte:\n%s\n---\n%s", published, back)
		return
	}
	t.Logf("config.json is not in save_pretrained's form (CRLF %v, final newline %v): the same content came back, in that form",
		bytes.Contains(published, []byte("\r\n")), bytes.HasSuffix(published, []byte("\n")))
}
