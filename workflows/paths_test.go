package workflows

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
)

// Tests of the ways out of every stage: each one fails on the behaviour before "every path ends".

// caseView queries a case workflow from inside a scripted callback.
func (c *convTest) caseView(caseID string) CaseView {
	c.t.Helper()
	v, err := c.env.QueryWorkflowByID(CaseWorkflowID(caseID), QueryStatus)
	if err != nil {
		c.t.Errorf("query case %s: %v", caseID, err)
		return CaseView{}
	}
	var cv CaseView
	if err := v.Get(&cv); err != nil {
		c.t.Errorf("decode case: %v", err)
	}
	return cv
}

func (c *convTest) update(name string, arg any, onDone func(any, error)) {
	c.after(time.Second, func() {
		c.env.UpdateWorkflow(name, fmt.Sprint(name, c.at), &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { onDone(nil, err) },
			OnComplete: onDone,
		}, arg)
	})
}

func containsAny(texts []string, sub string) bool {
	for _, t := range texts {
		if strings.Contains(t, sub) {
			return true
		}
	}
	return false
}

func TestNoAgentWithinTheQueueTimeoutOffersAChoice(t *testing.T) {
	c := newConvTest(t)
	var offered, requeued ConversationStatus
	var caseAtEnd CaseView
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.after(11*time.Minute, func() { offered = c.status() })
	c.after(time.Second, func() {
		c.env.SignalWorkflow(SignalUserAction, UserActionSignal{EventID: "i2", Member: testMember, Action: ActionKeepWaiting, CaseID: offered.CaseID})
	})
	c.after(time.Second, func() { requeued = c.status() })
	// The second wait ends by Flex cancelling the task.
	c.after(time.Minute, func() {
		c.env.SignalWorkflow(SignalNoAgent, NoAgentSignal{EventID: "EVc", CaseID: requeued.CaseID, TaskSID: requeued.Flex.TaskSID, Reason: "task.canceled"})
	})
	c.after(time.Second, func() {
		c.env.SignalWorkflow(SignalUserAction, UserActionSignal{EventID: "i3", Member: testMember, Action: ActionLeaveMessage, CaseID: requeued.CaseID})
	})
	c.after(time.Second, func() { caseAtEnd = c.caseView(requeued.CaseID) })
	res := c.run(ConversationOptions{QueueTimeout: 10 * time.Minute})

	if offered.Stage != StageNoAgent || offered.Flex != nil {
		t.Fatalf("after the queue timeout: stage %s flex %+v", offered.Stage, offered.Flex)
	}
	if requeued.Stage != StageQueued || requeued.Handovers != 2 || requeued.Flex == nil || requeued.Flex.Handover != 2 {
		t.Fatalf("after keep waiting: %+v", requeued)
	}
	if res.ClosedReason != ReasonLeftMessage {
		t.Fatalf("result = %+v", res)
	}
	dms := c.fakes.dmTexts()
	if strings.Count(strings.Join(dms, "\n"), "No agent is free right now") != 2 || !containsAny(dms, "back in the queue") || !containsAny(dms, "stays open") {
		t.Errorf("DMs = %q", dms)
	}
	if containsAny(dms, "has been resolved") || containsAny(dms, "Rate the help") {
		t.Errorf("a chat nobody took was reported resolved: %q", dms)
	}
	// Both waiting tasks were withdrawn from Flex.
	if len(c.fakes.closed) != 2 {
		t.Errorf("closed %d Flex interactions, want 2", len(c.fakes.closed))
	}
	if caseAtEnd.Status != CaseOpen || caseAtEnd.Outcome != OutcomeAwaitingFollowUp || !caseAtEnd.ConversationEnded {
		t.Errorf("case = status %s outcome %q ended %v", caseAtEnd.Status, caseAtEnd.Outcome, caseAtEnd.ConversationEnded)
	}
	// The choice buttons were disabled once chosen.
	if len(c.fakes.edits) < 2 {
		t.Errorf("edits = %+v", c.fakes.edits)
	}
}

