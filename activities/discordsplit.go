package activities

import (
	"hash/fnv"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Discord limits the activities respect.
const (
	maxContentLen    = 2000 // message content
	maxNonceLen      = 25   // nonce, as a string
	maxEmbeds        = 10   // embeds per message
	maxEmbedTitle    = 256
	maxEmbedDesc     = 4096
	maxEmbedFooter   = 2048
	maxEmbedTotal    = 6000 // all text of all embeds of one message
	maxButtonsPerRow = 5
	maxRows          = 5
	maxButtonLabel   = 80
	maxCustomIDLen   = 100
	maxEmbedURLLen   = 2048
	// minSplitFraction: a line or word boundary in the last 1/minSplitFraction of a chunk is
	// preferred over an earlier one, so that chunks stay long.
	minSplitFraction = 2
)

// textLen is the length of s as Discord counts it at most: in UTF-16 code units, which is never
// less than the number of code points. Staying within a limit in this unit stays within it in
// either.
func textLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// prefixWithin returns the byte length of the longest prefix of s whose textLen is at most limit,
// ending on a rune boundary.
func prefixWithin(s string, limit int) int {
	n := 0
	for i, r := range s {
		w := utf16.RuneLen(r)
		if w < 0 {
			w = 1 // invalid runes are sent as U+FFFD
		}
		if n+w > limit {
			return i
		}
		n += w
	}
	return len(s)
}

// splitContent splits text into chunks of at most limit characters. It cuts at the last line
// break of a chunk, else at its last space, else (one very long word) between two runes; the
// break character itself is dropped. Blank chunks are left out.
func splitContent(text string, limit int) []string {
	var chunks []string
	add := func(c string) {
		if strings.TrimSpace(c) != "" {
			chunks = append(chunks, c)
		}
	}
	for textLen(text) > limit {
		end := prefixWithin(text, limit)
		head := text[:end]
		cut, skip := boundary(head, limit)
		if cut <= 0 {
			cut, skip = end, 0
		}
		add(text[:cut])
		text = text[cut+skip:]
	}
	add(text)
	return chunks
}

// boundary finds where to cut head, the longest prefix that fits: the byte index of the cut and
// the byte length of the separator there. A line break in the second half of the chunk wins, then
// a space in the second half, then a line break or a space anywhere. It returns 0 when head has
// no boundary at all.
func boundary(head string, limit int) (cut, skip int) {
	minCut := prefixWithin(head, limit/minSplitFraction)
	lastLine := strings.LastIndexByte(head, '\n')
	lastSpace := strings.LastIndexFunc(head, unicode.IsSpace)
	spaceLen := 0
	if lastSpace >= 0 {
		_, spaceLen = utf8.DecodeRuneInString(head[lastSpace:])
	}
	switch {
	case lastLine >= minCut && lastLine > 0:
		return lastLine, 1
	case lastSpace >= minCut && lastSpace > 0:
		return lastSpace, spaceLen
	case lastLine > 0:
		return lastLine, 1
	case lastSpace > 0:
		return lastSpace, spaceLen
	}
	return 0, 0
}

// chunkNonce is the nonce of chunk i of a message split into n chunks: the delivery's nonce for a
// single message, nonce.i for chunks, shortened with a hash when that would exceed Discord's
// 25 characters. Equal inputs give equal nonces, so a retried delivery resends the same ones.
func chunkNonce(nonce string, i, n int) string {
	if nonce == "" {
		return ""
	}
	suffix := ""
	if n > 1 {
		suffix = "." + strconv.Itoa(i)
	}
	if len(nonce)+len(suffix) <= maxNonceLen {
		return nonce + suffix
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(nonce))
	return "h" + strconv.FormatUint(h.Sum64(), 36) + suffix
}

// truncateText shortens s to at most limit characters (textLen), ending with an ellipsis when cut.
func truncateText(s string, limit int) string {
	if textLen(s) <= limit {
		return s
	}
	return s[:prefixWithin(s, limit-1)] + "…"
}
