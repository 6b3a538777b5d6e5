package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/workflows"
)

func startStack(t *testing.T) *devstack.Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{ServerLogLevel: "fatal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	return st
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(25 * time.Millisecond) // polling interval
	}
}

// flexcord runs the command line against the stack's Temporal server.
func flexcord(t *testing.T, st *devstack.Stack, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--address", st.TemporalAddr, "--namespace", st.Namespace)
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("flexcord %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func greetings(dc *discordemu.Server, userID string) int {
	n := 0
	for _, r := range dc.UserMessages(userID) {
		if r.FromBot && strings.HasPrefix(r.Message.Content, "Hi Mika") {
			n++
		}
	}
	return n
}

func TestDeliveriesRetryAfterDMsReopen(t *testing.T) {
	st := startStack(t)
	ctx := context.Background()
	dc := st.Discord
	member := devstack.SandboxMembers[0]
	if err := dc.SetDMsClosed(member.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "helpme", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxGeneralChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	// The failure is visible to operators through the search attribute.
	waitFor(t, 30*time.Second, "FailedDeliveries > 0 in visibility", func() bool {
		resp, err := st.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "FailedDeliveries > 0"})
		return err == nil && len(resp.Executions) == 1 &&
			resp.Executions[0].Execution.WorkflowId == workflows.ConversationWorkflowID(member.ID)
	})
	// The member was told, in the channel, why no DM came.
	waitFor(t, 10*time.Second, "the ephemeral notice", func() bool {
		for _, r := range dc.UserMessages(member.ID) {
			if r.Ephemeral && strings.Contains(r.Message.Content, "couldn't send you a direct message") {
				return true
			}
		}
		return false
	})
	if greetings(dc, member.ID) != 0 {
		t.Fatal("greeted with DMs closed")
	}

	if err := dc.SetDMsClosed(member.ID, false); err != nil {
		t.Fatal(err)
	}
	out := flexcord(t, st, "deliveries", "retry", "--all")
	if !strings.Contains(out, workflows.ConversationWorkflowID(member.ID)+": re-queued 1") || !strings.Contains(out, "greeting") {
		t.Fatalf("retry printed:\n%s", out)
	}
	waitFor(t, 20*time.Second, "the greeting", func() bool { return greetings(dc, member.ID) == 1 })
	waitFor(t, 20*time.Second, "FailedDeliveries back to 0", func() bool {
		resp, err := st.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "FailedDeliveries > 0"})
		return err == nil && len(resp.Executions) == 0
	})
	if out := flexcord(t, st, "deliveries", "retry", "--all"); !strings.Contains(out, "No running conversation or case has failed deliveries") {
		t.Errorf("second retry printed:\n%s", out)
	}
	if n := greetings(dc, member.ID); n != 1 {
		t.Errorf("greeted %d times", n)
	}
}

func TestCasesCommands(t *testing.T) {
	st := startStack(t)
	ctx := context.Background()
	dc := st.Discord
	member := devstack.SandboxMembers[0]
	if _, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "bug", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxBugChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.SubmitModal(ctx, member.ID, discordemu.ModalInput{Values: map[string]string{
		"title": "Login loop", "description": "The app logs me out every minute.", "steps": "Log in, wait", "platform": "iOS 19"}}); err != nil {
		t.Fatal(err)
	}
	var list string
	waitFor(t, 20*time.Second, "the bug in cases list", func() bool {
		list = flexcord(t, st, "cases", "list", "--type", "bug")
		return strings.Contains(list, " open ")
	})
	id := strings.Fields(strings.Split(strings.TrimSpace(list), "\n")[1])[0]
	if !workflows.ValidCaseID(id) {
		t.Fatalf("cases list:\n%s", list)
	}
	if show := flexcord(t, st, "cases", "show", id); !strings.Contains(show, "Login loop") || !strings.Contains(show, "iOS 19") {
		t.Errorf("cases show:\n%s", show)
	}
	if out := flexcord(t, st, "cases", "set-status", id, "in_progress", "--note", "Fix in 2.1"); !strings.Contains(out, "in_progress") {
		t.Errorf("set-status printed %q", out)
	}
	waitFor(t, 20*time.Second, "the reporter's DM", func() bool {
		for _, r := range dc.UserMessages(member.ID) {
			if r.FromBot && strings.Contains(r.Message.Content, id) && strings.Contains(r.Message.Content, "Fix in 2.1") {
				return true
			}
		}
		return false
	})
	// An illegal transition is refused with the reason.
	var out, errb bytes.Buffer
	err := run(ctx, []string{"cases", "set-status", id, "closed", "--address", st.TemporalAddr}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "cannot move from in_progress to closed") {
		t.Errorf("illegal transition: err = %v", err)
	}
}

