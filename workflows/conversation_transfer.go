package workflows

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
)

// This file holds the conversation's work with Flex and its case: opening the case, handing the
// member to Flex (again, when Flex lost the chat), checking a silent chat, fetching missed agent
// messages, closing interactions, and reporting every end to the case.

func (c *conversation) requestTransfer(ctx workflow.Context) {
	if c.s.Stage != StageBot || c.s.Transfer.Pending || c.s.Transfer.Running || c.s.Ops.OpeningCase {
		return
	}
	c.s.Transfer = TransferState{Pending: true}
}

// startDueOps starts the operations the state says are due.
func (c *conversation) startDueOps(ctx workflow.Context) {
	if c.s.Transfer.Pending && !c.s.Ops.OpeningCase {
		c.startTransfer(ctx)
	}
	if len(c.s.Ops.CloseFlex) > 0 && !c.s.Ops.ClosingFlex {
		c.startCloseFlex(ctx)
	}
	if c.v2() && c.s.Ops.FetchDue && !c.s.Ops.Fetching {
		c.startFetch(ctx)
	}
	if c.v2() && c.s.Ops.Sweep != nil && !c.s.Ops.Fetching {
		c.startSweep(ctx)
	}
}

// startTransfer opens the support case (a child Case workflow that outlives the conversation),
// tells the member, and starts handing the conversation to Flex.
func (c *conversation) startTransfer(ctx workflow.Context) {
	c.s.Transfer.Pending = false
	if c.s.CaseID != "" {
		c.handOver(ctx)
		return
	}
	if c.v2() {
		c.openCase(ctx, 0)
		return
	}
	caseID, err := c.openCaseLegacy(ctx)
	if err != nil {
		c.caseNotOpened(ctx, err)
		return
	}
	c.caseOpened(ctx, caseID)
}

func (c *conversation) caseNotOpened(ctx workflow.Context, err error) {
	workflow.GetLogger(ctx).Error("open support case", "error", err)
	c.s.Transfer.Error = rootMessage(err)
	c.sayToMember(ctx, "transfer failed", activities.Message{Content: c.t("transfer.failed", "case", "-"), Buttons: []activities.Button{c.humanButton()}})
}

func (c *conversation) caseOpened(ctx workflow.Context, caseID string) {
	c.s.CaseID = caseID
	c.s.Handovers = 0
	if c.record() {
		c.s.Record.assign(caseID)
	}
	c.transcript(ctx, "system", "", "Case "+caseID+" created")
	c.sayToMember(ctx, "case created", activities.Message{Content: c.t("transfer.created", "case", caseID)})
	c.handOver(ctx)
	c.handOverBotFiles(ctx)
}

// caseCandidate derives the attempt-th candidate id of the member's next case. Legacy
// conversations derived it from the run id; now it comes from the conversation's first run (its
// key prefix), so a later run of the same conversation derives the same id.
func (c *conversation) caseCandidate(ctx workflow.Context, attempt int) string {
	seed := c.s.Ledger.KeyPrefix
	if !c.v2() {
		seed = workflow.GetInfo(ctx).WorkflowExecution.RunID
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(fmt.Sprintf("%s|%s|%d|%d", seed, c.s.Member.UserID, c.s.CasesOpened, attempt)))
	return FormatCaseID(h.Sum64())
}

func (c *conversation) caseChildOptions(ctx workflow.Context, caseID string) workflow.Context {
	return workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            CaseWorkflowID(caseID),
		TaskQueue:             TaskQueue,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		StaticSummary:         fmt.Sprintf("Support case · %s · %s", c.s.Member.Name(), orDefault(c.s.GuildName, c.s.GuildID)),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SearchAttrCaseID.ValueSet(caseID), SearchAttrCaseType.ValueSet(string(CaseSupport)),
			SearchAttrCaseStatus.ValueSet(string(CaseOpen)), SearchAttrDiscordUserID.ValueSet(c.s.Member.UserID),
		),
	})
}

