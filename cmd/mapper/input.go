package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/mapper-dev/mapper/runtime/hubcache"
)

// inputRef is how a command names its input: a directory, or a Hugging Face
// Hub model id (ORG/NAME) found in the local cache at --revision.
type inputRef struct{ revision string }

func (r *inputRef) register(fs *pflag.FlagSet) {
	fs.StringVar(&r.revision, "revision", "", "for an input given as a Hub model id (ORG/NAME): the branch, tag or commit in the local Hugging Face cache (default main)")
}

// resolve returns the directory to read for arg. An existing path is used
// as it is; otherwise an ORG/NAME is looked up in the local Hugging Face
// cache, never on the network, and the directory used is said on stderr.
// Anything else is returned unchanged for the reader to report as missing.
func (r *inputRef) resolve(arg string, stderr io.Writer) (string, error) {
	if _, err := os.Lstat(arg); err == nil || !hubcache.IsRepoID(arg) {
		if r.revision != "" && err == nil {
			return "", fmt.Errorf("--revision %s: %s is a directory, not a Hub model id", r.revision, arg)
		}
		return arg, nil
	}
	cache, err := hubcache.Dir(os.Getenv)
	if err != nil {
		return "", err
	}
	s, err := hubcache.Resolve(cache, arg, r.revision)
	if err != nil {
		return "", fmt.Errorf("%s: no such directory, and %w", arg, err)
	}
	fmt.Fprintf(stderr, "mapper: %s: using the Hugging Face cache snapshot %s (revision %s, commit %s)\n", arg, s.Dir, s.Revision, s.Commit)
	return s.Dir, nil
}
