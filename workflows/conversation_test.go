package workflows

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/stretchr/testify/mock"
)

const testUser = "1001"

var testMember = Member{UserID: testUser, Username: "mika", DisplayName: "Mika"}

type convTest struct {
	t     *testing.T
	env   *testsuite.TestWorkflowEnvironment
	fakes *fakeProviders
	at    time.Duration // time of the next scripted event
}

func newConvTest(t *testing.T) *convTest {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger())
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Conversation)
	env.RegisterWorkflow(Case)
	fakes := newFakeProviders()
	fakes.register(env)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ConversationWorkflowID(testUser), TaskQueue: TaskQueue})
	return &convTest{t: t, env: env, fakes: fakes}
}

// after schedules fn one step after the previous scripted event.
func (c *convTest) after(d time.Duration, fn func()) {
	c.at += d
	c.env.RegisterDelayedCallback(fn, c.at)
}

func (c *convTest) signal(name string, arg any) {
	c.after(time.Second, func() { c.env.SignalWorkflow(name, arg) })
}

func (c *convTest) status() ConversationStatus {
	c.t.Helper()
	v, err := c.env.QueryWorkflow(QueryStatus)
	if err != nil {
		c.t.Fatalf("query status: %v", err)
	}
	var st ConversationStatus
	if err := v.Get(&st); err != nil {
		c.t.Fatalf("decode status: %v", err)
	}
	return st
}

func (c *convTest) run(opts ConversationOptions) ConversationResult {
	c.t.Helper()
	c.env.ExecuteWorkflow(Conversation, ConversationInput{Member: testMember, GuildID: "g1", GuildName: "Guild", Locale: "en-US", Options: opts})
	if !c.env.IsWorkflowCompleted() {
		c.t.Fatal("workflow did not complete")
	}
	if err := c.env.GetWorkflowError(); err != nil {
		c.t.Fatalf("workflow error: %v", err)
	}
	var res ConversationResult
	if err := c.env.GetWorkflowResult(&res); err != nil {
		c.t.Fatalf("result: %v", err)
	}
	return res
}

func help(id string) HelpRequestedSignal {
	return HelpRequestedSignal{EventID: id, Member: testMember, GuildID: "g1", Locale: "en-US",
		Interaction: &Interaction{ApplicationID: "app", Token: "tok-" + id}}
}

func msg(id, text string) UserMessageSignal {
	return UserMessageSignal{EventID: id, Member: testMember, Text: text}
}

// ask is a message that ingress read as a request for a person.
func ask(id, text string) UserMessageSignal {
	return UserMessageSignal{EventID: id, Member: testMember, Text: text, WantsHuman: true}
}

func action(id string, a UserAction, rating int) UserActionSignal {
	return UserActionSignal{EventID: id, Member: testMember, Action: a, Rating: rating}
}

