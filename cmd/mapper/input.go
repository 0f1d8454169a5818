package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mapper-dev/mapper/runtime/hubcache"
)

// inputRef is how a command names its input: a directory, or a Hugging Face
// Hub model id (ORG/NAME, or ORG/NAME@REV) found in the local cache at
// --revision.
type inputRef struct {
	revision string
	flag     string // the revision's flag, for messages ("": revision)
}

func (r *inputRef) register(fs *pflag.FlagSet) {
	fs.StringVar(&r.revision, "revision", "", "for an input given as a Hub model id (ORG/NAME): the branch, tag or commit in the local Hugging Face cache (default main; ORG/NAME@REV names one per input)")
}

// likeRef is the --like flag of apply and plan: the checkpoint an export
// takes what its input has no record of from (engine.PlanOptions.Like),
// named as an input is, a directory or a Hub model id at --like-revision.
type likeRef struct {
	arg string
	ref inputRef
}

func (l *likeRef) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.arg, "like", "", "on export of a checkpoint with no record of its import by mapper (one Fast-LLM saved): the HF checkpoint it was converted or trained from "+
		"(a directory or ORG/NAME), whose config must describe the same model; its config keys, file layout and side files are restored (see docs/mappings.md)")
	l.ref.flag = "like-revision"
	fs.StringVar(&l.ref.revision, l.ref.flag, "", "for a --like given as a Hub model id (ORG/NAME): the branch, tag or commit in the local Hugging Face cache (default main)")
}

// usage reports a --like-revision without --like as a usage error (see
// parseFlags): false and the exit code when there is one.
func (l *likeRef) usage(fs *pflag.FlagSet) (int, bool) {
	if l.arg == "" && l.ref.revision != "" {
		return usageError(fs, "--like-revision names a revision of --like, which is not given"), false
	}
	return 0, true
}

// resolve returns the --like directory ("" when not given), as inputRef
// resolves an input.
func (l *likeRef) resolve(stderr io.Writer) (string, error) {
	if l.arg == "" {
		return "", nil
	}
	dir, err := l.ref.resolve(l.arg, stderr)
	if err != nil {
		return "", fmt.Errorf("--like: %w", err)
	}
	return dir, nil
}

// resolve returns the directory to read for arg. An existing path is used
// as it is; otherwise an ORG/NAME is looked up in the local Hugging Face
// cache, never on the network, and the directory used is said on stderr.
// Anything else is returned unchanged for the reader to report as missing.
//
// A Hub id may carry its own revision, ORG/NAME@REV (giving both it and the
// revision flag is an error): that is how the two inputs of diff name two
// revisions of one model.
func (r *inputRef) resolve(arg string, stderr io.Writer) (string, error) {
	flag := r.flag
	if flag == "" {
		flag = "revision"
	}
	_, statErr := os.Lstat(arg)
	repo, revision := arg, r.revision
	if at := strings.LastIndexByte(arg, '@'); statErr != nil && at > 0 && hubcache.IsRepoID(arg[:at]) {
		if at == len(arg)-1 {
			return "", fmt.Errorf("%s: no such directory, and the revision after @ is empty", arg)
		}
		if r.revision != "" {
			return "", fmt.Errorf("%s names its revision, and --%s %s names another: give one", arg, flag, r.revision)
		}
		repo, revision = arg[:at], arg[at+1:]
	}
	if statErr == nil || !hubcache.IsRepoID(repo) {
		if r.revision != "" && statErr == nil {
			return "", fmt.Errorf("--%s %s: %s is a directory, not a Hub model id", flag, r.revision, arg)
		}
		return arg, nil
	}
	cache, err := hubcache.Dir(os.Getenv)
	if err != nil {
		return "", err
	}
	s, err := hubcache.Resolve(cache, repo, revision)
	if err != nil {
		return "", fmt.Errorf("%s: no such directory, and %w", arg, err)
	}
	fmt.Fprintf(stderr, "mapper: %s: using the Hugging Face cache snapshot %s (revision %s, commit %s)\n", arg, s.Dir, s.Revision, s.Commit)
	return s.Dir, nil
}