func (c *conversation) caseInput(caseID string) CaseInput {
	return CaseInput{
		CaseID: caseID, Type: CaseSupport, Reporter: c.s.Member, GuildID: c.s.GuildID, Locale: c.s.Locale,
		Title:          orDefault(c.s.Subject, "Support request from "+c.s.Member.Name()),
		Description:    memberLines(c.s.Transcript),
		ConversationID: ConversationWorkflowID(c.s.Member.UserID),
		Articles:       c.s.Articles,
	}
}

// openCase starts the member's support case without blocking the conversation: whatever lands
// meanwhile (an operator close, "this solved it") is seen by the callback, which then tells the
// new case how the conversation ended instead of announcing it.
func (c *conversation) openCase(ctx workflow.Context, attempt int) {
	caseID := c.caseCandidate(ctx, attempt)
	episode := c.s.Episode
	c.s.Ops.OpeningCase = true
	child := workflow.ExecuteChildWorkflow(c.caseChildOptions(ctx, caseID), Case, c.caseInput(caseID))
	c.sel.AddFuture(child.GetChildWorkflowExecution(), func(f workflow.Future) {
		c.s.Ops.OpeningCase = false
		err := f.Get(ctx, nil)
		if errors.As(err, new(*temporal.ChildWorkflowExecutionAlreadyStartedError)) && attempt < 4 {
			c.openCase(ctx, attempt+1)
			return
		}
		stillWanted := c.s.Episode == episode && c.s.Stage == StageBot
		if err != nil {
			if stillWanted {
				c.caseNotOpened(ctx, fmt.Errorf("start case %s: %w", caseID, err))
			}
			return
		}
		c.s.CasesOpened++
		if !stillWanted {
			// The conversation ended while the case was being opened: the case hears why.
			c.signalCase(ctx, caseID, endReport(caseID, orDefault(c.s.ClosedReason, ReasonNewQuestion), nil))
			return
		}
		c.caseOpened(ctx, caseID)
	})
}

// openCaseLegacy is how legacy conversations opened their case: waiting for it to start.
func (c *conversation) openCaseLegacy(ctx workflow.Context) (string, error) {
	for attempt := 0; attempt < 5; attempt++ {
		caseID := c.caseCandidate(ctx, attempt)
		child := workflow.ExecuteChildWorkflow(c.caseChildOptions(ctx, caseID), Case, c.caseInput(caseID))
		var exec workflow.Execution
		err := child.GetChildWorkflowExecution().Get(ctx, &exec)
		if err == nil {
			c.s.CasesOpened++
			return caseID, nil
		}
		if !errors.As(err, new(*temporal.ChildWorkflowExecutionAlreadyStartedError)) {
			return "", fmt.Errorf("start case %s: %w", caseID, err)
		}
	}
	return "", errors.New("no free case id after 5 attempts")
}

// handOver creates the Flex conversation and interaction of the case's next hand-over.
func (c *conversation) handOver(ctx workflow.Context) {
	c.s.Handovers++
	c.s.QueuedAt = workflow.Now(ctx)
	countMetric(ctx, MetricHandovers, "handover", handoverKind(c.s.Handovers))
	c.s.Agent = ""
	c.setStage(ctx, StageQueued)
	c.s.Transfer.Running = true
	c.s.Transfer.Abandon = false
	if c.v2() {
		// A new Flex conversation starts at index 0: nothing before it can be missing.
		c.s.FlexIndex, c.s.FlexIndexKnown, c.s.FlexAhead, c.s.FlexClosed = -1, true, nil, false
	}
	caseID, episode, handover := c.s.CaseID, c.s.Episode, c.s.Handovers
	in := activities.CreateFlexInteractionInput{
		CaseID: caseID, DiscordUserID: c.s.Member.UserID, Username: c.s.Member.Name(),
		GuildID: c.s.GuildID, GuildName: c.s.GuildName, Locale: c.s.Locale,
		Transcript: c.s.Transcript, Articles: c.s.Articles,
	}
	if c.v2() {
		in.Handover = handover
	}
	if c.record() && handover == 1 {
		in.BotPhase = c.s.Record.botPhase(caseID)
	}
	actx := workflow.WithActivityOptions(ctx, c.opts.Transfer.activityOptions("Hand case "+caseID+" to Flex"))
	f := workflow.ExecuteActivity(twilioCtx(actx), flexActs.CreateFlexInteraction, in)
	c.sel.AddFuture(f, func(f workflow.Future) {
		c.s.Transfer.Running = false
		var fi activities.FlexInteraction
		err := f.Get(ctx, &fi)
		if c.v2() {
			c.handedOver(ctx, fi, err, caseID, episode)
			return
		}
		c.handedOverLegacy(ctx, fi, err, caseID)
	})
}

