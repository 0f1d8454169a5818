package ir

import (
	"math"
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
		checkEval(t, env, tc.e, tc.want, tc.wantErr)
	}
}

func checkEval(t *testing.T, env Env, e Expr, want any, wantErr string) {
	t.Helper()
	got, err := Eval(e, env)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: got %v, error %v, want error %q", Format(e), got, err, wantErr)
		}
		return
	}
	if err != nil || !ValuesEqual(got, want) {
		t.Errorf("%s = %v (%v), want %v", Format(e), got, err, want)
	}
}

// TestEvalOverflow: integer arithmetic never wraps; every operator that can
// leave int64 is an error naming the operands and their values.
func TestEvalOverflow(t *testing.T) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	env := mapEnv{
		"big": maxI, "small": minI, "hd": int64(-9223372036854775792), "heads": int64(32), "two": int64(2),
		"huge": uint64(math.MaxUint64), "fbig": 1e300, "fint": 4096.0, "f2p60": 1152921504606846976.0,
		"i2p60": int64(1) << 60,
	}
	for _, tc := range []struct {
		e       Expr
		want    any
		wantErr string
	}{
		{bin("+", ref("big"), lit(int64(1))), nil, "big + 1 = 9223372036854775807 + 1 overflows a 64-bit integer"},
		{bin("+", ref("big"), lit(int64(0))), maxI, ""},
		{bin("+", ref("small"), lit(int64(-1))), nil, "overflows a 64-bit integer"},
		{bin("-", ref("small"), lit(int64(1))), nil, "small - 1 = -9223372036854775808 - 1 overflows"},
		{bin("-", lit(int64(0)), ref("small")), nil, "overflows"},
		{bin("-", lit(int64(-1)), ref("small")), maxI, ""},
		{bin("*", ref("heads"), ref("hd")), nil, "heads * hd = 32 * -9223372036854775792 overflows a 64-bit integer"},
		{bin("*", ref("small"), lit(int64(-1))), nil, "overflows"},
		{bin("*", lit(int64(-1)), ref("small")), nil, "overflows"},
		{bin("*", ref("small"), lit(int64(1))), minI, ""},
		{bin("*", ref("two"), bin("*", lit(int64(1)<<31), lit(int64(1)<<31))), nil, "two * (2147483648 * 2147483648) = 2 * 4611686018427387904 overflows"},
		{bin("*", bin("*", bin("*", lit(int64(65536)), lit(int64(65536))), lit(int64(65536))), lit(int64(65536))),
			nil, "((65536 * 65536) * 65536) * 65536 = 281474976710656 * 65536 overflows a 64-bit integer"},
		{bin("/", ref("small"), lit(int64(-1))), nil, "small / -1 = -9223372036854775808 / -1 overflows"},
		{bin("%", ref("small"), lit(int64(-1))), int64(0), ""},
		{bin("%", ref("big"), lit(int64(0))), nil, "division by zero"},
		{&Unary{Op: "-", X: ref("small")}, nil, "-small = -(-9223372036854775808) overflows"},
		{&Unary{Op: "-", X: ref("big")}, -maxI, ""},
		// A decoder's uint64 beyond int64 is refused, not wrapped negative.
		{bin("+", ref("huge"), lit(int64(0))), nil, "huge is 18446744073709551615, which does not fit in a 64-bit integer"},
		// Floats: finite operands must give a finite result.
		{bin("*", ref("fbig"), ref("fbig")), nil, "fbig * fbig = 1e+300 * 1e+300 overflows a 64-bit float"},
		{bin("/", ref("fint"), lit(0.0)), nil, "division by zero in fint / 0"},
		{bin("*", ref("fint"), lit(int64(2))), 8192.0, ""},
		// An integer beyond 2^53 cannot meet a float without rounding.
		{bin("+", ref("i2p60"), lit(0.5)), nil, "i2p60 is 1152921504606846976, too large to combine with a float exactly"},
		{bin("<", ref("i2p60"), ref("f2p60")), nil, "too large to combine with a float"},
	} {
		checkEval(t, env, tc.e, tc.want, tc.wantErr)
	}
}