func TestNoChoiceLeavesAMessage(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.after(time.Minute, func() {
		st := c.status()
		c.env.SignalWorkflow(SignalNoAgent, NoAgentSignal{EventID: "EVt", CaseID: st.CaseID, TaskSID: st.Flex.TaskSID, Reason: "workflow.timeout"})
	})
	var waiting, after ConversationStatus
	c.after(19*time.Minute, func() { waiting = c.status() })
	c.after(2*time.Minute, func() { after = c.status() })
	res := c.run(ConversationOptions{ChoiceTimeout: 20 * time.Minute})
	if res.ClosedReason != ReasonLeftMessage || waiting.Stage != StageNoAgent || after.Stage != StageClosed {
		t.Fatalf("result %+v; at 19 min %s, at 21 min %s", res, waiting.Stage, after.Stage)
	}
}

func TestNoAgentOfAnEarlierTaskIsIgnored(t *testing.T) {
	c := newConvTest(t)
	var st ConversationStatus
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalNoAgent, NoAgentSignal{EventID: "EVx", TaskSID: "WTsomethingelse", Reason: "task.canceled"})
	c.after(time.Second, func() { st = c.status() })
	c.after(time.Second, func() {
		c.env.UpdateWorkflow(UpdateClose, "close", &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {}}, CloseRequest{})
	})
	c.run(ConversationOptions{})
	if st.Stage != StageQueued {
		t.Errorf("a NoAgent of another task moved the conversation to %s", st.Stage)
	}
}

func TestSilentLiveChatIsCheckedAndResolvedWhenFlexLostIt(t *testing.T) {
	c := newConvTest(t)
	var stillLive, after ConversationStatus
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(61*time.Minute, func() { stillLive = c.status() }) // first check: Flex still has it
	c.after(time.Second, func() { c.fakes.lose(stillLive.Flex.ConversationSID) })
	c.after(61*time.Minute, func() { after = c.status() })
	c.signal(SignalUserAction, action("i2", ActionRate, 3))
	res := c.run(ConversationOptions{LiveCheckAfter: time.Hour})
	if stillLive.Stage != StageLive {
		t.Fatalf("after the first check: %s", stillLive.Stage)
	}
	if after.Stage != StageResolved {
		t.Fatalf("after Flex lost the chat: %s", after.Stage)
	}
	if len(c.fakes.checks) != 2 || res.ClosedReason != ReasonRated {
		t.Errorf("checks %d, result %+v", len(c.fakes.checks), res)
	}
}

func TestMemberIsHandedOverAgainWhenFlexLostTheConversation(t *testing.T) {
	c := newConvTest(t)
	var rehanded ConversationStatus
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(time.Second, func() { c.fakes.lose(c.status().Flex.ConversationSID) })
	c.signal(SignalUserMessage, msg("m1", "are you there?"))
	c.after(time.Second, func() { rehanded = c.status() })
	c.after(time.Second, func() {
		c.env.SignalWorkflow(SignalAgentJoined, AgentJoinedSignal{EventID: "EV2", AgentName: "Bo", TaskSID: rehanded.Flex.TaskSID})
	})
	c.after(time.Second, func() {
		c.env.SignalWorkflow(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV3", TaskSID: rehanded.Flex.TaskSID})
	})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	res := c.run(ConversationOptions{})

	if rehanded.Handovers != 2 || rehanded.Flex == nil || rehanded.Flex.Handover != 2 || rehanded.CaseID != res.CaseID {
		t.Fatalf("after the loss: %+v", rehanded)
	}
	// The message that found Flex gone reached the new conversation, once.
	if got := c.fakes.flexBodies(); len(got) != 1 || got[0] != "are you there?" {
		t.Errorf("posted to Flex = %q", got)
	}
	if n := len(c.fakes.created); n != 2 || c.fakes.created[1].Handover != 2 || !strings.Contains(fmt.Sprint(c.fakes.created[1].Transcript), "are you there?") {
		t.Errorf("hand-overs = %+v", c.fakes.created)
	}
	if !containsAny(c.fakes.dmTexts(), "reconnected you") {
		t.Errorf("member was not told: %q", c.fakes.dmTexts())
	}
}

func TestOperatorCloseIsFinalWhileTheCaseIsBeingOpened(t *testing.T) {
	c := newConvTest(t)
	c.after(time.Second, func() {
		c.env.SignalWorkflow(SignalUserAction, action("i1", ActionTalkToHuman, 0))
		c.env.UpdateWorkflow(UpdateClose, "close", &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(err error) { t.Errorf("close rejected: %v", err) }, OnComplete: func(any, error) {}}, CloseRequest{Reason: "spam", Operator: "ops"})
	})
	res := c.run(ConversationOptions{})
	if res.ClosedReason != ReasonByOperator {
		t.Fatalf("result = %+v", res)
	}
	dms := c.fakes.dmTexts()
	if containsAny(dms, "created. Transferring") {
		t.Errorf("the member heard of a case after the close: %q", dms)
	}
	if !strings.Contains(dms[len(dms)-1], "Support closed this conversation") {
		t.Errorf("the close was not the last word: %q", dms)
	}
	if len(c.fakes.created) != 0 {
		t.Errorf("a Flex interaction was created after the close: %+v", c.fakes.created)
	}
}

