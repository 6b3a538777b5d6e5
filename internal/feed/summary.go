package feed

import (
	"net/url"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/base"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/commonmark"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/strikethrough"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxMarkdownBytes bounds the Markdown that is post-processed and cut. A summary keeps at most
// MaxSummaryRunes runes (at most four bytes each); what lies far beyond can never be kept.
const maxMarkdownBytes = 128 << 10

// markdown is the HTML → Markdown converter, built once: it is safe for concurrent use.
var markdown = sync.OnceValue(func() *converter.Converter {
	return converter.NewConverter(converter.WithPlugins(
		base.NewBasePlugin(),
		commonmark.NewCommonmarkPlugin(
			commonmark.WithListEndComment(false),
			commonmark.WithLinkEmptyContentBehavior(commonmark.LinkBehaviorSkip),
		),
		strikethrough.NewStrikethroughPlugin(),
	))
})

// droppedElements are removed from the content before conversion: media (the image goes to
// Item.ImageURL), embedded documents, forms, and anything that runs code.
var droppedElements = map[atom.Atom]bool{
	atom.Img: true, atom.Picture: true, atom.Svg: true, atom.Video: true, atom.Audio: true,
	atom.Source: true, atom.Track: true, atom.Iframe: true, atom.Object: true, atom.Embed: true,
	atom.Canvas: true, atom.Map: true, atom.Form: true, atom.Button: true, atom.Input: true,
	atom.Select: true, atom.Textarea: true, atom.Script: true, atom.Style: true,
	atom.Noscript: true, atom.Template: true, atom.Head: true, atom.Math: true,
}

// htmlSummary converts the HTML of an item's description or content into Markdown for a Discord
// embed, with links made absolute against base, and returns it with the first image the HTML
// shows (absolute http(s), tracking pixels left out). The Markdown is not cut yet.
func htmlSummary(s string, base *url.URL) (md, image string) {
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return textSummary(plainText(s, 0)), ""
	}
	image = firstImage(doc, base)
	prune(doc)
	var opts []converter.ConvertOptionFunc
	if base != nil {
		opts = append(opts, converter.WithDomain(base.String()))
	}
	out, err := markdown().ConvertNode(doc, opts...)
	if err != nil {
		return textSummary(plainText(s, 0)), image
	}
	md = string(out)
	if len(md) > maxMarkdownBytes {
		md = md[:runeStart(md, maxMarkdownBytes)]
	}
	md = decodeEntitiesOutsideCode(md)
	md = rewriteLinks(md, func(dest string) bool { return isWebOrMail(dest) })
	return tidy(md), image
}

// textSummary tidies a plain-text description (JSON Feed's summary and content_text).
func textSummary(s string) string {
	if len(s) > maxMarkdownBytes {
		s = s[:runeStart(s, maxMarkdownBytes)]
	}
	return tidy(s)
}

// tidy normalizes line ends, drops trailing blanks, and collapses runs of blank lines into one.
func tidy(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	out := make([]string, 0, len(lines))
	blank := false
	for _, l := range lines {
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		if l == "" {
			if !blank && len(out) > 0 {
				out = append(out, "")
			}
			blank = true
			continue
		}
		blank = false
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// firstImage returns the first image of the document as an absolute http(s) URL.
func firstImage(n *html.Node, base *url.URL) string {
	if n.Type == html.ElementNode && n.DataAtom == atom.Img && !isTrackingPixel(n) {
		for _, key := range []string{"src", "data-src"} {
			if u := absoluteURL(attr(n, key), base); u != "" {
				return u
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if u := firstImage(c, base); u != "" {
			return u
		}
	}
	return ""
}

// isTrackingPixel reports an image of one (or zero) pixel.
func isTrackingPixel(n *html.Node) bool {
	w, h := strings.TrimSpace(attr(n, "width")), strings.TrimSpace(attr(n, "height"))
	return w == "0" || w == "1" || h == "0" || h == "1"
}

// attr returns an attribute of an element.
func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && strings.EqualFold(a.Key, key) {
			return a.Val
		}
	}
	return ""
}

// prune shapes the document for Discord before conversion: it removes dropped elements and
// links left without text once their images are gone, turns headings below h3 (which Discord
// does not render) into h3, and tables (which it does not render either) into one paragraph per
// row with the cells separated by " · ".
func prune(n *html.Node) {
	for c := n.FirstChild; c != nil; {
		next := c.NextSibling
		if c.Type != html.ElementNode {
			c = next
			continue
		}
		if droppedElements[c.DataAtom] {
			n.RemoveChild(c)
			c = next
			continue
		}
		prune(c)
		switch c.DataAtom {
		case atom.A:
			if strings.TrimSpace(textOf(c)) == "" {
				n.RemoveChild(c)
			}
		case atom.H4, atom.H5, atom.H6:
			rename(c, atom.H3)
		case atom.Table, atom.Thead, atom.Tbody, atom.Tfoot, atom.Caption:
			rename(c, atom.Div)
		case atom.Tr:
			rename(c, atom.P)
		case atom.Td, atom.Th:
			rename(c, atom.Span)
			if cell := nextElement(c); cell != nil && (cell.DataAtom == atom.Td || cell.DataAtom == atom.Th) {
				n.InsertBefore(&html.Node{Type: html.TextNode, Data: " · "}, c.NextSibling)
			}
		}
		c = next
	}
}

// nextElement returns the next sibling of n that is an element.
func nextElement(n *html.Node) *html.Node {
	for c := n.NextSibling; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode {
			return c
		}
	}
	return nil
}

// rename turns an element into another one, keeping its attributes and children.
func rename(n *html.Node, a atom.Atom) {
	n.DataAtom, n.Data = a, a.String()
}

// textOf returns the text inside a node.
func textOf(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(textOf(c))
	}
	return b.String()
}

