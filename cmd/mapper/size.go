package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mapper-dev/mapper/engine"
)

// sizeFlag is a byte count written as 1073741824, 512MiB, 4GiB, 2G or
// 100MB. Zero stands for "not given" (the default); a value given must be
// at least min.
type sizeFlag struct {
	v   *int64
	min int64
	why string // why min, for the message; empty when min is 1
}

// minMemory is the smallest --memory accepted: one chunk's working memory
// at most (engine.ChunkTarget). Below it, conversions split into chunks
// smaller than they are tuned for and the fixed costs of each (its write
// buffer) take a large share of the budget; a value that small is a
// forgotten unit (--memory 512 for 512MiB) more often than a wish.
const minMemory = engine.ChunkTarget

func newSize(v *int64, def int64) *sizeFlag {
	*v = def
	return &sizeFlag{v: v, min: 1}
}

func (s *sizeFlag) String() string { return formatSize(*s.v) }

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n int64) string {
	if n == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.n == 0 {
			return fmt.Sprintf("%d%s", n/u.n, u.name)
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s *sizeFlag) Type() string { return "size" }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	if n < s.min {
		if s.why != "" {
			return fmt.Errorf("below the minimum of %s (%s)", formatSize(s.min), s.why)
		}
		return fmt.Errorf("want at least 1 byte")
	}
	*s.v = n
	return nil
}

var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
}

// parseSize reads a byte count. NaN, infinities, negative numbers and
// counts past int64 are refused: each once turned into the default budget
// or a wrapped-around one.
func parseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			mult, t = u.n, strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	overflow := errors.Is(err, strconv.ErrRange) && f != 0 // 1e400; 1e-400 reads as 0
	if (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsNaN(f) || f < 0 || (math.IsInf(f, 0) && !overflow) {
		return 0, fmt.Errorf("not a size (want e.g. 512MiB, 4GiB or a byte count)")
	}
	// float64(math.MaxInt64) rounds up to 2^63, so >= catches every overflow.
	if overflow || f*float64(mult) >= math.MaxInt64 {
		return 0, fmt.Errorf("too large for a byte count")
	}
	return int64(f * float64(mult)), nil
}
