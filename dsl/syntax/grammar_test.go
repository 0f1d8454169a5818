package syntax_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/syntax"
)

const grammarDoc = "../../docs/grammar.ebnf"

const (
	genBegin = "(* BEGIN GENERATED *)\n"
	genEnd   = "(* END GENERATED *)\n"
)

// TestGrammarDoc keeps docs/grammar.ebnf in step with the parser: its
// generated part must be participle's rendering of the grammar (-update
// rewrites it), and its hand-written part must name every keyword and
// punctuation token the parser knows and every keyword the grammar uses.
func TestGrammarDoc(t *testing.T) {
	b, err := os.ReadFile(grammarDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, genBegin), strings.Index(doc, genEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no generated section", grammarDoc)
	}
	gen := strings.TrimSpace(syntax.Grammar()) + "\n"
	if *update {
		doc = doc[:i+len(genBegin)] + gen + doc[j:]
		if err := os.WriteFile(grammarDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if got := doc[i+len(genBegin) : j]; got != gen {
		t.Errorf("%s: the generated grammar is stale (run go test ./dsl/syntax -run TestGrammarDoc -update):\n%s", grammarDoc, gen)
	}
	human := doc[:i]
	for _, k := range syntax.Keywords {
		if !strings.Contains(human, `"`+k+`"`) {
			t.Errorf("%s: keyword %q is not in the hand-written grammar", grammarDoc, k)
		}
	}
	for _, p := range syntax.Puncts {
		if !strings.Contains(human, p) {
			t.Errorf("%s: punctuation %q is not in the hand-written grammar", grammarDoc, p)
		}
	}
	// Every quoted literal the parser's grammar uses is a keyword or a
	// punctuation token the hand-written grammar shows.
	for _, m := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(gen, -1) {
		if !strings.Contains(human, `"`+m[1]+`"`) {
			t.Errorf("%s: %q is used by the parser but missing from the hand-written grammar", grammarDoc, m[1])
		}
	}
}

const (
	schemaBegin = "(* BEGIN GENERATED SCHEMA *)\n"
	schemaEnd   = "(* END GENERATED SCHEMA *)\n"
)

// TestSchemaGrammarDoc does for the schema-file grammar what TestGrammarDoc
// does for .map files: docs/grammar.ebnf holds participle's rendering of
// it, and every literal it uses is in the hand-written grammar.
func TestSchemaGrammarDoc(t *testing.T) {
	b, err := os.ReadFile(grammarDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, schemaBegin), strings.Index(doc, schemaEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no generated schema section", grammarDoc)
	}
	gen := strings.TrimSpace(syntax.SchemaGrammar()) + "\n"
	if *update {
		doc = doc[:i+len(schemaBegin)] + gen + doc[j:]
		if err := os.WriteFile(grammarDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if got := doc[i+len(schemaBegin) : j]; got != gen {
		t.Errorf("%s: the generated schema grammar is stale (run go test ./dsl/syntax -run TestSchemaGrammarDoc -update):\n%s", grammarDoc, gen)
	}
	// Parts 1 (expressions, names, Ref) and 3 (the rest).
	human := doc[:strings.Index(doc, genBegin)] + doc[strings.Index(doc, genEnd):i]
	for _, m := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(gen, -1) {
		if !strings.Contains(human, `"`+m[1]+`"`) {
			t.Errorf("%s: %q is used by the schema parser but missing from the hand-written grammar", grammarDoc, m[1])
		}
	}
}
