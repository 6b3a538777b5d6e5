package workflows

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/i18n"
)

// This file holds what the member does: /helpme, DMs, buttons, and the bot stage's answers.

func (c *conversation) fresh(eventID string) bool {
	return c.s.Seen.Add(eventID)
}

func (c *conversation) onHelpRequested(ctx workflow.Context, sig HelpRequestedSignal) {
	if !c.fresh(sig.EventID) {
		return
	}
	c.learnMember(sig.Member, sig.Locale)
	if sig.GuildID != "" {
		c.s.GuildID, c.s.GuildName = sig.GuildID, orDefault(sig.GuildName, c.s.GuildName)
	}
	c.unblockMember(ctx)
	if c.s.Stage == StageResolved || c.s.Stage == StageClosed {
		c.restart(ctx)
	}
	c.s.LastActivity = workflow.Now(ctx)
	if sig.Interaction != nil {
		// The follow-up waits for the greeting: "check your DMs" once it is delivered, "I can't
		// DM you" if Discord refuses it.
		c.s.Interaction, c.s.InteractionAt, c.s.InteractionEventID = sig.Interaction, workflow.Now(ctx), sig.EventID
	}
	switch c.s.Stage {
	case StageBot:
		c.sayToMemberWithButtons(ctx, "greeting", "bot", activities.Message{
			Content: c.t("greeting", "name", c.s.Member.Name()),
			Buttons: []activities.Button{c.humanButton()},
		})
	case StageQueued, StageLive:
		c.sayToMember(ctx, "reminder", activities.Message{Content: c.t("helpme.already", "case", c.s.CaseID)})
	case StageNoAgent:
		c.offerNoAgentChoice(ctx)
	}
}

func (c *conversation) onUserMessage(ctx workflow.Context, sig UserMessageSignal) {
	if !c.fresh(sig.EventID) {
		return
	}
	c.learnMember(sig.Member, "")
	if c.v2() {
		if sig.ChannelID != "" {
			c.s.DMChannelID = sig.ChannelID
		}
		if snowflakeAfter(sig.EventID, c.s.LastMessageID) {
			c.s.LastMessageID = sig.EventID
		}
	}
	text := strings.TrimSpace(sig.Text)
	if !c.record() {
		for _, a := range sig.Attachments {
			text = strings.TrimSpace(text + "\n" + a)
		}
	} else if len(sig.Files) > 0 {
		c.onMemberFiles(ctx, sig, text)
		return
	}
	if text == "" {
		return
	}
	c.unblockMember(ctx)
	if c.v2() && c.s.Stage == StageResolved && !isNewQuestion(text, sig.WantsHuman) {
		// "Thanks!" after the wrap-up: the rating request stays where it is.
		c.transcript(ctx, "member", c.s.Member.Name(), text)
		return
	}
	if c.s.Stage == StageResolved || c.s.Stage == StageClosed {
		c.restart(ctx)
	}
	c.s.LastActivity = workflow.Now(ctx)
	c.transcript(ctx, "member", c.s.Member.Name(), text)
	c.memberSays(ctx, sig, text, activities.Message{Content: text})
}

// memberSays acts on what the member wrote (and attached, in msg), once it is in the
// transcript: the bot answers, or it goes to the agent.
func (c *conversation) memberSays(ctx workflow.Context, sig UserMessageSignal, text string, msg activities.Message) {
	switch c.s.Stage {
	case StageBot:
		c.keepBotFiles(msg.Files)
		if text == "" {
			return // files alone: kept for the agent, nothing to look up
		}
		if c.s.Subject == "" {
			c.s.Subject = truncate(text, 120)
		}
		if c.wantsHuman(sig, text) {
			c.requestTransfer(ctx)
			return
		}
		c.answerFromKnowledgeBase(ctx, text)
	case StageQueued, StageLive:
		if msg.Content == "" && len(msg.Files) == 0 {
			return
		}
		c.s.LastFlexActivity, c.s.LastChatAt = workflow.Now(ctx), workflow.Now(ctx)
		seq := c.enqueue(ctx, Destination{DestFlex, c.s.CaseID}, "member message", msg, nil)
		if d, ok := c.s.Ledger.Get(seq); ok && c.localDelivery() {
			d.WrittenAt = snowflakeTime(sig.EventID)
		}
	case StageNoAgent:
		// Kept in the transcript; it goes to the agent or to the case with the member's choice.
		if sig.WantsHuman {
			c.keepWaiting(ctx)
		}
	}
}