func TestConversationJourney(t *testing.T) {
	c := newConvTest(t)
	var queued, live, resolved ConversationStatus
	c.signal(SignalHelpRequested, help("i1"))
	c.signal(SignalUserMessage, msg("m1", "I forgot my password"))
	c.signal(SignalUserAction, action("i2", ActionTalkToHuman, 0))
	c.signal(SignalUserMessage, msg("m2", "still there?"))
	c.after(time.Second, func() { queued = c.status() })
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM1", Text: "Hi Mika, I can help."})
	c.signal(SignalUserMessage, msg("m3", "thanks!"))
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM2", Text: "Done: check your email."})
	c.after(time.Second, func() { live = c.status() })
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.after(time.Second, func() { resolved = c.status() })
	c.signal(SignalUserAction, action("i3", ActionRate, 5))

	res := c.run(ConversationOptions{})

	if res.Stage != StageClosed || res.ClosedReason != ReasonRated || res.Rating != 5 || !ValidCaseID(res.CaseID) {
		t.Fatalf("result = %+v", res)
	}
	if queued.Stage != StageQueued || queued.CaseID != res.CaseID || queued.Flex == nil {
		t.Errorf("after transfer: stage %s case %q flex %v", queued.Stage, queued.CaseID, queued.Flex)
	}
	if live.Stage != StageLive || live.Agent != "Ana" {
		t.Errorf("after join: stage %s agent %q", live.Stage, live.Agent)
	}
	if resolved.Stage != StageResolved {
		t.Errorf("after wrap-up: stage %s", resolved.Stage)
	}

	dms := c.fakes.dmTexts()
	want := []string{
		"Hi Mika!",                        // greeting
		"Here's what I found",             // articles
		"Case " + res.CaseID + " created", // transfer
		"Ana joined",
		"**Ana:** Hi Mika, I can help.",
		"**Ana:** Done: check your email.",
		"Your case " + res.CaseID + " has been resolved",
		"Would you like a copy of this chat?",
		"Thanks for rating us 5/5",
	}
	if len(dms) != len(want) {
		t.Fatalf("got %d DMs, want %d:\n%s", len(dms), len(want), strings.Join(dms, "\n"))
	}
	for i := range want {
		if !strings.Contains(dms[i], want[i]) {
			t.Errorf("DM %d = %q, want it to contain %q", i, dms[i], want[i])
		}
	}
	// The article answer carries three embeds and the two buttons; the greeting the human button.
	if n := len(c.fakes.dms[1].Message.Embeds); n != 3 {
		t.Errorf("article answer has %d embeds, want 3", n)
	}
	if b := c.fakes.dms[0].Message.Buttons; len(b) != 1 || b[0].CustomID != ButtonCustomID(ActionTalkToHuman, 0) {
		t.Errorf("greeting buttons = %+v", b)
	}
	if b := c.fakes.dms[6].Message.Buttons; len(b) != 5 || b[4].CustomID != "flexcord:rate:5:"+res.CaseID {
		t.Errorf("rating buttons = %+v", b)
	}
	if got := c.fakes.flexBodies(); strings.Join(got, "|") != "still there?|thanks!" {
		t.Errorf("messages to Flex = %q", got)
	}
	if len(c.fakes.created) != 1 {
		t.Fatalf("CreateFlexInteraction called %d times", len(c.fakes.created))
	}
	created := c.fakes.created[0]
	if created.CaseID != res.CaseID || len(created.Articles) != 3 || len(created.Transcript) == 0 {
		t.Errorf("flex interaction input = %+v", created)
	}
	if len(c.fakes.followUp) != 1 || !c.fakes.followUp[0].Message.Ephemeral {
		t.Errorf("follow-ups = %+v", c.fakes.followUp)
	}
	// Every delivery carries a distinct idempotency key that fits Discord's 25-character nonce.
	seen := map[string]bool{}
	for _, d := range c.fakes.dms {
		if len(d.Nonce) == 0 || len(d.Nonce) > 25 || seen[d.Nonce] {
			t.Errorf("bad or repeated nonce %q", d.Nonce)
		}
		seen[d.Nonce] = true
	}
}

func TestConversationCaseRecordsResolutionAndRating(t *testing.T) {
	c := newConvTest(t)
	var caseView CaseView
	c.signal(SignalUserMessage, ask("m1", "I want to talk to a human"))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i3", ActionRate, 4))
	var caseID string
	c.after(time.Second, func() {
		caseID = c.status().CaseID
		v, err := c.env.QueryWorkflowByID(CaseWorkflowID(caseID), QueryStatus)
		if err != nil {
			t.Errorf("query case: %v", err)
			return
		}
		if err := v.Get(&caseView); err != nil {
			t.Errorf("decode case: %v", err)
		}
	})
	res := c.run(ConversationOptions{})
	if res.ClosedReason != ReasonRated {
		t.Fatalf("result = %+v", res)
	}
	if caseView.Status != CaseResolved || caseView.Rating != 4 || caseView.Assignee != "Ana" || caseView.Type != CaseSupport {
		t.Fatalf("case = %+v", caseView)
	}
	if caseView.Flex == nil || caseView.Flex.InteractionSID != "KD"+caseID {
		t.Errorf("case flex links = %+v", caseView.Flex)
	}
	if !strings.Contains(caseView.Title, "talk to a human") {
		t.Errorf("case title = %q", caseView.Title)
	}
	// Status changes that come from the conversation are not announced twice to the member.
	for _, d := range c.fakes.dmTexts() {
		if strings.Contains(d, "is now") {
			t.Errorf("unexpected case notification %q", d)
		}
	}
}

func TestConversationClosesAfterInactivity(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalHelpRequested, help("i1"))
	start := c.env.Now()
	res := c.run(ConversationOptions{InactivityTimeout: 10 * time.Minute})
	if res.ClosedReason != ReasonInactive {
		t.Fatalf("closed reason = %q", res.ClosedReason)
	}
	if elapsed := c.env.Now().Sub(start); elapsed < 10*time.Minute || elapsed > 11*time.Minute {
		t.Errorf("closed after %v, want about 10 minutes", elapsed)
	}
	dms := c.fakes.dmTexts()
	if len(dms) != 2 || !strings.Contains(dms[1], "haven't heard from you") {
		t.Errorf("DMs = %q", dms)
	}
}

