package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// ignoreMap converts one weight per layer and ignores each layer's rotary
// buffer, declared [hidden / 2], where the input has one.
const ignoreMap = `mapping toy
left hf
right fast_llm

let layers = num_hidden_layers
let hidden = hidden_size

config {
  hidden_size <-> hidden_size
  num_hidden_layers <-> decoder.num_blocks
  left model_type = "toy"
}

tensors {
  each l < layers: model.layers.{l} <-> decoder.{l} {
    w: [hidden, hidden] <-> w
    ignore rotary.inv_freq: [hidden / 2]
  }
}
`

func ignoreConfig() map[string]any {
	return map[string]any{"hidden_size": int64(8), "model_type": "toy", "num_hidden_layers": int64(2)}
}

// ignoreInput writes a two-layer checkpoint with the rotary buffers of the
// layers in buffers, each of the given length.
func ignoreInput(t *testing.T, buffers []int, length int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hf")
	var entries []safetensors.Entry
	for _, l := range []string{"0", "1"} {
		entries = append(entries, safetensors.Entry{Name: "model.layers." + l + ".w", DType: tensor.BF16, Shape: tensor.Shape{8, 8}})
	}
	for _, l := range buffers {
		entries = append(entries, safetensors.Entry{Name: "model.layers." + string(rune('0'+l)) + ".rotary.inv_freq", DType: tensor.F32, Shape: tensor.Shape{length}})
	}
	writeHF(t, dir, ignoreConfig(), entries)
	return dir
}

// TestIgnore: an import drops the ignored tensors the input has, says how
// many, and writes nothing for them; the export does not bring them back.
func TestIgnore(t *testing.T) {
	m := loadMapping(t, "toy.map", []byte(ignoreMap))
	for _, tc := range []struct {
		name    string
		buffers []int
		note    string
	}{
		{"both", []int{0, 1}, "2 tensors dropped, as toy.map:17 says (ignore model.layers.{l}.rotary.inv_freq): not converted, and not written back on export"},
		{"one", []int{1}, "1 tensor dropped, as toy.map:17 says"},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ignoreInput(t, tc.buffers, 4)
			fl := filepath.Join(t.TempDir(), "fl")
			p, _ := convert(t, m, in, fl, PlanOptions{})
			var want []string
			for _, l := range tc.buffers {
				want = append(want, "model.layers."+string(rune('0'+l))+".rotary.inv_freq")
			}
			if !slices.Equal(p.Ignored, want) {
				t.Errorf("ignored %v, want %v", p.Ignored, want)
			}
			notes := strings.Join(p.Notes, "\n")
			if tc.note == "" && strings.Contains(notes, "dropped") || tc.note != "" && !strings.Contains(notes, tc.note) {
				t.Errorf("notes:\n%s\nwant one saying %q", notes, tc.note)
			}
			if len(p.Jobs) != 2 {
				t.Errorf("%d jobs, want the 2 weights", len(p.Jobs))
			}
			back := filepath.Join(t.TempDir(), "back")
			convert(t, m, fl, back, PlanOptions{})
			ck, err := safetensors.OpenDir(back)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			var names []string
			for _, f := range ck.Files {
				for _, ti := range f.Tensors {
					names = append(names, ti.Name)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, []string{"model.layers.0.w", "model.layers.1.w"}) {
				t.Errorf("the export wrote %v, want the weights only", names)
			}
			if b, _ := os.ReadFile(filepath.Join(back, "config.json")); !strings.Contains(string(b), `"num_hidden_layers": 2`) {
				t.Errorf("config.json:\n%s", b)
			}
		})
	}
}

// TestIgnoreRefused: an ignored tensor of another shape than declared is
// refused at its ignore, and one the ignore's loop does not reach is
// unclaimed, as any other tensor.
func TestIgnoreRefused(t *testing.T) {
	m := loadMapping(t, "toy.map", []byte(ignoreMap))
	_, err := testPlan(m, ignoreInput(t, []int{0}, 3), PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "model.layers.0.rotary.inv_freq") || !strings.Contains(err.Error(), "has shape [3], the ignore declares [4]") {
		t.Errorf("plan: %v, want the shape refused", err)
	}
	_, err = testPlan(m, ignoreInput(t, []int{0, 2}, 4), PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "tensor model.layers.2.rotary.inv_freq") || !strings.Contains(err.Error(), "not claimed by any rule of toy") {
		t.Errorf("plan: %v, want layer 2's buffer unclaimed", err)
	}
}
