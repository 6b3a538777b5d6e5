package workflows

import (
	"slices"
	"strconv"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
)

// This file holds what comes from Flex: the agent joining, writing and wrapping up, and the task
// ending without an agent.

// ourCase reports whether an event belongs to the conversation's current case; events without a
// case id are taken as the current case's.
func (c *conversation) ourCase(caseID string) bool {
	return caseID == "" || caseID == c.s.CaseID
}

// ourHandover reports whether an event belongs to the current hand-over of the case: a task or
// Flex conversation of an earlier hand-over no longer speaks for the member's chat.
func (c *conversation) ourHandover(taskSID, conversationSID string) bool {
	if !c.v2() || c.s.Flex == nil {
		return true
	}
	if taskSID != "" && c.s.Flex.TaskSID != "" && taskSID != c.s.Flex.TaskSID {
		return false
	}
	return conversationSID == "" || conversationSID == c.s.Flex.ConversationSID
}

func (c *conversation) onAgentJoined(ctx workflow.Context, sig AgentJoinedSignal) {
	if !c.fresh(sig.EventID) || !c.ourCase(sig.CaseID) || !c.ourHandover(sig.TaskSID, "") {
		return
	}
	if c.s.Stage != StageQueued && c.s.Stage != StageLive {
		return
	}
	name := orDefault(sig.AgentName, c.t("agent.default_name"))
	if c.s.Stage == StageLive && name == c.s.Agent {
		return
	}
	if c.s.Stage == StageQueued && !c.s.QueuedAt.IsZero() {
		recordDuration(ctx, MetricQueueWait, workflow.Now(ctx).Sub(c.s.QueuedAt))
	}
	c.s.Agent = name
	c.s.LastFlexActivity, c.s.LastChatAt = workflow.Now(ctx), workflow.Now(ctx)
	c.setStage(ctx, StageLive)
	c.transcript(ctx, "system", "", name+" joined")
	c.sayToMember(ctx, "agent joined", activities.Message{Content: c.t("agent.joined", "agent", name)})
	c.tellCase(ctx, CaseEventSignal{EventID: "joined:" + sig.EventID, Status: CaseInProgress, Assignee: name, Note: name + " accepted the chat"})
}

// acceptsAgentMessages reports whether the conversation relays agent messages now: while queued
// or live, and after a wrap-up until the Flex conversation is closed.
func (c *conversation) acceptsAgentMessages() bool {
	switch c.s.Stage {
	case StageQueued, StageLive:
		return true
	case StageResolved:
		return c.v2() && !c.s.FlexClosed
	}
	return false
}

func (c *conversation) onAgentMessage(ctx workflow.Context, sig AgentMessageSignal) {
	// A message not taken now keeps its id unseen: the sweep after the Flex conversation closed
	// may still find and relay it. (Legacy conversations marked it seen first.)
	if !c.v2() && !c.fresh(sig.EventID) {
		return
	}
	if !c.ourCase(sig.CaseID) || !c.ourHandover("", sig.ConversationSID) || !c.acceptsAgentMessages() {
		return
	}
	if c.v2() && !c.fresh(sig.EventID) {
		return
	}
	files := c.record() && len(sig.Files) > 0
	if files && strings.TrimSpace(sig.Text) == AttachmentPlaceholder {
		sig.Text = ""
	}
	if strings.TrimSpace(sig.Text) == "" && !files {
		return
	}
	if c.v2() && sig.HasIndex && c.s.Flex != nil {
		gap := c.s.FlexIndexKnown && sig.Index > c.s.FlexIndex+1 && !slices.Contains(c.s.FlexAhead, sig.Index)
		if gap || c.s.Ops.Fetching || c.s.Ops.FetchDue {
			// Messages before this one are missing: fetch them and relay all in order.
			c.s.HeldAgentMessages = append(c.s.HeldAgentMessages, sig)
			c.s.Ops.FetchDue = c.s.Ops.FetchDue || !c.s.Ops.Fetching
			return
		}
	}
	c.relayAgent(ctx, sig.AgentName, sig.Text, sig.Files)
	if sig.HasIndex {
		c.learnFlexIndex(sig.Index)
	}
}

// learnFlexIndex records that the message at index i of the current Flex conversation is known.
func (c *conversation) learnFlexIndex(i int) {
	if !c.s.FlexIndexKnown {
		c.s.FlexIndex, c.s.FlexIndexKnown = i, true
	}
	if i <= c.s.FlexIndex || slices.Contains(c.s.FlexAhead, i) {
		return
	}
	c.s.FlexAhead = append(c.s.FlexAhead, i)
	c.advanceFlexIndex()
	if len(c.s.FlexAhead) > 100 { // bounded: give up on finding what is missing below
		c.s.FlexIndex, c.s.FlexAhead = slices.Max(c.s.FlexAhead), nil
	}
}