func TestConversationInactivityTimerRestartsOnEachMessage(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalHelpRequested, help("i1"))
	c.after(8*time.Minute, func() { c.env.SignalWorkflow(SignalUserMessage, msg("m1", "what about my password")) })
	start := c.env.Now()
	res := c.run(ConversationOptions{InactivityTimeout: 10 * time.Minute})
	if res.ClosedReason != ReasonInactive {
		t.Fatalf("closed reason = %q", res.ClosedReason)
	}
	if elapsed := c.env.Now().Sub(start); elapsed < 18*time.Minute {
		t.Errorf("closed after %v, want at least 18 minutes (10 after the last message)", elapsed)
	}
}

func TestConversationSolvedClosesFromBot(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalUserMessage, msg("m1", "password reset"))
	c.signal(SignalUserAction, action("i1", ActionSolved, 0))
	res := c.run(ConversationOptions{})
	if res.ClosedReason != ReasonSolved || res.CaseID != "" {
		t.Fatalf("result = %+v", res)
	}
	dms := c.fakes.dmTexts()
	if len(dms) != 2 || !strings.Contains(dms[1], "glad that helped") {
		t.Errorf("DMs = %q", dms)
	}
}

func TestConversationNothingFoundOffersHuman(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalUserMessage, msg("m1", "purple elephant"))
	c.signal(SignalUserAction, action("i1", ActionSolved, 0))
	c.run(ConversationOptions{})
	first := c.fakes.dms[0].Message
	if !strings.Contains(first.Content, "couldn't find") || len(first.Embeds) != 0 ||
		len(first.Buttons) != 1 || first.Buttons[0].CustomID != ButtonCustomID(ActionTalkToHuman, 0) {
		t.Fatalf("answer = %+v", first)
	}
}

func TestConversationIgnoresDuplicateSignals(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalUserMessage, msg("m1", "password"))
	c.signal(SignalUserMessage, msg("m1", "password")) // gateway redelivery
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM1", Text: "hello"})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM1", Text: "hello"}) // webhook re-sent
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 3))
	c.signal(SignalUserAction, action("i2", ActionRate, 3))
	c.run(ConversationOptions{})

	if n := len(c.fakes.searches); n != 1 {
		t.Errorf("knowledge base searched %d times, want 1", n)
	}
	if n := len(c.fakes.created); n != 1 {
		t.Errorf("Flex interaction created %d times, want 1", n)
	}
	count := map[string]int{}
	for _, d := range c.fakes.dmTexts() {
		count[d]++
	}
	for text, n := range count {
		if n > 1 {
			t.Errorf("member received %q %d times", text, n)
		}
	}
}

func TestConversationDeliversInOrderOneAtATime(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(time.Second, func() {
		for i := 1; i <= 20; i++ {
			c.env.SignalWorkflow(SignalAgentMessage, AgentMessageSignal{EventID: fmt.Sprint("IM", i), Text: fmt.Sprint("line ", i)})
			c.env.SignalWorkflow(SignalUserMessage, msg(fmt.Sprint("m", i), fmt.Sprint("reply ", i)))
		}
	})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	c.run(ConversationOptions{})

	var lines []string
	for _, d := range c.fakes.dmTexts() {
		if strings.HasPrefix(d, "**Ana:** line ") {
			lines = append(lines, strings.TrimPrefix(d, "**Ana:** "))
		}
	}
	replies := c.fakes.flexBodies()
	for i := 1; i <= 20; i++ {
		if i > len(lines) || lines[i-1] != fmt.Sprint("line ", i) {
			t.Fatalf("agent lines out of order or missing: %q", lines)
		}
		if i > len(replies) || replies[i-1] != fmt.Sprint("reply ", i) {
			t.Fatalf("member replies out of order or missing: %q", replies)
		}
	}
	if c.fakes.maxInFlight != 1 {
		t.Errorf("up to %d deliveries in flight to one destination, want 1", c.fakes.maxInFlight)
	}
}