func TestOperatorCloseWhileQueuedWithdrawsTheTaskAndClosesTheCase(t *testing.T) {
	c := newConvTest(t)
	var caseID string
	var caseView CaseView
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.after(time.Second, func() { caseID = c.status().CaseID })
	// The close ends the case workflow at once; its last view is its result.
	c.env.SetOnChildWorkflowCompletedListener(func(_ *workflow.Info, result converter.EncodedValue, _ error) {
		_ = result.Get(&caseView)
	})
	c.update(UpdateClose, CloseRequest{Reason: "duplicate", Operator: "ops"}, func(any, error) {})
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"}) // too late
	res := c.run(ConversationOptions{})
	if res.Stage != StageClosed || len(c.fakes.closed) != 1 {
		t.Fatalf("result %+v, closed %d", res, len(c.fakes.closed))
	}
	if caseView.CaseID != caseID || caseView.Status != CaseClosed || caseView.Outcome != OutcomeClosedByOperator {
		t.Errorf("case %s = %s / %q", caseView.CaseID, caseView.Status, caseView.Outcome)
	}
	if containsAny(c.fakes.dmTexts(), "Ana joined") {
		t.Errorf("a closed conversation reopened: %q", c.fakes.dmTexts())
	}
}

func TestThanksAfterWrapUpKeepsTheRating(t *testing.T) {
	c := newConvTest(t)
	var caseID string
	var rated CaseView
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserMessage, msg("m1", "thanks!"))
	c.after(time.Second, func() {
		caseID = c.status().CaseID
		c.env.SignalWorkflow(SignalUserAction, UserActionSignal{EventID: "i2", Member: testMember, Action: ActionRate, Rating: 5, CaseID: caseID})
	})
	c.after(time.Second, func() { rated = c.caseView(caseID) })
	res := c.run(ConversationOptions{})
	if res.ClosedReason != ReasonRated || res.Rating != 5 || rated.Rating != 5 {
		t.Fatalf("result %+v, case rating %d", res, rated.Rating)
	}
	if n := len(c.fakes.searches); n != 0 {
		t.Errorf("a thank-you restarted the bot (%d searches)", n)
	}
}

func TestNewQuestionInTheRatingWindowKeepsThePendingRating(t *testing.T) {
	c := newConvTest(t)
	var first string
	var rated CaseView
	var during ConversationStatus
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.after(time.Second, func() { first = c.status().CaseID })
	c.signal(SignalUserMessage, msg("m1", "one more thing: how do I reset my password?"))
	c.after(time.Second, func() { during = c.status() })
	c.after(time.Second, func() {
		c.env.SignalWorkflow(SignalUserAction, UserActionSignal{EventID: "i2", Member: testMember, Action: ActionRate, Rating: 4, CaseID: first})
	})
	c.after(time.Second, func() { rated = c.caseView(first) })
	c.signal(SignalUserAction, action("i3", ActionSolved, 0))
	res := c.run(ConversationOptions{})
	if during.Stage != StageBot || during.Episode != 1 {
		t.Fatalf("a new question did not start a new conversation: %s episode %d", during.Stage, during.Episode)
	}
	if rated.Rating != 4 {
		t.Errorf("the earlier case's rating = %d, want 4", rated.Rating)
	}
	if res.ClosedReason != ReasonSolved {
		t.Errorf("result = %+v", res)
	}
}

