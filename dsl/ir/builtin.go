package ir

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Builtin is a function an expression may call: a fixed table, so that a
// mapping computes what a model's config leaves implicit (Apriel's
// dt_rank "auto" is ceil_div(hidden_size, 16)) without a language of its
// own functions.
type Builtin struct {
	Name string
	// MinArgs and MaxArgs bound the argument count; MaxArgs < 0: no limit.
	MinArgs, MaxArgs int
	Params           string // the parameters as the docs and errors show them
	Result           string // what it returns
	Doc              string // what it computes
	Example          string // an expression and its value, checked by a test
	fn               func(a *Apply, args []any) (any, error)
}

// ArityText says how many arguments b takes: "1 argument", "2 or more
// arguments".
func (b *Builtin) ArityText() string {
	switch {
	case b.MaxArgs < 0:
		return fmt.Sprintf("%d or more arguments", b.MinArgs)
	case b.MinArgs == 1 && b.MaxArgs == 1:
		return "1 argument"
	case b.MinArgs == b.MaxArgs:
		return fmt.Sprintf("%d arguments", b.MinArgs)
	}
	return fmt.Sprintf("%d to %d arguments", b.MinArgs, b.MaxArgs)
}

// Builtins is the table of functions, by name.
var Builtins = map[string]*Builtin{}

// BuiltinNames lists the functions, sorted.
func BuiltinNames() []string {
	var out []string
	for n := range Builtins {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func init() {
	for _, b := range []*Builtin{
		{Name: "ceil_div", MinArgs: 2, MaxArgs: 2, Params: "a: integer, b: integer", Result: "integer",
			Doc: "a / b rounded up (b must not be 0)", Example: "ceil_div(4096, 16 * 3) = 86", fn: ceilDiv},
		{Name: "sqrt", MinArgs: 1, MaxArgs: 1, Params: "x: number", Result: "float",
			Doc: "the square root, correctly rounded (x must not be negative)", Example: "sqrt(3072) = 55.42562584220407", fn: sqrt},
		{Name: "len", MinArgs: 1, MaxArgs: 1, Params: "x: list or object", Result: "integer",
			Doc: "the number of entries", Example: `len(["t", "m2", "t"]) = 3`, fn: length},
		{Name: "min", MinArgs: 2, MaxArgs: -1, Params: "a: number, b: number, ...", Result: "number",
			Doc: "the smallest argument (an integer when all are integers)", Example: "min(4, 2.5) = 2.5", fn: minMax},
		{Name: "max", MinArgs: 2, MaxArgs: -1, Params: "a: number, b: number, ...", Result: "number",
			Doc: "the largest argument (an integer when all are integers)", Example: "max(4, 2) = 4", fn: minMax},
	} {
		Builtins[b.Name] = b
	}
}

// intArg reads an integer argument, accepting an integral float as EvalInt does.
func intArg(a *Apply, i int, v any) (int64, error) { return asInt(v, a.Args[i], "an integer") }

func ceilDiv(a *Apply, args []any) (any, error) {
	x, err := intArg(a, 0, args[0])
	if err != nil {
		return nil, err
	}
	y, err := intArg(a, 1, args[1])
	if err != nil {
		return nil, err
	}
	if y == 0 {
		return nil, &EvalError{a.At, fmt.Sprintf("division by zero in %s (%s is 0)", Format(a), Format(a.Args[1]))}
	}
	if x == math.MinInt64 && y == -1 {
		return nil, &EvalError{a.At, fmt.Sprintf("%s = ceil_div(%d, -1) overflows a 64-bit integer", Format(a), x)}
	}
	q := x / y
	if x%y != 0 && (x < 0) == (y < 0) {
		q++ // Go truncates toward zero; a positive quotient rounds up
	}
	return q, nil
}

func sqrt(a *Apply, args []any) (any, error) {
	x, err := number(args[0], a.Args[0])
	if err != nil {
		return nil, err
	}
	if x < 0 {
		return nil, &EvalError{a.At, fmt.Sprintf("%s: %s is %s; it must not be negative", Format(a), Format(a.Args[0]), FormatValue(args[0]))}
	}
	return math.Sqrt(x), nil
}

func length(a *Apply, args []any) (any, error) {
	switch v := args[0].(type) {
	case []any:
		return int64(len(v)), nil
	case map[string]any:
		return int64(len(v)), nil
	}
	return nil, typeErr(a.Args[0], args[0], "a list or an object")
}

func minMax(a *Apply, args []any) (any, error) {
	best, bestF := args[0], 0.0
	allInt := true
	for i, v := range args {
		if _, ok := v.(int64); !ok {
			allInt = false
		}
		f, err := number(v, a.Args[i])
		if err != nil {
			return nil, err
		}
		if i == 0 || (a.Name == "min" && f < bestF) || (a.Name == "max" && f > bestF) {
			best, bestF = v, f
		}
	}
	if allInt {
		return best, nil
	}
	return bestF, nil
}

// Index is X[I]: the element I of a list, or the key I of an object.
type Index struct {
	X, I Expr
	At   Pos
}

// Apply is a call of a builtin function.
type Apply struct {
	Name string
	Fn   *Builtin // nil when the name is unknown (the checker reports it)
	Args []Expr
	At   Pos
}

func (e *Index) exprPos() Pos { return e.At }
func (e *Apply) exprPos() Pos { return e.At }

func evalIndex(e *Index, env Env) (any, error) {
	x, err := Eval(e.X, env)
	if err != nil {
		return nil, err
	}
	i, err := Eval(e.I, env)
	if err != nil {
		return nil, err
	}
	switch x := x.(type) {
	case []any:
		n, err := asInt(i, e.I, "an integer (the index of a list)")
		if err != nil {
			return nil, err
		}
		if n < 0 || n >= int64(len(x)) {
			return nil, &EvalError{e.At, fmt.Sprintf("%s: index %s = %d is out of range: %s has %d entries",
				Format(e), Format(e.I), n, Format(e.X), len(x))}
		}
		return normalize(x[n]), nil
	case map[string]any:
		k, ok := i.(string)
		if !ok {
			return nil, typeErr(e.I, i, "a string (a key of an object)")
		}
		v, ok := x[k]
		if !ok {
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, fmt.Sprintf("%q", k))
			}
			slices.Sort(keys)
			return nil, &EvalError{e.At, fmt.Sprintf("%s: %s has no key %q (its keys: %s)", Format(e), Format(e.X), k, strings.Join(keys, ", "))}
		}
		return normalize(v), nil
	}
	return nil, typeErr(e.X, x, "a list or an object")
}

func evalApply(e *Apply, env Env) (any, error) {
	if e.Fn == nil {
		return nil, &EvalError{e.At, "unknown function " + e.Name}
	}
	if len(e.Args) < e.Fn.MinArgs || (e.Fn.MaxArgs >= 0 && len(e.Args) > e.Fn.MaxArgs) {
		return nil, &EvalError{e.At, fmt.Sprintf("%s takes %s, got %d", e.Name, e.Fn.ArityText(), len(e.Args))}
	}
	args := make([]any, len(e.Args))
	for i, a := range e.Args {
		v, err := Eval(a, env)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	return e.Fn.fn(e, args)
}

// Operands returns the expressions e is computed from, in order.
func Operands(e Expr) []Expr {
	switch e := e.(type) {
	case *Unary:
		return []Expr{e.X}
	case *Binary:
		return []Expr{e.X, e.Y}
	case *Index:
		return []Expr{e.X, e.I}
	case *Apply:
		return e.Args
	}
	return nil
}
