// Package format defines what the engine needs from a checkpoint side (a
// directory layout such as Hugging Face's or Fast-LLM's) and keeps the
// registry of known sides. Each side lives in its own subpackage and
// registers itself; the engine core never names a side, so adding one never
// touches it.
//
// A side owns everything about its layout: its name (Register also tells
// the .map checker, through dsl/sides), recognising a checkpoint (Detect),
// reading config and tensor headers and its files' naming (Open), the name
// of its config document in messages (ConfigDoc), shard layout and defaults
// (Layout), writing (WriteMeta) and, when its config stores a per-layer
// block layout, how it stores it (BlockSchema).
package format

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/mapper-dev/mapper/dsl/sides"
	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Format is one checkpoint side.
type Format interface {
	// Name is the side's name in .map files: "hf", "fast_llm".
	Name() string
	// Detect reports whether dir looks like a checkpoint of this side (cheap:
	// file names only).
	Detect(dir string) bool
	// ConfigDoc names the config document of a checkpoint in dir as
	// messages cite it: the file, and where in it the config rules look.
	ConfigDoc(dir string) string
	// Open reads a checkpoint's config and tensor headers; no tensor bytes.
	Open(dir string) (*Source, error)
	// Layout decides the output files for a conversion to this side: the
	// shards, each with its file-level tensor names.
	Layout(out *Output) ([]Shard, error)
	// WriteMeta writes the side's config and index files into dir. shards is
	// what Layout returned; the engine calls it before writing any tensor,
	// so that a failure here costs nothing.
	WriteMeta(dir string, out *Output, shards []Shard) error
	// ShowConfig renders out's config document as WriteMeta writes it, in
	// the side's own syntax, for people comparing it with the file they
	// know (mapper plan); bookkeeping that only lists the tensors (an
	// index) is left out. file names the document.
	ShowConfig(out *Output) (file string, text []byte, err error)
	// RenderConfig renders a config the rules address (an opened Source's
	// Config) in the side's own syntax, for mapper inspect.
	RenderConfig(config map[string]any) ([]byte, error)
}

// ConfigOpener is implemented by a side whose checkpoints can be read for
// their config and side files alone: a checkpoint an export takes what its
// input lacks from (PlanOptions.Like) may have been downloaded without its
// weights. OpenConfig is Open, except that a directory with no weight
// files at all gives a Source with no tensors and a nil Checkpoint.
type ConfigOpener interface {
	OpenConfig(dir string) (*Source, error)
}

// Identified is implemented by a side whose config documents say which
// model they describe under fixed keys (transformers' architectures and
// model_type in an HF config.json). Those keys' values, as the mappings'
// left constants declare them, tell which mapping an input needs (see
// engine.Detect).
type Identified interface {
	IdentityKeys() []string
}

// Target is one version of the program on a side that a mapping can write
// for, named by a .map header (`right fast_llm target "0.4.0"`): what a
// conversion to the side writes where versions differ (the fast_llm side
// writes its name as fast_llm_version). The config a target accepts is the
// mapping's business: its rules say what it writes.
type Target struct {
	Name    string // as a header names it
	About   string // which program and revision it is, for people
	Default bool   // the target of a header that names none (one per side)
}

// Targeted is implemented by a side that knows several targets.
type Targeted interface {
	// Targets lists them, the default one among them.
	Targets() []Target
}

// LookupTarget returns the target of side called name.
func LookupTarget(side, name string) (Target, bool) {
	if t, ok := registry[side].(Targeted); ok {
		for _, x := range t.Targets() {
			if x.Name == name {
				return x, true
			}
		}
	}
	return Target{}, false
}

