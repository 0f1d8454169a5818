package safetensors

import (
	"fmt"
	"strings"

	"github.com/mapper-dev/mapper/runtime/quote"
)

// FormatError reports a file that is not valid safetensors, or a checkpoint
// directory whose files and index disagree. Its message escapes the file
// and tensor names (they come from the checkpoint); Reason must do the same
// for any it holds.
type FormatError struct {
	File   string // path of the offending file; empty when parsing bytes
	Tensor string // offending tensor, empty when the problem is not one tensor's
	Reason string // what is wrong, in words
	Err    error  // underlying cause (a JSON syntax error, say), if any
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("safetensors: ")
	if e.File != "" {
		b.WriteString(quote.Name(e.File))
		b.WriteString(": ")
	}
	if e.Tensor != "" {
		fmt.Fprintf(&b, "tensor %q: ", e.Tensor)
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FormatError) Unwrap() error { return e.Err }

// formatErr builds a FormatError without a file name; the caller that knows
// the file fills it in with withFile.
func formatErr(tensor, format string, args ...any) *FormatError {
	return &FormatError{Tensor: tensor, Reason: fmt.Sprintf(format, args...)}
}

// withFile sets the file name of a FormatError (leaving other errors alone)
// and returns err.
func withFile(err error, file string) error {
	if fe, ok := err.(*FormatError); ok && fe.File == "" {
		fe.File = file
	}
	return err
}
