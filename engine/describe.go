package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/quote"
)

// Summary is the plan in the form `mapper plan --json` prints.
type Summary struct {
	Mapping    string          `json:"mapping"`
	MapFile    string          `json:"map_file"`
	Direction  string          `json:"direction"`
	From       string          `json:"from"`
	To         string          `json:"to"`
	Variant    string          `json:"variant,omitempty"`
	Targets    []SideTarget    `json:"targets,omitempty"`
	BytesIn    int64           `json:"bytes_in"`
	BytesOut   int64           `json:"bytes_out"`
	PeakMemory int64           `json:"peak_memory"`
	Memory     int64           `json:"memory_budget"`
	Workers    int             `json:"workers"`
	Config     map[string]any  `json:"config"`
	Carried    any             `json:"carried,omitempty"`
	Notes      []string        `json:"notes,omitempty"`
	Shards     []ShardSummary  `json:"shards"`
	Tensors    []TensorSummary `json:"tensors"`
	SideFiles  []string        `json:"side_files,omitempty"`
	// Like is the checkpoint an export took its record from (--like), and
	// LikeFiles its side files the output gets.
	Like      string   `json:"like,omitempty"`
	LikeFiles []string `json:"like_side_files,omitempty"`

	// show renders the output's config document as its side writes it.
	show func() (file string, text []byte, err error)
}

// ShardSummary is one output file.
type ShardSummary struct {
	File    string `json:"file"`
	Tensors int    `json:"tensors"`
	Bytes   int64  `json:"bytes"`
}

// TensorSummary is one output tensor and how it is made.
type TensorSummary struct {
	Name    string   `json:"name"`
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Bytes   int64    `json:"bytes"`
	Shard   string   `json:"shard"`
	Sources []string `json:"sources"`
	Ops     []string `json:"ops"`
	Rule    string   `json:"rule"`
	Chunks  int      `json:"chunks"`
}

// Summarize describes the plan.
func (p *Plan) Summarize() *Summary {
	s := &Summary{Mapping: p.Mapping, MapFile: p.MapFile, Direction: p.Direction.String(), From: p.From, To: p.To,
		Variant: p.Variant, Targets: p.Targets, BytesIn: p.BytesIn, BytesOut: p.BytesOut, PeakMemory: p.PeakMemory, Memory: p.Memory,
		Workers: p.Workers, Config: p.Config, Notes: p.Notes, SideFiles: p.SideFiles,
		Like: p.Like, LikeFiles: p.LikeFiles}
	if p.Carried != nil {
		s.Carried = p.Carried
	}
	if p.out != nil && p.output != nil {
		s.show = func() (string, []byte, error) { return p.out.ShowConfig(p.output) }
	}
	shardOf := map[string]string{}
	for _, sh := range p.Shards {
		s.Shards = append(s.Shards, ShardSummary{File: sh.File, Tensors: len(sh.Entries), Bytes: sh.Bytes})
		for _, n := range sh.Logical {
			shardOf[n] = sh.File
		}
	}
	byName := map[string]TensorSummary{}
	for _, j := range p.Jobs {
		var srcs []string
		for _, b := range j.Sources {
			for _, t := range b {
				srcs = append(srcs, t.Name)
			}
		}
		var ops []string
		for _, st := range j.Stages {
			ops = append(ops, st.String())
		}
		chunks := (j.Units + j.ChunkUnits - 1) / j.ChunkUnits
		for _, b := range j.Outputs {
			for i, n := range b {
				t := j.OutTypes[i]
				size, _ := t.Shape.ByteSize(t.DType)
				byName[n] = TensorSummary{Name: n, DType: t.DType.String(), Shape: t.Shape, Bytes: size,
					Shard: shardOf[n], Sources: srcs, Ops: ops, Rule: j.Rule, Chunks: chunks}
			}
		}
	}
	for _, e := range p.outputEntries() {
		s.Tensors = append(s.Tensors, byName[e.Name])
	}
	return s
}

// WriteJSON prints the summary as indented JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(quote.JSON(b), '\n'))
	return err
}

