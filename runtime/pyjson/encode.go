package pyjson

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Encode renders v as Python's json.dumps(v, indent=indent,
// sort_keys=sortKeys) does, ensure_ascii on. indent < 0 is the compact form,
// json.dumps(v) with its ", " and ": " separators; indent >= 0 puts every
// element on its own line, indented by indent spaces a level, with "," and
// ": " separators (Python's defaults with an indent). No trailing newline is
// added; Hugging Face adds one to the files it writes.
//
// v may hold nil, bool, string, any Go integer type, float32 and float64
// (written as repr writes a Python float), json.Number (written as is),
// map[string]T, Object, *Object, and slices or arrays of any of these.
// Objects keep their order when sortKeys is false; a Go map has none, so its
// keys are sorted either way. Strings must be valid UTF-8.
func Encode(v any, indent int, sortKeys bool) ([]byte, error) {
	e := &encoder{indent: indent, sortKeys: sortKeys}
	if err := e.value(v, 0); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type encoder struct {
	buf      []byte
	indent   int
	sortKeys bool
	path     []string
	depth    int // values entered, pointers included
}

func (e *encoder) errf(format string, args ...any) error {
	p := strings.TrimPrefix(strings.Join(e.path, ""), ".")
	if p == "" {
		p = "the top level"
	}
	return fmt.Errorf("json: at %s: %s", p, fmt.Sprintf(format, args...))
}

// newline starts a new line at the given nesting level (indented form only).
func (e *encoder) newline(level int) {
	e.buf = append(e.buf, '\n')
	for i := 0; i < level*e.indent; i++ {
		e.buf = append(e.buf, ' ')
	}
}

func (e *encoder) value(v any, level int) error {
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > 2*MaxDepth {
		return e.errf("nesting deeper than %d (a cycle?)", MaxDepth)
	}
	switch v := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		if v {
			e.buf = append(e.buf, "true"...)
		} else {
			e.buf = append(e.buf, "false"...)
		}
	case string:
		if !utf8.ValidString(v) {
			return e.errf("string %q is not valid UTF-8", v)
		}
		e.buf = AppendString(e.buf, v)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case int8:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case int16:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, v, 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(v), 10)
	case uint8:
		e.buf = strconv.AppendUint(e.buf, uint64(v), 10)
	case uint16:
		e.buf = strconv.AppendUint(e.buf, uint64(v), 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(v), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, v, 10)
	case float32:
		e.buf = AppendFloat(e.buf, float64(v))
	case float64:
		e.buf = AppendFloat(e.buf, v)
	case json.Number:
		if !isJSONNumber(string(v)) {
			return e.errf("json.Number %q is not a JSON number", string(v))
		}
		e.buf = append(e.buf, v...)
	case Object:
		return e.object(v, level)
	case *Object:
		if v == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.object(*v, level)
	case map[string]any:
		return e.object(mapMembers(v), level)
	case []any:
		return e.array(len(v), func(i int) any { return v[i] }, level)
	default:
		return e.reflectValue(reflect.ValueOf(v), level)
	}
	return nil
}

func (e *encoder) reflectValue(rv reflect.Value, level int) error {
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return e.errf("unsupported map key type %s", rv.Type().Key())
		}
		if rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		mem := make(Object, 0, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			mem = append(mem, Member{it.Key().String(), it.Value().Interface()})
		}
		slices.SortFunc(mem, func(a, b Member) int { return strings.Compare(a.Key, b.Key) })
		return e.object(mem, level)
	case reflect.Slice:
		if rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		fallthrough
	case reflect.Array:
		return e.array(rv.Len(), func(i int) any { return rv.Index(i).Interface() }, level)
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.value(rv.Elem().Interface(), level)
	case reflect.String: // named string types
		return e.value(rv.String(), level)
	case reflect.Bool:
		return e.value(rv.Bool(), level)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return e.value(rv.Int(), level)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return e.value(rv.Uint(), level)
	case reflect.Float32, reflect.Float64:
		return e.value(rv.Float(), level)
	case reflect.Invalid:
		e.buf = append(e.buf, "null"...)
		return nil
	}
	return e.errf("unsupported type %s", rv.Type())
}

func mapMembers(m map[string]any) Object {
	mem := make(Object, 0, len(m))
	for k, v := range m {
		mem = append(mem, Member{k, v})
	}
	slices.SortFunc(mem, func(a, b Member) int { return strings.Compare(a.Key, b.Key) })
	return mem
}