// handoverKind tags a hand-over metric: the first of a case, or again (Flex lost the chat, or
// the member asked for a person again after a failed hand-over or no agent).
func handoverKind(n int) string {
	if n <= 1 {
		return "first"
	}
	return "again"
}

func (c *conversation) handedOver(ctx workflow.Context, fi activities.FlexInteraction, err error, caseID string, episode int) {
	// The agent may accept before the answer is back: live counts as waiting for it too.
	current := c.s.Episode == episode && c.s.CaseID == caseID && !c.s.Transfer.Abandon &&
		(c.s.Stage == StageQueued || c.s.Stage == StageLive)
	c.s.Transfer.Abandon = false
	if err != nil {
		workflow.GetLogger(ctx).Error("hand case to Flex", "case", caseID, "error", err)
		if !current {
			return
		}
		c.s.Transfer.Error = rootMessage(err)
		// Back to the bot; the member's messages stay in the transcript the next transfer carries.
		c.s.Ledger.Drop(Destination{DestFlex, caseID})
		c.setStage(ctx, StageBot)
		c.s.LastActivity = workflow.Now(ctx)
		c.tellCase(ctx, CaseEventSignal{EventID: "handover-failed:" + caseID + ":" + strconv.Itoa(c.s.Handovers), Note: "hand-over to Flex failed: " + truncate(c.s.Transfer.Error, 200)})
		c.sayToMemberWithButtons(ctx, "transfer failed", "bot", activities.Message{Content: c.t("transfer.failed", "case", caseID), Buttons: []activities.Button{c.humanButton()}})
		return
	}
	if !current {
		// Nobody waits for this interaction any more: withdraw it so no agent is offered a
		// chat that has ended.
		c.s.Ops.CloseFlex = append(c.s.Ops.CloseFlex, fi)
		c.signalCase(ctx, caseID, CaseEventSignal{EventID: "flex:" + fi.InteractionSID, Flex: &fi, Note: "handed to Flex after the conversation moved on; withdrawn"})
		return
	}
	c.s.Transfer.Error = ""
	c.s.Flex = &fi
	if c.record() && fi.Posted > 0 {
		// The bot stage is the conversation's first message: no agent message is missing there.
		c.learnFlexRange(fi.Posted - 1)
	}
	if c.s.Stage == StageQueued {
		c.s.LastFlexActivity, c.s.LastChatAt = workflow.Now(ctx), workflow.Now(ctx)
	}
	c.tellCase(ctx, CaseEventSignal{EventID: "flex:" + fi.InteractionSID, Flex: &fi, Note: "handed to Flex"})
}

func (c *conversation) handedOverLegacy(ctx workflow.Context, fi activities.FlexInteraction, err error, caseID string) {
	if err != nil {
		workflow.GetLogger(ctx).Error("hand case to Flex", "case", caseID, "error", err)
		c.s.Transfer.Error = rootMessage(err)
		if c.s.Stage != StageQueued {
			return
		}
		c.s.Ledger.Drop(Destination{DestFlex, caseID})
		c.setStage(ctx, StageBot)
		c.s.LastActivity = workflow.Now(ctx)
		c.sayToMember(ctx, "transfer failed", activities.Message{Content: c.t("transfer.failed", "case", caseID), Buttons: []activities.Button{c.humanButton()}})
		return
	}
	c.s.Transfer.Error = ""
	c.s.Flex = &fi
	c.tellCase(ctx, CaseEventSignal{EventID: "flex:" + fi.InteractionSID, Flex: &fi, Note: "handed to Flex"})
	if c.s.Stage == StageClosed {
		c.s.Ops.CloseFlex = append(c.s.Ops.CloseFlex, fi)
	}
}