func TestEvalIntFloats(t *testing.T) {
	env := mapEnv{"exact": 9007199254740992.0, "beyond": 9007199254740994.0, "huge": 1e300, "inf": math.Inf(1), "nan": math.NaN(), "neg": -4096.0}
	for _, tc := range []struct {
		name    string
		want    int64
		wantErr string
	}{
		{"exact", 1 << 53, ""},
		{"neg", -4096, ""},
		{"beyond", 0, "beyond is 9.007199254740994e+15, too large to be an exact integer (beyond 2^53)"},
		{"huge", 0, "huge is 1e+300, too large to be an exact integer"},
		{"inf", 0, "inf is +Inf; it must be an integer"},
		{"nan", 0, "nan is NaN; it must be an integer"},
	} {
		n, err := EvalInt(ref(tc.name), env)
		if tc.wantErr == "" {
			if err != nil || n != tc.want {
				t.Errorf("%s: %d, %v; want %d", tc.name, n, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %d, %v; want error %q", tc.name, n, err, tc.wantErr)
		}
	}
}

type letEnv struct {
	mapEnv
	lets map[string]Expr
}

func (e letEnv) Let(name string) (Expr, bool) { x, ok := e.lets[name]; return x, ok }

// TestEvalDim: a dimension and each factor of it must be positive, and the
// error traces the values back through the lets.
func TestEvalDim(t *testing.T) {
	env := letEnv{
		mapEnv: mapEnv{"heads": int64(-4), "hd": int64(-16), "kv": int64(2), "hidden": int64(64), "zero": int64(0),
			"vocab": int64(100), "pad": int64(0), "big": int64(1) << 62, "fhidden": 64.0},
		lets: map[string]Expr{"hd": ref("head_dim"), "heads": ref("num_attention_heads")},
	}
	for _, tc := range []struct {
		e       Expr
		want    int64
		wantErr string
	}{
		{bin("*", ref("kv"), ref("hidden")), 128, ""},
		{bin("/", ref("hidden"), lit(int64(32))), 2, ""},
		{ref("fhidden"), 64, ""},
		{bin("-", ref("vocab"), ref("pad")), 100, ""}, // a term may be 0; only factors must be positive
		// Signs that cancel: the product is a plausible 64.
		{bin("*", ref("heads"), ref("hd")), 0,
			"dimension heads * hd has the factor heads = -4; a dimension and its factors must be positive (heads = num_attention_heads = -4, hd = head_dim = -16)"},
		{bin("*", ref("kv"), ref("hd")), 0, "has the factor hd = -16"},
		{bin("*", lit(int64(2)), bin("*", ref("kv"), ref("zero"))), 0, "dimension 2 * (kv * zero) has the factor zero = 0"},
		{ref("zero"), 0, "dimension zero is 0; a dimension must be positive (zero = 0)"},
		{lit(int64(-1)), 0, "dimension -1 is -1; a dimension must be positive"},
		{bin("-", ref("pad"), ref("vocab")), 0, "dimension pad - vocab is -100; a dimension must be positive (pad = 0, vocab = 100)"},
		{bin("*", ref("big"), lit(int64(4))), 0, "big * 4 = 4611686018427387904 * 4 overflows a 64-bit integer"},
		{bin("/", ref("hidden"), lit(int64(7))), 0, "hidden / 7 = 64 / 7 does not divide exactly"},
		{bin("*", ref("absent"), lit(int64(2))), 0, "absent is not set; it must be an integer"},
	} {
		n, err := EvalDim(tc.e, env)
		if tc.wantErr == "" {
			if err != nil || n != tc.want {
				t.Errorf("%s: %d, %v; want %d", Format(tc.e), n, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %d, %v; want error %q", Format(tc.e), n, err, tc.wantErr)
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

func TestValuesEqual(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		a, b any
		want bool
	}{
		{int64(4096), 4096.0, true},
		{4096.0, int64(4096), true},
		{int64(7), 7.5, false},
		{int64(1<<53 + 1), float64(1 << 53), false}, // float64(2^53+1) rounds to 2^53
		{float64(1 << 53), int64(1<<53 + 1), false},
		{int64(math.MaxInt64), float64(1 << 63), false}, // 2^63 is outside int64
		{nan, nan, true},
		{nan, 1.0, false},
		{[]any{nan, int64(1)}, []any{nan, 1.0}, true},
		{map[string]any{"a": int64(1)}, map[string]any{"a": 1.0}, true},
		{map[string]any{"a": int64(1)}, map[string]any{"b": int64(1)}, false},
		{"1", int64(1), false},
		{nil, nil, true},
		{nil, false, false},
		{int(3), int64(3), true},
		{float32(0.5), 0.5, true},
	} {
		if got := ValuesEqual(tc.a, tc.b); got != tc.want {
			t.Errorf("ValuesEqual(%#v, %#v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