func (e *encoder) object(o Object, level int) error {
	if len(o) == 0 {
		e.buf = append(e.buf, '{', '}')
		return nil
	}
	if e.sortKeys {
		// Python sorts str keys by code point; for valid UTF-8 that is
		// byte order. A stable sort keeps a duplicated key's order.
		o = slices.Clone(o)
		slices.SortStableFunc(o, func(a, b Member) int { return strings.Compare(a.Key, b.Key) })
	}
	e.buf = append(e.buf, '{')
	for i, m := range o {
		if i > 0 {
			e.buf = append(e.buf, ',')
			if e.indent < 0 {
				e.buf = append(e.buf, ' ')
			}
		}
		if e.indent >= 0 {
			e.newline(level + 1)
		}
		if !utf8.ValidString(m.Key) {
			return e.errf("key %q is not valid UTF-8", m.Key)
		}
		e.buf = AppendString(e.buf, m.Key)
		e.buf = append(e.buf, ':', ' ')
		e.path = append(e.path, "."+m.Key)
		if err := e.value(m.Value, level+1); err != nil {
			return err
		}
		e.path = e.path[:len(e.path)-1]
	}
	if e.indent >= 0 {
		e.newline(level)
	}
	e.buf = append(e.buf, '}')
	return nil
}

func (e *encoder) array(n int, at func(int) any, level int) error {
	if n == 0 {
		e.buf = append(e.buf, '[', ']')
		return nil
	}
	e.buf = append(e.buf, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			e.buf = append(e.buf, ',')
			if e.indent < 0 {
				e.buf = append(e.buf, ' ')
			}
		}
		if e.indent >= 0 {
			e.newline(level + 1)
		}
		e.path = append(e.path, "["+strconv.Itoa(i)+"]")
		if err := e.value(at(i), level+1); err != nil {
			return err
		}
		e.path = e.path[:len(e.path)-1]
	}
	if e.indent >= 0 {
		e.newline(level)
	}
	e.buf = append(e.buf, ']')
	return nil
}

// AppendFloat appends f as Python's float repr writes it (what json.dumps
// uses): the shortest digits that read back as f; fixed notation with at
// least one fractional digit when the decimal exponent is in [-4, 16)
// ("0.0001", "32.0", "1234567890123456.0"), else scientific with a signed
// exponent of at least two digits ("1e-05", "1.5e-07", "1e+16"); and NaN,
// Infinity, -Infinity as json.dumps writes them.
func AppendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	// 'e' with -1 gives the shortest round-trip digits: d[.ddd]e±XX.
	sci := strconv.AppendFloat(nil, f, 'e', -1, 64)
	ePos := strings.LastIndexByte(string(sci), 'e')
	exp, _ := strconv.Atoi(string(sci[ePos+1:]))
	if f != 0 && (exp < -4 || exp >= 16) {
		return append(b, sci...) // Go's form already matches repr's here
	}
	mant := sci[:ePos]
	neg := mant[0] == '-'
	if neg {
		mant = mant[1:]
	}
	digits := make([]byte, 0, len(mant))
	for _, c := range mant {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	if neg {
		b = append(b, '-')
	}
	if f == 0 {
		return append(b, "0.0"...)
	}
	// value = 0.d1d2... * 10^(exp+1)
	point := exp + 1
	switch {
	case point <= 0:
		b = append(b, '0', '.')
		for i := 0; i < -point; i++ {
			b = append(b, '0')
		}
		b = append(b, digits...)
	case point >= len(digits):
		b = append(b, digits...)
		for i := len(digits); i < point; i++ {
			b = append(b, '0')
		}
		b = append(b, '.', '0')
	default:
		b = append(b, digits[:point]...)
		b = append(b, '.')
		b = append(b, digits[point:]...)
	}
	return b
}

// AppendString quotes s as json.dumps does with ensure_ascii: '"', '\\',
// \n \r \t \b \f by their short escapes, other characters outside printable
// ASCII (0x20-0x7e) as \uXXXX in lowercase hex, with surrogate pairs above
// U+FFFF. s must be valid UTF-8 (an invalid byte is written as \ufffd).
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u4 := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r == '\b':
			b = append(b, '\\', 'b')
		case r == '\f':
			b = append(b, '\\', 'f')
		case r >= 0x20 && r <= 0x7e:
			b = append(b, byte(r))
		case r > 0xffff:
			r -= 0x10000
			b = u4(b, 0xd800+(r>>10))
			b = u4(b, 0xdc00+(r&0x3ff))
		default:
			b = u4(b, r)
		}
	}
	return append(b, '"')
}

// isJSONNumber reports whether s matches JSON's number grammar.
func isJSONNumber(s string) bool {
	end, _, ok := scanNumber([]byte(s), 0)
	return ok && end == len(s)
}