// Source is an opened input checkpoint.
type Source struct {
	Format string
	Dir    string
	// Config is the document the .map config rules address: config.json for
	// hf; config.base_model of metadata.yaml for fast_llm. Numbers are int64
	// or float64, exactly as written (1.0 stays a float, 1 an int).
	Config map[string]any
	// Carried is what an earlier import by mapper recorded for the way back
	// (nil when the checkpoint did not come from mapper).
	Carried *Carried
	// Tensors are the logical tensor names (a fast_llm "x/weights" key is
	// "x"), sorted, with where each one lives.
	Tensors []Tensor
	// SideFiles are the regular files of Dir that the side does not own
	// (tokenizer, generation config, chat template, README...): copied
	// through unchanged, in sorted order.
	SideFiles []string
	// Skipped are entries of Dir that are neither owned nor carried
	// (subdirectories), reported by the plan.
	Skipped []string
	// Naming is the convention the tensor files' names follow (a
	// safetensors.Naming name) when it is not the side's default, so that
	// the way back can write the same names; "" otherwise.
	Naming string
	// Unlisted are weight files of Dir that the side's index does not name
	// (see safetensors.Checkpoint.Unlisted): neither read nor copied, and
	// reported by the plan, since a user may have meant them to be read.
	Unlisted []string
	// IndexFile is the file that lists the weight files: the index, or
	// Fast-LLM's metadata.yaml; "" when every weight file is read.
	IndexFile string
	// Version is the version of the program that wrote the checkpoint, as
	// the checkpoint states it (a fast_llm_version); "" when it states
	// none. It is compared with the target's name.
	Version string
	// Notes say what the side read but leaves out of the conversion on
	// purpose (training state beside the weights, ...), for the plan.
	Notes []string
	// Texts are documents the side read (by file name) whose exact text it
	// would not write back from their content alone: a config.json not in
	// save_pretrained form, an index not in the form the side writes. An
	// import records them (Carried.Texts), so that the way back can write
	// the very bytes.
	Texts map[string]string

	Checkpoint *safetensors.Checkpoint
}

// Tensor is one input tensor: its logical name and where its bytes are.
type Tensor struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape
	File  *safetensors.File
	Info  safetensors.TensorInfo // Info.Name is the file-level key
}

// Lookup finds a tensor by logical name.
func (s *Source) Lookup(name string) (Tensor, bool) {
	i := sort.Search(len(s.Tensors), func(i int) bool { return s.Tensors[i].Name >= name })
	if i < len(s.Tensors) && s.Tensors[i].Name == name {
		return s.Tensors[i], true
	}
	return Tensor{}, false
}

// Unchanged reports an input file that changed since Open read it (see
// safetensors.File.Unchanged).
func (s *Source) Unchanged() error {
	if s.Checkpoint == nil {
		return nil
	}
	return s.Checkpoint.Unchanged()
}

// Close releases the mapped files.
func (s *Source) Close() error {
	if s.Checkpoint == nil {
		return nil
	}
	return s.Checkpoint.Close()
}

// Carried is what mapper stores beside a converted config so that the way
// back loses nothing: left config keys the other side has no place for, which
// left keys were absent (defaults must not materialise on the way back), the
// variant chosen on import, the mapping that did it, and what the input's
// files held beyond their content (their layout, __metadata__, the exact
// text of their documents).
type Carried struct {
	Mapping string `json:"mapping"`
	// MappingHash is the hex sha256 of the .map source the import ran
	// (ir.Mapping.Hash); "" when not known. An export with another
	// mapping is refused unless the user overrides it.
	MappingHash string         `json:"mapping_sha256,omitempty"`
	From        string         `json:"from"` // the side imported from
	Variant     string         `json:"variant,omitempty"`
	Kept        map[string]any `json:"kept,omitempty"`   // dotted left path -> value
	Absent      []string       `json:"absent,omitempty"` // dotted left paths
	// ForDefault lists the left keys (dotted) that held the value their
	// rule names with `for`, which stands for the default: the way back
	// writes that value again where the default still holds.
	ForDefault []string `json:"for_default,omitempty"`
	// Extra are top-level left keys no rule claims that travel anyway: the
	// left side's generic keys (GenericConfig) and those the user named
	// with --keep. Names are literal: a dot is part of the name
	// ("transformers.js_config"), unlike Kept's dotted paths.
	Extra map[string]any `json:"extra,omitempty"`
	// Branches records, for each config when whose branch the export
	// cannot decide again (ir.Branch, by its condition's text), whether
	// the condition held on import.
	Branches map[string]bool `json:"branches,omitempty"`
	// Files and Naming record how the imported checkpoint was split into
	// files (tensor -> file name, and its naming convention), so that the
	// way back writes the same files. Absent for a single file without an
	// index.
	Files  map[string]string `json:"files,omitempty"`
	Naming string            `json:"naming,omitempty"`
	// DType is the dtype of every left tensor whose rule declares none,
	// when they all have the same; DTypes, when they do not, the dtype of
	// each. The way back casts a tensor that arrives in another float
	// dtype (a checkpoint trained in F32) back to it.
	DType  string            `json:"dtype,omitempty"`
	DTypes map[string]string `json:"dtypes,omitempty"`
	// FileMetadata is each input weight file's safetensors __metadata__,
	// by file name; a nil map: the file had none. nil: no record (an
	// import by an older mapper).
	FileMetadata map[string]map[string]string `json:"file_metadata,omitempty"`
	// Texts are the input's documents whose exact text the side would not
	// rebuild from their content (Source.Texts), by file name.
	Texts map[string]string `json:"texts,omitempty"`
}