// withdrawFromFlex ends the current hand-over on the Flex side: its interaction is closed (which
// cancels a waiting task), and a hand-over still under way is abandoned.
func (c *conversation) withdrawFromFlex() {
	if c.s.Flex != nil {
		c.s.Ops.CloseFlex = append(c.s.Ops.CloseFlex, *c.s.Flex)
		c.s.Flex = nil
	}
	if c.s.Transfer.Running {
		c.s.Transfer.Abandon = true
	}
	c.s.Transfer.Pending = false
	c.s.HeldAgentMessages = nil
	c.s.Ops.FetchDue, c.s.Ops.Sweep = false, nil
}

// rehand hands the member to a new interaction of the same case after Flex lost or closed the
// chat while a message was on its way; the message goes to the new conversation.
func (c *conversation) rehand(ctx workflow.Context, d Delivery) {
	if c.s.Handovers >= c.opts.MaxHandovers {
		c.sayToMember(ctx, "agent unreachable notice", activities.Message{Content: c.t("agent.unreachable")})
		return
	}
	if c.s.Flex != nil {
		c.s.Ops.CloseFlex = append(c.s.Ops.CloseFlex, *c.s.Flex) // closes the task if only the conversation went
		if d.ErrorType == activities.ErrFlexConversationClosed {
			// Closed, not lost: what the agent wrote last can still be read and relayed.
			fi := *c.s.Flex
			c.s.Ops.Sweep, c.s.Ops.SweepAfter = &fi, c.s.FlexIndex
		}
		c.s.Flex = nil
	}
	c.s.HeldAgentMessages, c.s.Ops.FetchDue = nil, false
	c.s.Ledger.RequeueFailed(d.Dest, func(Delivery) bool { return true })
	c.transcript(ctx, "system", "", "Flex lost the chat ("+d.ErrorType+"); handing the case over again")
	c.tellCase(ctx, CaseEventSignal{EventID: "rehand:" + c.s.CaseID + ":" + strconv.Itoa(c.s.Handovers), Note: "Flex lost the chat (" + d.ErrorType + "); handed over again"})
	c.sayToMember(ctx, "re-handed", activities.Message{Content: c.t("transfer.rehanded", "case", c.s.CaseID)})
	c.s.Transfer = TransferState{Pending: true}
	c.setStage(ctx, StageQueued)
}

func (c *conversation) startCloseFlex(ctx workflow.Context) {
	fi := c.s.Ops.CloseFlex[0]
	c.s.Ops.ClosingFlex = true
	actx := workflow.WithActivityOptions(ctx, c.opts.Delivery.activityOptions("Close the Flex interaction of case "+c.s.CaseID))
	f := workflow.ExecuteActivity(twilioCtx(actx), flexActs.CloseFlexInteraction, activities.CloseFlexInteractionInput{Interaction: fi})
	c.sel.AddFuture(f, func(f workflow.Future) {
		c.s.Ops.ClosingFlex = false
		c.s.Ops.CloseFlex = c.s.Ops.CloseFlex[1:]
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("close Flex interaction", "interaction", fi.InteractionSID, "error", err)
			c.transcript(ctx, "system", "", "Closing the Flex interaction failed: "+rootMessage(err))
		}
	})
}

