package ir

import "math"

// Checked int64 arithmetic: ok is false where Go's operators would wrap.
// Shapes and sizes are computed from config values a user (or an attacker)
// controls, and a wrapped product can come out positive and plausible.

// AddInt returns a + b.
func AddInt(a, b int64) (int64, bool) {
	c := a + b
	// Overflow iff a and b have the same sign and c has the other one.
	return c, (a^c)&(b^c) >= 0
}

// SubInt returns a - b.
func SubInt(a, b int64) (int64, bool) {
	c := a - b
	// Overflow iff a and b differ in sign and c's sign differs from a's.
	return c, (a^b)&(a^c) >= 0
}

// MulInt returns a * b.
func MulInt(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	c := a * b
	if (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return c, false
	}
	return c, c/b == a
}

// NegInt returns -a.
func NegInt(a int64) (int64, bool) { return -a, a != math.MinInt64 }

// QuoInt returns a / b (truncated) for b != 0; MinInt64 / -1 overflows.
func QuoInt(a, b int64) (int64, bool) {
	if a == math.MinInt64 && b == -1 {
		return a, false
	}
	return a / b, true
}

// maxExactFloat is the largest magnitude below which every integer has an
// exact float64: 2^53. An int64 beyond it cannot meet a float without
// rounding, and a float beyond it is not known to be the integer it rounds to.
const maxExactFloat = 1 << 53

// IntOfFloat returns f as an integer when it is integral and exact (|f| <=
// 2^53): JSON writers emit 4096.0 for 4096, but 1e300 is no dimension.
func IntOfFloat(f float64) (int64, bool) {
	if f != math.Trunc(f) || math.Abs(f) > maxExactFloat {
		return 0, false
	}
	return int64(f), true
}
