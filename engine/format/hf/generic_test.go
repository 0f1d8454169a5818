package hf

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine/format"
)

var _ format.GenericConfig = Side{}

// TestGenericKeys: the list parses, names transformers' keys and leaves out
// the architecture ones (a mapping must decide those).
func TestGenericKeys(t *testing.T) {
	g := Side{}.GenericKeys()
	for _, k := range []string{"_name_or_path", "dtype", "torch_dtype", "transformers_version", "use_cache", "bos_token_id",
		"eos_token_id", "pad_token_id", "output_attentions", "return_dict", "chunk_size_feed_forward", "temperature", "top_p",
		"transformers.js_config"} {
		if k, ok := g.Lookup(k); !ok || k.Pinned {
			t.Errorf("%s: %+v, %v; want a free generic key", k.Name, k, ok)
		}
	}
	for name, only := range map[string]any{"is_encoder_decoder": false, "tie_encoder_decoder": false, "is_decoder": false,
		"add_cross_attention": false, "cross_attention_hidden_size": nil, "pruned_heads": map[string]any{}} {
		if k, ok := g.Lookup(name); !ok || !k.Pinned || !reflect.DeepEqual(k.Only, only) {
			t.Errorf("%s: %+v, %v; want pinned at %v", name, k, ok, only)
		}
	}
	for _, k := range []string{"architectures", "model_type", "tie_word_embeddings", "per_layer_config", "hidden_size",
		"rope_scaling", "quantization_config"} {
		if _, ok := g.Lookup(k); ok {
			t.Errorf("%s is listed as generic; it is the model's", k)
		}
	}
}

func TestParseGenericErrors(t *testing.T) {
	for text, want := range map[string]string{
		"a\nb\na\n":           "line 3: a is listed twice",
		"a = {\n":             "line 1:",
		"two words\n":         `line 1: "two words" is not a key name`,
		"= 1\n":               `line 1: "" is not a key name`,
		"a # c\nb = null #\n": "",
	} {
		_, err := parseGeneric(text)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", text, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
}