// isWebOrMail reports a link destination that Discord can open: http(s) or mailto.
func isWebOrMail(dest string) bool {
	d := strings.ToLower(strings.TrimPrefix(dest, "<"))
	return strings.HasPrefix(d, "https://") || strings.HasPrefix(d, "http://") || strings.HasPrefix(d, "mailto:")
}

// runeStart returns the largest rune boundary of s at or before i.
func runeStart(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// spanKind is the kind of a region of Markdown that must not be cut or rewritten piecemeal.
type spanKind int

const (
	spanEscape spanKind = iota // a backslash and the character it escapes
	spanCode                   // an inline code span or a fenced code block
	spanLink                   // [text](destination), or an image ![alt](src)
)

// span is a region [start, end) of Markdown. For links, text and dest locate the link text and
// destination (with any title).
type span struct {
	kind               spanKind
	start, end         int
	textStart, textEnd int
	destStart, destEnd int
}

// Look-ahead bounds of the Markdown scanner: past them, an opening is taken as plain text.
const (
	maxLinkScan       = 4096
	maxInlineCodeScan = 2048
)

// markdownSpans finds the escapes, code and links of Markdown, in order, not overlapping.
func markdownSpans(s string) []span {
	var spans []span
	lineStart := true
	for i := 0; i < len(s); {
		c := s[i]
		if lineStart {
			if end, ok := fencedBlock(s, i); ok {
				spans = append(spans, span{kind: spanCode, start: i, end: end})
				i = end
				continue
			}
		}
		lineStart = c == '\n'
		switch c {
		case '\\':
			if i+1 < len(s) && s[i+1] != '\n' {
				_, size := utf8.DecodeRuneInString(s[i+1:])
				spans = append(spans, span{kind: spanEscape, start: i, end: i + 1 + size})
				i += 1 + size
				continue
			}
		case '`':
			if end, ok := inlineCode(s, i); ok {
				spans = append(spans, span{kind: spanCode, start: i, end: end})
				i = end
				continue
			}
			for i < len(s) && s[i] == '`' { // an unmatched run is plain text
				i++
			}
			continue
		case '[', '!':
			open := i
			if c == '!' {
				if i+1 >= len(s) || s[i+1] != '[' {
					break
				}
				open = i + 1
			}
			if sp, ok := link(s, i, open); ok {
				spans = append(spans, sp)
				i = sp.end
				continue
			}
		}
		i++
	}
	return spans
}

// fencedBlock reports whether a code fence opens at i (the start of a line) and returns the end
// of the block: past its closing fence line, or the end of s when it is never closed.
func fencedBlock(s string, i int) (int, bool) {
	j := i
	for j < len(s) && j-i < 3 && s[j] == ' ' {
		j++
	}
	if j >= len(s) || (s[j] != '`' && s[j] != '~') {
		return 0, false
	}
	ch, n := s[j], 0
	for j+n < len(s) && s[j+n] == ch {
		n++
	}
	if n < 3 {
		return 0, false
	}
	fence := strings.Repeat(string(ch), n)
	nl := strings.IndexByte(s[j:], '\n')
	if nl < 0 {
		return len(s), true
	}
	for pos := j + nl + 1; pos < len(s); {
		lineEnd := strings.IndexByte(s[pos:], '\n')
		line := s[pos:]
		if lineEnd >= 0 {
			line = s[pos : pos+lineEnd]
		}
		if t := strings.TrimSpace(line); strings.HasPrefix(t, fence) && strings.Trim(t, string(ch)) == "" {
			if lineEnd < 0 {
				return len(s), true
			}
			return pos + lineEnd + 1, true
		}
		if lineEnd < 0 {
			break
		}
		pos += lineEnd + 1
	}
	return len(s), true
}

// inlineCode matches a backtick run at i with the next run of the same length, within a
// paragraph, and returns the end of the code span.
func inlineCode(s string, i int) (int, bool) {
	n := 0
	for i+n < len(s) && s[i+n] == '`' {
		n++
	}
	limit := min(len(s), i+n+maxInlineCodeScan)
	for j := i + n; j < limit; {
		switch {
		case s[j] == '\n' && j+1 < len(s) && s[j+1] == '\n':
			return 0, false
		case s[j] == '`':
			m := 0
			for j+m < len(s) && s[j+m] == '`' {
				m++
			}
			if m == n {
				return j + m, true
			}
			j += m
		default:
			j++
		}
	}
	return 0, false
}

// link matches a Markdown link (or image) whose "[" is at open and that starts at start.
func link(s string, start, open int) (span, bool) {
	limit := min(len(s), open+maxLinkScan)
	depth := 0
	closeText := -1
	for j := open; j < limit && closeText < 0; j++ {
		switch s[j] {
		case '\\':
			j++
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				closeText = j
			}
		}
	}
	if closeText < 0 || closeText+1 >= len(s) || s[closeText+1] != '(' {
		return span{}, false
	}
	destStart := closeText + 2
	limit = min(len(s), destStart+maxLinkScan)
	depth = 1
	angle := destStart < len(s) && s[destStart] == '<'
	for j := destStart; j < limit; j++ {
		switch s[j] {
		case '\\':
			j++
		case '>':
			angle = false
		case '\n':
			if j+1 < len(s) && s[j+1] == '\n' {
				return span{}, false
			}
		case '(':
			if !angle {
				depth++
			}
		case ')':
			if angle {
				continue
			}
			depth--
			if depth == 0 {
				return span{kind: spanLink, start: start, end: j + 1,
					textStart: open + 1, textEnd: closeText, destStart: destStart, destEnd: j}, true
			}
		}
	}
	return span{}, false
}

