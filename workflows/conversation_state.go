package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/internal/transcript"
)

// This file holds the conversation's state changes: stages, restarts, closes, the transcript,
// and what the conversation says to the member.

// restart begins a new conversation (the next episode) in this workflow, after the last one
// ended. What belongs to the member rather than to one conversation is kept: the ledger, the
// seen-set, work still owed to Flex, buttons that may still apply, a rating still to be given.
func (c *conversation) restart(ctx workflow.Context) {
	now := workflow.Now(ctx)
	v2 := c.v2()
	prev := c.s
	if v2 && prev.Stage == StageResolved {
		c.reportEnd(ctx, ReasonNewQuestion)
		if prev.CaseID != "" {
			c.s.PendingRating = &PendingRating{CaseID: prev.CaseID, Until: prev.ResolvedAt.Add(c.opts.RatingTimeout)}
		}
		prev = c.s
	}
	c.s = ConversationState{
		Member: prev.Member, GuildID: prev.GuildID, GuildName: prev.GuildName, Locale: prev.Locale,
		Stage: StageBot, StartedAt: now, LastActivity: now, CasesOpened: prev.CasesOpened,
		Seen: prev.Seen, Ledger: prev.Ledger, Runs: prev.Runs,
	}
	if v2 {
		c.s.Behaviour, c.s.Episode = prev.Behaviour, prev.Episode+1
		c.s.Ops, c.s.PendingRating, c.s.Buttons = prev.Ops, prev.PendingRating, prev.Buttons
		c.s.DMChannelID, c.s.LastMessageID, c.s.CaseReported = prev.DMChannelID, prev.LastMessageID, prev.CaseReported
		c.s.Interaction, c.s.InteractionAt, c.s.InteractionEventID = prev.Interaction, prev.InteractionAt, prev.InteractionEventID
		c.s.Ops.FetchDue, c.s.Ops.Sweep = false, nil
		c.s.Record = prev.Record
		c.s.Record.reset()
	} else {
		c.s.Ops.CloseFlex = nil
	}
	c.note(ctx, "a new conversation started ("+ReasonNewQuestion+")")
	c.setStage(ctx, StageBot)
}

// close ends the conversation and reports the end to its case.
func (c *conversation) close(ctx workflow.Context, reason string) {
	c.s.ClosedReason = reason
	c.s.ClosedAt = workflow.Now(ctx)
	c.s.Transfer.Pending = false
	if c.v2() {
		if c.s.Stage != StageResolved {
			c.withdrawFromFlex()
		} // else the agent finishes the wrap-up in Flex; Twilio's timers close the conversation.
		// Nothing more can reach an agent; the case keeps the member's words.
		c.s.Ledger.DropKind(DestFlex)
		c.reportEnd(ctx, reason)
	}
	c.setStage(ctx, StageClosed)
}

// closeByOperator is the Close update. It is final: every step that resumes after a wait checks
// the stage and episode it started in, so nothing under way can reopen the conversation.
func (c *conversation) closeByOperator(ctx workflow.Context, req CloseRequest) {
	if c.s.Stage == StageQueued || c.s.Stage == StageLive || c.s.Stage == StageNoAgent {
		if c.v2() {
			c.withdrawFromFlex()
		} else if c.s.Flex != nil {
			c.s.Ops.CloseFlex = append(c.s.Ops.CloseFlex, *c.s.Flex)
		}
		c.s.Transfer.Pending = false
		c.s.Ledger.Drop(Destination{DestFlex, c.s.CaseID})
	}
	c.transcript(ctx, "system", "", "Closed by "+orDefault(req.Operator, "an operator")+": "+req.Reason)
	c.sayToMember(ctx, "closed notice", activities.Message{Content: c.t("closed.by_support", "case", orDefault(c.s.CaseID, "-"))})
	c.close(ctx, ReasonByOperator)
}

func (c *conversation) setStage(ctx workflow.Context, s Stage) {
	if c.s.Stage == s {
		return
	}
	if c.v2() {
		switch c.s.Stage {
		case StageBot:
			c.disableButtons(ctx, "bot")
		case StageNoAgent:
			c.disableButtons(ctx, "no_agent")
		}
	}
	c.s.Stage = s
	c.publish(ctx)
}

func (c *conversation) learnMember(m Member, locale string) {
	if m.Username != "" {
		c.s.Member.Username = m.Username
	}
	if m.DisplayName != "" {
		c.s.Member.DisplayName = m.DisplayName
	}
	if locale != "" {
		c.s.Locale = locale
	}
}

