package engine

import (
	"errors"
	"fmt"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// Planning reports every problem it finds together, joined with
// errors.Join, so that a user fixes them in one go. Each problem is a
// diag.Diagnostic, or an error that converts to one (*TensorError,
// *configmap.Error), or, for what no rule and no checkpoint file is
// involved in, a plain error. Diagnostics turns the lot into one list for
// the renderers `mapper lint` uses.

// Diagnostics returns the problems err reports, sorted by position and
// subject: one per joined error. A problem a rule found points at the rule;
// a malformed checkpoint file, or one that changed while it was read
// (*fault.Error), is the subject of what it says, whichever step of reading
// wrapped it; any other error becomes a diagnostic with its text as the
// message. nil gives nil.
func Diagnostics(err error) diag.List {
	var l diag.List
	var walk func(error)
	walk = func(err error) {
		var fe *safetensors.FormatError
		var ce *fault.Error
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		case *boundError:
			walk(e.err)
		case diag.Diagnostic:
			l = append(l, e)
		case diag.ListError:
			l = append(l, e...)
		case interface{ Diagnostic() diag.Diagnostic }:
			l = append(l, e.Diagnostic())
		default:
			// The subject's names are escaped where it is printed
			// (diag.Subject.String); the messages escape those they hold.
			d := diag.Diagnostic{Severity: diag.Error, Message: err.Error()}
			switch {
			case errors.As(err, &fe) && fe.File != "":
				// The wrappers say which side read it ("hf: "), which the
				// file's name tells as well.
				d.Subject, d.Message = diag.Subject{File: fe.File, Tensor: fe.Tensor}, fe.Reason
				if fe.Err != nil {
					d.Message += ": " + fe.Err.Error()
				}
			case errors.As(err, &ce):
				// An input that changed while it was read: the file and
				// the tensor that held the lost bytes.
				d.Subject, d.Message = diag.Subject{File: ce.Path, Tensor: ce.Tensor}, ce.Reason()
			}
			l = append(l, d)
		}
	}
	walk(err)
	return l.Sort()
}

// spanError is a problem a rule has that no one tensor of the checkpoint
// is the subject of, marked at [pos, end) of the rule: the message, then
// err's text when err is not nil. An expression that failed to evaluate is
// marked instead, which says more than its rule.
func spanError(pos, end ir.Pos, err error, format string, args ...any) diag.Diagnostic {
	msg := fmt.Sprintf(format, args...)
	if ee, ok := err.(*ir.EvalError); ok {
		pos, end, err = ee.Pos, ee.Pos, errors.New(ee.Msg)
	}
	if err != nil {
		if msg != "" {
			msg += ": "
		}
		msg += err.Error()
	}
	return diag.Diagnostic{Severity: diag.Error, Pos: pos, End: end, Message: msg}
}

// moreError says that more problems like the shown ones were not reported.
// It is marked where the last of them in sorted order is, so that sorted it
// follows them (naming no subject, it sorts after those at its span).
func moreError(shown []error, format string, args ...any) diag.Diagnostic {
	d := diag.Diagnostic{Severity: diag.Error, Message: fmt.Sprintf(format, args...)}
	if l := Diagnostics(errors.Join(shown...)); len(l) > 0 {
		d.Pos, d.End = l[len(l)-1].Pos, l[len(l)-1].End
	}
	return d
}