// wantsHuman is the "talk to a person" decision. It comes as data on the signal; conversations
// that started before that (legacy behaviour) read the phrase catalogs as they did then.
func (c *conversation) wantsHuman(sig UserMessageSignal, text string) bool {
	if c.v2() {
		return sig.WantsHuman
	}
	return i18n.WantsHuman(text)
}

// isNewQuestion tells a new question from a word of thanks after a chat was resolved: a question
// mark, a request for a person or a long message.
func isNewQuestion(text string, wantsHuman bool) bool {
	return wantsHuman || strings.ContainsAny(text, "?？") || utf8.RuneCountInString(text) > 80
}

// snowflakeAfter reports whether Discord snowflake a is newer than b ("" is oldest).
func snowflakeAfter(a, b string) bool {
	x, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return false
	}
	y, err := strconv.ParseUint(b, 10, 64)
	return err != nil || x > y
}

func (c *conversation) onUserAction(ctx workflow.Context, sig UserActionSignal) {
	if !c.fresh(sig.EventID) {
		return
	}
	c.learnMember(sig.Member, sig.Locale)
	switch sig.Action {
	case ActionTalkToHuman:
		switch c.s.Stage {
		case StageBot:
			c.s.LastActivity = workflow.Now(ctx)
			c.transcript(ctx, "member", c.s.Member.Name(), "[Talk to a human]")
			c.requestTransfer(ctx)
		case StageQueued, StageLive:
			c.sayToMember(ctx, "reminder", activities.Message{Content: c.t("transfer.already", "case", c.s.CaseID)})
		case StageNoAgent:
			c.keepWaiting(ctx)
		case StageResolved, StageClosed:
			if c.v2() {
				// An old "Talk to a human" button after the end starts a new conversation.
				c.restart(ctx)
				c.transcript(ctx, "member", c.s.Member.Name(), "[Talk to a human]")
				c.requestTransfer(ctx)
			}
		}
	case ActionSolved:
		if c.s.Stage == StageBot {
			c.transcript(ctx, "member", c.s.Member.Name(), "[This solved it]")
			c.sayToMember(ctx, "solved", activities.Message{Content: c.t("bot.solved_thanks")})
			c.close(ctx, ReasonSolved)
		}
	case ActionRate:
		c.onRating(ctx, sig)
	case ActionKeepWaiting:
		if c.s.Stage == StageNoAgent && c.ourCase(sig.CaseID) {
			c.keepWaiting(ctx)
		}
	case ActionLeaveMessage:
		if c.s.Stage == StageNoAgent && c.ourCase(sig.CaseID) {
			c.leaveMessage(ctx)
		}
	}
}

func (c *conversation) onRating(ctx workflow.Context, sig UserActionSignal) {
	if sig.Rating < 1 || sig.Rating > 5 {
		return
	}
	if c.v2() && sig.CaseID != "" && sig.CaseID != c.s.CaseID {
		// A rating for the case before the member's new question.
		p := c.s.PendingRating
		if p == nil || p.CaseID != sig.CaseID || workflow.Now(ctx).After(p.Until) {
			return
		}
		c.s.PendingRating = nil
		c.recordRating(ctx, sig.CaseID, sig.Rating, sig.EventID)
		return
	}
	if c.s.Stage != StageResolved {
		return
	}
	c.s.Rating = sig.Rating
	c.transcript(ctx, "member", c.s.Member.Name(), fmt.Sprintf("[Rated %d/5]", sig.Rating))
	c.recordRating(ctx, c.s.CaseID, sig.Rating, sig.EventID)
	c.close(ctx, ReasonRated)
}

