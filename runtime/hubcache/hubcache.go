// Package hubcache finds a Hugging Face Hub repository in the local cache
// the way huggingface_hub resolves it offline: the cache directory from the
// environment, the repository's folder models--ORG--NAME, a revision (a
// branch or tag through refs/, or a commit hash) and its snapshot directory.
// It never touches the network: a repository not in the cache is an error
// that says how to download it.
package hubcache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Dir returns the hub cache directory: $HF_HUB_CACHE, the legacy
// $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub,
// or ~/.cache/huggingface/hub, in that order (huggingface_hub's constants).
func Dir(getenv func(string) string) (string, error) {
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if v := getenv(k); v != "" {
			return expandHome(v, getenv), nil
		}
	}
	if v := getenv("HF_HOME"); v != "" {
		return filepath.Join(expandHome(v, getenv), "hub"), nil
	}
	if v := getenv("XDG_CACHE_HOME"); v != "" {
		return filepath.Join(expandHome(v, getenv), "huggingface", "hub"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("hub cache: neither HF_HUB_CACHE, HF_HOME nor HOME is set")
	}
	return filepath.Join(home, ".cache", "huggingface", "hub"), nil
}

func expandHome(p string, getenv func(string) string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		return filepath.Join(getenv("HOME"), p[1:])
	}
	return p
}

// repoID is ORG/NAME as the Hub spells it (huggingface_hub's
// validate_repo_id: letters, digits, '-', '_', '.', no "--" or ".." and no
// leading or trailing '-' or '.' in a part).
var repoID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$`)

// IsRepoID reports whether s has the form of a Hub model id, ORG/NAME.
func IsRepoID(s string) bool {
	if !repoID.MatchString(s) || strings.Contains(s, "--") || strings.Contains(s, "..") {
		return false
	}
	for _, part := range strings.Split(s, "/") {
		if strings.HasSuffix(part, "-") || strings.HasSuffix(part, ".") {
			return false
		}
	}
	return true
}

var commitHash = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Snapshot is a resolved repository revision in the cache.
type Snapshot struct {
	Repo     string // ORG/NAME
	Revision string // as asked: a branch, a tag or a commit
	Commit   string
	Dir      string // <cache>/models--ORG--NAME/snapshots/<commit>
}

// NotCachedError says that a repository or revision is not in the cache,
// and how to get it there.
type NotCachedError struct {
	Repo, Revision, Cache string
	Reason                string
}

func (e *NotCachedError) Error() string {
	download := "huggingface-cli download " + e.Repo
	if e.Revision != "main" {
		download += " --revision " + e.Revision
	}
	return fmt.Sprintf("%s (revision %s) is not in the Hugging Face cache %s: %s; mapper never downloads: fetch it with `%s` (or `hf download`), or give a directory",
		e.Repo, e.Revision, e.Cache, e.Reason, download)
}

// Resolve finds repo at revision ("" means main) in the cache at cache.
func Resolve(cache, repo, revision string) (*Snapshot, error) {
	if !IsRepoID(repo) {
		return nil, fmt.Errorf("hub cache: %q is not a Hub model id (ORG/NAME)", repo)
	}
	if revision == "" {
		revision = "main"
	}
	notCached := func(why string) error {
		return &NotCachedError{Repo: repo, Revision: revision, Cache: cache, Reason: why}
	}
	folder := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	switch st, err := os.Stat(folder); {
	case errors.Is(err, fs.ErrNotExist) || err == nil && !st.IsDir():
		return nil, notCached("no folder " + filepath.Base(folder))
	case err != nil: // not a missing model: downloading would not help
		return nil, fmt.Errorf("hub cache: %w", err)
	}
	commit := ""
	// A branch or tag name; refs may hold a slash (refs/pr/1).
	if !strings.Contains(revision, "..") && !filepath.IsAbs(revision) {
		b, err := os.ReadFile(filepath.Join(folder, "refs", filepath.FromSlash(revision)))
		switch {
		case err == nil:
			commit = strings.TrimSpace(string(b))
			if !commitHash.MatchString(commit) {
				return nil, fmt.Errorf("hub cache: %s: refs/%s holds %q, not a commit hash", folder, revision, commit)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("hub cache: %w", err)
		}
	}
	if commit == "" {
		if !commitHash.MatchString(revision) {
			return nil, notCached(fmt.Sprintf("no refs/%s", revision))
		}
		commit = revision
	}
	dir := filepath.Join(folder, "snapshots", commit)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, notCached("no snapshot " + commit)
	}
	return &Snapshot{Repo: repo, Revision: revision, Commit: commit, Dir: dir}, nil
}