// learnFlexRange records that every message up to index last is known (a fetch read them all).
func (c *conversation) learnFlexRange(last int) {
	if !c.s.FlexIndexKnown || last > c.s.FlexIndex {
		c.s.FlexIndex, c.s.FlexIndexKnown = last, true
	}
	c.s.FlexAhead = slices.DeleteFunc(c.s.FlexAhead, func(i int) bool { return i <= c.s.FlexIndex })
	c.advanceFlexIndex()
}

// advanceFlexIndex moves FlexIndex past the known indexes that follow it without a gap.
func (c *conversation) advanceFlexIndex() {
	for {
		at := slices.Index(c.s.FlexAhead, c.s.FlexIndex+1)
		if at < 0 {
			return
		}
		c.s.FlexIndex++
		c.s.FlexAhead = slices.Delete(c.s.FlexAhead, at, at+1)
	}
}

// relayAgent passes an agent's message, and its files (record behaviour), to the member.
func (c *conversation) relayAgent(ctx workflow.Context, name, text string, atts []Attachment) {
	text = strings.TrimSpace(text)
	if !c.record() {
		atts = nil
	}
	if text == "" && len(atts) == 0 {
		return
	}
	c.s.LastFlexActivity, c.s.LastChatAt = workflow.Now(ctx), workflow.Now(ctx)
	name = orDefault(name, orDefault(c.s.Agent, c.t("agent.default_name")))
	if len(atts) == 0 {
		c.transcript(ctx, "agent", name, text)
		c.sayToMember(ctx, "agent reply", activities.Message{Content: c.t("agent.message", "agent", name, "text", text)})
		return
	}
	pass, refused, rec := c.files(atts)
	c.transcriptFiles(ctx, "agent", name, text, rec)
	msg := activities.Message{Files: pass}
	if text != "" {
		msg.Content = c.t("agent.message", "agent", name, "text", text)
	} else {
		msg.Content = c.t("agent.files", "agent", name)
	}
	for _, r := range refused {
		msg.Content += "\n" + c.t("attachment.agent_refused", "name", r.name, "reason", c.reason(r))
		c.enqueue(ctx, Destination{DestFlex, c.s.CaseID}, "note to the agent", activities.Message{Content: "[flexcord] Not passed on to the member: " + r.describe() + ", " + r.forAgent()}, nil)
	}
	c.sayToMember(ctx, "agent reply", msg)
}

// agentMessagesFetched relays, in index order, the messages a fetch found and those held back
// while it ran; ids already relayed are skipped.
func (c *conversation) agentMessagesFetched(ctx workflow.Context, res activities.FetchAgentMessagesResult, ok bool) {
	type item struct {
		index int
		name  string
		text  string
		files []Attachment
	}
	var items []item
	seen := map[string]bool{}
	for _, h := range c.s.HeldAgentMessages {
		seen[h.EventID] = true
		items = append(items, item{h.Index, h.AgentName, h.Text, h.Files})
	}
	c.s.HeldAgentMessages = nil
	if ok {
		for _, m := range res.Messages {
			if seen[m.SID] || !c.fresh(m.SID) {
				continue
			}
			items = append(items, item{m.Index, "", m.Body, fetchedFiles(m.Files)})
		}
		c.learnFlexRange(res.LastIndex)
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.index - b.index })
	for _, it := range items {
		c.relayAgent(ctx, it.name, it.text, it.files)
		c.learnFlexIndex(it.index)
	}
}

func (c *conversation) onAgentWrappedUp(ctx workflow.Context, sig AgentWrappedUpSignal) {
	if !c.fresh(sig.EventID) || !c.ourCase(sig.CaseID) || !c.ourHandover(sig.TaskSID, sig.ConversationSID) {
		return
	}
	if c.v2() && sig.ConversationClosed && c.s.Flex != nil && !c.s.FlexClosed {
		c.s.FlexClosed = true
		// A last message whose webhook has not come yet is fetched before the door closes.
		c.s.Ops.FetchDue = true
	}
	if c.s.Stage != StageQueued && c.s.Stage != StageLive {
		return
	}
	c.resolve(ctx, orDefault(sig.Reason, "the agent wrapped up"))
}

