package kb

import "unicode/utf8"

// correct returns the dictionary term closest to an unknown query term: the
// most frequent one at edit distance 1 (a typo such as "pasword"). Short
// terms and text without word separators (CJK bigrams) are left alone.
func (li *langIndex) correct(t string) (string, bool) {
	if li.cjk() || utf8.RuneCountInString(t) < 5 {
		return "", false
	}
	best, bestDF := "", 0
	for cand, id := range li.terms {
		if d := len(cand) - len(t); d < -1 || d > 1 {
			continue
		}
		if li.df[id] > bestDF && withinOneEdit(t, cand) || li.df[id] == bestDF && bestDF > 0 && cand < best && withinOneEdit(t, cand) {
			best, bestDF = cand, li.df[id]
		}
	}
	return best, best != ""
}

// withinOneEdit reports whether a and b differ by at most one insertion,
// deletion, substitution or transposition of adjacent bytes.
func withinOneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if i == len(a) {
		return true
	}
	if len(a) == len(b) {
		if a[i+1:] == b[i+1:] {
			return true // substitution
		}
		return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:] // transposition
	}
	return a[i:] == b[i+1:] // insertion into a
}