// startCheck asks Flex whether it still has a silent live chat.
func (c *conversation) startCheck(ctx workflow.Context) {
	if c.s.Ops.Checking {
		return
	}
	if c.s.Flex == nil {
		// The agent joined before the hand-over's answer: nothing to ask about yet.
		c.s.LastFlexActivity = workflow.Now(ctx)
		return
	}
	c.s.Ops.Checking = true
	episode, fi := c.s.Episode, *c.s.Flex
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		Summary:             "Check that Flex still has case " + c.s.CaseID,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	f := workflow.ExecuteActivity(twilioCtx(actx), flexActs.CheckFlexInteraction, activities.CheckFlexInteractionInput{Interaction: fi})
	c.sel.AddFuture(f, func(f workflow.Future) {
		c.s.Ops.Checking = false
		var res activities.CheckFlexInteractionResult
		err := f.Get(ctx, &res)
		if c.s.Episode != episode || c.s.Stage != StageLive || c.s.Flex == nil || c.s.Flex.InteractionSID != fi.InteractionSID {
			return
		}
		c.s.LastFlexActivity = workflow.Now(ctx)
		switch {
		case err != nil:
			c.s.CheckFailures++
			workflow.GetLogger(ctx).Warn("check Flex interaction", "case", c.s.CaseID, "failures", c.s.CheckFailures, "error", err)
			if c.s.CheckFailures >= c.opts.LiveCheckFailures {
				c.s.Ops.CloseFlex = append(c.s.Ops.CloseFlex, fi)
				c.resolve(ctx, "Flex could not be reached")
			}
		case res.Open && workflow.Now(ctx).Sub(c.s.LastChatAt) >= c.opts.LiveMaxSilence:
			// Flex keeps a chat nobody writes in; the member should not wait on it for ever.
			c.s.Ops.CloseFlex = append(c.s.Ops.CloseFlex, fi)
			c.s.Ops.FetchDue = true
			c.resolve(ctx, "no message either way for "+c.opts.LiveMaxSilence.String())
		case res.Open:
			c.s.CheckFailures = 0
			if res.LastIndex > c.s.FlexIndex || (!c.s.FlexIndexKnown && res.LastIndex >= 0) {
				c.s.Ops.FetchDue = true
			}
		default:
			c.s.CheckFailures = 0
			c.s.FlexClosed = true
			c.s.Ops.FetchDue = res.ConversationState != ""
			c.resolve(ctx, "Flex closed the chat ("+orDefault(res.ConversationState, "gone")+")")
		}
	})
}

// startFetch fetches agent messages after the last index the conversation knows.
func (c *conversation) startFetch(ctx workflow.Context) {
	c.s.Ops.FetchDue = false
	if c.s.Flex == nil {
		c.agentMessagesFetched(ctx, activities.FetchAgentMessagesResult{}, false)
		return
	}
	c.s.Ops.Fetching = true
	episode, fi := c.s.Episode, *c.s.Flex
	after := -1
	if c.s.FlexIndexKnown {
		after = c.s.FlexIndex
		// Held messages are past a gap: fetch from the last index relayed before them.
	}
	actx := workflow.WithActivityOptions(ctx, c.opts.Delivery.activityOptions("Fetch agent messages of case "+c.s.CaseID))
	f := workflow.ExecuteActivity(twilioCtx(actx), flexActs.FetchAgentMessages, activities.FetchAgentMessagesInput{ConversationSID: fi.ConversationSID, AfterIndex: after})
	c.sel.AddFuture(f, func(f workflow.Future) {
		c.s.Ops.Fetching = false
		var res activities.FetchAgentMessagesResult
		err := f.Get(ctx, &res)
		if err != nil {
			workflow.GetLogger(ctx).Warn("fetch agent messages", "case", c.s.CaseID, "error", err)
		}
		if c.s.Episode != episode || c.s.Flex == nil || c.s.Flex.ConversationSID != fi.ConversationSID {
			return
		}
		c.agentMessagesFetched(ctx, res, err == nil)
	})
}