func TestAgentMessageAfterTheWrapUpStillReachesTheMember(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2", Reason: "wrapped up"})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM1", Text: "One last tip: restart the app.", HasIndex: true, Index: 0})
	// The conversation closes; a message written just before it whose webhook never came is
	// fetched before the door shuts.
	c.after(time.Second, func() {
		st := c.status()
		c.fakes.mu.Lock()
		c.fakes.agentLog[st.Flex.ConversationSID] = []activities.AgentMessage{
			{SID: "IM1", Index: 0, Body: "One last tip: restart the app."},
			{SID: "IM2", Index: 1, Body: "Bye!"},
		}
		c.fakes.mu.Unlock()
		c.env.SignalWorkflow(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV3", ConversationClosed: true, ConversationSID: st.Flex.ConversationSID})
	})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM3", Text: "after the close", HasIndex: true, Index: 2})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	c.run(ConversationOptions{})
	var agent []string
	for _, d := range c.fakes.dmTexts() {
		if strings.HasPrefix(d, "**Ana:**") {
			agent = append(agent, d)
		}
	}
	if strings.Join(agent, "|") != "**Ana:** One last tip: restart the app.|**Ana:** Bye!" {
		t.Errorf("agent messages = %q", agent)
	}
}

func TestMissingAgentMessagesAreFetchedAndRelayedInOrder(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM0", Text: "zero", HasIndex: true, Index: 0})
	c.after(time.Second, func() {
		st := c.status()
		c.fakes.mu.Lock()
		c.fakes.agentLog[st.Flex.ConversationSID] = []activities.AgentMessage{
			{SID: "IM0", Index: 0, Body: "zero"}, {SID: "IM1", Index: 1, Body: "one"},
			{SID: "IM2", Index: 2, Body: "two"}, {SID: "IM3", Index: 3, Body: "three"},
		}
		c.fakes.mu.Unlock()
		// The webhooks of one and two were lost; three arrives.
		c.env.SignalWorkflow(SignalAgentMessage, AgentMessageSignal{EventID: "IM3", Text: "three", HasIndex: true, Index: 3})
	})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM2", Text: "two", HasIndex: true, Index: 2}) // late webhook
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	c.run(ConversationOptions{})
	var agent []string
	for _, d := range c.fakes.dmTexts() {
		if strings.HasPrefix(d, "**Ana:**") {
			agent = append(agent, strings.TrimPrefix(d, "**Ana:** "))
		}
	}
	if strings.Join(agent, " ") != "zero one two three" {
		t.Errorf("agent messages = %q", agent)
	}
}

func TestHelpAgainAfterFailedDMsUnblocksTheMember(t *testing.T) {
	c := newConvTest(t)
	c.fakes.setDMsClosed(true)
	c.signal(SignalHelpRequested, help("i1"))
	c.after(time.Minute, func() { c.fakes.setDMsClosed(false) })
	c.signal(SignalHelpRequested, help("i2"))
	c.signal(SignalUserMessage, msg("m1", "password"))
	c.signal(SignalUserAction, action("i3", ActionSolved, 0))
	res := c.run(ConversationOptions{})
	if res.Undelivered != 0 || res.ClosedReason != ReasonSolved {
		t.Fatalf("result = %+v", res)
	}
	dms := c.fakes.dmTexts()
	if len(dms) != 3 || !strings.HasPrefix(dms[0], "Hi Mika") || !strings.Contains(dms[1], "Here's what I found") {
		t.Errorf("DMs = %q (the stale greeting is dropped, the new one delivered)", dms)
	}
}

