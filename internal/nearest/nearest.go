// Package nearest finds the near misses behind "did you mean" messages: a mistyped plan key or
// metric name gets the name it was probably meant to be.
package nearest

import "strings"

// Bounds: names are short, and a suggestion further than editsMax edits away misleads more
// than it helps.
const (
	nameBytesMax = 64
	editsMax     = 2
)

// Name returns the candidate nearest to name by Levenshtein distance, ignoring case, when it is
// at most two edits away; otherwise "". Ties go to the earlier candidate.
func Name(name string, candidates []string) string {
	best, bestDist := "", editsMax+1
	lower := strings.ToLower(name)
	for _, c := range candidates {
		if d := distance(lower, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is Levenshtein's distance, bounded: names over nameBytesMax are never near.
func distance(a, b string) int {
	if len(a) > nameBytesMax || len(b) > nameBytesMax {
		return nameBytesMax
	}
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
