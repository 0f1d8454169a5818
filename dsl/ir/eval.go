package ir

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Env resolves the names an expression reads: let names, loop variables and
// dotted left config paths. ok is false when the name is not set at all.
type Env interface {
	Lookup(path []string) (value any, ok bool)
}

// EvalError is an expression that could not be evaluated, with its position.
type EvalError struct {
	Pos Pos
	Msg string
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Pos.File, e.Pos.Line, e.Pos.Column, e.Msg)
}

// Eval evaluates e. Values are int64, float64, string, bool, nil, []any and
// map[string]any. A name that is not set evaluates to nil, so `when
// attention_bias` is false for a config without that key; arithmetic on nil
// is an error that names the key. Integer division must be exact: a shape
// like hidden_size / 32 that does not divide is a config error, not a value
// to round. Integer arithmetic that would leave int64, and float arithmetic
// that turns finite operands into an infinity, are errors naming the
// operands: a wrapped product can look like a plausible dimension.
func Eval(e Expr, env Env) (any, error) {
	switch e := e.(type) {
	case *Literal:
		return e.Value, nil
	case *Ref:
		v, ok := env.Lookup(e.Path)
		if !ok {
			return nil, nil
		}
		if u, ok := v.(uint64); ok && u > math.MaxInt64 {
			return nil, &EvalError{e.At, fmt.Sprintf("%s is %d, which does not fit in a 64-bit integer", Format(e), u)}
		}
		return normalize(v), nil
	case *Unary:
		x, err := Eval(e.X, env)
		if err != nil {
			return nil, err
		}
		switch e.Op {
		case "not":
			b, err := truth(x, e.X)
			if err != nil {
				return nil, err
			}
			return !b, nil
		case "-":
			switch x := x.(type) {
			case int64:
				if n, ok := NegInt(x); ok {
					return n, nil
				}
				return nil, &EvalError{e.At, fmt.Sprintf("-%s = -(%d) overflows a 64-bit integer", formatOperand(e.X), x)}
			case float64:
				return -x, nil
			}
			return nil, typeErr(e.X, x, "a number")
		}
	case *Binary:
		return evalBinary(e, env)
	case *Index:
		return evalIndex(e, env)
	case *Apply:
		return evalApply(e, env)
	}
	return nil, &EvalError{ExprPos(e), fmt.Sprintf("cannot evaluate %T", e)}
}

func evalBinary(e *Binary, env Env) (any, error) {
	x, err := Eval(e.X, env)
	if err != nil {
		return nil, err
	}
	switch e.Op {
	case "and", "or":
		bx, err := truth(x, e.X)
		if err != nil {
			return nil, err
		}
		if (e.Op == "and" && !bx) || (e.Op == "or" && bx) {
			return bx, nil
		}
		y, err := Eval(e.Y, env)
		if err != nil {
			return nil, err
		}
		return truth(y, e.Y)
	}
	y, err := Eval(e.Y, env)
	if err != nil {
		return nil, err
	}
	switch e.Op {
	case "==":
		return ValuesEqual(x, y), nil
	case "!=":
		return !ValuesEqual(x, y), nil
	}
	xi, xInt := x.(int64)
	yi, yInt := y.(int64)
	if xInt && yInt {
		return intBinary(e, xi, yi)
	}
	xf, err := number(x, e.X)
	if err != nil {
		return nil, err
	}
	yf, err := number(y, e.Y)
	if err != nil {
		return nil, err
	}
	var r float64
	switch e.Op {
	case "+":
		r = xf + yf
	case "-":
		r = xf - yf
	case "*":
		r = xf * yf
	case "/", "%":
		if yf == 0 {
			return nil, divByZero(e)
		}
		if e.Op == "/" {
			r = xf / yf
		} else {
			r = math.Mod(xf, yf)
		}
	case "<":
		return xf < yf, nil
	case "<=":
		return xf <= yf, nil
	case ">":
		return xf > yf, nil
	case ">=":
		return xf >= yf, nil
	default:
		return nil, &EvalError{e.At, "unknown operator " + e.Op}
	}
	if math.IsInf(r, 0) && !math.IsInf(xf, 0) && !math.IsInf(yf, 0) {
		return nil, &EvalError{e.At, opText(e, FormatValue(x), FormatValue(y)) + " overflows a 64-bit float"}
	}
	return r, nil
}

// intBinary applies an arithmetic or comparison operator to two integers.
func intBinary(e *Binary, xi, yi int64) (any, error) {
	var r int64
	ok := true
	switch e.Op {
	case "+":
		r, ok = AddInt(xi, yi)
	case "-":
		r, ok = SubInt(xi, yi)
	case "*":
		r, ok = MulInt(xi, yi)
	case "/", "%":
		if yi == 0 {
			return nil, divByZero(e)
		}
		if e.Op == "%" {
			// Go defines MinInt64 % -1 as 0, which is also the true remainder.
			return xi % yi, nil
		}
		if xi%yi != 0 {
			return nil, &EvalError{e.At, opText(e, strconv.FormatInt(xi, 10), strconv.FormatInt(yi, 10)) + " does not divide exactly"}
		}
		r, ok = QuoInt(xi, yi)
	case "<":
		return xi < yi, nil
	case "<=":
		return xi <= yi, nil
	case ">":
		return xi > yi, nil
	case ">=":
		return xi >= yi, nil
	default:
		return nil, &EvalError{e.At, "unknown operator " + e.Op}
	}
	if !ok {
		return nil, &EvalError{e.At, opText(e, strconv.FormatInt(xi, 10), strconv.FormatInt(yi, 10)) + " overflows a 64-bit integer"}
	}
	return r, nil
}

