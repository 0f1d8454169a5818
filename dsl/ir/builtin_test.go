package ir

import (
	"math"
	"testing"
)

func index(x, i Expr) Expr { return &Index{X: x, I: i} }

func apply(name string, args ...Expr) Expr {
	return &Apply{Name: name, Fn: Builtins[name], Args: args}
}

func TestEvalIndex(t *testing.T) {
	env := mapEnv{
		"kinds": []any{"t", "m2", "t"}, "l": int64(1), "big": int64(3), "f": 2.0, "half": 0.5,
		"obj": map[string]any{"a": int64(1), "b": "x"}, "n": 7,
	}
	for _, tc := range []struct {
		e       Expr
		want    any
		wantErr string
	}{
		{index(ref("kinds"), ref("l")), "m2", ""},
		{bin("==", index(ref("kinds"), lit(int64(0))), lit("t")), true, ""},
		{index(ref("kinds"), ref("f")), "t", ""}, // an integral float indexes
		{index(ref("kinds"), ref("big")), nil, "kinds[big]: index big = 3 is out of range: kinds has 3 entries"},
		{index(ref("kinds"), lit(int64(-1))), nil, "index -1 = -1 is out of range: kinds has 3 entries"},
		{index(ref("kinds"), ref("half")), nil, "half is 0.5; it must be an integer (the index of a list)"},
		{index(ref("kinds"), lit("a")), nil, `"a" is not an integer (the index of a list)`},
		{index(ref("absent"), ref("l")), nil, "absent is not set; it must be a list or an object"},
		{index(ref("n"), ref("l")), nil, "n is 7; it must be a list or an object"},
		{index(ref("obj"), lit("b")), "x", ""},
		{index(ref("obj"), lit("c")), nil, `obj["c"]: obj has no key "c" (its keys: "a", "b")`},
		{index(ref("obj"), lit(int64(0))), nil, "0 is not a string (a key of an object)"},
		{index(lit([]any{[]any{int64(1), int64(2)}}), lit(int64(0))), []any{int64(1), int64(2)}, ""},
	} {
		checkEval(t, env, tc.e, tc.want, tc.wantErr)
	}
}

func TestEvalBuiltins(t *testing.T) {
	env := mapEnv{"hidden": int64(4096), "f": 3072.0, "list": []any{int64(1), "a"}, "obj": map[string]any{"k": true}, "neg": int64(-7)}
	for _, tc := range []struct {
		e       Expr
		want    any
		wantErr string
	}{
		{apply("ceil_div", ref("hidden"), lit(int64(16))), int64(256), ""},
		{apply("ceil_div", lit(int64(4097)), lit(int64(16))), int64(257), ""},
		{apply("ceil_div", ref("neg"), lit(int64(2))), int64(-3), ""},     // ceil(-3.5)
		{apply("ceil_div", ref("neg"), lit(int64(-2))), int64(4), ""},     // ceil(3.5)
		{apply("ceil_div", lit(int64(7)), lit(int64(-2))), int64(-3), ""}, // ceil(-3.5)
		{apply("ceil_div", ref("f"), lit(int64(16))), int64(192), ""},     // an integral float is an integer
		{apply("ceil_div", lit(int64(1)), lit(int64(0))), nil, "division by zero in ceil_div(1, 0) (0 is 0)"},
		{apply("ceil_div", lit(0.5), lit(int64(2))), nil, "0.5 is not an integer"},
		{apply("ceil_div", lit(int64(math.MinInt64)), lit(int64(-1))), nil, "overflows a 64-bit integer"},
		{apply("sqrt", ref("f")), math.Sqrt(3072), ""},
		{apply("sqrt", lit(int64(16))), 4.0, ""},
		{apply("sqrt", ref("neg")), nil, "sqrt(neg): neg is -7; it must not be negative"},
		{apply("sqrt", lit("x")), nil, `"x" is not a number`},
		{apply("len", ref("list")), int64(2), ""},
		{apply("len", ref("obj")), int64(1), ""},
		{apply("len", ref("hidden")), nil, "hidden is 4096; it must be a list or an object"},
		{apply("min", lit(int64(4)), lit(int64(2))), int64(2), ""},
		{apply("max", lit(int64(4)), lit(int64(2)), lit(int64(9))), int64(9), ""},
		{apply("min", lit(int64(4)), lit(2.5)), 2.5, ""},
		{apply("max", lit(int64(4)), lit(2.5)), 4.0, ""}, // mixed: a float
		{apply("max", ref("absent"), lit(int64(1))), nil, "absent is not set; it must be a number"},
		{apply("min", lit(int64(1))), nil, "min takes 2 or more arguments, got 1"},
		{&Apply{Name: "nope"}, nil, "unknown function nope"},
	} {
		checkEval(t, env, tc.e, tc.want, tc.wantErr)
	}
}

// TestFormatIndexCall: Format prints index and call expressions as written,
// with parentheses where an operand needs them.
func TestFormatIndexCall(t *testing.T) {
	for _, tc := range []struct {
		e    Expr
		want string
	}{
		{index(ref("layer_types"), ref("l")), "layer_types[l]"},
		{index(bin("+", ref("a"), ref("b")), lit(int64(0))), "(a + b)[0]"},
		{index(&Unary{Op: "-", X: ref("x")}, lit(int64(0))), "(-x)[0]"},
		{apply("ceil_div", bin("*", ref("a"), lit(int64(2))), lit(int64(16))), "ceil_div(a * 2, 16)"},
		{bin("==", index(ref("kinds"), ref("l")), lit("m2")), `kinds[l] == "m2"`},
	} {
		if got := Format(tc.e); got != tc.want {
			t.Errorf("Format = %s, want %s", got, tc.want)
		}
	}
}

// TestBindingsIndex: an error's value list shows the element an index read,
// not the whole list.
func TestBindingsIndex(t *testing.T) {
	env := mapEnv{"kinds": []any{"t", "m2"}, "l": int64(1)}
	e := bin("==", index(ref("kinds"), ref("l")), lit("t"))
	if got, want := Bindings(e, env), `l = 1, kinds[1] = "m2"`; got != want {
		t.Errorf("Bindings = %s, want %s", got, want)
	}
	if got, want := Bindings(index(ref("absent"), ref("l")), env), "l = 1, absent is not set"; got != want {
		t.Errorf("Bindings = %s, want %s", got, want)
	}
}

func TestPerIteration(t *testing.T) {
	inLoop := bin("==", index(ref("kinds"), ref("l")), lit("t"))
	plain := ref("attention_bias")
	outer, inner := PerIteration([]Expr{plain, inLoop}, []Loop{{Var: "l"}})
	if len(outer) != 1 || outer[0] != plain || len(inner) != 1 || inner[0] != inLoop {
		t.Errorf("PerIteration: outer %v, inner %v", outer, inner)
	}
	if _, inner := PerIteration([]Expr{inLoop}, nil); len(inner) != 0 {
		t.Error("a condition outside any loop is per-iteration")
	}
}
