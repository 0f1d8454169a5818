package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
)

// newFormat is the --format flag of lint, plan and apply: how diagnostics
// are written, one of text, json and github (any other value is a usage
// error when the flags are parsed).
func newFormat(v *string) *choiceFlag {
	return newChoice(v, "text", "text", "json", "github")
}

// writeDiagnostics renders diagnostics in a --format: text, with the source
// lines of the .map files in src under the messages; json; or github. In
// text, a diagnostic with no source position starts "mapper: ", as the
// commands' other errors do.
func writeDiagnostics(w io.Writer, format string, l diag.List, src diag.Sources) error {
	switch format {
	case "json":
		return diag.WriteJSON(w, l)
	case "github":
		return diag.WriteGitHub(w, l)
	}
	var b strings.Builder
	for _, d := range l {
		if !d.HasPos() {
			b.WriteString("mapper: ")
		}
		_ = diag.WriteText(&b, diag.List{d}, src) // a strings.Builder does not fail
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// errorOut writes the errors of plan and apply to stderr in the --format
// asked for; src holds the mapping's text once it is loaded.
type errorOut struct {
	format string
	src    diag.Sources
	m      *ir.Mapping // once loaded: the uses a problem inside a fragment came through
	stderr io.Writer
}

// report writes every problem err holds (see engine.Diagnostics).
func (o *errorOut) report(err error) {
	o.write(engine.Diagnostics(err))
}

func (o *errorOut) write(l diag.List) {
	for i, d := range l {
		if d.Via == nil && o.m != nil {
			l[i].Via = o.m.Via(d.Pos)
		}
	}
	if err := writeDiagnostics(o.stderr, o.format, l, o.src); err != nil {
		fmt.Fprintf(o.stderr, "mapper: %v\n", err)
	}
}