// resolve ends the chat with the agent: the case is resolved and the member asked for a rating.
func (c *conversation) resolve(ctx workflow.Context, reason string) {
	if c.v2() && c.s.Flex != nil {
		// Whatever the agent wrote before the end and whose webhook was lost comes now.
		c.s.Ops.FetchDue = true
	}
	c.s.ResolvedAt = workflow.Now(ctx)
	c.setStage(ctx, StageResolved)
	c.transcript(ctx, "system", "", "The agent wrapped up")
	// Messages still waiting for the agent can no longer be answered; the transcript keeps them.
	c.s.Ledger.Drop(Destination{DestFlex, c.s.CaseID})
	c.tellCase(ctx, CaseEventSignal{EventID: "wrapup:" + c.s.CaseID + ":" + strconv.Itoa(c.s.Handovers), Status: CaseResolved, Note: reason})
	buttons := make([]activities.Button, 0, 5)
	for r := 1; r <= 5; r++ {
		id := ButtonCustomID(ActionRate, r)
		if c.v2() {
			id = CaseButtonCustomID(ActionRate, r, c.s.CaseID)
		}
		buttons = append(buttons, activities.Button{CustomID: id, Label: strconv.Itoa(r), Style: activities.ButtonSecondary})
	}
	c.sayToMemberWithButtons(ctx, "rating request", "rating", activities.Message{Content: c.t("resolved.rate", "case", c.s.CaseID), Buttons: buttons})
	if c.record() {
		c.sayToMember(ctx, "transcript offer", activities.Message{Content: c.t("transcript.offer"), Buttons: []activities.Button{{
			CustomID: CaseButtonCustomID(ActionTranscript, 0, c.s.CaseID), Label: c.t("button.transcript"), Style: activities.ButtonSecondary,
		}}})
	}
}

func (c *conversation) onNoAgent(ctx workflow.Context, sig NoAgentSignal) {
	if !c.fresh(sig.EventID) || !c.ourCase(sig.CaseID) || !c.ourHandover(sig.TaskSID, "") {
		return
	}
	if c.s.Stage == StageQueued {
		c.noAgent(ctx, orDefault(sig.Reason, "no agent took the chat"))
	}
}

// noAgent tells the member no agent is free and offers to keep waiting or leave a message. The
// task is withdrawn from Flex; the case stays open.
func (c *conversation) noAgent(ctx workflow.Context, reason string) {
	c.s.NoAgentAt = workflow.Now(ctx)
	c.withdrawFromFlex()
	c.setStage(ctx, StageNoAgent)
	c.transcript(ctx, "system", "", "No agent available: "+reason)
	c.tellCase(ctx, CaseEventSignal{EventID: "noagent:" + c.s.CaseID + ":" + strconv.Itoa(c.s.Handovers), Note: "no agent available: " + reason})
	c.offerNoAgentChoice(ctx)
}

func (c *conversation) offerNoAgentChoice(ctx workflow.Context) {
	c.sayToMemberWithButtons(ctx, "no agent", "no_agent", activities.Message{
		Content: c.t("noagent.offer", "case", c.s.CaseID),
		Buttons: []activities.Button{
			{CustomID: CaseButtonCustomID(ActionKeepWaiting, 0, c.s.CaseID), Label: c.t("button.keep_waiting"), Style: activities.ButtonPrimary},
			{CustomID: CaseButtonCustomID(ActionLeaveMessage, 0, c.s.CaseID), Label: c.t("button.leave_message"), Style: activities.ButtonSecondary},
		},
	})
}

// keepWaiting puts the case back in the queue: a new hand-over of the same case.
func (c *conversation) keepWaiting(ctx workflow.Context) {
	if c.s.Handovers >= c.opts.MaxHandovers {
		c.leaveMessage(ctx)
		return
	}
	c.transcript(ctx, "member", c.s.Member.Name(), "[Keep waiting]")
	c.s.LastActivity = workflow.Now(ctx)
	c.sayToMember(ctx, "requeued", activities.Message{Content: c.t("noagent.requeued", "case", c.s.CaseID)})
	c.s.Transfer = TransferState{Pending: true}
	c.setStage(ctx, StageQueued)
}

// leaveMessage ends the conversation with the case left open for a follow-up by DM.
func (c *conversation) leaveMessage(ctx workflow.Context) {
	c.transcript(ctx, "member", c.s.Member.Name(), "[Leave a message]")
	c.sayToMember(ctx, "left a message", activities.Message{Content: c.t("noagent.left", "case", c.s.CaseID)})
	c.close(ctx, ReasonLeftMessage)
}
