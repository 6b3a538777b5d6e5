package feed

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// plainText makes one line of plain text of a feed's title or name: HTML tags that feeds put in
// titles dropped (a "<" that does not start an HTML tag, as in "List<T>", is kept), entities
// decoded, white space collapsed, and the result cut to at most max runes.
func plainText(s string, max int) string {
	if strings.ContainsRune(s, '<') {
		s = stripTags(s)
	} else {
		s = html.UnescapeString(s)
	}
	s = strings.Join(strings.FieldsFunc(s, isSpaceOrControl), " ")
	return truncateRunes(s, max)
}

// isSpaceOrControl reports white space (including no-break spaces) and control characters.
func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u200b' || r == '\ufeff'
}

// stripTags returns the text of an HTML fragment: tags of known HTML elements are dropped (with
// the contents of script and style), anything else that looks like a tag is kept as written.
func stripTags(s string) string {
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(s))
	skipping := atom.Atom(0) // inside this raw-text element, whose text is dropped
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skipping == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			raw := string(z.Raw())
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch {
			case a == 0:
				if skipping == 0 {
					b.WriteString(raw)
				}
			case a == atom.Script || a == atom.Style || a == atom.Template || a == atom.Noscript:
				if tt == html.StartTagToken {
					skipping = a
				} else if tt == html.EndTagToken && skipping == a {
					skipping = 0
				}
			case skipping == 0 && isBreakingTag(a):
				b.WriteByte(' ')
			}
		}
	}
}

// isBreakingTag reports tags that separate words.
func isBreakingTag(a atom.Atom) bool {
	switch a {
	case atom.Br, atom.P, atom.Div, atom.Li, atom.Ul, atom.Ol, atom.Tr, atom.Td, atom.Th,
		atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote, atom.Hr:
		return true
	}
	return false
}

// truncateRunes cuts s to at most max runes, at a word boundary when there is one in the last
// third, ending it with "…".
func truncateRunes(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	runes := []rune(s)
	cut := max - 1 // room for the ellipsis
	for i := cut; i > cut*2/3; i-- {
		if unicode.IsSpace(runes[i]) {
			cut = i
			break
		}
	}
	return strings.TrimRightFunc(string(runes[:cut]), unicode.IsSpace) + "…"
}