// WriteText prints the summary for people. Names from the checkpoint
// (tensors, files, a recorded variant) are escaped where they would not
// print as themselves; the config is escaped by pyjson.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mapping %s (%s): %s, %s -> %s", quote.Name(s.Mapping), quote.Name(s.MapFile), s.Direction, s.From, s.To)
	if s.Variant != "" {
		fmt.Fprintf(&b, ", variant %s", quote.Name(s.Variant))
	}
	for _, t := range s.Targets {
		fmt.Fprintf(&b, "\ntarget: %s", t)
	}
	fmt.Fprintf(&b, "\n%d tensors, %s in, %s out; peak working memory %s (budget %s, %d workers)\n",
		len(s.Tensors), FormatBytes(s.BytesIn), FormatBytes(s.BytesOut), FormatBytes(s.PeakMemory), FormatBytes(s.Memory), s.Workers)
	if s.show != nil {
		// The output's own document in its own syntax (it holds what is
		// carried for the way back where the side can hold it).
		file, text, err := s.show()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "\n%s:\n%s", file, indent(strings.TrimSuffix(string(text), "\n"), "  "))
		b.WriteString("\n")
	} else {
		cfg, err := pyjson.Encode(s.Config, 2, true)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "\nconfig:\n%s\n", indent(string(cfg), "  "))
		if s.Carried != nil {
			c, err := carriedText(s.Carried)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "carried for the way back: %s\n", c)
		}
	}
	if len(s.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	b.WriteString("\nfiles:\n")
	for _, sh := range s.Shards {
		fmt.Fprintf(&b, "  %s  %d tensors  %s\n", quote.Name(sh.File), sh.Tensors, FormatBytes(sh.Bytes))
	}
	for _, f := range s.SideFiles {
		fmt.Fprintf(&b, "  %s  (copied unchanged)\n", quote.Name(f))
	}
	for _, f := range s.LikeFiles {
		fmt.Fprintf(&b, "  %s  (copied unchanged from %s, --like)\n", quote.Name(f), quote.Name(s.Like))
	}
	b.WriteString("\ntensors:\n")
	for _, t := range s.Tensors {
		fmt.Fprintf(&b, "  %s %s%v  %s\n", quote.Name(t.Name), t.DType, t.Shape, quote.Name(t.Shard))
		// A stack over 128 experts names 256 sources: show both ends.
		srcs := quote.Names(t.Sources)
		if len(srcs) > 4 {
			srcs = []string{srcs[0], srcs[1], fmt.Sprintf("... %d more ...", len(srcs)-3), srcs[len(srcs)-1]}
		}
		src := strings.Join(srcs, ", ")
		if len(t.Sources) > 1 {
			src = "(" + src + ")"
		}
		if len(t.Ops) == 0 {
			fmt.Fprintf(&b, "      <- %s  copied  (%s)\n", src, t.Rule)
			continue
		}
		chunks := ""
		if t.Chunks > 1 {
			chunks = fmt.Sprintf("  [%d chunks]", t.Chunks)
		}
		fmt.Fprintf(&b, "      <- %s | %s%s  (%s)\n", src, strings.Join(t.Ops, " | "), chunks, t.Rule)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

// carriedText prints what an import carries on one line, with values
// written as the config above them is (Python's repr of floats: 7.0 stays
// 7.0, where encoding/json would print 7).
func carriedText(c any) ([]byte, error) {
	fc, ok := c.(*format.Carried)
	if !ok {
		b, err := json.Marshal(c)
		return quote.JSON(b), err
	}
	o := pyjson.Object{{Key: "mapping", Value: fc.Mapping}, {Key: "from", Value: fc.From}}
	if fc.Variant != "" {
		o = append(o, pyjson.Member{Key: "variant", Value: fc.Variant})
	}
	if len(fc.Kept) > 0 {
		o = append(o, pyjson.Member{Key: "kept", Value: fc.Kept})
	}
	if len(fc.Extra) > 0 {
		o = append(o, pyjson.Member{Key: "extra", Value: fc.Extra})
	}
	if len(fc.Absent) > 0 {
		o = append(o, pyjson.Member{Key: "absent", Value: fc.Absent})
	}
	if len(fc.ForDefault) > 0 {
		o = append(o, pyjson.Member{Key: "for_default", Value: fc.ForDefault})
	}
	if len(fc.Branches) > 0 {
		b := make(map[string]any, len(fc.Branches))
		for cond, held := range fc.Branches {
			b[cond] = held
		}
		o = append(o, pyjson.Member{Key: "branches", Value: b})
	}
	if fc.DType != "" {
		o = append(o, pyjson.Member{Key: "dtype", Value: fc.DType})
	}
	if len(fc.DTypes) > 0 {
		o = append(o, pyjson.Member{Key: "dtypes", Value: fc.DTypes})
	}
	return pyjson.Encode(o, -1, false)
}
