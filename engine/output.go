package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// checkpointNames are the files, besides *.safetensors and
// model.safetensors.index.json, that a directory Force replaces may hold:
// the sides' own files, Fast-LLM's completion marker and the files that
// usually sit beside a Hugging Face model. Keep the list in the README's
// "What it guarantees" in step.
var checkpointNames = map[string]bool{
	"config.json":             true,
	"metadata.yaml":           true,
	"ok":                      true,
	"generation_config.json":  true,
	"tokenizer.json":          true,
	"tokenizer_config.json":   true,
	"tokenizer.model":         true,
	"special_tokens_map.json": true,
	"added_tokens.json":       true,
	"vocab.json":              true,
	"vocab.txt":               true,
	"merges.txt":              true,
	"chat_template.jinja":     true,
	"chat_template.json":      true,
}

// CheckOutput checks, before anything is planned or written, that a
// conversion of the checkpoint in directory in may write to out; also are
// the other directories it reads (the --like checkpoint, PlanOptions.Like),
// protected as the input is:
//   - out is not the input, inside it, or holding it, compared by device and
//     inode (checkOutputPlace);
//   - an existing out is refused without force, and with it unless it is a
//     checkpoint directory: safetensors.CheckReplaceable, with the names of
//     checkpointNames and of the input directories' files (the side files a
//     conversion copies) allowed.
//
// Execute checks the same again.
func CheckOutput(in, out string, force bool, also ...string) error {
	_, err := checkOutput(in, out, force, also...)
	return err
}

// checkOutput is CheckOutput returning the Keep for safetensors.OutputOptions
// (nil without force: nothing is replaced).
func checkOutput(in, out string, force bool, also ...string) (func(string) bool, error) {
	inputs := append([]string{in}, also...)
	for _, dir := range inputs {
		if err := checkOutputPlace(dir, out); err != nil {
			return nil, err
		}
	}
	_, err := os.Lstat(out)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist) && !force:
		return nil, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("output %s: %w", out, err)
	case err == nil && !force:
		return nil, fmt.Errorf("output %s already exists (only force replaces it)", out)
	}
	// Forced: the rule applies now to an existing output, and at the
	// commit to one that appears meanwhile.
	keep, err := outputKeep(inputs)
	if err != nil {
		return nil, err
	}
	if exists {
		if err := safetensors.CheckReplaceable(out, keep); err != nil {
			return nil, err
		}
	}
	return keep, nil
}

// outputKeep says which names a replaced output may hold besides the
// safetensors files: checkpointNames, and the names of the files (not
// subdirectories) of the input directories, since a conversion copies
// their side files whatever they are called.
func outputKeep(inputs []string) (func(string) bool, error) {
	names := map[string]bool{}
	for _, in := range inputs {
		ents, err := os.ReadDir(in)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", in, err)
		}
		for _, e := range ents {
			if !e.IsDir() {
				names[e.Name()] = true
			}
		}
	}
	return func(name string) bool { return checkpointNames[name] || names[name] }, nil
}

// checkOutputPlace refuses an output that is the input directory, holds it,
// or lies inside it: with force the commit would delete the input (and, for
// a parent, everything beside it), and writing inside it would change the
// input. Directories are compared by device and inode, not by path, so that
// no symbolic link, bind mount or other second path to the input hides it:
// every ancestor of the output is compared with the input, and every
// ancestor of the input with the output.
func checkOutputPlace(in, out string) error {
	inInfo, err := os.Stat(in)
	if err != nil {
		// Nothing there to protect; planning reports the missing input.
		return nil
	}
	ri, err := resolvePath(in)
	if err != nil {
		return fmt.Errorf("input %s: %w", in, err)
	}
	ro, err := resolvePath(out)
	if err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	for dir := ro; ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && os.SameFile(fi, inInfo) {
			if dir == ro {
				return fmt.Errorf("output %s is the input directory; write the conversion elsewhere", out)
			}
			return fmt.Errorf("output %s is inside the input %s; write the conversion elsewhere", out, in)
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	outInfo, err := os.Stat(ro)
	if err != nil {
		return nil // not there yet, so it holds nothing
	}
	for dir := filepath.Dir(ri); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && os.SameFile(fi, outInfo) {
			return fmt.Errorf("output %s contains the input %s; replacing it would delete the input", out, in)
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	// The input may also be inside an existing output by a path no
	// ancestry shows (mounted or linked there). Nothing is searched for it:
	// a forced replace deletes only a flat directory of files
	// (safetensors.CheckReplaceable refuses any subdirectory, now and at the
	// commit), so an output holding the input anywhere is refused without
	// walking a tree that may be large.
	return nil
}

// resolvePath makes path absolute and resolves symbolic links in the part
// of it that exists.
func resolvePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, rest), nil
		}
		if dir == filepath.Dir(dir) {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}
