package syntax_test

import (
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/syntax"
)

// TestInvalidUTF8: a .map file is text. Bytes that are not UTF-8 are
// refused where they stand, in a string literal too: strconv.Unquote would
// quietly turn them into U+FFFD, and the replacement would reach the
// written config.json.
func TestInvalidUTF8(t *testing.T) {
	const head = "mapping m\nleft hf\nright fast_llm\nconfig {\n"
	for _, tc := range []struct {
		name, line, want string
	}{
		{"raw byte in a string", "  left model_type = \"ll\xffama\"\n", "m.map:5:24: error: invalid UTF-8 byte 0xff in a string literal"},
		{"truncated sequence in a string", "  left model_type = \"\xc3\"\n", "m.map:5:22: error: invalid UTF-8 byte 0xc3 in a string literal"},
		{"byte escape", "  left model_type = \"ll\\xffama\"\n", `m.map:5:21: error: string literal "ll\xffama" is not valid UTF-8 once its escapes are applied`},
		{"octal escape", "  left model_type = \"\\377\"\n", `m.map:5:21: error: string literal "\377" is not valid UTF-8`},
		{"object key", "  left model_type = {\"k\xfe\": 1}\n", "m.map:5:24: error: invalid UTF-8 byte 0xfe in a string literal"},
		{"comment", "  # caf\xe9\n", "m.map:5:3: error: comment is not valid UTF-8"},
		{"outside a literal", "  left model_type\xff = 1\n", "m.map:5:18: error: invalid UTF-8 byte 0xff"},
		{"valid text", "  left model_type = \"café \\u00e9 \\xc3\\xa9\"\n", ""},
	} {
		src := head + tc.line + "}\n"
		_, diags := syntax.Parse("m.map", []byte(src))
		if tc.want == "" {
			if len(diags) > 0 {
				t.Errorf("%s: %v", tc.name, diags)
			}
			continue
		}
		if len(diags) == 0 || !strings.Contains(diags[0].Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, diags, tc.want)
		}
	}
}