// LeftDType is the dtype the import recorded for left tensor name ("":
// none recorded).
func (c *Carried) LeftDType(name string) string {
	if c == nil {
		return ""
	}
	if d, ok := c.DTypes[name]; ok {
		return d
	}
	return c.DType
}

// Original is what an import recorded about the files of the checkpoint it
// read (from Carried), given to the side that writes that checkpoint's side
// back, so that it can restore what its content alone does not say.
type Original struct {
	// FileMetadata: see Carried.FileMetadata.
	FileMetadata map[string]map[string]string
	// Texts: see Carried.Texts.
	Texts map[string]string
}

// GenericConfig is implemented by a side whose config documents hold keys
// that belong to the library reading them rather than to the model:
// transformers' PretrainedConfig attributes in an HF config.json (the name
// it was loaded from, the dtype, token ids, generation defaults). A mapping
// need not name them: on import a top-level key of the left config that no
// rule claims and the left side lists travels for the way back
// (Carried.Extra), as a keep would carry it, when its value is one the list
// allows. The model's own keys stay refused unless a rule maps them.
type GenericConfig interface {
	GenericKeys() GenericKeys
}

// GenericKeys is a side's list of generic config keys.
type GenericKeys struct {
	// What names the list in messages ("transformers' generic config keys").
	What string
	Keys []GenericKey
}

// GenericKey is one generic key.
type GenericKey struct {
	Name string // a top-level key, literally
	// Pinned keys travel only at the value Only: another value changes the
	// model (is_encoder_decoder: true), so a rule must map the key then.
	Pinned bool
	Only   any
}

// Lookup returns the generic key called name.
func (g GenericKeys) Lookup(name string) (GenericKey, bool) {
	for _, k := range g.Keys {
		if k.Name == name {
			return k, true
		}
	}
	return GenericKey{}, false
}

// Output is a conversion's result as a side must lay it out.
type Output struct {
	Config  map[string]any
	Carried *Carried // only sides that can hold it (fast_llm) accept a non-nil value
	// Tensors are the logical output tensors in plan order.
	Tensors []safetensors.Entry
	// ShardBytes limits the tensor data per file (0: the side's default).
	ShardBytes int64
	// Naming picks one of the side's file naming conventions by the name of
	// a safetensors.Naming ("hf", "hf-zero-based", "fast-llm"); "" is the
	// side's default. A side refuses a naming it cannot write.
	Naming string
	// Files, when set, names the file of every tensor: the layout of the
	// checkpoint a round trip started from. It overrides ShardBytes.
	Files map[string]string
	// Target is the target the mapping writes for (a Target's Name); ""
	// for a side without targets, or the side's default.
	Target string
	// Original is what the import of the checkpoint being written back
	// recorded about its files; nil when there is no record (an import,
	// or a checkpoint mapper did not write).
	Original *Original
	// Notes collects, from Layout, what a side decided that the user must
	// hear of: a document restored from Original, a __metadata__ written by
	// default. The plan reports them.
	Notes []string
}

// Shard is one output file with its file-level entries.
type Shard struct {
	File    string
	Entries []safetensors.Entry // Name is the file-level key
	Logical []string            // the logical name of each entry
	Bytes   int64
	// Metadata is the file's safetensors __metadata__ (nil: none).
	Metadata map[string]string
}

// Markers is implemented by a side that writes files of its own besides
// its config, index and tensor files (Fast-LLM's empty "ok" completion
// marker). An input side file of such a name is not copied over it: the
// plan says so instead.
type Markers interface {
	Markers() []string
}

var registry = map[string]Format{}

// Register makes a side known, to the engine and to the .map checker (which
// reads the names from dsl/sides). It panics on a duplicate name: that is a
// programming error caught by any test.
func Register(f Format) {
	if _, dup := registry[f.Name()]; dup {
		panic("format: duplicate side " + f.Name())
	}
	registry[f.Name()] = f
	sides.Register(f.Name())
	if t, ok := f.(Targeted); ok {
		var names []string
		def := ""
		for _, x := range t.Targets() {
			names = append(names, x.Name)
			if x.Default {
				def = x.Name
			}
		}
		sides.RegisterTargets(f.Name(), names, def)
	}
}

// Lookup returns the side with the given name.
func Lookup(name string) (Format, error) {
	f, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("unknown checkpoint side %q (known: %v)", name, Names())
	}
	return f, nil
}

