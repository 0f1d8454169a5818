package fastllm

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/quote"
)

// maxNodes bounds the values a document may expand to through aliases (a
// "billion laughs" file stays small on disk and huge in memory).
const maxNodes = 1 << 20

var intLike = regexp.MustCompile(`^[-+]?[0-9_]+$`)

// fromYAML converts a parsed document to plain values: map[string]any,
// []any, string, bool, nil, int64 and float64. Integers stay integers and
// floats floats, as written.
func fromYAML(n *yaml.Node) (any, error) {
	c := &converter{}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("empty document")
		}
		n = n.Content[0]
	}
	return c.value(n, "", 0)
}

type converter struct{ nodes int }

func at(path string) string {
	if path == "" {
		return "the top level"
	}
	return quote.Name(path) // made of the document's keys
}

func (c *converter) value(n *yaml.Node, path string, depth int) (any, error) {
	c.nodes++
	if c.nodes > maxNodes {
		return nil, fmt.Errorf("more than %d values (alias expansion?)", maxNodes)
	}
	if depth > 1000 {
		return nil, fmt.Errorf("at %s: nesting deeper than 1000", at(path))
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("at %s: unresolved alias", at(path))
		}
		return c.value(n.Alias, path, depth+1)
	case yaml.MappingNode:
		if n.ShortTag() != "!!map" {
			return nil, fmt.Errorf("at %s: unsupported tag %s", at(path), quote.Name(n.Tag))
		}
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				if k.ShortTag() == "!!merge" {
					return nil, fmt.Errorf("at %s: merge keys (<<) are not supported", at(path))
				}
				return nil, fmt.Errorf("at %s: line %d: mapping key %q is not a string", at(path), k.Line, k.Value)
			}
			sub := k.Value
			if path != "" {
				sub = path + "." + k.Value
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("at %s: line %d: duplicate key %q", at(path), k.Line, k.Value)
			}
			v, err := c.value(n.Content[i+1], sub, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		if n.ShortTag() != "!!seq" {
			return nil, fmt.Errorf("at %s: unsupported tag %s", at(path), quote.Name(n.Tag))
		}
		out := make([]any, len(n.Content))
		for i, e := range n.Content {
			v, err := c.value(e, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!str":
			return n.Value, nil
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("at %s: line %d: %v", at(path), n.Line, err)
			}
			return b, nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fmt.Errorf("at %s: line %d: integer %s does not fit in int64", at(path), n.Line, n.Value)
			}
			return i, nil
		case "!!float":
			if intLike.MatchString(n.Value) {
				// yaml.v3 resolves an integer beyond int64 to a float.
				return nil, fmt.Errorf("at %s: line %d: integer %s does not fit in int64", at(path), n.Line, n.Value)
			}
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("at %s: line %d: %v", at(path), n.Line, err)
			}
			return f, nil
		default:
			return nil, fmt.Errorf("at %s: line %d: unsupported value of type %s", at(path), n.Line, quote.Name(tag))
		}
	}
	return nil, fmt.Errorf("at %s: unsupported YAML node", at(path))
}

// toYAML builds the node tree of v: mappings with sorted keys (as PyYAML's
// safe_dump writes them), integers as integers, and floats as PyYAML writes
// them (Python's repr, with ".0" inserted before an exponent that has no
// point: "32.0", "1.0e-05", ".inf"), so that both PyYAML (YAML 1.1, which
// reads "1e-05" as a string) and yaml.v3 read them back as the same float.
func toYAML(v any, path string) (*yaml.Node, error) {
	fail := func(format string, args ...any) (*yaml.Node, error) {
		return nil, fmt.Errorf("at %s: %s", at(path), fmt.Sprintf(format, args...))
	}
	scalar := func(tag, value string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
	}
	switch v := v.(type) {
	case nil:
		return scalar("!!null", "null"), nil
	case bool:
		return scalar("!!bool", strconv.FormatBool(v)), nil
	case string:
		if !utf8.ValidString(v) {
			return fail("string %q is not valid UTF-8", v)
		}
		n := &yaml.Node{}
		if err := n.Encode(v); err != nil { // yaml.v3 quotes what would read back as another type
			return fail("%v", err)
		}
		return n, nil
	case int:
		return scalar("!!int", strconv.FormatInt(int64(v), 10)), nil
	case int8:
		return scalar("!!int", strconv.FormatInt(int64(v), 10)), nil
	case int16:
		return scalar("!!int", strconv.FormatInt(int64(v), 10)), nil
	case int32:
		return scalar("!!int", strconv.FormatInt(int64(v), 10)), nil
	case int64:
		return scalar("!!int", strconv.FormatInt(v, 10)), nil
	case uint8:
		return scalar("!!int", strconv.FormatUint(uint64(v), 10)), nil
	case uint16:
		return scalar("!!int", strconv.FormatUint(uint64(v), 10)), nil
	case uint32:
		return scalar("!!int", strconv.FormatUint(uint64(v), 10)), nil
	case uint:
		if uint64(v) > math.MaxInt64 {
			return fail("integer %d does not fit in int64", v)
		}
		return scalar("!!int", strconv.FormatUint(uint64(v), 10)), nil
	case uint64:
		if v > math.MaxInt64 {
			return fail("integer %d does not fit in int64", v)
		}
		return scalar("!!int", strconv.FormatUint(v, 10)), nil
	case float32:
		return scalar("!!float", FormatFloat(float64(v))), nil
	case float64:
		return scalar("!!float", FormatFloat(v)), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return mapping(keys, func(k string) any { return v[k] }, path)
	case pyjson.Object:
		return toYAML(v.Map(), path)
	case []any:
		return sequence(len(v), func(i int) any { return v[i] }, path)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return scalar("!!null", "null"), nil
		}
		return sequence(rv.Len(), func(i int) any { return rv.Index(i).Interface() }, path)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return toYAML(m, path)
	}
	return fail("unsupported value of type %T", v)
}

func mapping(keys []string, get func(string) any, path string) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, k := range keys {
		sub := k
		if path != "" {
			sub = path + "." + k
		}
		kn, err := toYAML(k, sub)
		if err != nil {
			return nil, err
		}
		vn, err := toYAML(get(k), sub)
		if err != nil {
			return nil, err
		}
		n.Content = append(n.Content, kn, vn)
	}
	return n, nil
}

func sequence(l int, get func(int) any, path string) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for i := 0; i < l; i++ {
		en, err := toYAML(get(i), fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		n.Content = append(n.Content, en)
	}
	return n, nil
}

// FormatFloat writes f as PyYAML's safe_dump does: repr(f) lowercased, with
// ".0" before the exponent when the mantissa has no point ("1.0e-05",
// "1.0e+16"), and .inf, -.inf, .nan.
func FormatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	s := string(pyjson.AppendFloat(nil, f))
	if !strings.Contains(s, ".") && strings.Contains(s, "e") {
		s = strings.Replace(s, "e", ".0e", 1)
	}
	return s
}
