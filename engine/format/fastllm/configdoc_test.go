package fastllm

import (
	"path/filepath"
	"testing"
)

func TestConfigDoc(t *testing.T) {
	if got, want := (Side{}).ConfigDoc("ck"), filepath.Join("ck", "metadata.yaml")+" config.base_model"; got != want {
		t.Errorf("ConfigDoc = %q, want %q", got, want)
	}
}
