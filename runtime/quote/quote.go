// Package quote makes text read from a checkpoint safe to print on a
// terminal. Tensor names, config keys and file names come from files a
// checkpoint's author controls: an ESC there could clear the screen or
// retitle the window, a newline could forge a line of output. Every place
// that prints such text, in a message or a listing, passes it through Name.
// (JSON output needs nothing more: encoding/json and runtime/pyjson escape
// control characters, pyjson everything outside printable ASCII.)
package quote

import (
	"errors"
	"io/fs"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Name returns s unchanged when every rune of it prints as itself (the
// tensor names of real checkpoints), and otherwise s as a Go string
// literal, quotes included, with the runes that do not print (controls,
// bidirectional overrides, invalid UTF-8) escaped: "a\x1b[2Jb". Quoting
// the whole name keeps it one token whose escapes a reader can tell from
// the name's own backslashes.
func Name(s string) string {
	if printable(s) {
		return s
	}
	return strconv.Quote(s)
}

// Names applies Name to each of names, in a new slice.
func Names(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = Name(n)
	}
	return out
}

// PathError passes the file name in err's *fs.PathError, if it has one,
// through Name, and returns err. An os call's error prints the name raw,
// and the name may come from a checkpoint (a shard listed in an index, a
// file beside the tensors). Name leaves its own output as it is, so a
// second call changes nothing.
func PathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = Name(pe.Path)
	}
	return err
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