func TestConversationFailedDeliveryIsRecordedAndRetried(t *testing.T) {
	c := newConvTest(t)
	var failed, afterRetry ConversationStatus
	var retried RetryDeliveriesResult
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(time.Second, func() { c.fakes.setDMsClosed(true) })
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM1", Text: "first"})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM2", Text: "second"})
	c.after(time.Second, func() { failed = c.status() })
	c.after(time.Second, func() {
		c.fakes.setDMsClosed(false)
		c.env.UpdateWorkflow(UpdateRetryDeliveries, "retry-1", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { t.Errorf("retry rejected: %v", err) },
			OnComplete: func(v any, err error) {
				if err != nil {
					t.Errorf("retry failed: %v", err)
					return
				}
				retried = v.(RetryDeliveriesResult)
			},
		}, RetryDeliveriesRequest{Operator: "test"})
	})
	c.after(time.Second, func() { afterRetry = c.status() })
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	c.run(ConversationOptions{})

	// The first message failed for good; the second is held behind it so order is kept.
	if len(failed.Failed) != 1 || failed.Failed[0].ErrorType != activities.ErrCannotMessageUser ||
		!strings.Contains(failed.Failed[0].Error, "50007") {
		t.Fatalf("failed deliveries = %+v", failed.Failed)
	}
	if len(failed.Pending) != 1 || !strings.Contains(failed.Pending[0].Preview, "second") {
		t.Fatalf("held deliveries = %+v", failed.Pending)
	}
	// The agent was told.
	var notice bool
	for _, b := range c.fakes.flexBodies() {
		notice = notice || strings.Contains(b, "could not be delivered to the member")
	}
	if !notice {
		t.Errorf("agent was not told about the failed delivery: %q", c.fakes.flexBodies())
	}
	if len(retried.Requeued) != 1 || retried.Requeued[0].Seq != failed.Failed[0].Seq {
		t.Errorf("requeued = %+v", retried.Requeued)
	}
	if len(afterRetry.Failed) != 0 {
		t.Errorf("still failed after retry: %+v", afterRetry.Failed)
	}
	var got []string
	for _, d := range c.fakes.dmTexts() {
		if strings.HasPrefix(d, "**Ana:**") {
			got = append(got, d)
		}
	}
	if strings.Join(got, "|") != "**Ana:** first|**Ana:** second" {
		t.Errorf("agent messages delivered = %q", got)
	}
}

func TestConversationClosedDMsTellTheMemberThroughTheInteraction(t *testing.T) {
	c := newConvTest(t)
	c.fakes.setDMsClosed(true)
	c.signal(SignalHelpRequested, help("i1"))
	c.after(time.Second, func() {
		c.env.UpdateWorkflow(UpdateClose, "close-1", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {},
		}, CloseRequest{Reason: "test", Operator: "ops"})
	})
	c.after(time.Second, func() {
		c.fakes.setDMsClosed(false)
		c.env.UpdateWorkflow(UpdateRetryDeliveries, "retry-1", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {},
		}, RetryDeliveriesRequest{})
	})
	res := c.run(ConversationOptions{})
	if res.Undelivered != 0 {
		t.Errorf("undelivered = %d", res.Undelivered)
	}
	var texts []string
	for _, f := range c.fakes.followUp {
		texts = append(texts, f.Message.Content)
	}
	if len(texts) != 1 || !strings.Contains(texts[0], "couldn't send you a direct message") {
		t.Fatalf("follow-ups = %q", texts)
	}
	// After the retry the greeting and the closing notice arrive, in that order.
	dms := c.fakes.dmTexts()
	if len(dms) != 2 || !strings.HasPrefix(dms[0], "Hi Mika") || !strings.Contains(dms[1], "Support closed") {
		t.Errorf("DMs after retry = %q", dms)
	}
}

func TestConversationContinuesAsNewWithoutLosingSignals(t *testing.T) {
	c := newConvTest(t)
	// The case would outlive this run and keep the test environment busy; it is not under test.
	c.env.OnWorkflow(Case, mock.Anything, mock.Anything).Return(CaseView{}, nil)
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	// Three signals in one batch: the threshold (3) is reached on the first of them, and the
	// other two are still buffered when the run decides to continue as new.
	c.after(time.Second, func() {
		c.env.SignalWorkflow(SignalAgentMessage, AgentMessageSignal{EventID: "IM1", Text: "one"})
		c.env.SignalWorkflow(SignalAgentMessage, AgentMessageSignal{EventID: "IM2", Text: "two"})
		c.env.SignalWorkflow(SignalUserMessage, msg("m1", "three"))
	})
	c.env.ExecuteWorkflow(Conversation, ConversationInput{Member: testMember, Options: ConversationOptions{ContinueAsNewAfter: 3}})

	err := c.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("workflow error = %v, want continue-as-new", err)
	}
	var next ConversationInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatalf("decode continue-as-new input: %v", err)
	}
	st := next.State
	if st == nil || st.Stage != StageLive || st.Agent != "Ana" || st.CaseID == "" || st.Flex == nil {
		t.Fatalf("carried state = %+v", st)
	}
	for _, id := range []string{"i1", "EV1", "IM1", "IM2", "m1"} {
		if st.Seen.Add(id) {
			t.Errorf("event %s not in the carried seen-set", id)
		}
	}
	// Everything the drained signals asked for is either delivered or carried as pending.
	var all []string
	all = append(all, c.fakes.dmTexts()...)
	all = append(all, c.fakes.flexBodies()...)
	for _, d := range st.Ledger.Queue {
		if d.Status != DeliveryPending {
			t.Errorf("carried delivery %d has status %s", d.Seq, d.Status)
		}
		all = append(all, d.Message.Content)
	}
	joined := strings.Join(all, "|")
	for _, want := range []string{"**Ana:** one", "**Ana:** two", "three"} {
		if !strings.Contains(joined, want) {
			t.Errorf("%q was lost across continue-as-new: %q", want, joined)
		}
	}
	if next.Options.ContinueAsNewAfter != 3 {
		t.Errorf("options not carried: %+v", next.Options)
	}
}

