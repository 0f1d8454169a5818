// Package pyjson reads and writes JSON the way Python's json module does, so
// that files Hugging Face writes (config.json, generation_config.json, the
// shard index) can be reproduced byte for byte.
//
// [Decode] keeps the distinction Python keeps and encoding/json loses:
// integers (no '.', 'e' or 'E') become int64, every other number float64, so
// 32.0 stays a float and 32 an int. It accepts Python's NaN, Infinity and
// -Infinity and rejects what a careful reader must: duplicate keys (Python
// keeps the last silently), trailing data, raw control characters in
// strings, invalid UTF-8 and lone surrogates (Go strings cannot hold them).
//
// [Encode] reproduces json.dumps: ensure_ascii escaping, Python's separators
// for the indented and the compact form, and floats in repr style (shortest
// round-trip digits, "32.0", "1e-05", "1e+16").
//
// Objects decode to map[string]any, or with [DecodeOrdered] to [Object],
// which keeps the order of the keys for writers that do not sort.
package pyjson

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mapper-dev/mapper/runtime/quote"
)

// Member is one key of an [Object].
type Member struct {
	Key   string
	Value any
}

// Object is a JSON object that keeps its keys in order. Keys are unique in
// objects that Decode produces; Set keeps them so.
type Object []Member

// Get returns the value of key.
func (o Object) Get(key string) (any, bool) {
	for _, m := range o {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// Set replaces the value of key, or appends key at the end.
func (o *Object) Set(key string, v any) {
	for i := range *o {
		if (*o)[i].Key == key {
			(*o)[i].Value = v
			return
		}
	}
	*o = append(*o, Member{key, v})
}

// Keys lists the keys in order.
func (o Object) Keys() []string {
	out := make([]string, len(o))
	for i, m := range o {
		out[i] = m.Key
	}
	return out
}

// Map converts o, and every Object inside it, to map[string]any.
func (o Object) Map() map[string]any {
	return toMaps(o).(map[string]any)
}

func toMaps(v any) any {
	switch v := v.(type) {
	case Object:
		m := make(map[string]any, len(v))
		for _, mem := range v {
			m[mem.Key] = toMaps(mem.Value)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = toMaps(e)
		}
		return out
	}
	return v
}

// MaxDepth is how deeply arrays and objects may nest (Python's default
// recursion limit stops json.loads near 1000 as well).
const MaxDepth = 1000

// SyntaxError is a decoding failure at a byte offset of the input.
type SyntaxError struct {
	Offset int    // byte offset of the problem
	Path   string // where in the document ("" at the top, "a.b[2]")
	Msg    string
}

func (e *SyntaxError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("json: offset %d (at %s): %s", e.Offset, quote.Name(e.Path), e.Msg)
	}
	return fmt.Sprintf("json: offset %d: %s", e.Offset, e.Msg)
}

// Decode parses one JSON value as Python's json.loads would, with the
// differences the package comment lists. Objects become map[string]any.
func Decode(data []byte) (any, error) { return decode(data, false) }

// DecodeOrdered is Decode with objects as [Object], keys in input order.
func DecodeOrdered(data []byte) (any, error) { return decode(data, true) }

func decode(data []byte, ordered bool) (any, error) {
	d := &decoder{data: data, ordered: ordered}
	d.skipSpace()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, d.errf("unexpected data after the JSON value")
	}
	return v, nil
}

type decoder struct {
	data    []byte
	pos     int
	ordered bool
	path    []string // path elements: ".key" or "[i]"
}

func (d *decoder) pathString() string {
	s := strings.Join(d.path, "")
	return strings.TrimPrefix(s, ".")
}

func (d *decoder) errf(format string, args ...any) error {
	return &SyntaxError{Offset: d.pos, Path: d.pathString(), Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) hasPrefix(s string) bool {
	return len(d.data)-d.pos >= len(s) && string(d.data[d.pos:d.pos+len(s)]) == s
}

func (d *decoder) value(depth int) (any, error) {
	if d.pos >= len(d.data) {
		return nil, d.errf("unexpected end of input, want a value")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		if depth >= MaxDepth {
			return nil, d.errf("nesting deeper than %d", MaxDepth)
		}
		return d.object(depth + 1)
	case c == '[':
		if depth >= MaxDepth {
			return nil, d.errf("nesting deeper than %d", MaxDepth)
		}
		return d.array(depth + 1)
	case c == '"':
		return d.str("a string")
	case c == '-' || (c >= '0' && c <= '9'):
		if d.hasPrefix("-Infinity") {
			d.pos += len("-Infinity")
			return math.Inf(-1), nil
		}
		return d.number()
	}
	for _, lit := range []struct {
		s string
		v any
	}{{"true", true}, {"false", false}, {"null", nil}, {"NaN", math.NaN()}, {"Infinity", math.Inf(1)}} {
		if d.hasPrefix(lit.s) {
			d.pos += len(lit.s)
			return lit.v, nil
		}
	}
	return nil, d.errf("invalid character %q looking for a value", rune(d.data[d.pos]))
}

func (d *decoder) object(depth int) (any, error) {
	d.pos++ // '{'
	var m map[string]any
	var o Object
	if d.ordered {
		o = Object{}
	} else {
		m = map[string]any{}
	}
	seen := map[string]bool{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		if d.ordered {
			return o, nil
		}
		return m, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.errf("want a string key")
		}
		keyPos := d.pos
		key, err := d.str("a key") // the path then names the object holding it
		if err != nil {
			return nil, err
		}
		d.path = append(d.path, "."+key)
		if seen[key] {
			d.pos = keyPos
			err := d.errf("duplicate key %q", d.pathString())
			return nil, err
		}
		seen[key] = true
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.errf("want ':' after the key")
		}
		d.pos++
		d.skipSpace()
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.path = d.path[:len(d.path)-1]
		if d.ordered {
			o = append(o, Member{key, v})
		} else {
			m[key] = v
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errf("unexpected end of input in an object")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			if d.ordered {
				return o, nil
			}
			return m, nil
		default:
			return nil, d.errf("want ',' or '}' in an object")
		}
	}
}