// TestConversationsCommands runs list, show and close against a conversation of the dev stack.
func TestConversationsCommands(t *testing.T) {
	st := startStack(t)
	ctx := context.Background()
	member := devstack.SandboxMembers[0]
	if _, err := st.Discord.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "helpme", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxGeneralChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	id := workflows.ConversationWorkflowID(member.ID)
	var list string
	waitFor(t, 30*time.Second, "the conversation in conversations list", func() bool {
		list = flexcord(t, st, "conversations", "list", "--stage", "bot")
		return strings.Contains(list, id)
	})
	t.Logf("conversations list:\n%s", list)
	if !strings.Contains(list, "Mika") {
		t.Errorf("conversations list:\n%s", list)
	}
	show := flexcord(t, st, "conversations", "show", member.ID)
	t.Logf("conversations show:\n%s", show)
	if !strings.HasPrefix(show, id+"  bot") || !strings.Contains(show, "Mika") {
		t.Errorf("conversations show:\n%s", show)
	}
	out := flexcord(t, st, "conversations", "close", id, "--reason", "test over")
	if !strings.Contains(out, id+" is clos") {
		t.Errorf("conversations close printed:\n%s", out)
	}
	t.Logf("conversations close printed:\n%s", out)
	// A second close is refused in one line.
	var errb bytes.Buffer
	err := run(ctx, []string{"conversations", "close", id, "--address", st.TemporalAddr, "--namespace", st.Namespace}, io.Discard, &errb)
	t.Logf("second close: %v", err)
	if err == nil || !strings.Contains(err.Error(), "already closed") || strings.Contains(err.Error(), "\n") {
		t.Errorf("second close: err = %v", err)
	}
}

// mockTemporal makes the operator commands use a mocked Temporal client for the test.
func mockTemporal(t *testing.T) *mocks.Client {
	t.Helper()
	tc := mocks.NewClient(t)
	tc.On("Close").Return().Maybe()
	old := dialOps
	dialOps = func(string, string) (client.Client, error) { return tc, nil }
	t.Cleanup(func() { dialOps = old })
	return tc
}

func runOps(args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), err
}

// statusAnswer is a QueryWorkflow answer.
type statusAnswer struct{ st workflows.ConversationStatus }

func (v statusAnswer) HasValue() bool { return true }

func (v statusAnswer) Get(p any) error {
	*p.(*workflows.ConversationStatus) = v.st
	return nil
}

const (
	opsUserID = "2000000000000000001"
	opsConvID = "conversation:" + opsUserID
)

func searchAttrs(t *testing.T, kv map[string]any) *commonpb.SearchAttributes {
	t.Helper()
	out := &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{}}
	for k, v := range kv {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		if err != nil {
			t.Fatal(err)
		}
		out.IndexedFields[k] = p
	}
	return out
}

