package fastllm

import (
	"embed"
	"fmt"
	"path"
	"strconv"
	"sync"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/schema"
	"github.com/mapper-dev/mapper/engine/format"
)

// The parameter schemas, one per Fast-LLM mapper writes for (a target):
// which parameters, by name and shape, that Fast-LLM's model creates for a
// config.base_model. They are data (schema/*.params, the language of
// dsl/schema), checked against what Fast-LLM's own code writes
// (testdata/real), and every plan with a fast_llm side is held to them.

//go:embed schema/*.params
var schemaFiles embed.FS

// SchemaDir is where the schema files live in the source tree, as
// messages name them.
const SchemaDir = "engine/format/fastllm/schema"

// schemaFile names the schema of each target (Targets): the parameters that
// Fast-LLM creates.
var schemaFile = map[string]string{Main: "main.params", PR374: "pr374.params"}

// TargetOf is the target of mapping m's fast_llm side: the Fast-LLM it
// writes for (and reads from), whose schema its checkpoints are held to.
// It is the header's `target`, else the side's default (Main).
func TargetOf(m *ir.Mapping) string {
	t := m.RightTarget
	if m.Right != Name {
		t = m.LeftTarget
	}
	if t == "" {
		t = Main
	}
	return t
}

var schemaOnce sync.Map // target -> func() (*schema.Schema, error)

// Schema returns the parameter schema of a target, loaded once.
func Schema(target string) (*schema.Schema, error) {
	load, _ := schemaOnce.LoadOrStore(target, sync.OnceValues(func() (*schema.Schema, error) {
		name, ok := schemaFile[target]
		if !ok {
			return nil, fmt.Errorf("fast_llm: no parameter schema for Fast-LLM target %q (known: %s, %s)", target, Main, PR374)
		}
		src, err := schemaFiles.ReadFile("schema/" + name)
		if err != nil {
			return nil, fmt.Errorf("fast_llm: %w", err)
		}
		s, diags := schema.Load(path.Join(SchemaDir, name), src)
		if err := diags.Err(); err != nil {
			return nil, fmt.Errorf("fast_llm: parameter schema of %s: %w", target, err)
		}
		return s, nil
	}))
	return load.(func() (*schema.Schema, error))()
}

var _ format.ParamSchema = Side{}

// Params implements format.ParamSchema: the parameters the Fast-LLM that m
// targets creates for config (config.base_model).
func (Side) Params(m *ir.Mapping, config map[string]any, limit int) (*format.Params, error) {
	target := TargetOf(m)
	s, err := Schema(target)
	if err != nil {
		return nil, err
	}
	program := fmt.Sprintf("Fast-LLM %s (%s)", s.Name, target)
	decl, err := s.Expand(ConfigView(config), limit)
	if err != nil {
		return nil, fmt.Errorf("the parameter schema of %s does not describe this config, so the tensors cannot be checked against it: %w", program, err)
	}
	out := &format.Params{Program: program, List: make([]format.Param, len(decl))}
	for i, d := range decl {
		out.List[i] = format.Param{Name: d.Name, Shape: d.Shape, Pos: d.Pos, Use: d.Use, Part: d.Part}
	}
	return out, nil
}

// ConfigView is the config a parameter schema reads: config.base_model,
// where S.N (N a number) is block N's config of the block sequence S
// (decoder, vision_encoder.encoder) as Fast-LLM resolves it
// (BlockSequenceConfig): S.block of a fixed sequence (an absent block, or
// an absent S, has every default), S.blocks.<pattern[N mod len(pattern)]>
// of a pattern sequence (S.type: pattern). Fast-LLM's configs have no
// numeric keys, so a number always addresses a block.
func ConfigView(config map[string]any) ir.Env { return configView(config) }

type configView map[string]any

func (v configView) Lookup(p []string) (any, bool) {
	var node any = map[string]any(v)
	present := true
	for i, seg := range p {
		if n, err := strconv.ParseUint(seg, 10, 63); err == nil && i > 0 {
			b, ok := blockAt(node, int64(n)) // node is nil when absent
			if !ok {
				return nil, false
			}
			node, present = b, true
			continue
		}
		if !present {
			continue // under an absent key: absent, or a block with every default
		}
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		node, present = m[seg]
	}
	return node, present
}

// blockAt is block n's config of a block sequence node.
func blockAt(seq any, n int64) (any, bool) {
	d, ok := seq.(map[string]any)
	if !ok {
		return map[string]any{}, seq == nil // an absent sequence has every default
	}
	if d["type"] != "pattern" {
		b, ok := d["block"]
		if !ok {
			return map[string]any{}, true
		}
		return b, true
	}
	pattern, _ := d["pattern"].([]any)
	blocks, _ := d["blocks"].(map[string]any)
	if len(pattern) == 0 {
		return nil, false
	}
	name, _ := pattern[n%int64(len(pattern))].(string)
	b, ok := blocks[name]
	return b, ok
}