func divByZero(e *Binary) error {
	if _, ok := e.Y.(*Literal); ok {
		return &EvalError{e.At, fmt.Sprintf("division by zero in %s", Format(e))}
	}
	return &EvalError{e.At, fmt.Sprintf("division by zero (%s is 0)", Format(e.Y))}
}

// opText prints `X op Y`, followed by the operands' values when they are not
// literally what is written: "heads * hd = 4 * -16".
func opText(e *Binary, x, y string) string {
	text := formatOperand(e.X) + " " + e.Op + " " + formatOperand(e.Y)
	if vals := x + " " + e.Op + " " + y; vals != text {
		text += " = " + vals
	}
	return text
}

// EvalInt evaluates e and requires an integer (a float with an integral value
// is accepted, since JSON writers sometimes emit 4096.0).
func EvalInt(e Expr, env Env) (int64, error) {
	v, err := Eval(e, env)
	if err != nil {
		return 0, err
	}
	return asInt(v, e, "an integer")
}

// asInt requires v, the value of e, to be an integer, or a float of an
// integral value within 2^53; want words the requirement for the error.
func asInt(v any, e Expr, want string) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case float64:
		if n, ok := IntOfFloat(v); ok {
			return n, nil
		}
		if v == math.Trunc(v) && !math.IsInf(v, 0) {
			return 0, &EvalError{ExprPos(e), fmt.Sprintf("%s is %s, too large to be an exact integer (beyond 2^53)", Format(e), FormatValue(v))}
		}
	}
	return 0, typeErr(e, v, want)
}

// EvalBool evaluates a condition; nil (an absent key) is false.
func EvalBool(e Expr, env Env) (bool, error) {
	v, err := Eval(e, env)
	if err != nil {
		return false, err
	}
	return truth(v, e)
}

// EvalAll reports whether every condition holds: a rule's When is their
// conjunction, so a rule with none always holds.
func EvalAll(conds []Expr, env Env) (bool, error) {
	for _, c := range conds {
		ok, err := EvalBool(c, env)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func truth(v any, at Expr) (bool, error) {
	switch v := v.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	}
	return false, typeErr(at, v, "true or false")
}

// number converts an operand for float arithmetic. An integer beyond 2^53
// would be rounded on the way, so it is refused rather than changed.
func number(v any, at Expr) (float64, error) {
	switch v := v.(type) {
	case int64:
		if v > maxExactFloat || v < -maxExactFloat {
			return 0, &EvalError{ExprPos(at), fmt.Sprintf("%s is %d, too large to combine with a float exactly (beyond 2^53)", Format(at), v)}
		}
		return float64(v), nil
	case float64:
		return v, nil
	}
	return 0, typeErr(at, v, "a number")
}

func typeErr(at Expr, v any, want string) error {
	if v == nil {
		return &EvalError{ExprPos(at), fmt.Sprintf("%s is not set; it must be %s", Format(at), want)}
	}
	if _, ok := at.(*Literal); ok {
		return &EvalError{ExprPos(at), fmt.Sprintf("%s is not %s", Format(at), want)}
	}
	return &EvalError{ExprPos(at), fmt.Sprintf("%s is %s; it must be %s", Format(at), FormatValue(v), want)}
}

// normalize maps the numeric types decoders produce onto int64 and float64.
func normalize(v any) any {
	switch v := v.(type) {
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case uint64:
		return int64(v)
	case float32:
		return float64(v)
	}
	return v
}

// ValuesEqual compares config values as data: an integer equals a float of
// exactly its value (2^53+1 is not the float 2^53, which rounding it would
// say), and NaN equals NaN (a config that holds NaN holds the same value).
func ValuesEqual(a, b any) bool {
	a, b = normalize(a), normalize(b)
	switch a := a.(type) {
	case int64:
		if f, ok := b.(float64); ok {
			return intIsFloat(a, f)
		}
	case float64:
		switch b := b.(type) {
		case int64:
			return intIsFloat(b, a)
		case float64:
			return a == b || math.IsNaN(a) && math.IsNaN(b)
		}
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !ValuesEqual(a[i], bl[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !ValuesEqual(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// intIsFloat says whether f is exactly the integer i.
func intIsFloat(i int64, f float64) bool {
	return f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 && int64(f) == i
}

// Format prints an expression in the language's own syntax.
func Format(e Expr) string {
	switch e := e.(type) {
	case *Ref:
		return strings.Join(e.Path, ".")
	case *Literal:
		return FormatValue(e.Value)
	case *Unary:
		if e.Op == "not" {
			return "not " + Format(e.X)
		}
		return e.Op + Format(e.X)
	case *Binary:
		return formatOperand(e.X) + " " + e.Op + " " + formatOperand(e.Y)
	case *Index:
		x := formatOperand(e.X)
		if _, ok := e.X.(*Unary); ok {
			x = "(" + x + ")"
		}
		return x + "[" + Format(e.I) + "]"
	case *Apply:
		args := make([]string, len(e.Args))
		for i, a := range e.Args {
			args[i] = Format(a)
		}
		return e.Name + "(" + strings.Join(args, ", ") + ")"
	}
	return fmt.Sprintf("%T", e)
}

// formatOperand parenthesises nested binary expressions so that the printed
// form never depends on precedence.
func formatOperand(e Expr) string {
	if _, ok := e.(*Binary); ok {
		return "(" + Format(e) + ")"
	}
	return Format(e)
}

// FormatValue prints a config value as a .map literal.
func FormatValue(v any) string {
	switch v := normalize(v).(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = FormatValue(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sortStrings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%q: %s", k, FormatValue(v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func sortStrings(s []string) { slices.Sort(s) }