func liveStatus(now time.Time) workflows.ConversationStatus {
	return workflows.ConversationStatus{
		Member: workflows.Member{UserID: opsUserID, Username: "alice", DisplayName: "Alice"},
		Stage:  workflows.StageLive, Locale: "ko", CaseID: "C-7K3QX2", Agent: "Ana Souza",
		Flex:     &activities.FlexInteraction{ConversationSID: "CH1", InteractionSID: "KD1", ChannelSID: "UO1", TaskSID: "WT1"},
		Deadline: now.Add(5 * time.Minute), DeadlineLabel: "check that Flex still has the chat",
		Delivered: 7,
		Failed:    []workflows.DeliveryView{{Seq: 8, Destination: "discord:" + opsUserID, Label: "agent message", Preview: "Hi", ErrorType: "CannotMessageUser", Error: "50007"}},
		Transcript: []activities.TranscriptLine{
			{At: now, From: "member", Name: "Alice", Text: "my order\nnever arrived"},
			{At: now, From: "agent", Name: "Ana Souza", Text: "Let me check"},
		},
	}
}

func TestConversationsListMocked(t *testing.T) {
	tc := mockTemporal(t)
	now := time.Now()
	const other = "conversation:2000000000000000002"
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return r.Query == "WorkflowType = 'Conversation' AND ExecutionStatus = 'Running' AND FlexcordStage = 'live'" && r.PageSize == 10
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{
		{
			Execution: &commonpb.WorkflowExecution{WorkflowId: opsConvID}, Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, StartTime: timestamppb.New(now),
			SearchAttributes: searchAttrs(t, map[string]any{"FlexcordStage": "live", "FlexcordCaseID": "C-7K3QX2", "FlexcordAgent": "Ana Souza", "FailedDeliveries": 1}),
		},
		{
			Execution: &commonpb.WorkflowExecution{WorkflowId: other}, Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, StartTime: timestamppb.New(now),
			SearchAttributes: searchAttrs(t, map[string]any{"FlexcordStage": "live"}),
		},
	}}, nil).Once()
	tc.On("QueryWorkflow", mock.Anything, opsConvID, "", workflows.QueryStatus).Return(statusAnswer{liveStatus(now)}, nil).Once()
	tc.On("QueryWorkflow", mock.Anything, other, "", workflows.QueryStatus).Return(nil, serviceerror.NewUnavailable("no poller")).Once()
	out, err := runOps("conversations", "list", "--stage", "live", "--limit", "10")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CONVERSATION") {
		t.Fatalf("list:\n%s", out)
	}
	row := regexp.MustCompile(`^conversation:2000000000000000001\s+Alice\s+live\s+C-7K3QX2\s+Ana Souza\s+1\s+in [45]m\d+s: check that Flex still has the chat\s+\d{4}-`)
	if !row.MatchString(lines[1]) {
		t.Errorf("row %q", lines[1])
	}
	if !regexp.MustCompile(`^conversation:2000000000000000002\s+-\s+live\s+-\s+-\s+0\s+-\s+\d{4}-`).MatchString(lines[2]) {
		t.Errorf("row %q", lines[2])
	}

	if _, err := runOps("conversations", "list", "--stage", "waiting"); err == nil || !strings.Contains(err.Error(), `unknown stage "waiting"`) {
		t.Errorf("bad stage: err = %v", err)
	}
}

func TestConversationsListClosedMocked(t *testing.T) {
	tc := mockTemporal(t)
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return r.Query == "WorkflowType = 'Conversation' AND FlexcordStage = 'closed'"
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{}, nil).Once()
	out, err := runOps("conversations", "list", "--stage", "closed")
	if err != nil || !strings.Contains(out, "(no conversations)") {
		t.Fatalf("list: %v\n%s", err, out)
	}
}

