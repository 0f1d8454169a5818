package hubcache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDir(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/h"}, "/h/.cache/huggingface/hub"},
		{map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub"},
		{map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/x", "HF_HOME": "~/hf"}, "/h/hf/hub"},
		{map[string]string{"HOME": "/h", "HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy"}, "/legacy"},
		{map[string]string{"HOME": "/h", "HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HUB_CACHE": "/c"}, "/c"},
	} {
		got, err := Dir(env(c.env))
		if err != nil || got != c.want {
			t.Errorf("Dir(%v) = %q, %v; want %q", c.env, got, err, c.want)
		}
	}
	if _, err := Dir(env(nil)); err == nil {
		t.Error("Dir with no HOME: no error")
	}
}

func TestIsRepoID(t *testing.T) {
	for s, want := range map[string]bool{
		"meta-llama/Llama-3.1-8B": true, "openai/gpt-oss-20b": true, "Qwen/Qwen2.5-0.5B": true, "a/b": true,
		"llama": false, "./x/y": false, "/abs/path": false, "a/b/c": false, "a--b/c": false, "a/b..c": false,
		"a/b-": false, "-a/b": false, "a/": false, "out/": false, "a b/c": false,
	} {
		if IsRepoID(s) != want {
			t.Errorf("IsRepoID(%q) = %v", s, !want)
		}
	}
}

const (
	hashA = "0123456789abcdef0123456789abcdef01234567"
	hashB = "89abcdef0123456789abcdef0123456789abcdef"
)

// cache lays out models--org--tiny with refs main -> A, v1 and pr/1 -> B,
// and snapshots A and B.
func cache(t *testing.T) string {
	dir := t.TempDir()
	repo := filepath.Join(dir, "models--org--tiny")
	for path, content := range map[string]string{
		"refs/main": hashA + "\n", "refs/v1": hashB, "refs/pr/1": hashB, "refs/bad": "not-a-hash",
		"snapshots/" + hashA + "/config.json": "{}", "snapshots/" + hashB + "/config.json": "{}",
	} {
		p := filepath.Join(repo, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestResolve(t *testing.T) {
	dir := cache(t)
	for _, c := range []struct{ rev, commit string }{
		{"", hashA}, {"main", hashA}, {"v1", hashB}, {"pr/1", hashB}, {hashB, hashB},
	} {
		s, err := Resolve(dir, "org/tiny", c.rev)
		if err != nil {
			t.Errorf("revision %q: %v", c.rev, err)
			continue
		}
		if s.Commit != c.commit || s.Dir != filepath.Join(dir, "models--org--tiny", "snapshots", c.commit) {
			t.Errorf("revision %q: %+v", c.rev, s)
		}
	}
}

func TestResolveNotCached(t *testing.T) {
	dir := cache(t)
	for _, c := range []struct{ repo, rev, want string }{
		{"org/other", "", "no folder models--org--other"},
		{"org/tiny", "v2", "no refs/v2"},
		{"org/tiny", "fedcba9876543210fedcba9876543210fedcba98", "no snapshot fedcba98"},
	} {
		_, err := Resolve(dir, c.repo, c.rev)
		var nc *NotCachedError
		if !errors.As(err, &nc) {
			t.Errorf("%s@%s: %v, want a NotCachedError", c.repo, c.rev, err)
			continue
		}
		for _, want := range []string{c.want, "huggingface-cli download " + c.repo, "mapper never downloads", dir} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s@%s: %q lacks %q", c.repo, c.rev, err, want)
			}
		}
	}
	if _, err := Resolve(dir, "org/tiny", "bad"); err == nil || !strings.Contains(err.Error(), "not a commit hash") {
		t.Errorf("a ref holding garbage: %v", err)
	}
	if _, err := Resolve(dir, "not-an-id", ""); err == nil {
		t.Error("a name that is not ORG/NAME: no error")
	}
	if _, err := Resolve(dir, "org/tiny", "../../../etc"); err == nil {
		t.Error("a revision with ..: no error")
	}
}