func (c *conversation) t(key string, args ...string) string { return i18n.T(c.s.Locale, key, args...) }

func (c *conversation) humanButton() activities.Button {
	return activities.Button{CustomID: ButtonCustomID(ActionTalkToHuman, 0), Label: c.t("button.human"), Style: activities.ButtonPrimary}
}

func (c *conversation) sayToMember(ctx workflow.Context, label string, msg activities.Message) {
	c.sayToMemberWithButtons(ctx, label, "", msg)
}

// sayToMemberWithButtons queues a DM; buttons names the kind of its buttons, so that they can be
// disabled once they no longer apply.
func (c *conversation) sayToMemberWithButtons(ctx workflow.Context, label, buttons string, msg activities.Message) {
	if label != "agent reply" && msg.Content != "" {
		c.transcript(ctx, "bot", "", msg.Content)
	}
	seq := c.s.Ledger.Enqueue(workflow.Now(ctx), Destination{DestMember, c.s.Member.UserID}, label, msg)
	if c.v2() && buttons != "" && len(msg.Buttons) > 0 {
		d, _ := c.s.Ledger.Get(seq)
		d.Buttons = buttons
	}
}

func (c *conversation) enqueue(ctx workflow.Context, dest Destination, label string, msg activities.Message, in *Interaction) int64 {
	seq := c.s.Ledger.Enqueue(workflow.Now(ctx), dest, label, msg)
	if in != nil {
		d, _ := c.s.Ledger.Get(seq)
		d.Interaction = in
	}
	return seq
}

// disableButtons edits the delivered messages whose buttons of this kind no longer apply.
func (c *conversation) disableButtons(ctx workflow.Context, kind string) {
	kept := c.s.Buttons[:0]
	for _, b := range c.s.Buttons {
		if b.Kind != kind {
			kept = append(kept, b)
			continue
		}
		msg := b.Message
		msg.Buttons = append([]activities.Button(nil), msg.Buttons...)
		for i := range msg.Buttons {
			msg.Buttons[i].Disabled = true
		}
		seq := c.s.Ledger.Enqueue(workflow.Now(ctx), Destination{DestMember, c.s.Member.UserID}, "disable buttons", msg)
		d, _ := c.s.Ledger.Get(seq)
		ref := b.Ref
		d.EditOf = &ref
	}
	c.s.Buttons = kept
}

func (c *conversation) transcript(ctx workflow.Context, from, name, text string) {
	if c.record() {
		c.s.Record.add(c.s.Member.UserID, transcript.Entry{At: workflow.Now(ctx), Kind: from, Name: name, Text: text})
	}
	c.transcriptTail(ctx, from, name, text)
}

// transcriptTail keeps a line in the state's bounded transcript (the Temporal UI's view, and what
// the case and the task attributes get).
func (c *conversation) transcriptTail(ctx workflow.Context, from, name, text string) {
	c.s.Transcript = append(c.s.Transcript, activities.TranscriptLine{At: workflow.Now(ctx), From: from, Name: name, Text: truncate(text, 1000)})
	if n := len(c.s.Transcript) - c.opts.TranscriptTail; n > 0 {
		c.s.Transcript = append(c.s.Transcript[:0:0], c.s.Transcript[n:]...)
	}
}

func (c *conversation) note(ctx workflow.Context, text string) {
	workflow.GetLogger(ctx).Info(text)
}

func (c *conversation) deliverySummary(d Delivery) string {
	switch {
	case d.EditOf != nil:
		return "Edit a DM to " + c.s.Member.Name() + ": " + d.Label
	case d.Dest.Kind == DestMember:
		return "DM " + c.s.Member.Name() + ": " + d.Label
	case d.Dest.Kind == DestFlex:
		return "Post to Flex (case " + d.Dest.ID + "): " + d.Label
	case d.Dest.Kind == DestInteraction:
		return "Follow up /helpme: " + d.Label
	default:
		return "Post to " + d.Dest.String() + ": " + d.Label
	}
}

