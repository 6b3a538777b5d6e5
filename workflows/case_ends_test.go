package workflows

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
)

func supportInput() CaseInput {
	return CaseInput{CaseID: "C-BUG234", Type: CaseSupport, Reporter: testMember, Title: "Help", ConversationID: ConversationWorkflowID(testUser)}
}

func (c *caseTest) event(after time.Duration, ev CaseEventSignal) {
	c.at += after
	c.env.RegisterDelayedCallback(func() { c.env.SignalWorkflow(SignalCaseEvent, ev) }, c.at)
}

func (c *caseTest) result() (CaseView, time.Duration) {
	c.t.Helper()
	start := c.env.Now()
	var v CaseView
	if err := c.env.GetWorkflowResult(&v); err != nil {
		c.t.Fatal(err)
	}
	return v, c.env.Now().Sub(start)
}

func TestSupportCaseLeftOpenClosesAfterTheFollowUpWindow(t *testing.T) {
	c := newCaseTest(t)
	c.event(time.Minute, CaseEventSignal{EventID: "end", ConversationEnded: true, Outcome: OutcomeAwaitingFollowUp, Note: "no agent"})
	start := c.env.Now()
	c.env.ExecuteWorkflow(Case, supportInput())
	v, _ := c.result()
	if v.Status != CaseClosed || v.Outcome != OutcomeNoFollowUp {
		t.Fatalf("case = %s / %q", v.Status, v.Outcome)
	}
	if d := c.env.Now().Sub(start); d < 7*24*time.Hour || d > 7*24*time.Hour+time.Hour {
		t.Errorf("closed after %v, want 7 days after the conversation ended", d)
	}
}

func TestSupportCaseThatHearsNothingClosesAsStale(t *testing.T) {
	c := newCaseTest(t)
	start := c.env.Now()
	c.env.ExecuteWorkflow(Case, supportInput())
	v, _ := c.result()
	if v.Status != CaseClosed || v.Outcome != OutcomeStale {
		t.Fatalf("case = %s / %q", v.Status, v.Outcome)
	}
	if d := c.env.Now().Sub(start); d < 30*24*time.Hour {
		t.Errorf("closed after %v, want 30 days", d)
	}
}

func TestOperatorCloseOfTheConversationClosesAnOpenCase(t *testing.T) {
	c := newCaseTest(t)
	c.event(time.Minute, CaseEventSignal{EventID: "end", ConversationEnded: true, Status: CaseClosed, Force: true, Outcome: OutcomeClosedByOperator})
	c.env.ExecuteWorkflow(Case, supportInput())
	v, d := c.result()
	if v.Status != CaseClosed || v.Outcome != OutcomeClosedByOperator || d > time.Hour {
		t.Fatalf("case = %s / %q after %v", v.Status, v.Outcome, d)
	}
}

func TestBugCaseWaitsForItsStatus(t *testing.T) {
	c := newCaseTest(t)
	var open CaseView
	c.env.RegisterDelayedCallback(func() {
		v, err := c.env.QueryWorkflow(QueryStatus)
		if err == nil {
			_ = v.Get(&open)
		}
	}, 90*24*time.Hour)
	var err error
	c.at = 91 * 24 * time.Hour
	c.setStatus(CaseDeclined, "duplicate", &err)
	c.env.ExecuteWorkflow(Case, bugInput())
	v, _ := c.result()
	if open.Status != CaseOpen {
		t.Errorf("a bug report closed by itself: %s after 90 days", open.Status)
	}
	if v.Status != CaseClosed || err != nil {
		t.Errorf("case = %s (%v)", v.Status, err)
	}
}

// TestCaseInterleavings drives Cases with random sequences of conversation events and operator
// status changes at random times: whatever the order, a case ends once time passes, closed stays
// closed, and the reporter hears of every operator change.
func TestCaseInterleavings(t *testing.T) {
	n := *interleaveSeeds
	if testing.Short() {
		n = min(n, 50)
	}
	statuses := []CaseStatus{CaseOpen, CaseInProgress, CaseResolved, CaseDeclined, CaseClosed}
	for seed := 1; seed <= n/5; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		c := newCaseTest(t)
		in := supportInput()
		if rng.IntN(3) == 0 {
			in = bugInput()
		}
		bug := in.Type == CaseBug
		accepted, closedAt, reopened := 0, time.Duration(-1), false
		var script []string
		operator := func(at time.Duration, to CaseStatus) {
			script = append(script, at.String()+" operator → "+string(to))
			// Update ids are unique per request: two changes at the same time are two requests.
			updateID := fmt.Sprintf("%s#%d", at, len(script))
			c.env.RegisterDelayedCallback(func() {
				c.env.UpdateWorkflow(UpdateSetCaseStatus, updateID, &testsuite.TestUpdateCallback{
					OnAccept: func() {}, OnReject: func(error) {},
					OnComplete: func(v any, err error) {
						if err == nil {
							accepted++
							reopened = reopened || (closedAt >= 0 && at > closedAt)
							if v.(CaseView).Status == CaseClosed && closedAt < 0 {
								closedAt = at
							}
						}
					},
				}, SetCaseStatusRequest{Status: to, Actor: "ops"})
			}, at)
		}
		if bug {
			// A bug report ends only by its status: the team triages it eventually.
			operator(25*24*time.Hour, CaseDeclined)
		}
		for i, steps := 0, 3+rng.IntN(10); i < steps; i++ {
			at := time.Duration(rng.IntN(20*24)) * time.Hour
			switch {
			case bug || rng.IntN(3) == 0:
				operator(at, statuses[rng.IntN(len(statuses))])
			default:
				ev := CaseEventSignal{EventID: at.String(), Note: "event"}
				switch rng.IntN(4) {
				case 0:
					ev.Status = CaseInProgress
				case 1:
					ev.Status, ev.ConversationEnded, ev.Outcome = CaseResolved, true, OutcomeResolved
				case 2:
					ev.ConversationEnded, ev.Outcome = true, OutcomeAwaitingFollowUp
				case 3:
					ev.Status, ev.Force, ev.ConversationEnded, ev.Outcome = CaseClosed, true, true, OutcomeClosedByOperator
				}
				script = append(script, at.String()+" conversation event "+string(ev.Status)+" "+ev.Outcome)
				c.env.RegisterDelayedCallback(func() { c.env.SignalWorkflow(SignalCaseEvent, ev) }, at)
			}
		}
		c.env.ExecuteWorkflow(Case, in)
		if !c.env.IsWorkflowCompleted() || c.env.GetWorkflowError() != nil {
			t.Fatalf("seed %d: case did not end (%v)\n%q", seed, c.env.GetWorkflowError(), script)
		}
		var v CaseView
		_ = c.env.GetWorkflowResult(&v)
		if reopened {
			t.Fatalf("seed %d: a closed case took another status change\n%q", seed, script)
		}
		if v.Status != CaseClosed {
			t.Fatalf("seed %d: ended as %s\n%q", seed, v.Status, script)
		}
		// One DM per accepted operator change, none for the conversation's own events.
		if got := len(c.fakes.dmTexts()); got != accepted {
			t.Fatalf("seed %d: reporter got %d DMs for %d operator changes\n%q", seed, got, accepted, script)
		}
	}
}