// Names lists the registered sides, sorted.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Detect returns the registered sides among candidates whose Detect accepts dir.
func Detect(dir string, candidates ...string) []string {
	var out []string
	for _, n := range candidates {
		if f, ok := registry[n]; ok && f.Detect(dir) {
			out = append(out, n)
		}
	}
	return out
}

// ParseNaming returns the safetensors naming called name (its String form),
// or def when name is empty.
func ParseNaming(name string, def safetensors.Naming) (safetensors.Naming, error) {
	if name == "" {
		return def, nil
	}
	for _, n := range []safetensors.Naming{safetensors.NamingHF, safetensors.NamingHFZeroBased, safetensors.NamingFastLLM} {
		if n.String() == name {
			return n, nil
		}
	}
	return def, fmt.Errorf("unknown file naming %q (known: hf, hf-zero-based, fast-llm)", name)
}

// ListDir sorts the entries of dir for a side's Open: regular files that
// owned rejects are side files, and so are symlinks to regular files that
// safetensors.ResolveIn accepts (inside dir, or a hub cache snapshot's blob);
// everything else (subdirectories, other links, devices) is skipped. Both
// lists are sorted.
func ListDir(dir string, owned func(name string) bool) (sideFiles, skipped []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, quote.PathError(err)
	}
	for _, e := range ents { // ReadDir sorts by name
		switch {
		case e.Type()&fs.ModeSymlink != 0 && !owned(e.Name()):
			// A link is carried when it stays inside the checkpoint (or is a
			// hub cache snapshot's link to its blob) and names a regular file.
			path, err := safetensors.ResolveIn(dir, e.Name())
			if st, statErr := os.Stat(path); err != nil || statErr != nil || !st.Mode().IsRegular() {
				skipped = append(skipped, e.Name())
				continue
			}
			sideFiles = append(sideFiles, e.Name())
		case !e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0:
			skipped = append(skipped, e.Name())
		case !owned(e.Name()):
			sideFiles = append(sideFiles, e.Name())
		}
	}
	return sideFiles, skipped, nil
}

// ShardsByFile lays tensors out in the files files names (in plan order
// within each file, files sorted by name), with file-level keys
// key(logical name). Every tensor must have a file, and every file name must
// be a plain name: the map may come from a metadata file a user can edit.
func ShardsByFile(tensors []safetensors.Entry, files map[string]string, key func(logical string) string) ([]Shard, error) {
	byFile := map[string]*Shard{}
	for _, e := range tensors {
		f, ok := files[e.Name]
		if !ok {
			return nil, fmt.Errorf("no file recorded for tensor %s", quote.Name(e.Name))
		}
		if f == "" || f == "." || f == ".." || strings.ContainsAny(f, `/\`) || !strings.HasSuffix(f, ".safetensors") {
			return nil, fmt.Errorf("tensor %s: recorded file %q is not a plain *.safetensors name", quote.Name(e.Name), f)
		}
		sh := byFile[f]
		if sh == nil {
			sh = &Shard{File: f}
			byFile[f] = sh
		}
		size, err := e.Size()
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", quote.Name(e.Name), err)
		}
		if size > math.MaxInt64-sh.Bytes {
			return nil, fmt.Errorf("tensor %s: file %s: size %d + %d overflows a 64-bit integer", quote.Name(e.Name), quote.Name(f), sh.Bytes, size)
		}
		sh.Logical = append(sh.Logical, e.Name)
		sh.Entries = append(sh.Entries, safetensors.Entry{Name: key(e.Name), DType: e.DType, Shape: e.Shape})
		sh.Bytes += size
	}
	names := make([]string, 0, len(byFile))
	for f := range byFile {
		names = append(names, f)
	}
	slices.Sort(names)
	out := make([]Shard, len(names))
	for i, f := range names {
		out[i] = *byFile[f]
	}
	return out, nil
}

// ShardsOf converts a safetensors shard plan into Shards whose file-level
// keys are key(logical name).
func ShardsOf(plan []safetensors.Shard, key func(logical string) string) []Shard {
	out := make([]Shard, len(plan))
	for i, s := range plan {
		sh := Shard{File: s.File, Bytes: s.Bytes,
			Entries: make([]safetensors.Entry, len(s.Entries)), Logical: make([]string, len(s.Entries))}
		for j, e := range s.Entries {
			sh.Logical[j] = e.Name
			e.Name = key(e.Name)
			sh.Entries[j] = e
		}
		out[i] = sh
	}
	return out
}
