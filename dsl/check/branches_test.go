package check_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/check"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
)

// TestRecordedWhens: a config when is recorded (ir.Branch) exactly when its
// condition reads a key that, among the rules that can be active with it,
// only its own rules claim.
func TestRecordedWhens(t *testing.T) {
	src := `mapping b
left hf
right fast_llm
let kind = scaling.kind
config {
  a <-> a
  # a is renamed outside: decided again on export.
  when a == 1 {
    left b = 2
  }
  # c only under its when (the Phi-3 case): recorded.
  when c == null {
  } else {
    left c = false
  }
  # Through a let; the rename beside the inner when restores the key it
  # reads, the keep in the exclusive branch does not count.
  when scaling == null {
    keep scaling
    right rotary.type = "default"
  } else {
    scaling.kind <-> rotary.type
    when kind == "x" {
      scaling.f <-> rotary.f
    }
  }
  # d is kept outside the when: restored before the export decides.
  when d == null {
    left e = 1
  }
  keep d
  when f.g == null {
    keep f
  }
}
variant v when a == 3 {
  config {
    when h != null {
      h <-> h
    }
  }
}
`
	f, diags := syntax.Parse("b.map", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	m, diags := check.Check(f)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, b := range m.Branches {
		got = append(got, b.Key+" ["+strings.Join(b.Keys, ",")+"] "+b.Variant)
	}
	want := []string{"c == null [c] ", "scaling == null [scaling] ", "f.g == null [f.g] ", "h != null [h] v"}
	if !slices.Equal(got, want) {
		t.Errorf("recorded whens\n got %q\nwant %q", got, want)
	}
	// BranchOf finds the when from a rule's condition, either branch.
	for _, r := range m.Config {
		if r.Kind == ir.ConfigLeftConst && r.Left.Segs[0] == "c" {
			b, neg := m.BranchOf(r.When[0])
			if b == nil || b.Key != "c == null" || !neg {
				t.Errorf("BranchOf(else of c == null) = %+v, %v", b, neg)
			}
		}
	}
}
