package workflows

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
)

type caseTest struct {
	t     *testing.T
	env   *testsuite.TestWorkflowEnvironment
	fakes *fakeProviders
	at    time.Duration
}

func newCaseTest(t *testing.T) *caseTest {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger())
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Case)
	fakes := newFakeProviders()
	fakes.register(env)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CaseWorkflowID("C-BUG234"), TaskQueue: TaskQueue})
	return &caseTest{t: t, env: env, fakes: fakes}
}

// setStatus schedules a SetCaseStatus update and records its outcome in *errp (nil: accepted).
func (c *caseTest) setStatus(status CaseStatus, note string, errp *error) {
	c.at += time.Minute
	id := c.at.String()
	c.env.RegisterDelayedCallback(func() {
		c.env.UpdateWorkflow(UpdateSetCaseStatus, id, &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { *errp = err },
			OnComplete: func(v any, err error) {},
		}, SetCaseStatusRequest{Status: status, Note: note, Actor: "ops"})
	}, c.at)
}

func bugInput() CaseInput {
	return CaseInput{
		CaseID: "C-BUG234", Type: CaseBug, Reporter: testMember, GuildID: "g1", ChannelID: "bug-report",
		Locale: "en-US", Title: "Crash when opening the shop", Description: "The game closes.",
		Details: []Field{{Name: "platform", Value: "Android 14"}},
	}
}

func TestCaseStatusRulesAndNotifications(t *testing.T) {
	c := newCaseTest(t)
	var errs [5]error
	c.setStatus(CaseClosed, "", &errs[0])     // illegal: open → closed
	c.setStatus(CaseInProgress, "", &errs[1]) // legal
	c.setStatus("bogus", "", &errs[2])        // unknown
	c.setStatus(CaseResolved, "Fixed in 1.2.3", &errs[3])
	c.setStatus(CaseClosed, "", &errs[4]) // closed is final: the workflow ends
	c.env.ExecuteWorkflow(Case, bugInput())
	if err := c.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var view CaseView
	if err := c.env.GetWorkflowResult(&view); err != nil {
		t.Fatal(err)
	}
	for i, wantErr := range []bool{true, false, true, false, false} {
		if (errs[i] != nil) != wantErr {
			t.Errorf("update %d: err = %v, want error %v", i, errs[i], wantErr)
		}
	}
	if view.Status != CaseClosed {
		t.Fatalf("status = %s", view.Status)
	}
	var statuses []CaseStatus
	for _, e := range view.Timeline {
		if e.Status != "" {
			statuses = append(statuses, e.Status)
		}
	}
	if got := joinStatuses(statuses); got != "open,in_progress,resolved,closed" {
		t.Errorf("timeline = %s", got)
	}
	// The confirmation was posted in the channel the bug was filed from.
	if len(c.fakes.posts) != 1 || c.fakes.posts[0].ChannelID != "bug-report" ||
		!strings.Contains(c.fakes.posts[0].Message.Embeds[0].Title, "C-BUG234") {
		t.Fatalf("channel posts = %+v", c.fakes.posts)
	}
	// The reporter heard of each accepted change, in order, with the team's note.
	dms := c.fakes.dmTexts()
	if len(dms) != 3 {
		t.Fatalf("reporter DMs = %q", dms)
	}
	for i, want := range []string{"now **in progress**", "now **resolved**", "now **closed**"} {
		if !strings.Contains(dms[i], want) {
			t.Errorf("DM %d = %q, want %q", i, dms[i], want)
		}
	}
	if !strings.Contains(dms[1], "Fixed in 1.2.3") {
		t.Errorf("note missing from %q", dms[1])
	}
}

func TestCaseClosesItselfAfterResolution(t *testing.T) {
	c := newCaseTest(t)
	var err error
	c.setStatus(CaseResolved, "", &err)
	start := c.env.Now()
	c.env.ExecuteWorkflow(Case, CaseInput{
		CaseID: "C-BUG234", Type: CaseFeature, Reporter: testMember, Title: "Dark mode",
		Options: CaseOptions{CloseAfter: 48 * time.Hour},
	})
	var view CaseView
	if err := c.env.GetWorkflowResult(&view); err != nil {
		t.Fatal(err)
	}
	if view.Status != CaseClosed {
		t.Fatalf("status = %s", view.Status)
	}
	if d := c.env.Now().Sub(start); d < 48*time.Hour {
		t.Errorf("closed after %v, want 48h after resolution", d)
	}
	// Automatic closing is not announced; the resolution was.
	if dms := c.fakes.dmTexts(); len(dms) != 1 {
		t.Errorf("DMs = %q", dms)
	}
}

func TestCaseRejectsBadInput(t *testing.T) {
	for _, in := range []CaseInput{
		{CaseID: "nope", Type: CaseBug, Title: "x"},
		{CaseID: "C-BUG234", Type: "question", Title: "x"},
	} {
		c := newCaseTest(t)
		c.env.ExecuteWorkflow(Case, in)
		if c.env.GetWorkflowError() == nil {
			t.Errorf("input %+v accepted", in)
		}
	}
}

func TestCaseStatusTransitions(t *testing.T) {
	tests := []struct {
		from, to CaseStatus
		ok       bool
	}{
		{CaseOpen, CaseInProgress, true},
		{CaseOpen, CaseDeclined, true},
		{CaseOpen, CaseClosed, false},
		{CaseInProgress, CaseResolved, true},
		{CaseResolved, CaseClosed, true},
		{CaseResolved, CaseInProgress, true},
		{CaseDeclined, CaseOpen, true},
		{CaseClosed, CaseOpen, false},
		{CaseOpen, CaseOpen, false},
	}
	for _, tt := range tests {
		if got := tt.from.CanMoveTo(tt.to); got != tt.ok {
			t.Errorf("%s → %s = %v, want %v", tt.from, tt.to, got, tt.ok)
		}
	}
}

func joinStatuses(s []CaseStatus) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = string(v)
	}
	return strings.Join(parts, ",")
}
