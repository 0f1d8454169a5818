package dsl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mapper-dev/mapper/dsl"
)

// fragMapping uses fragment f of fragments/f.map, a rename of width.
const fragMapping = `mapping m
left hf
right fast_llm

include "fragments/f.map"

sample s {
  hidden_size = 8
  text_config.width = 4
}

config {
  hidden_size <-> hidden_size
  use f(left = text_config, right = decoder.block, d = 2 * 2)
}
`

func fragFile(rule string) string {
	return "fragment f(d) {\n  " + rule + "\n}\n"
}

// TestFragmentHash: a mapping hashes as the same mapping with the
// fragment's rules written in, and a changed fragment changes it.
func TestFragmentHash(t *testing.T) {
	hash := func(frag string) string {
		t.Helper()
		m, diags := dsl.LoadFS(fstest.MapFS{"fragments/f.map": {Data: []byte(frag)}}, "m.map", []byte(fragMapping))
		if err := diags.Err(); err != nil || m == nil {
			t.Fatalf("%v", err)
		}
		return m.Hash
	}
	inline := strings.Replace(strings.Replace(fragMapping, "include \"fragments/f.map\"\n\n", "", 1),
		"use f(left = text_config, right = decoder.block, d = 2 * 2)", "text_config.width default 2 * 2 <-> decoder.block.width", 1)
	m, diags := dsl.Load("inline.map", []byte(inline))
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	used := hash(fragFile("width default {d} <-> width"))
	if used != m.Hash {
		t.Errorf("hash with the fragment %s, written in %s", used, m.Hash)
	}
	// A comment changes nothing; a rule does.
	if h := hash("# about f\n" + fragFile("width default {d} <-> width # the width")); h != used {
		t.Errorf("a comment changed the hash: %s, was %s", h, used)
	}
	if h := hash(fragFile("width default {d} <-> size")); h == used {
		t.Error("a changed fragment left the hash as it was")
	}
}

// TestFragmentRoots: an include is read below the including file's
// directory, never through a link leading out; a user's file falls back to
// the built-in fragment files, and its own file of that path wins.
func TestFragmentRoots(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "f.map")
	if err := os.WriteFile(outside, []byte(fragFile("width default {d} <-> width")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "fragments"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "fragments", "f.map")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "m.map")
	_, diags := dsl.Load(file, []byte(fragMapping))
	if !strings.Contains(diags.Err().Error(), "cannot read fragment file "+filepath.Join(dir, "fragments", "f.map")) {
		t.Errorf("a link leading out was followed: %v", diags)
	}

	builtin := fstest.MapFS{"fragments/f.map": {Data: []byte(fragFile("width default {d} <-> width"))}}
	user := filepath.Join(t.TempDir(), "m.map")
	m, diags := dsl.LoadUser(user, []byte(fragMapping), builtin, "mappings")
	if err := diags.Err(); err != nil {
		t.Fatalf("the built-in fragment file is not used: %v", err)
	}
	if _, ok := m.Fragments["mappings/fragments/f.map"]; !ok {
		t.Errorf("fragments read: %v, want mappings/fragments/f.map", m.Fragments)
	}
	own := filepath.Join(filepath.Dir(user), "fragments")
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(own, "f.map"), []byte(fragFile("width default {d} <-> size")), 0o644); err != nil {
		t.Fatal(err)
	}
	m2, diags := dsl.LoadUser(user, []byte(fragMapping), builtin, "mappings")
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := m2.Fragments[filepath.Join(own, "f.map")]; !ok || m2.Hash == m.Hash {
		t.Errorf("the user's own fragment file is not the one read: %v", m2.Fragments)
	}
}