func TestConversationsShowMocked(t *testing.T) {
	tc := mockTemporal(t)
	now := time.Now()
	tc.On("QueryWorkflow", mock.Anything, opsConvID, "", workflows.QueryStatus).Return(statusAnswer{liveStatus(now)}, nil).Once()
	out, err := runOps("conversations", "show", opsUserID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		opsConvID + "  live\n",
		"Member:      Alice (@alice), Discord user " + opsUserID,
		"Case:        C-7K3QX2",
		"Agent:       Ana Souza",
		"Flex:        conversation CH1, interaction KD1, task WT1",
		"Deadline:    " + now.Add(5*time.Minute).Local().Format(time.DateTime) + " (in ",
		": check that Flex still has the chat)",
		"Deliveries:  7 delivered, 0 pending, 0 in flight, 1 failed",
		`failed    #8 to discord:` + opsUserID + ` (agent message) "Hi": CannotMessageUser: 50007`,
		"Last messages (2 of 2):",
		"member Alice     my order never arrived",
		"agent Ana Souza  Let me check",
		"run `flexcord deliveries retry " + opsConvID + "`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
}

func TestConversationsErrorsMocked(t *testing.T) {
	t.Run("not a conversation id", func(t *testing.T) {
		mockTemporal(t)
		if _, err := runOps("conversations", "show", "case:C-7K3QX2"); err == nil || !strings.Contains(err.Error(), "is not a conversation id") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("unknown conversation", func(t *testing.T) {
		tc := mockTemporal(t)
		tc.On("QueryWorkflow", mock.Anything, opsConvID, "", workflows.QueryStatus).Return(nil, serviceerror.NewNotFound("workflow not found")).Once()
		tc.On("DescribeWorkflowExecution", mock.Anything, opsConvID, "").Return(nil, serviceerror.NewNotFound("workflow not found")).Once()
		if _, err := runOps("conversations", "show", opsConvID); err == nil || err.Error() != "no conversation "+opsConvID {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no worker", func(t *testing.T) {
		tc := mockTemporal(t)
		tc.On("QueryWorkflow", mock.Anything, opsConvID, "", workflows.QueryStatus).Return(nil, context.DeadlineExceeded).Once()
		if _, err := runOps("conversations", "show", opsConvID); err == nil || !strings.Contains(err.Error(), "no worker answered") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestConversationsCloseMocked(t *testing.T) {
	closeCall := func(tc *mocks.Client, reason string) *mock.Call {
		return tc.On("UpdateWorkflow", mock.Anything, mock.MatchedBy(func(o client.UpdateWorkflowOptions) bool {
			return o.WorkflowID == opsConvID && o.UpdateName == workflows.UpdateClose && len(o.Args) == 1 &&
				o.Args[0] == workflows.CloseRequest{Reason: reason, Operator: "flexcord CLI"} && o.WaitForStage == client.WorkflowUpdateStageCompleted
		}))
	}
	t.Run("closes", func(t *testing.T) {
		tc := mockTemporal(t)
		h := &mocks.WorkflowUpdateHandle{}
		h.On("Get", mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
			*args.Get(1).(*workflows.ConversationStatus) = workflows.ConversationStatus{Stage: workflows.StageClosed, CaseID: "C-7K3QX2"}
		}).Return(nil).Once()
		closeCall(tc, "spam").Return(h, nil).Once()
		out, err := runOps("conversations", "close", opsUserID, "--reason", "spam")
		if err != nil {
			t.Fatal(err)
		}
		if want := opsConvID + " is closed.\nCase C-7K3QX2 stays on record.\nReason: spam\n"; out != want {
			t.Errorf("close printed %q, want %q", out, want)
		}
	})
	t.Run("already closed", func(t *testing.T) {
		tc := mockTemporal(t)
		closeCall(tc, "").Return(nil, temporal.NewApplicationError("conversation is already closed", "")).Once()
		if _, err := runOps("conversations", "close", opsConvID); err == nil || err.Error() != opsConvID+": conversation is already closed" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("finished", func(t *testing.T) {
		tc := mockTemporal(t)
		closeCall(tc, "").Return(nil, serviceerror.NewNotFound("workflow execution already completed")).Once()
		tc.On("DescribeWorkflowExecution", mock.Anything, opsConvID, "").Return(&workflowservice.DescribeWorkflowExecutionResponse{
			WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, CloseTime: timestamppb.Now()},
		}, nil).Once()
		if _, err := runOps("conversations", "close", opsConvID); err == nil || !strings.HasPrefix(err.Error(), opsConvID+" is already closed (completed at ") {
			t.Errorf("err = %v", err)
		}
	})
}