func TestEveryEndReachesTheCase(t *testing.T) {
	for _, tt := range []struct {
		name    string
		script  func(c *convTest, caseID *string)
		outcome string
		status  CaseStatus
	}{
		{"handover failed then inactive", func(c *convTest, caseID *string) {
			c.fakes.mu.Lock()
			c.fakes.createFails = true
			c.fakes.mu.Unlock()
			c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
		}, OutcomeHandoverFailed, CaseOpen},
		{"handover failed then solved", func(c *convTest, caseID *string) {
			c.fakes.mu.Lock()
			c.fakes.createFails = true
			c.fakes.mu.Unlock()
			c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
			c.after(time.Minute, func() { c.env.SignalWorkflow(SignalUserAction, action("i2", ActionSolved, 0)) })
		}, OutcomeSolvedByBot, CaseResolved},
		{"resolved without a rating", func(c *convTest, caseID *string) {
			c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
			c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
			c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
		}, OutcomeResolved, CaseResolved},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newConvTest(t)
			var caseID string
			var last CaseView
			tt.script(c, &caseID)
			c.after(time.Second, func() { caseID = c.status().CaseID })
			// Query the case just before the conversation's last deadline has passed.
			c.env.RegisterDelayedCallback(func() { last = c.caseView(caseID) }, 25*time.Hour)
			c.run(ConversationOptions{InactivityTimeout: 10 * time.Minute, RatingTimeout: 24 * time.Hour, Transfer: DeliveryPolicy{MaxAttempts: 1}})
			if last.Outcome != tt.outcome || last.Status != tt.status || !last.ConversationEnded {
				t.Errorf("case = status %s outcome %q ended %v", last.Status, last.Outcome, last.ConversationEnded)
			}
		})
	}
}

func TestFlexDeliveryDelayIsToldAndItsRecovery(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(time.Second, func() {
		c.fakes.mu.Lock()
		c.fakes.flexFailures = 3 // the fast try's two attempts and one of the full policy
		c.fakes.mu.Unlock()
	})
	c.signal(SignalUserMessage, msg("m1", "hello?"))
	c.after(5*time.Minute, func() { c.env.SignalWorkflow(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"}) })
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	c.run(ConversationOptions{})
	dms := c.fakes.dmTexts()
	delayed, recovered := -1, -1
	for i, d := range dms {
		if strings.Contains(d, "hasn't reached the agent") {
			delayed = i
		}
		if strings.Contains(d, "has now reached the agent") {
			recovered = i
		}
	}
	if delayed < 0 || recovered < delayed {
		t.Errorf("DMs = %q", dms)
	}
	if got := c.fakes.flexBodies(); len(got) != 1 {
		t.Errorf("posted %q", got)
	}
}

func TestAgentAcceptsBeforeTheHandOverAnswers(t *testing.T) {
	c := newConvTest(t)
	// Flex routes the task at once; the answer to the create call comes 30 s later.
	c.env.OnActivity("CreateFlexInteraction", mock.Anything, mock.Anything).Return(c.fakes.CreateFlexInteraction).After(30 * time.Second)
	var live ConversationStatus
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.after(5*time.Second, func() {
		st := c.status()
		c.env.SignalWorkflow(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana", CaseID: st.CaseID, TaskSID: "WT" + st.CaseID})
	})
	c.after(time.Minute, func() { live = c.status() })
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	c.run(ConversationOptions{})
	if live.Stage != StageLive || live.Flex == nil {
		t.Fatalf("after the late answer: stage %s flex %+v", live.Stage, live.Flex)
	}
	if len(c.fakes.closed) != 0 {
		t.Errorf("the accepted task was withdrawn: %+v", c.fakes.closed)
	}
}

func TestFlexIndexWatermark(t *testing.T) {
	c := &conversation{s: ConversationState{Behaviour: behaviourEveryPathEnds, FlexIndex: -1, FlexIndexKnown: true}}
	for _, i := range []int{0, 2, 3, 5} {
		c.learnFlexIndex(i)
	}
	if c.s.FlexIndex != 0 || len(c.s.FlexAhead) != 3 {
		t.Fatalf("after 0,2,3,5: index %d ahead %v", c.s.FlexIndex, c.s.FlexAhead)
	}
	// A fetch read everything up to 1; 2 and 3 were known already, 5 still waits for 4.
	c.learnFlexRange(1)
	if c.s.FlexIndex != 3 || len(c.s.FlexAhead) != 1 || c.s.FlexAhead[0] != 5 {
		t.Fatalf("after a fetch up to 1: index %d ahead %v", c.s.FlexIndex, c.s.FlexAhead)
	}
	c.learnFlexIndex(4)
	if c.s.FlexIndex != 5 || len(c.s.FlexAhead) != 0 {
		t.Fatalf("after 4: index %d ahead %v", c.s.FlexIndex, c.s.FlexAhead)
	}
}
