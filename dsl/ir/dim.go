package ir

import (
	"fmt"
	"strings"
)

// LetEnv is an Env that can also say how a let is defined, so that errors can
// trace a value back to the config keys it came from.
type LetEnv interface {
	Env
	// Let returns the expression of let name, when name is a let (and not
	// shadowed by a loop variable).
	Let(name string) (Expr, bool)
}

// EvalDim evaluates a declared dimension. A dimension counts something
// (heads, features, experts), so it must be positive, and so must every
// factor of it: with heads = -4 and head_dim = -16, heads * head_dim is a
// plausible 64 made of nonsense. Factors are the operands of * and / at the
// top of the expression, recursively; what + and - combine is checked as a
// whole. A zero dimension is refused too: safetensors can store an empty
// tensor, but no model has a layer of width 0, and an empty tensor would let
// the other dimensions grow without bound at no cost in bytes.
func EvalDim(e Expr, env Env) (int64, error) {
	n, bad, err := dimFactor(e, env)
	if err != nil {
		return 0, err
	}
	if bad == nil {
		return n, nil
	}
	return 0, dimError(e, bad, n, env)
}

func dimError(e, bad Expr, n int64, env Env) error {
	var msg string
	if bad == e {
		msg = fmt.Sprintf("dimension %s is %d; a dimension must be positive", Format(e), n)
	} else {
		msg = fmt.Sprintf("dimension %s has the factor %s = %d; a dimension and its factors must be positive", Format(e), Format(bad), n)
	}
	if env != nil {
		if b := Bindings(e, env); b != "" {
			msg += " (" + b + ")"
		}
	}
	return &EvalError{ExprPos(bad), msg}
}

// DimConstError checks the factors of a dimension that are constants, which
// are wrong whatever the config: [hidden * 0] is an error of the file.
func DimConstError(e Expr) error {
	var check func(x Expr) error
	check = func(x Expr) error {
		if b, ok := x.(*Binary); ok && (b.Op == "*" || b.Op == "/") {
			if err := check(b.X); err != nil {
				return err
			}
			return check(b.Y)
		}
		if !IsConst(x) {
			return nil
		}
		n, err := EvalInt(x, noNames{})
		if err != nil {
			return err
		}
		if n <= 0 {
			return dimError(e, x, n, nil) // no config to show
		}
		return nil
	}
	return check(e)
}

// IsConst reports whether e reads no name.
func IsConst(e Expr) bool {
	switch e.(type) {
	case *Literal:
		return true
	case *Ref:
		return false
	}
	for _, x := range Operands(e) {
		if !IsConst(x) {
			return false
		}
	}
	return true
}

// dimFactor evaluates e as a factor of a dimension. bad is the first factor
// that is not positive (e itself when e is not a product or quotient), and n
// is then that factor's value.
func dimFactor(e Expr, env Env) (n int64, bad Expr, err error) {
	b, ok := e.(*Binary)
	if !ok || (b.Op != "*" && b.Op != "/") {
		n, err := EvalInt(e, env)
		if err != nil {
			return 0, nil, err
		}
		if n <= 0 {
			return n, e, nil
		}
		return n, nil, nil
	}
	x, bad, err := dimFactor(b.X, env)
	if err != nil || bad != nil {
		return x, bad, err
	}
	y, bad, err := dimFactor(b.Y, env)
	if err != nil || bad != nil {
		return y, bad, err
	}
	v, err := intBinary(b, x, y)
	if err != nil {
		return 0, nil, err
	}
	return v.(int64), nil, nil
}

// Bindings lists the names e reads with their values, in order of first
// use: "heads = num_attention_heads = 4, hd = head_dim = -16". A let is
// shown with its definition when env is a LetEnv.
func Bindings(e Expr, env Env) string {
	var parts []string
	seen := map[string]bool{}
	var walk func(Expr)
	walk = func(e Expr) {
		switch e := e.(type) {
		case *Ref:
			name := Format(e)
			if seen[name] {
				return
			}
			seen[name] = true
			part := name
			if le, ok := env.(LetEnv); ok && len(e.Path) == 1 {
				if def, ok := le.Let(e.Path[0]); ok {
					part += " = " + Format(def)
				}
			}
			v, ok := env.Lookup(e.Path)
			if !ok {
				part += " is not set"
			} else {
				part += " = " + FormatValue(v)
			}
			parts = append(parts, part)
		case *Index:
			walk(e.I)
			if _, ok := e.X.(*Ref); !ok {
				walk(e.X)
				return
			}
			// The element read, not the whole list: layer_types[3] = "full".
			i, err := Eval(e.I, env)
			if err != nil {
				return
			}
			name := Format(e.X) + "[" + FormatValue(i) + "]"
			if seen[name] {
				return
			}
			seen[name] = true
			if v, err := Eval(e, env); err == nil {
				parts = append(parts, name+" = "+FormatValue(v))
			} else if x, _ := Eval(e.X, env); x == nil {
				parts = append(parts, Format(e.X)+" is not set")
			}
		default:
			for _, x := range Operands(e) {
				walk(x)
			}
		}
	}
	walk(e)
	return strings.Join(parts, ", ")
}
