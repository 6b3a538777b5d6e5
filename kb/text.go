package kb

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	mdImage    = regexp.MustCompile(`!\[([^\]]*)\]\([^)]*\)`)
	mdLink     = regexp.MustCompile(`\[([^\]]+)\]\([^)]*\)`)
	mdLinePfx  = regexp.MustCompile(`(?m)^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d+[.)][ \t]+)`)
	mdEmphasis = regexp.MustCompile(`\*\*|__|[*` + "`" + `]|~~`)
	mdRule     = regexp.MustCompile(`(?m)^[ \t]*(?:-{3,}|\*{3,}|_{3,})[ \t]*$`)
	spaces     = regexp.MustCompile(`[ \t]+`)
)

// plainText strips the Markdown syntax that would show up as noise in a
// search snippet (headings, list markers, emphasis, link targets).
func plainText(md string) string {
	s := mdImage.ReplaceAllString(md, "$1")
	s = mdLink.ReplaceAllString(s, "$1")
	s = mdRule.ReplaceAllString(s, "")
	s = mdLinePfx.ReplaceAllString(s, "")
	s = mdEmphasis.ReplaceAllString(s, "")
	return spaces.ReplaceAllString(s, " ")
}

// snippetRunes is the maximum length of a snippet, in characters.
const snippetRunes = 200

// snippet returns a short excerpt of text, an article body as plain text: the window of at most
// snippetRunes characters that holds the most (idf-weighted, distinct) query
// terms, trimmed to word boundaries, with "…" marking cuts. Without any
// matching term it is the beginning of the body.
func (li *langIndex) snippet(text string, terms []qterm) string {
	weight := make(map[string]float64, len(terms))
	for _, t := range terms {
		weight[t.text] = t.idf
	}
	type match struct {
		start, end int // byte offsets in text
		rstart     int // rune offset of start
		term       string
	}
	var ms []match
	pos, rpos := 0, 0
	for _, tok := range li.analyzer.Analyze([]byte(text)) {
		if _, ok := weight[string(tok.Term)]; !ok {
			continue
		}
		rpos += utf8.RuneCountInString(text[pos:tok.Start])
		pos = tok.Start
		ms = append(ms, match{tok.Start, tok.End, rpos, string(tok.Term)})
	}
	best, bestScore := -1, 0.0
	for i := range ms {
		seen := make(map[string]bool)
		score := 0.0
		for j := i; j < len(ms) && ms[j].rstart+runeLen(text[ms[j].start:ms[j].end]) <= ms[i].rstart+snippetRunes; j++ {
			if !seen[ms[j].term] {
				seen[ms[j].term] = true
				score += weight[ms[j].term]
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	start := 0
	if best >= 0 {
		start = windowStart(text, ms[best].start)
	}
	return excerpt(text, start, snippetRunes)
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// windowStart moves back from the first matched word to the start of its
// sentence or line when that is close, so that the snippet reads naturally.
func windowStart(text string, at int) int {
	const lookBack = 60 // characters
	i, n := at, 0
	for i > 0 && n < lookBack {
		r, size := utf8.DecodeLastRuneInString(text[:i])
		if r == '\n' || ((r == '.' || r == '!' || r == '?' || r == '。' || r == '！' || r == '？') && (i == at || isSpaceAt(text, i) || r >= 0x3000)) {
			return i
		}
		i -= size
		n++
	}
	if i == 0 {
		return 0
	}
	// Too far from a sentence start: start at a word boundary shortly
	// before the match.
	i, n = at, 0
	for i > 0 && n < 20 {
		r, size := utf8.DecodeLastRuneInString(text[:i])
		if unicode.IsSpace(r) {
			return i
		}
		i -= size
		n++
	}
	return at
}

func isSpaceAt(text string, i int) bool {
	if i >= len(text) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(text[i:])
	return unicode.IsSpace(r)
}

// excerpt returns at most max characters of text from byte offset start,
// whitespace collapsed, cut at a word boundary, with ellipses marking the
// cuts.
func excerpt(text string, start, max int) string {
	prefix := ""
	if strings.TrimSpace(text[:start]) != "" {
		prefix = "…"
	}
	rest := strings.Join(strings.Fields(text[start:]), " ")
	if runeLen(rest) <= max {
		return prefix + rest
	}
	cut, n := 0, 0
	for i := range rest {
		if n == max {
			cut = i
			break
		}
		n++
	}
	s := rest[:cut]
	// Prefer to cut at a space if one is reasonably close (not for CJK
	// text, which has none).
	if i := strings.LastIndexByte(s, ' '); i > len(s)*2/3 {
		s = s[:i]
	}
	return prefix + strings.TrimRightFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) && r != ')' }) + "…"
}