func (c *conversation) recordRating(ctx workflow.Context, caseID string, rating int, eventID string) {
	c.signalCase(ctx, caseID, CaseEventSignal{EventID: "rating:" + eventID, Rating: rating, Note: "rated by the member"})
	recordRating(ctx, rating)
	c.sayToMember(ctx, "rating thanks", activities.Message{Content: c.t("rating.thanks", "rating", strconv.Itoa(rating))})
}

// unblockMember is what a fresh /helpme or DM does for a member whose DMs failed: the failed
// messages are queued again (agent messages kept, stale bot chatter dropped), so "allow DMs and
// run /helpme again" works without an operator.
func (c *conversation) unblockMember(ctx workflow.Context) {
	if !c.v2() {
		return
	}
	requeued, dropped := c.s.Ledger.RequeueFailed(Destination{DestMember, c.s.Member.UserID}, func(d Delivery) bool {
		return d.EditOf == nil && strings.HasPrefix(d.Label, "agent ")
	})
	kept := c.s.Ledger.Queue[:0]
	for _, d := range c.s.Ledger.Queue {
		if d.Dest.Kind == DestInteraction && d.Status == DeliveryFailed {
			dropped++ // the interaction's token is spent or stale
			continue
		}
		kept = append(kept, d)
	}
	c.s.Ledger.Queue = kept
	if requeued+dropped > 0 {
		c.note(ctx, fmt.Sprintf("member is back: %d failed deliveries re-queued, %d stale ones dropped", requeued, dropped))
		c.publish(ctx)
	}
}

// --- the bot stage -------------------------------------------------------------------------

func (c *conversation) answerFromKnowledgeBase(ctx workflow.Context, question string) {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: 10 * time.Second,
		Summary:                "Search the knowledge base",
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	episode := c.s.Episode
	var res activities.SearchKnowledgeBaseResult
	err := workflow.ExecuteLocalActivity(lctx, knowledgeActs.SearchKnowledgeBase, activities.SearchKnowledgeBaseInput{
		Query: question, Locale: c.s.Locale, Limit: 3,
	}).Get(ctx, &res)
	if c.v2() && (c.s.Episode != episode || c.s.Stage != StageBot) {
		return // closed by an operator while searching
	}
	if err != nil {
		// A knowledge-base hiccup must not end the conversation: offer a human instead.
		workflow.GetLogger(ctx).Warn("knowledge base search failed", "error", err)
		res.Articles = nil
	}
	buttons := []activities.Button{c.humanButton()}
	if len(res.Articles) == 0 {
		c.transcript(ctx, "bot", "", c.t("bot.no_results"))
		c.sayToMemberWithButtons(ctx, "no articles", "bot", activities.Message{Content: c.t("bot.no_results"), Buttons: buttons})
		return
	}
	c.s.Articles = appendArticles(c.s.Articles, res.Articles)
	embeds := make([]activities.Embed, 0, len(res.Articles))
	titles := make([]string, 0, len(res.Articles))
	for _, a := range res.Articles {
		embeds = append(embeds, activities.Embed{Title: a.Title, URL: a.URL, Description: a.Snippet})
		titles = append(titles, a.Title)
	}
	buttons = append([]activities.Button{{CustomID: ButtonCustomID(ActionSolved, 0), Label: c.t("button.solved"), Style: activities.ButtonSuccess}}, buttons...)
	c.transcript(ctx, "bot", "", "Suggested: "+strings.Join(titles, "; "))
	c.sayToMemberWithButtons(ctx, "articles", "bot", activities.Message{Content: c.t("bot.articles_intro"), Embeds: embeds, Buttons: buttons})
}

// appendArticles keeps every article suggested so far, once, most recent last, at most ten.
func appendArticles(have, add []activities.Article) []activities.Article {
	for _, a := range add {
		for i := range have {
			if have[i].ID == a.ID {
				have = append(have[:i], have[i+1:]...)
				break
			}
		}
		have = append(have, a)
	}
	if len(have) > 10 {
		have = have[len(have)-10:]
	}
	return have
}
