package activities

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/flexcord/flexcord/internal/transcript"
)

// BotPhaseAuthor is the author of the message that gives the agent the conversation the member
// had with the virtual agent before the hand-over.
const BotPhaseAuthor = "flexcord-bot"

// botPhaseChars bounds that message: Conversations takes up to 32 KB in a chat message body.
const botPhaseChars = 30_000

// botPhaseKey is the delivery key of the bot-stage message of a hand-over.
func botPhaseKey(caseID string, handover int) string {
	return fmt.Sprintf("botphase-%s-%d", caseID, handover)
}

var (
	markdownEmphasis = regexp.MustCompile(`(\*\*|__|~~|\*|_)([^\s*_~](?:.*?[^\s*_~])?)(\*\*|__|~~|\*|_)`)
	markdownLink     = regexp.MustCompile(`\[([^\]]+)\]\((https?://[^)\s]+)\)`)
	markdownHeading  = regexp.MustCompile(`(?m)^#{1,6}\s+`)
)

// plainText strips the Markdown the bot's answers carry (emphasis, headings, links written as
// [title](url) become "title (url)").
func plainText(s string) string {
	s = markdownLink.ReplaceAllString(s, "$1 ($2)")
	s = markdownHeading.ReplaceAllString(s, "")
	for range 3 { // nested emphasis
		s = markdownEmphasis.ReplaceAllStringFunc(s, func(m string) string {
			g := markdownEmphasis.FindStringSubmatch(m)
			if g[1] != g[3] {
				return m
			}
			return g[2]
		})
	}
	return s
}

// botPhaseText renders the bot stage of a conversation for the agent, in plain text, oldest
// first; past botPhaseChars the oldest lines are left out and the message says so.
func botPhaseText(member string, entries []transcript.Entry) string {
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		who := e.Name
		switch e.Kind {
		case transcript.KindBot:
			who = "Virtual agent"
		case transcript.KindSystem:
			who = "System"
		case transcript.KindMember:
			who = member
		}
		if who == "" {
			who = e.Kind
		}
		text := plainText(e.Text)
		for _, a := range e.Attachments {
			note := ""
			if a.Note != "" {
				note = ", " + a.Note
			}
			text = strings.TrimSpace(text + "\n[attachment: " + a.Name + note + "]")
		}
		lines = append(lines, fmt.Sprintf("[%s] %s: %s", e.At.UTC().Format("15:04"), who, text))
	}
	head := fmt.Sprintf("Conversation with the virtual agent before the hand-over (%d lines):", len(lines))
	size, from := len(head), len(lines)
	for from > 0 && size+len(lines[from-1])+1 <= botPhaseChars {
		from--
		size += len(lines[from]) + 1
	}
	if from > 0 {
		head = fmt.Sprintf("Conversation with the virtual agent before the hand-over (the last %d of %d lines):", len(lines)-from, len(lines))
	}
	return head + "\n" + strings.Join(lines[from:], "\n")
}
