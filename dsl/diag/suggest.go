package diag

import (
	"fmt"
	"strings"
)

// Suggest returns the candidate closest to name by edit distance, or "" when
// none is close enough to be a likely typo (at most a third of the name's
// length, and at least 1, edits away). Ties go to the earlier candidate.
func Suggest(name string, candidates []string) string {
	best, bestD := "", -1
	limit := max(1, len(name)/3)
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := Distance(name, c)
		if d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// DidYouMean returns a hint "did you mean X?" for the closest candidate, or "".
func DidYouMean(name string, candidates []string) string {
	if s := Suggest(name, candidates); s != "" {
		return fmt.Sprintf("did you mean %s?", s)
	}
	return ""
}

// DidYouMeanOr returns DidYouMean's hint, or when no candidate is close,
// the whole list: "<what>: a, b, c". For closed sets (ops, dtypes,
// formats), where listing them all is the next best help.
func DidYouMeanOr(name string, candidates []string, what string) string {
	if h := DidYouMean(name, candidates); h != "" {
		return h
	}
	return what + ": " + strings.Join(candidates, ", ")
}

// Distance is the Damerau-Levenshtein (optimal string alignment) distance
// between a and b, counted in bytes: a swap of two adjacent letters costs 1.
func Distance(a, b string) int {
	if a == b {
		return 0
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