func TestConversationResumesFromCarriedState(t *testing.T) {
	c := newConvTest(t)
	state := &ConversationState{
		Member: testMember, Stage: StageLive, CaseID: "C-AAAAAA", Agent: "Ana",
		Flex: &activities.FlexInteraction{ConversationSID: "CH1", Identity: "discord:" + testUser},
		Ledger: Ledger{KeyPrefix: "k", NextSeq: 7, Delivered: 6, Queue: []Delivery{{
			Seq: 7, Key: "k-7", Dest: Destination{DestMember, testUser}, Label: "agent reply",
			Message: activities.Message{Content: "carried over"}, Status: DeliveryInFlight,
		}}},
		Seen: SeenSet{IDs: []string{"IM9"}},
	}
	// There is no case workflow behind this hand-made state.
	c.env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(nil)
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM9", Text: "duplicate from the last run"})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 2))
	c.env.ExecuteWorkflow(Conversation, ConversationInput{State: state})
	if err := c.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	dms := c.fakes.dmTexts()
	if len(dms) != 3 || dms[0] != "carried over" {
		t.Fatalf("DMs = %q", dms)
	}
}

func TestCaseIDs(t *testing.T) {
	for _, n := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
		id := FormatCaseID(n)
		if !ValidCaseID(id) {
			t.Errorf("FormatCaseID(%d) = %q is not valid", n, id)
		}
	}
	for _, bad := range []string{"", "C-", "C-12345", "C-ABCDE0", "X-ABCDEF", "C-ABCDEFG"} {
		if ValidCaseID(bad) {
			t.Errorf("ValidCaseID(%q) = true", bad)
		}
	}
}

func TestButtonCustomIDs(t *testing.T) {
	for _, tt := range []struct {
		a UserAction
		r int
	}{{ActionTalkToHuman, 0}, {ActionSolved, 0}, {ActionRate, 1}, {ActionRate, 5}} {
		a, r, err := ParseButtonCustomID(ButtonCustomID(tt.a, tt.r))
		if err != nil || a != tt.a || r != tt.r {
			t.Errorf("round trip %v %d: %v %d %v", tt.a, tt.r, a, r, err)
		}
	}
	for _, bad := range []string{"", "other:human", "flexcord:rate:9", "flexcord:rate:x", "flexcord:dance"} {
		if _, _, err := ParseButtonCustomID(bad); err == nil {
			t.Errorf("ParseButtonCustomID(%q) succeeded", bad)
		}
	}
}

// quietLogger keeps the test environment's debug chatter out of test output; warnings still show.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: quietLevel()})))
}

func TestConversationIgnoresAgentEventsOfAnotherCase(t *testing.T) {
	c := newConvTest(t)
	var live ConversationStatus
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	// A late wrap-up and message of the member's previous case must not touch this one.
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV0", CaseID: "C-OLD234"})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM0", CaseID: "C-OLD234", Text: "stale"})
	c.after(time.Second, func() { live = c.status() })
	c.after(time.Second, func() {
		c.env.SignalWorkflow(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2", CaseID: live.CaseID})
	})
	c.signal(SignalUserAction, action("i2", ActionRate, 4))
	res := c.run(ConversationOptions{})
	if live.Stage != StageLive {
		t.Fatalf("a wrap-up of another case moved the conversation to %s", live.Stage)
	}
	for _, d := range c.fakes.dmTexts() {
		if strings.Contains(d, "stale") {
			t.Errorf("a message of another case reached the member: %q", d)
		}
	}
	if res.ClosedReason != ReasonRated {
		t.Errorf("result = %+v", res)
	}
}

// quietLevel is the log level of workflow tests: errors only, or FLEXCORD_TEST_LOG=debug.
func quietLevel() slog.Level {
	if os.Getenv("FLEXCORD_TEST_LOG") == "debug" {
		return slog.LevelDebug
	}
	return slog.LevelError + 4
}

