package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/mapper-dev/mapper/runtime/quote"
)

// Sources gives the text of the files diagnostics point into, for the source
// line under each message. A missing file only loses the snippet.
type Sources map[string][]byte

// WriteText writes the human form, for each diagnostic:
//
//	file.map:12:5: error: unknown op "tranpose"
//	    x | tranpose(0, 1) <-> y
//	        ^~~~~~~~
//	    hint: did you mean "transpose"?
//
// A problem inside a fragment then shows each use that put it in the
// mapping, innermost first, as HCL shows a module call:
//
//	from mappings/llama.map:64:3: use llama_rope(right = decoder.block.mixer.rotary, theta = 10000.0)
//
// The caret line marks the span (to the end of its first line when it spans
// several); tabs in the source line are kept so that the caret lines up. The
// first line is Diagnostic.Error: a diagnostic with no position has no
// source line, and its subject leads.
func WriteText(w io.Writer, l List, src Sources) error {
	var b strings.Builder
	for _, d := range l {
		b.WriteString(d.Error() + "\n")
		if line, ok := sourceLine(src[d.Pos.File], d.Pos); ok {
			b.WriteString("    " + line + "\n")
			b.WriteString("    " + caret(line, d) + "\n")
		}
		for _, v := range d.Via {
			line, _ := sourceLine(src[v.File], v)
			fmt.Fprintf(&b, "    from %s:%d:%d: %s\n", v.File, v.Line, v.Column, strings.TrimSpace(line))
		}
		if d.Hint != "" {
			b.WriteString("    hint: " + d.Hint + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Text returns what WriteText writes.
func Text(l List, src Sources) string {
	var b strings.Builder
	_ = WriteText(&b, l, src)
	return b.String()
}

// sourceLine returns the line that holds pos, without its newline.
func sourceLine(src []byte, pos Pos) (string, bool) {
	if src == nil || pos.Line < 1 || pos.Offset < 0 || pos.Offset > len(src) {
		return "", false
	}
	start := pos.Offset
	for start > 0 && src[start-1] != '\n' {
		start--
	}
	end := pos.Offset
	for end < len(src) && src[end] != '\n' {
		end++
	}
	line := strings.TrimRight(string(src[start:end]), "\r")
	if !utf8.ValidString(line) {
		line = strings.ToValidUTF8(line, "\uFFFD")
	}
	return line, true
}

// caret builds the marker line: whitespace up to the column (tabs copied so
// that it lines up), '^' under the first character, '~' under the rest.
func caret(line string, d Diagnostic) string {
	col := d.Pos.Column - 1
	if col > len(line) {
		col = len(line)
	}
	if col < 0 {
		col = 0
	}
	var b strings.Builder
	for _, r := range line[:col] {
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	n := 1
	if d.End.Offset > d.Pos.Offset {
		endCol := d.End.Column - 1
		if d.End.Line != d.Pos.Line {
			endCol = len(line)
		}
		if endCol > len(line) {
			endCol = len(line)
		}
		if endCol > col {
			n = utf8.RuneCountInString(line[col:endCol])
		}
	}
	b.WriteByte('^')
	b.WriteString(strings.Repeat("~", max(n-1, 0)))
	return b.String()
}

// jsonDiag is the machine form of one diagnostic.
type jsonDiag struct {
	*jsonSpan              // nil, and so left out, when there is no source position
	Severity  Severity     `json:"severity"`
	Subject   *jsonSubject `json:"subject,omitempty"`
	Message   string       `json:"message"`
	Hint      string       `json:"hint,omitempty"`
	Via       []jsonPos    `json:"via,omitempty"`
}

// jsonPos is one use a fragment's problem comes through.
type jsonPos struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

type jsonSpan struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	EndLine   int    `json:"end_line"`
	EndColumn int    `json:"end_column"`
	Offset    int    `json:"offset"`
	EndOffset int    `json:"end_offset"`
}

type jsonSubject struct {
	File   string `json:"file,omitempty"`
	Tensor string `json:"tensor,omitempty"`
	Key    string `json:"key,omitempty"`
}

// WriteJSON writes the list as a JSON array (an empty array for no
// diagnostics), one object per diagnostic with file, line, column,
// end_line, end_column, offset, end_offset (all left out when there is no
// source position), severity, subject (an object with the checkpoint's
// file, tensor and key, each left out when empty; the whole left out when
// none), message (without the subject), hint, and via (the file, line and
// column of each use a problem inside a fragment comes through).
func WriteJSON(w io.Writer, l List) error {
	out := make([]jsonDiag, len(l))
	for i, d := range l {
		out[i] = jsonDiag{Severity: d.Severity, Message: d.Message, Hint: d.Hint}
		if d.HasPos() {
			out[i].jsonSpan = &jsonSpan{
				File: d.Pos.File, Line: d.Pos.Line, Column: d.Pos.Column,
				EndLine: d.End.Line, EndColumn: d.End.Column,
				Offset: d.Pos.Offset, EndOffset: d.End.Offset,
			}
		}
		for _, v := range d.Via {
			out[i].Via = append(out[i].Via, jsonPos{v.File, v.Line, v.Column})
		}
		if s := d.Subject; !s.IsZero() {
			out[i].Subject = &jsonSubject{File: s.File, Tensor: s.Tensor, Key: s.Key}
		}
	}
	enc := json.NewEncoder(quote.JSONWriter(w))
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteGitHub writes one GitHub Actions workflow command per diagnostic:
//
//	::error file=F,line=L,col=C,endLine=L2,endColumn=E::subject: message (hint: ...)
//
// A diagnostic with no source position has no properties: the checkpoint
// it is about is no file of the repository, so its subject stays in the
// message.
func WriteGitHub(w io.Writer, l List) error {
	var b strings.Builder
	for _, d := range l {
		kind := "error"
		if d.Severity == Warning {
			kind = "warning"
		}
		msg := d.Message
		if !d.Subject.IsZero() {
			msg = d.Subject.String() + ": " + msg
		}
		if d.Hint != "" {
			msg += " (hint: " + d.Hint + ")"
		}
		for _, v := range d.Via {
			msg += fmt.Sprintf(" (from %s:%d:%d)", v.File, v.Line, v.Column)
		}
		b.WriteString("::" + kind)
		if d.HasPos() {
			fmt.Fprintf(&b, " file=%s,line=%d,col=%d", ghProperty(d.Pos.File), d.Pos.Line, d.Pos.Column)
			if d.End.Line > 0 {
				fmt.Fprintf(&b, ",endLine=%d,endColumn=%d", d.End.Line, d.End.Column)
			}
		}
		fmt.Fprintf(&b, "::%s\n", ghData(msg))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ghData escapes a workflow command's message.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow command property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
