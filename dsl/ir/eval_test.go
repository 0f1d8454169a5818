package ir

import (
	"strings"
	"testing"
)

type mapEnv map[string]any

func (m mapEnv) Lookup(path []string) (any, bool) {
	v, ok := m[strings.Join(path, ".")]
	return v, ok
}

func ref(p string) Expr             { return &Ref{Path: strings.Split(p, ".")} }
func lit(v any) Expr                { return &Literal{Value: v} }
func bin(op string, x, y Expr) Expr { return &Binary{Op: op, X: x, Y: y} }

func TestEval(t *testing.T) {
	env := mapEnv{"hidden": int64(2880), "heads": int64(64), "eps": 1e-5, "quant.method": "mxfp4", "tied": false, "n": 32}
	for _, tc := range []struct {
		e       Expr
		want    any
		wantErr string
	}{
		{bin("/", ref("hidden"), ref("heads")), int64(45), ""},
		{bin("/", ref("hidden"), lit(int64(7))), nil, "hidden / 7 = 2880 / 7 does not divide exactly"},
		{bin("/", ref("hidden"), lit(int64(0))), nil, "division by zero"},
		{bin("*", ref("n"), lit(int64(2))), int64(64), ""}, // an int from a decoder is normalized
		{bin("*", ref("eps"), lit(int64(2))), 2e-5, ""},
		{bin("==", ref("quant.method"), lit("mxfp4")), true, ""},
		{bin("==", ref("absent"), lit(nil)), true, ""},
		{&Unary{Op: "not", X: ref("tied")}, true, ""},
		{&Unary{Op: "not", X: ref("absent")}, true, ""}, // an absent key is false
		{bin("+", ref("absent"), lit(int64(1))), nil, "absent is not set; it must be a number"},
		{bin("and", ref("hidden"), lit(true)), nil, "hidden is 2880; it must be true or false"},
		{bin("or", lit(true), ref("hidden")), true, ""}, // short-circuits
		{bin("<", ref("heads"), ref("hidden")), true, ""},
		{bin("==", lit(int64(32)), lit(32.0)), true, ""},
	} {
		got, err := Eval(tc.e, env)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", Format(tc.e), err, tc.wantErr)
			}
			continue
		}
		if err != nil || !ValuesEqual(got, tc.want) {
			t.Errorf("%s = %v (%v), want %v", Format(tc.e), got, err, tc.want)
		}
	}
}

func TestEvalInt(t *testing.T) {
	env := mapEnv{"a": 4096.0, "b": 0.5}
	if n, err := EvalInt(ref("a"), env); err != nil || n != 4096 {
		t.Errorf("an integral float is an integer: %d %v", n, err)
	}
	if _, err := EvalInt(ref("b"), env); err == nil || !strings.Contains(err.Error(), "must be an integer") {
		t.Errorf("0.5 as an integer: %v", err)
	}
}

func TestFormatParenthesizes(t *testing.T) {
	e := bin("*", bin("+", ref("a"), ref("b")), ref("c"))
	if got := Format(e); got != "(a + b) * c" {
		t.Errorf("Format = %q", got)
	}
}