// TestConversationInactivityTimerIsNotRestartedPerMessage: with the fast-relay behaviour, a
// member writing every 30 s for ten minutes starts a couple of inactivity timers, cancels none,
// and the conversation still closes ten minutes after the last message. Conversations started
// before it (behaviour every-path-ends) keep cancelling and starting one per message.
func TestConversationInactivityTimerIsNotRestartedPerMessage(t *testing.T) {
	for _, bc := range []struct {
		name      string
		behaviour int
	}{{"fast relay", behaviourFastRelay}, {"every path ends", behaviourEveryPathEnds}} {
		t.Run(bc.name, func(t *testing.T) {
			c := newConvTest(t)
			c.env.OnGetVersion(versionChangeID, workflow.DefaultVersion, behaviourLatest).Return(workflow.Version(bc.behaviour))
			started, cancelled := 0, 0
			c.env.SetOnTimerScheduledListener(func(string, time.Duration) { started++ })
			c.env.SetOnTimerCanceledListener(func(string) { cancelled++ })
			c.signal(SignalHelpRequested, help("i1"))
			const messages = 20
			for i := range messages {
				c.after(30*time.Second, func() { c.env.SignalWorkflow(SignalUserMessage, msg(fmt.Sprint("m", i), "still there?")) })
			}
			start := c.env.Now()
			res := c.run(ConversationOptions{InactivityTimeout: 10 * time.Minute})
			if res.ClosedReason != ReasonInactive {
				t.Fatalf("closed reason = %q", res.ClosedReason)
			}
			lastMessage := time.Second + messages*30*time.Second
			if elapsed := c.env.Now().Sub(start); elapsed < lastMessage+10*time.Minute || elapsed > lastMessage+11*time.Minute {
				t.Errorf("closed after %v, want 10 to 11 minutes after the last message (%v)", elapsed, lastMessage)
			}
			t.Logf("%d messages: %d timers started, %d cancelled", messages, started, cancelled)
			if bc.behaviour >= behaviourFastRelay {
				if cancelled != 0 || started > 3 {
					t.Errorf("%d timers started and %d cancelled for %d messages; want at most 3 and none", started, cancelled, messages)
				}
			} else if cancelled < messages {
				t.Errorf("behaviour %d cancelled %d timers for %d messages; it should keep restarting one per message", bc.behaviour, cancelled, messages)
			}
		})
	}
}

// relayScript plays a live chat: the member asks for a human, Ana joins, both write n lines,
// Ana wraps up and the member rates.
func relayScript(c *convTest, n int) {
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	for i := 1; i <= n; i++ {
		c.signal(SignalAgentMessage, AgentMessageSignal{EventID: fmt.Sprint("IM", i), Text: fmt.Sprint("line ", i)})
		c.signal(SignalUserMessage, msg(fmt.Sprint("m", i), fmt.Sprint("reply ", i)))
	}
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
}

// checkRelayed checks that the n lines of relayScript arrived once each and in order both ways.
func checkRelayed(t *testing.T, f *fakeProviders, n int) {
	t.Helper()
	var lines []string
	for _, d := range f.dmTexts() {
		if strings.HasPrefix(d, "**Ana:** line ") {
			lines = append(lines, strings.TrimPrefix(d, "**Ana:** "))
		}
	}
	var want, wantReplies []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprint("line ", i))
		wantReplies = append(wantReplies, fmt.Sprint("reply ", i))
	}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("the member got %q", lines)
	}
	if got := f.flexBodies(); strings.Join(got, "|") != strings.Join(wantReplies, "|") {
		t.Errorf("the agent got %q", got)
	}
}

// closedStageDMs is how many DMs relayScript's conversation sends once it is closed (the thanks
// for the rating): those are regular activities, as a run does not end in a workflow task that
// finished a local try.
var closedStageDMs = map[string]int{"SendDirectMessage": 1}

// TestConversationRelaysThroughLocalActivities: with the local-delivery behaviour, every DM to
// the member and every post to Flex goes out as a local activity, once and in order, until the
// conversation closes.
func TestConversationRelaysThroughLocalActivities(t *testing.T) {
	c := newConvTest(t)
	relayScript(c, 10)
	c.run(ConversationOptions{})
	checkRelayed(t, c.fakes, 10)
	for _, name := range []string{"SendDirectMessage", "PostFlexMessage"} {
		local, regular := c.fakes.triesOf(name)
		if local < 10 || regular != closedStageDMs[name] {
			t.Errorf("%s: %d local and %d regular tries; want every try local but %d after the close", name, local, regular, closedStageDMs[name])
		}
	}
}