// decodeEntitiesOutsideCode decodes the HTML entities that double-escaped feeds leave in the text
// (e.g. "&amp;#8217;" arriving as "&#8217;"), leaving code as written.
func decodeEntitiesOutsideCode(s string) string {
	if !strings.ContainsRune(s, '&') {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range markdownSpans(s) {
		if sp.kind != spanCode {
			continue
		}
		b.WriteString(html.UnescapeString(s[last:sp.start]))
		b.WriteString(s[sp.start:sp.end])
		last = sp.end
	}
	b.WriteString(html.UnescapeString(s[last:]))
	return b.String()
}

// rewriteLinks keeps the links whose destination keep accepts and replaces every other link by
// its text; images are dropped.
func rewriteLinks(s string, keep func(dest string) bool) string {
	var b strings.Builder
	last := 0
	for _, sp := range markdownSpans(s) {
		if sp.kind != spanLink {
			continue
		}
		image := s[sp.start] == '!'
		if !image && keep(strings.TrimSpace(s[sp.destStart:sp.destEnd])) {
			continue
		}
		b.WriteString(s[last:sp.start])
		if !image {
			b.WriteString(s[sp.textStart:sp.textEnd])
		}
		last = sp.end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// cutSummary cuts Markdown to at most max runes. Over max, it ends at the last sentence end
// that leaves room for " …", provided one lies in the last quarter; else at the last word
// boundary, followed by "…". The cut never falls inside a Markdown link, a code span or block,
// an escape, an entity or a UTF-8 sequence.
func cutSummary(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	if out, ok := cutMarkdown(s, max); ok {
		return out
	}
	// A link or code block covers the whole allowance: keep the text of the links and try again.
	s = rewriteLinks(s, func(string) bool { return false })
	if out, ok := cutMarkdown(s, max); ok {
		return out
	}
	return truncateRunes(s, max)
}

// cutMarkdown does the work of cutSummary; ok is false when no cut point fits.
func cutMarkdown(s string, max int) (string, bool) {
	sentenceLimit := byteOffset(s, max-2) // room for " …"
	wordLimit := byteOffset(s, max-1)     // room for "…"
	floor := byteOffset(s, max*3/4)       // a sentence end must keep three quarters
	blocked := make([]bool, wordLimit+1)  // positions inside a span
	for _, sp := range markdownSpans(s[:min(len(s), wordLimit+maxLinkScan*2)]) {
		if sp.start >= wordLimit {
			break
		}
		for p := sp.start + 1; p < sp.end && p <= wordLimit; p++ {
			blocked[p] = true
		}
	}
	canCut := func(p int) bool {
		return p > 0 && !blocked[p] && utf8.RuneStart(byteAt(s, p)) && !insideEntity(s, p)
	}

	for p := sentenceLimit; p >= floor && p > 0; p-- {
		if canCut(p) && sentenceEndsAt(s, p) {
			return strings.TrimRightFunc(s[:p], unicode.IsSpace) + " …", true
		}
	}
	for p := wordLimit; p > 0; p-- {
		if canCut(p) && isSpaceByte(byteAt(s, p)) && !isSpaceByte(s[p-1]) {
			suffix := "…"
			if p <= sentenceLimit && sentenceEndsAt(s, p) {
				suffix = " …"
			}
			return strings.TrimRightFunc(s[:p], unicode.IsSpace) + suffix, true
		}
	}
	for p := wordLimit; p > 0; p-- {
		if canCut(p) {
			return strings.TrimRightFunc(s[:p], unicode.IsSpace) + "…", true
		}
	}
	return "", false
}

// byteOffset returns the byte offset of rune n of s (len(s) when s is shorter).
func byteOffset(s string, n int) int {
	if n <= 0 {
		return 0
	}
	i := 0
	for off := range s {
		if i == n {
			return off
		}
		i++
	}
	return len(s)
}

// byteAt returns s[p], or a newline past the end.
func byteAt(s string, p int) byte {
	if p >= len(s) {
		return '\n'
	}
	return s[p]
}

// isSpaceByte reports ASCII white space.
func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t'
}

// sentenceEndsAt reports whether a sentence (or a paragraph) ends right before p: after ".", "!"
// or "?" (and any closing quotes, brackets or emphasis) followed by white space, after a
// full-width terminator such as "。", or before a blank line.
func sentenceEndsAt(s string, p int) bool {
	if p <= 0 || p > len(s) {
		return false
	}
	if strings.HasPrefix(s[p:], "\n\n") && !isSpaceByte(s[p-1]) {
		return true
	}
	switch r, _ := utf8.DecodeLastRuneInString(s[:p]); r {
	case '。', '！', '？', '．', '｡':
		return true
	}
	if !isSpaceByte(byteAt(s, p)) {
		return false
	}
	q := p
	for q > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:q])
		if !strings.ContainsRune("\"')]’”»*_~", r) {
			break
		}
		q -= size
	}
	r, size := utf8.DecodeLastRuneInString(s[:q])
	if r != '.' && r != '!' && r != '?' && r != '…' {
		return false
	}
	if r == '.' {
		// "1." at the start of a line is a list marker, not a sentence.
		lineStart := strings.LastIndexByte(s[:q-size], '\n') + 1
		if strings.TrimLeft(s[lineStart:q-size], "0123456789 ") == "" {
			return false
		}
	}
	return true
}

// insideEntity reports whether p falls between the "&" and ";" of something shaped like an
// HTML entity.
func insideEntity(s string, p int) bool {
	amp := -1
	for i := p - 1; i >= 0 && p-i <= 32; i-- {
		c := s[i]
		if c == '&' {
			amp = i
			break
		}
		if !isEntityByte(c) {
			return false
		}
	}
	if amp < 0 {
		return false
	}
	for i := p; i < len(s) && i-amp <= 33; i++ {
		if s[i] == ';' {
			return i > amp+1
		}
		if !isEntityByte(s[i]) {
			return false
		}
	}
	return false
}

// isEntityByte reports the bytes an entity name or number is made of.
func isEntityByte(c byte) bool {
	return c == '#' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