func (d *decoder) array(depth int) (any, error) {
	d.pos++ // '['
	out := []any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return out, nil
	}
	for {
		d.skipSpace()
		d.path = append(d.path, "["+strconv.Itoa(len(out))+"]")
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.path = d.path[:len(d.path)-1]
		out = append(out, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errf("unexpected end of input in an array")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return out, nil
		default:
			return nil, d.errf("want ',' or ']' in an array")
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber scans JSON's number grammar from data[p:]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?
// A '.' or exponent with no digits after it is not part of the number
// (Python's scanner leaves "1." as 1 followed by extra data).
func scanNumber(data []byte, p int) (end int, isFloat, ok bool) {
	if p < len(data) && data[p] == '-' {
		p++
	}
	switch {
	case p < len(data) && data[p] == '0':
		p++
	case p < len(data) && isDigit(data[p]):
		for p < len(data) && isDigit(data[p]) {
			p++
		}
	default:
		return p, false, false
	}
	if p < len(data) && data[p] == '.' {
		q := p + 1
		for q < len(data) && isDigit(data[q]) {
			q++
		}
		if q > p+1 {
			isFloat = true
			p = q
		}
	}
	if p < len(data) && (data[p] == 'e' || data[p] == 'E') {
		q := p + 1
		if q < len(data) && (data[q] == '+' || data[q] == '-') {
			q++
		}
		r := q
		for r < len(data) && isDigit(data[r]) {
			r++
		}
		if r > q {
			isFloat = true
			p = r
		}
	}
	return p, isFloat, true
}

func (d *decoder) number() (any, error) {
	end, isFloat, ok := scanNumber(d.data, d.pos)
	if !ok {
		return nil, d.errf("invalid number")
	}
	text := string(d.data[d.pos:end])
	if !isFloat {
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, d.errf("integer %s does not fit in int64", text)
		}
		d.pos = end
		return n, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, d.errf("invalid number %s", text)
	}
	// Out of range, ParseFloat gives ±Inf or ±0 as Python's float() does.
	d.pos = end
	return f, nil
}

func hexVal(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}

// str scans a string; what ("a string", "a key") says which in errors.
func (d *decoder) str(what string) (string, error) {
	d.pos++ // '"'
	var sb []byte
	start := d.pos
	for {
		if d.pos >= len(d.data) {
			return "", d.errf("unterminated string")
		}
		c := d.data[d.pos]
		switch {
		case c == '"':
			sb = append(sb, d.data[start:d.pos]...)
			d.pos++
			return string(sb), nil
		case c < 0x20:
			return "", d.errf("invalid control character %#02x in %s", c, what)
		case c == '\\':
			sb = append(sb, d.data[start:d.pos]...)
			if d.pos+1 >= len(d.data) {
				return "", d.errf("unterminated string")
			}
			esc := d.data[d.pos+1]
			d.pos += 2
			switch esc {
			case '"', '\\', '/':
				sb = append(sb, esc)
			case 'b':
				sb = append(sb, '\b')
			case 'f':
				sb = append(sb, '\f')
			case 'n':
				sb = append(sb, '\n')
			case 'r':
				sb = append(sb, '\r')
			case 't':
				sb = append(sb, '\t')
			case 'u':
				r, err := d.u4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xdc00 || !d.hasPrefix(`\u`) {
						return "", d.errf("lone surrogate \\u%04x in %s", r, what)
					}
					d.pos += 2
					r2, err := d.u4()
					if err != nil {
						return "", err
					}
					c := utf16.DecodeRune(r, r2)
					if c == utf8.RuneError {
						return "", d.errf("lone surrogate \\u%04x in %s", r, what)
					}
					r = c
				}
				sb = utf8.AppendRune(sb, r)
			default:
				d.pos--
				return "", d.errf("invalid escape %s", quote.Name("\\"+string([]byte{esc})))
			}
			start = d.pos
		case c < utf8.RuneSelf:
			d.pos++
		default:
			r, n := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && n <= 1 {
				return "", d.errf("invalid UTF-8 in %s", what)
			}
			d.pos += n
		}
	}
}

func (d *decoder) u4() (rune, error) {
	if len(d.data)-d.pos < 4 {
		return 0, d.errf("truncated \\u escape")
	}
	r, ok := hexVal(d.data[d.pos : d.pos+4])
	if !ok {
		return 0, d.errf("invalid \\u escape")
	}
	d.pos += 4
	return r, nil
}