// TestConversationLocalTryFallsBackToRegularActivity: when the worker refuses every local try
// (its share of the provider's rate is used up), each delivery goes on as a regular activity at
// once, still once and in order.
func TestConversationLocalTryFallsBackToRegularActivity(t *testing.T) {
	c := newConvTest(t)
	c.fakes.busyLocal = true
	relayScript(c, 10)
	c.run(ConversationOptions{})
	checkRelayed(t, c.fakes, 10)
	for _, name := range []string{"SendDirectMessage", "PostFlexMessage"} {
		local, regular := c.fakes.triesOf(name)
		if local < 10 || regular != local+closedStageDMs[name] {
			t.Errorf("%s: %d local and %d regular tries; want one regular try after each refused local one", name, local, regular)
		}
	}
}

// TestConversationLocalTryFailingForGoodIsNotRetried: a DM refused for good on its local try
// (the member closed their DMs) is recorded as failed at once, not tried again as a regular
// activity; an operator's retry then delivers it as a regular activity.
func TestConversationLocalTryFailingForGoodIsNotRetried(t *testing.T) {
	c := newConvTest(t)
	var failed ConversationStatus
	var regularBefore int
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(time.Second, func() { c.fakes.setDMsClosed(true) })
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM1", Text: "first"})
	c.after(time.Second, func() {
		failed = c.status()
		_, regularBefore = c.fakes.triesOf("SendDirectMessage")
		c.fakes.setDMsClosed(false)
		c.env.UpdateWorkflow(UpdateRetryDeliveries, "retry-1", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("retry rejected: %v", err) }, OnComplete: func(any, error) {},
		}, RetryDeliveriesRequest{Operator: "test"})
	})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	c.run(ConversationOptions{})
	if len(failed.Failed) != 1 || failed.Failed[0].ErrorType != activities.ErrCannotMessageUser {
		t.Fatalf("failed deliveries = %+v", failed.Failed)
	}
	if regularBefore != 0 {
		t.Errorf("%d regular tries of SendDirectMessage before the retry; the refused local try should have been final", regularBefore)
	}
	if _, regular := c.fakes.triesOf("SendDirectMessage"); regular < 1 {
		t.Errorf("the operator's retry made no regular try")
	}
	var got []string
	for _, d := range c.fakes.dmTexts() {
		if strings.HasPrefix(d, "**Ana:**") {
			got = append(got, d)
		}
	}
	if strings.Join(got, "|") != "**Ana:** first" {
		t.Errorf("agent messages delivered = %q", got)
	}
}

// TestConversationBehaviourBeforeLocalDeliveryUsesRegularActivities: conversations started
// before the local-delivery behaviour keep delivering through regular activities.
func TestConversationBehaviourBeforeLocalDeliveryUsesRegularActivities(t *testing.T) {
	c := newConvTest(t)
	c.env.OnGetVersion(versionChangeID, workflow.DefaultVersion, behaviourLatest).Return(workflow.Version(behaviourFastRelay))
	relayScript(c, 5)
	c.run(ConversationOptions{})
	checkRelayed(t, c.fakes, 5)
	if local, _ := c.fakes.triesOf("SendDirectMessage"); local != 0 {
		t.Errorf("%d local tries in a conversation of behaviour %d", local, behaviourFastRelay)
	}
}

// burstScript: after the hand-over, the member writes five lines at once and the agent answers
// with five at once, then the chat ends with a rating.
func burstScript(c *convTest) {
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(time.Second, func() {
		for i := 1; i <= 5; i++ {
			c.env.SignalWorkflow(SignalUserMessage, msg(fmt.Sprint("m", i), fmt.Sprint("reply ", i)))
		}
	})
	c.after(time.Second, func() {
		for i := 1; i <= 5; i++ {
			c.env.SignalWorkflow(SignalAgentMessage, AgentMessageSignal{EventID: fmt.Sprint("IM", i), Text: fmt.Sprint("line ", i)})
		}
	})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
}

// TestConversationBatchesDeliveriesToOneDestination: lines queued for one destination while an
// earlier one is on its way go out together, in one activity, in order, each once.
func TestConversationBatchesDeliveriesToOneDestination(t *testing.T) {
	c := newConvTest(t)
	burstScript(c)
	c.run(ConversationOptions{})
	checkRelayed(t, c.fakes, 5)
	for _, name := range []string{"PostFlexMessage", "SendDirectMessage"} {
		sizes := c.fakes.batchesOf(name)
		biggest := 0
		for _, n := range sizes {
			biggest = max(biggest, n)
		}
		if biggest < 4 {
			t.Errorf("%s calls carried %v deliveries; want the four lines queued behind the first in one call", name, sizes)
		}
	}
	if n := len(c.fakes.batchesOf("PostFlexMessage")); n > 2 {
		t.Errorf("%d calls to post 5 lines to Flex, want 2 (the first line, then the four queued behind it)", n)
	}
}

