package kb

import (
	"bytes"

	"github.com/blevesearch/bleve/v2/analysis"
)

// idStemFilter is a light, rule-based Indonesian stemmer in the spirit of
// Tala (2003): it strips inflectional particles (-kah, -lah, -pun),
// possessive pronouns (-ku, -mu, -nya), the common derivational prefixes
// (meN-, peN-, di-, ter-, ke-, ber-, per-) and suffixes (-kan, -an, -i), and
// never shortens a word to fewer than two syllables. Bleve ships Indonesian
// stop words but no stemmer. Being applied identically to articles and
// questions, it only needs to be consistent, not linguistically perfect.
type idStemFilter struct{}

func (idStemFilter) Filter(in analysis.TokenStream) analysis.TokenStream {
	for _, tok := range in {
		tok.Term = stemID(tok.Term)
	}
	return in
}

func syllables(w []byte) int {
	n := 0
	for _, c := range w {
		switch c {
		case 'a', 'e', 'i', 'o', 'u':
			n++
		}
	}
	return n
}

func isVowel(c byte) bool {
	switch c {
	case 'a', 'e', 'i', 'o', 'u':
		return true
	}
	return false
}

// trimSuffixIf removes the first suffix of list that w ends with, provided
// that enough of the word remains.
func trimSuffixIf(w []byte, list ...string) ([]byte, bool) {
	for _, s := range list {
		if bytes.HasSuffix(w, []byte(s)) {
			rest := w[:len(w)-len(s)]
			if syllables(rest) >= 2 && len(rest) >= 3 {
				return rest, true
			}
			return w, false
		}
	}
	return w, false
}

func stemID(w []byte) []byte {
	if syllables(w) <= 2 || !isASCII(w) {
		return w
	}
	w, _ = trimSuffixIf(w, "kah", "lah", "pun")
	w, _ = trimSuffixIf(w, "nya", "ku", "mu")

	// First-order prefixes, with the nasal assimilation of meN-/peN-.
	first := false
	for _, p := range []string{"meng", "meny", "mem", "men", "me", "peng", "peny", "pem", "pen", "di", "ter", "ke"} {
		if !bytes.HasPrefix(w, []byte(p)) || len(w) <= len(p)+2 {
			continue
		}
		rest := append([]byte(nil), w[len(p):]...)
		switch p {
		case "meny", "peny":
			rest = append([]byte{'s'}, rest...)
		case "mem", "pem":
			if isVowel(rest[0]) {
				rest = append([]byte{'p'}, rest...)
			}
		case "men", "pen":
			if isVowel(rest[0]) {
				rest = append([]byte{'t'}, rest...)
			}
		}
		if syllables(rest) >= 2 {
			w, first = rest, true
		}
		break
	}
	if !first {
		for _, p := range []string{"ber", "bel", "per"} {
			if bytes.HasPrefix(w, []byte(p)) && syllables(w[len(p):]) >= 2 {
				w = w[len(p):]
				break
			}
		}
	}
	w, _ = trimSuffixIf(w, "kan", "an", "i")
	return w
}