// startSweep fetches the agent messages a closed Flex conversation still holds after the member
// was handed over again, and relays those not relayed yet.
func (c *conversation) startSweep(ctx workflow.Context) {
	fi, after, episode := *c.s.Ops.Sweep, c.s.Ops.SweepAfter, c.s.Episode
	c.s.Ops.Sweep = nil
	c.s.Ops.Fetching = true
	actx := workflow.WithActivityOptions(ctx, c.opts.Delivery.activityOptions("Fetch the last agent messages of case "+c.s.CaseID))
	f := workflow.ExecuteActivity(twilioCtx(actx), flexActs.FetchAgentMessages, activities.FetchAgentMessagesInput{ConversationSID: fi.ConversationSID, AfterIndex: after})
	c.sel.AddFuture(f, func(f workflow.Future) {
		c.s.Ops.Fetching = false
		var res activities.FetchAgentMessagesResult
		if err := f.Get(ctx, &res); err != nil {
			workflow.GetLogger(ctx).Warn("fetch agent messages of a closed Flex conversation", "conversation", fi.ConversationSID, "error", err)
			return
		}
		if c.s.Episode != episode {
			return
		}
		for _, m := range res.Messages {
			if c.fresh(m.SID) {
				c.relayAgent(ctx, "", m.Body, fetchedFiles(m.Files))
			}
		}
	})
}

// tellCase signals the conversation's current case.
func (c *conversation) tellCase(ctx workflow.Context, ev CaseEventSignal) {
	c.signalCase(ctx, c.s.CaseID, ev)
}

// signalCase signals a case. A case that is gone (closed by an operator) is noted and otherwise
// ignored: the conversation goes on. Legacy conversations waited for the signal to land.
func (c *conversation) signalCase(ctx workflow.Context, caseID string, ev CaseEventSignal) {
	if caseID == "" {
		return
	}
	f := workflow.SignalExternalWorkflow(ctx, CaseWorkflowID(caseID), "", SignalCaseEvent, ev)
	if !c.v2() {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("signal case", "case", caseID, "error", err)
		}
		return
	}
	c.s.Ops.Signalling++
	c.sel.AddFuture(f, func(f workflow.Future) {
		c.s.Ops.Signalling--
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("signal case", "case", caseID, "error", err)
		}
	})
}

// reportEnd tells the case how the conversation ended, once per case.
func (c *conversation) reportEnd(ctx workflow.Context, reason string) {
	if !c.v2() || c.s.CaseID == "" || c.s.CaseReported == c.s.CaseID {
		return
	}
	c.s.CaseReported = c.s.CaseID
	c.tellCase(ctx, endReport(c.s.CaseID, reason, c.s.Transcript))
}

// endReport is the CaseEvent that tells a support case how its conversation ended: the outcome,
// and the status it moves to (none: it stays open for a follow-up).
func endReport(caseID, reason string, transcript []activities.TranscriptLine) CaseEventSignal {
	ev := CaseEventSignal{EventID: "end:" + caseID, ConversationEnded: true, Outcome: reason}
	switch reason {
	case ReasonRated, ReasonNoRating, ReasonNewQuestion, ReasonFlexGone:
		ev.Outcome, ev.Note = OutcomeResolved, "the conversation ended after the chat"
	case ReasonByOperator:
		ev.Status, ev.Force, ev.Outcome, ev.Note = CaseClosed, true, OutcomeClosedByOperator, "the conversation was closed by an operator"
	case ReasonSolved:
		ev.Status, ev.Outcome, ev.Note = CaseResolved, OutcomeSolvedByBot, "the member found the answer in the help center"
	case ReasonLeftMessage:
		ev.Outcome, ev.Note = OutcomeAwaitingFollowUp, "no agent was free; the member left a message for a follow-up by DM"
	default: // inactive after a failed hand-over
		ev.Outcome, ev.Note = OutcomeHandoverFailed, "the member left after the hand-over to Flex failed; follow up by DM"
	}
	if lines := memberLines(transcript); lines != "" {
		ev.Note += "\n\nThe member wrote:\n" + truncate(lines, 1500)
	}
	return ev
}

func memberLines(t []activities.TranscriptLine) string {
	var b strings.Builder
	for _, l := range t {
		if l.From == "member" {
			b.WriteString(l.Text)
			b.WriteString("\n")
		}
	}
	return strings.TrimSpace(b.String())
}