// TestConversationBatchCutShortIsRetriedWithoutDoubles: a batch whose call fails after it posted
// some of its lines goes on as a regular activity that finds those by their keys: every line
// arrives once, in order.
func TestConversationBatchCutShortIsRetriedWithoutDoubles(t *testing.T) {
	c := newConvTest(t)
	c.fakes.flexFailAfter = 2
	burstScript(c)
	c.run(ConversationOptions{})
	checkRelayed(t, c.fakes, 5)
	local, regular := c.fakes.triesOf("PostFlexMessage")
	if regular == 0 {
		t.Errorf("PostFlexMessage: %d local and %d regular tries; want the cut batch retried as a regular activity", local, regular)
	}
}

// TestConversationBatchToAFailingProviderEndsFailed: when Flex fails from the second line on,
// every line of the batch behind the first ends recorded as a failed delivery, none lost or
// doubled; an operator's retry then delivers them, in order.
func TestConversationBatchToAFailingProviderEndsFailed(t *testing.T) {
	c := newConvTest(t)
	c.fakes.flexBrokenAfter = 1
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(time.Second, func() {
		for i := 1; i <= 5; i++ {
			c.env.SignalWorkflow(SignalUserMessage, msg(fmt.Sprint("m", i), fmt.Sprint("reply ", i)))
		}
	})
	var st ConversationStatus
	c.after(2*time.Hour, func() {
		st = c.status()
		c.fakes.mu.Lock()
		c.fakes.flexBrokenAfter = 0
		c.fakes.mu.Unlock()
		c.env.UpdateWorkflow(UpdateRetryDeliveries, "retry-1", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("retry rejected: %v", err) }, OnComplete: func(any, error) {},
		}, RetryDeliveriesRequest{Operator: "test"})
	})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	c.run(ConversationOptions{})
	var failed []string
	for _, d := range st.Failed {
		if d.Destination == "flex:"+st.CaseID {
			failed = append(failed, d.Preview)
		}
	}
	want := []string{"reply 1", "reply 2", "reply 3", "reply 4", "reply 5"}
	if strings.Join(failed, "|") != strings.Join(want[1:], "|") {
		t.Errorf("failed deliveries to Flex before the retry: %q, want %q (pending %d, in flight %d)", failed, want[1:], len(st.Pending), len(st.InFlight))
	}
	if got := c.fakes.flexBodies(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Flex got %q after the retry, want %q", got, want)
	}
	if sizes := c.fakes.batchesOf("PostFlexMessage"); len(sizes) == 0 || slices.Max(sizes) < 4 {
		t.Errorf("PostFlexMessage calls carried %v deliveries; want a batch of the queued lines", sizes)
	}
}

// snowflakeAt is a Discord id made at t.
func snowflakeAt(t time.Time) string {
	return strconv.FormatUint(uint64(t.UnixMilli()-1420070400000)<<22, 10)
}

// TestConversationLateFlexPostLooksFirst: a worker that dies between a local try and the end of
// its workflow task loses the try's record, and the task runs again elsewhere at least half a
// workflow task timeout later. So a local post to Flex of a member message written that long
// before looks for its delivery key first (PriorAttempts), while a fresh one posts at once.
func TestConversationLateFlexPostLooksFirst(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(time.Second, func() {
		m := msg(snowflakeAt(c.env.Now()), "fresh")
		c.env.SignalWorkflow(SignalUserMessage, m)
	})
	c.after(time.Second, func() {
		m := msg(snowflakeAt(c.env.Now().Add(-time.Minute)), "written a minute ago")
		c.env.SignalWorkflow(SignalUserMessage, m)
	})
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i2", ActionRate, 5))
	c.run(ConversationOptions{})
	prior := map[string]int{}
	for _, p := range c.fakes.flexPosts() {
		prior[p.Body] = p.PriorAttempts
	}
	if got, ok := prior["fresh"]; !ok || got != 0 {
		t.Errorf("fresh message: posted %v with PriorAttempts %d, want posted at once (0)", ok, got)
	}
	if got, ok := prior["written a minute ago"]; !ok || got != 1 {
		t.Errorf("late message: posted %v with PriorAttempts %d, want a look-up first (1)", ok, got)
	}
}