// deliveryFailed reacts to a delivery that failed for good.
func (c *conversation) deliveryFailed(ctx workflow.Context, d Delivery) {
	workflow.GetLogger(ctx).Warn("delivery failed", "destination", d.Dest.String(), "seq", d.Seq, "error_type", d.ErrorType, "error", d.Error)
	if d.EditOf != nil {
		// Disabling old buttons is a courtesy; it never holds the member's messages back.
		c.s.Ledger.Remove(d.Seq)
		return
	}
	switch d.Dest.Kind {
	case DestMember:
		if (c.s.Stage == StageQueued || c.s.Stage == StageLive) && c.s.CaseID != "" {
			c.enqueue(ctx, Destination{DestFlex, c.s.CaseID}, "delivery failure notice",
				activities.Message{Content: "[flexcord] A message could not be delivered to the member on Discord (" + d.ErrorType + "): " + truncate(d.Error, 200)}, nil)
		}
		c.followUpHelp(ctx, "DMs closed notice", "helpme.dm_failed")
	case DestFlex:
		current := d.Dest.ID == c.s.CaseID && (c.s.Stage == StageQueued || c.s.Stage == StageLive)
		if c.v2() && !current {
			// The chat it was for has ended; the case report keeps the member's words.
			c.s.Ledger.Remove(d.Seq)
			return
		}
		gone := d.ErrorType == activities.ErrFlexConversationClosed || d.ErrorType == activities.ErrFlexConversationGone
		if c.v2() && gone {
			c.rehand(ctx, d)
			return
		}
		c.sayToMember(ctx, "agent unreachable notice", activities.Message{Content: c.t("agent.unreachable")})
	}
}

// deliveryDelayed tells the member, once, that a message to the agent did not get through yet.
func (c *conversation) deliveryDelayed(ctx workflow.Context, d Delivery) {
	if d.Dest.Kind != DestFlex || c.s.FlexDelayed {
		return
	}
	c.s.FlexDelayed = true
	c.sayToMember(ctx, "delivery delayed notice", activities.Message{Content: c.t("delivery.delayed")})
}

// deliveryDone reacts to a delivery that arrived.
func (c *conversation) deliveryDone(ctx workflow.Context, d Delivery, res deliveryResult) {
	switch {
	case d.EditOf != nil:
	case d.Dest.Kind == DestMember:
		if res.ChannelID != "" && c.v2() {
			c.s.DMChannelID = res.ChannelID
		}
		if d.Buttons != "" && res.ChannelID != "" && len(res.MessageIDs) > 0 {
			c.s.Buttons = append(c.s.Buttons, ButtonMessage{Kind: d.Buttons, Message: d.Message,
				Ref: MessageRef{ChannelID: res.ChannelID, MessageID: res.MessageIDs[len(res.MessageIDs)-1]}})
			if n := len(c.s.Buttons); n > 8 {
				c.s.Buttons = append(c.s.Buttons[:0:0], c.s.Buttons[n-8:]...)
			}
			if (d.Buttons == "bot" && c.s.Stage != StageBot) || (d.Buttons == "no_agent" && c.s.Stage != StageNoAgent) {
				c.disableButtons(ctx, d.Buttons) // the stage moved on while it was on its way
			}
		}
		c.followUpHelp(ctx, "/helpme follow-up", "helpme.ack")
	case d.Dest.Kind == DestFlex:
		if res.HasIndex && d.Dest.ID == c.s.CaseID {
			c.learnFlexIndex(res.FlexIndex)
			for _, i := range res.FileIndexes {
				c.learnFlexIndex(i)
			}
		}
		if d.Delayed && c.s.FlexDelayed && !c.anyFlexDelayed() {
			c.s.FlexDelayed = false
			c.sayToMember(ctx, "delivery recovered notice", activities.Message{Content: c.t("delivery.recovered")})
		}
	}
}

func (c *conversation) anyFlexDelayed() bool {
	for _, d := range c.s.Ledger.Queue {
		if d.Dest.Kind == DestFlex && d.Delayed {
			return true
		}
	}
	return false
}

// followUpHelp answers the pending /helpme interaction, once, while its token is still valid.
func (c *conversation) followUpHelp(ctx workflow.Context, label, key string) {
	if c.s.Interaction == nil {
		return
	}
	in := c.s.Interaction
	c.s.Interaction = nil
	if workflow.Now(ctx).Sub(c.s.InteractionAt) >= 14*time.Minute {
		return // Discord invalidates interaction tokens after 15 minutes.
	}
	c.enqueue(ctx, Destination{DestInteraction, c.s.InteractionEventID}, label,
		activities.Message{Content: c.t(key), Ephemeral: true}, in)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
