// Package diag holds the positioned diagnostics that every stage of the .map
// front end reports (syntax errors, semantic checks, shape checks), and their
// renderers: a human text form with the source line and a caret under the
// offending span, JSON, and GitHub Actions annotation lines.
//
// A Diagnostic is positioned by a half-open byte span [Pos, End) in one file,
// like HCL's subject range; Hint carries a fix suggestion such as a
// did-you-mean. Planning and converting a checkpoint report the same type:
// a problem a rule found is positioned at the rule, and Subject names the
// checkpoint file and the tensor or config key it is about; a problem with
// the checkpoint alone (a tensor no rule claims) has a Subject and no
// position.
package diag

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/token"
	"github.com/mapper-dev/mapper/runtime/quote"
)

// Pos is a position in a source file (1-based line, 1-based byte column).
type Pos = token.Pos

// Severity orders diagnostics by how bad they are.
type Severity int

const (
	// Error makes a mapping unusable; `mapper lint` exits 1.
	Error Severity = iota
	// Warning is worth fixing but does not fail a lint run.
	Warning
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText lets JSON encoders write the severity as a word.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Diagnostic is one problem found in a .map file, or in a checkpoint that
// one is applied to.
type Diagnostic struct {
	Severity Severity
	Pos      Pos     // first byte of the offending span; zero when there is no source position
	End      Pos     // one past its last byte (End.Offset == Pos.Offset for an empty span)
	Subject  Subject // the checkpoint file, tensor or key it is about; zero for a .map problem
	Message  string  // what is wrong, one line, no trailing period
	Hint     string  // how to fix it; "" when there is nothing to suggest
	// Via is where a problem inside a fragment comes from: the uses (or the
	// include) that put it in the mapping, innermost first; nil elsewhere.
	Via []Pos
}

// Subject names what a diagnostic is about outside the .map source: a file
// of the checkpoint (as the user named its directory) and a tensor or a
// dotted config key in it. Any part may be empty.
type Subject struct {
	File   string
	Tensor string
	Key    string
}

// IsZero reports whether the subject names nothing.
func (s Subject) IsZero() bool { return s == Subject{} }

// String prints the subject as messages start with it: "dir/model.safetensors:
// tensor a.b", "dir/config.json: a.b" (a key goes bare, as config errors
// have always named it), or any part alone. Each part comes from a
// checkpoint, whose author controls it: one that would not print as itself
// (a control character, invalid UTF-8) is escaped (quote.Name), so that
// text and github output cannot be forged or drive a terminal. JSON output
// writes the subject's parts raw, escaped by encoding/json.
func (s Subject) String() string {
	var parts []string
	if s.File != "" {
		parts = append(parts, quote.Name(s.File))
	}
	if s.Tensor != "" {
		parts = append(parts, "tensor "+quote.Name(s.Tensor))
	}
	if s.Key != "" {
		parts = append(parts, quote.Name(s.Key))
	}
	return strings.Join(parts, ": ")
}

// HasPos reports whether the diagnostic points into a source file.
func (d Diagnostic) HasPos() bool { return d.Pos.File != "" }

// Error returns the diagnostic's first line: "file:line:col: severity:
// subject: message", or without a source position "subject: message" (a
// warning says so), the way errors of the checkpoint are worded.
func (d Diagnostic) Error() string {
	msg := d.Message
	if !d.Subject.IsZero() {
		msg = d.Subject.String() + ": " + msg
	}
	if d.HasPos() {
		return fmt.Sprintf("%s:%d:%d: %s: %s", d.Pos.File, d.Pos.Line, d.Pos.Column, d.Severity, msg)
	}
	if d.Severity != Error {
		return d.Severity.String() + ": " + msg
	}
	return msg
}

// List is a list of diagnostics. The zero value is empty and ready to use.
type List []Diagnostic

// Add appends a diagnostic.
func (l *List) Add(sev Severity, pos, end Pos, hint, format string, args ...any) {
	*l = append(*l, Diagnostic{Severity: sev, Pos: pos, End: end, Message: fmt.Sprintf(format, args...), Hint: hint})
}

// Errorf appends an error without a hint.
func (l *List) Errorf(pos, end Pos, format string, args ...any) {
	l.Add(Error, pos, end, "", format, args...)
}

// Sort orders the list by file, position, subject, severity and message,
// and drops exact duplicates. Diagnostics with no position come last: a
// rule's refusal (the input is another architecture) usually explains the
// checkpoint's problems (keys no rule claims) that follow it. Of duplicates
// that differ only in Via, the first stays.
func (l List) Sort() List {
	slices.SortStableFunc(l, compare)
	// Via aside: a fragment's problem that lint finds through a mapping
	// and in the fragment file itself is one problem.
	return slices.CompactFunc(l, func(a, b Diagnostic) bool {
		return a.Severity == b.Severity && a.Pos == b.Pos && a.End == b.End && a.Subject == b.Subject &&
			a.Message == b.Message && a.Hint == b.Hint
	})
}

func compare(a, b Diagnostic) int {
	unplaced := func(d Diagnostic) bool { return d.Pos.File == "" }
	return cmp.Or(
		compareBool(unplaced(a), unplaced(b)),
		cmp.Compare(a.Pos.File, b.Pos.File),
		cmp.Compare(a.Pos.Offset, b.Pos.Offset),
		cmp.Compare(a.End.Offset, b.End.Offset),
		compareSubject(a.Subject, b.Subject),
		cmp.Compare(a.Severity, b.Severity),
		cmp.Compare(a.Message, b.Message),
	)
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// compareSubject orders subjects by file, tensor and key, and puts one that
// names nothing after those that do: at one span, a summary such as "... and
// 3 more" follows the problems it summarizes.
func compareSubject(a, b Subject) int {
	if a.IsZero() != b.IsZero() {
		if a.IsZero() {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Tensor, b.Tensor), cmp.Compare(a.Key, b.Key))
}

// HasErrors reports whether any diagnostic is an Error.
func (l List) HasErrors() bool {
	return slices.ContainsFunc(l, func(d Diagnostic) bool { return d.Severity == Error })
}

// Count returns how many diagnostics have severity s.
func (l List) Count(s Severity) int {
	n := 0
	for _, d := range l {
		if d.Severity == s {
			n++
		}
	}
	return n
}

// Err returns nil when the list holds no errors, and otherwise an error whose
// text is every diagnostic, one per line (warnings included).
func (l List) Err() error {
	if !l.HasErrors() {
		return nil
	}
	return ListError(l)
}

// ListError is a List used as an error.
type ListError List

func (e ListError) Error() string {
	var b strings.Builder
	for i, d := range e {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.Error())
	}
	return b.String()
}

// AsList extracts the diagnostics from an error made by Err, or nil.
func AsList(err error) List {
	var le ListError
	if errors.As(err, &le) {
		return List(le)
	}
	return nil
}
