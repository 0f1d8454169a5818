package hf_test

import (
	"path/filepath"
	"testing"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/hf"
)

// TestSourceNaming: an input in the 0-based names GPT-OSS publishes says so,
// so that the way back writes them again; save_pretrained's names are the
// default and say nothing.
func TestSourceNaming(t *testing.T) {
	for naming, want := range map[string]string{"hf-zero-based": "hf-zero-based", "": "", "hf": ""} {
		_, _, src := write(t, &format.Output{Config: config(), Tensors: entries(), ShardBytes: 300, Naming: naming})
		if src.Naming != want {
			t.Errorf("written with naming %q: Source.Naming = %q, want %q", naming, src.Naming, want)
		}
	}
}

func TestConfigDoc(t *testing.T) {
	if got, want := (hf.Side{}).ConfigDoc("ck"), filepath.Join("ck", "config.json"); got != want {
		t.Errorf("ConfigDoc = %q, want %q", got, want)
	}
}
