// Package quote makes text read from a checkpoint safe to print on a
// terminal. Tensor names, config keys and file names come from files a
// checkpoint's author controls: an ESC there could clear the screen or
// retitle the window, a newline could forge a line of output. Every place
// that prints such text, in a message or a listing, passes it through Name.
// JSON output goes through JSON: encoding/json escapes control characters
// but leaves bidirectional overrides (U+202E) and other invisible format
// characters raw, and a terminal shows JSON too. (runtime/pyjson escapes
// everything outside printable ASCII already.)
package quote

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"unicode"
	"unicode/utf16"
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

// JSON returns the JSON text b with every rune that does not print as
// itself (bidirectional overrides, zero-width and other format characters,
// invalid UTF-8 as U+FFFD) written as a \u escape, and b itself when there is
// none. JSON's own syntax is ASCII, so such a rune can only be inside a
// string, where the escape means the same rune: the value is unchanged.
func JSON(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf {
		i++
	}
	if i == len(b) {
		return b
	}
	out := append([]byte(nil), b[:i]...)
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r < utf8.RuneSelf || (r != utf8.RuneError || size > 1) && unicode.IsPrint(r):
			out = append(out, b[i:i+size]...)
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += size
	}
	return out
}

// JSONWriter passes each Write through JSON. It is for a json.Encoder,
// which writes each value whole in one call.
func JSONWriter(w io.Writer) io.Writer { return jsonWriter{w} }

type jsonWriter struct{ w io.Writer }

func (j jsonWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(JSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
