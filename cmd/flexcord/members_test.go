package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/transcript"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/workflows"
)

// memberRuns lists every run of a member's workflows that visibility shows, as erase finds them.
func memberRuns(t *testing.T, st *devstack.Stack, userID string) []*commonpb.WorkflowExecution {
	t.Helper()
	var out []*commonpb.WorkflowExecution
	seen := map[string]bool{}
	for _, q := range []string{"DiscordUserID = '" + userID + "'", "WorkflowId = '" + workflows.ConversationWorkflowID(userID) + "'"} {
		resp, err := st.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: q})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Executions {
			if k := e.Execution.WorkflowId + "/" + e.Execution.RunId; !seen[k] {
				seen[k] = true
				out = append(out, e.Execution)
			}
		}
	}
	return out
}

// fileBug files a bug report as the member and returns its case id.
func fileBug(t *testing.T, st *devstack.Stack, userID, title string) string {
	t.Helper()
	ctx := context.Background()
	before := caseIDsOf(t, st, userID)
	if _, err := st.Discord.RunCommand(ctx, userID, discordemu.CommandInput{Name: "bug", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxBugChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Discord.SubmitModal(ctx, userID, discordemu.ModalInput{Values: map[string]string{
		"title": title, "description": "It happens every time.", "steps": "Open the app", "platform": "iOS 19"}}); err != nil {
		t.Fatal(err)
	}
	var id string
	waitFor(t, 30*time.Second, "the bug report "+title, func() bool {
		for _, c := range caseIDsOf(t, st, userID) {
			if !slices.Contains(before, c) {
				id = c
				return true
			}
		}
		return false
	})
	return id
}

func caseIDsOf(t *testing.T, st *devstack.Stack, userID string) []string {
	t.Helper()
	resp, err := st.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: "WorkflowType = 'Case' AND DiscordUserID = '" + userID + "'"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range resp.Executions {
		if id, ok := workflows.CaseIDFromWorkflowID(e.Execution.WorkflowId); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

func executionStatus(st *devstack.Stack, workflowID string) enumspb.WorkflowExecutionStatus {
	d, err := st.Client.DescribeWorkflowExecution(context.Background(), workflowID, "")
	if err != nil {
		return enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
	}
	return d.GetWorkflowExecutionInfo().GetStatus()
}

// blobTree lists every file under dir, relative, for comparisons.
func blobTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eraseRun runs members erase with answer on its standard input.
func eraseRun(st *devstack.Stack, answer string, args ...string) (string, error) {
	old := membersStdin
	membersStdin = strings.NewReader(answer)
	defer func() { membersStdin = old }()
	var out, errb bytes.Buffer
	args = append([]string{"members", "erase"}, append(args, "--address", st.TemporalAddr, "--namespace", st.Namespace)...)
	err := run(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

// TestMembersErase gives a member a closed bug report, an open one, a resolved one, and an open
// conversation handed over to a Flex agent (with its support case), plus transcripts and media in
// the blob store; another member has a bug report and blobs too. An erase answered "n" changes
// nothing; one with --yes leaves nothing of the member in Temporal or the blob store, and says
// what stays in Discord and Flex. The other member keeps everything.
func TestMembersErase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	// The stack's workflows write their transcripts into the store erase is given.
	dir, store := blobDir(t)
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	st, err := devstack.Start(sctx, devstack.Options{ServerLogLevel: "fatal", Blobs: store})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	dc, tw := st.Discord, st.Twilio
	mika, jiwoo := devstack.SandboxMembers[0], devstack.SandboxMembers[1]

	closedBug := fileBug(t, st, mika.ID, "Crash on start")
	flexcord(t, st, "cases", "set-status", closedBug, "declined", "--note", "works as intended")
	flexcord(t, st, "cases", "set-status", closedBug, "closed")
	waitFor(t, 30*time.Second, "the case closed in visibility", func() bool {
		resp, err := st.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: "WorkflowId = '" + workflows.CaseWorkflowID(closedBug) + "' AND FlexcordCaseStatus = 'closed'"})
		return err == nil && len(resp.Executions) == 1
	})
	openBug := fileBug(t, st, mika.ID, "Login loop")
	resolvedBug := fileBug(t, st, mika.ID, "Typo on the settings page")
	flexcord(t, st, "cases", "set-status", resolvedBug, "resolved")
	jiwooBug := fileBug(t, st, jiwoo.ID, "Dark mode flickers")

	// Mika's conversation, handed over to an agent.
	if _, err := dc.RunCommand(ctx, mika.ID, discordemu.CommandInput{Name: "helpme", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxGeneralChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.SendDM(mika.ID, "I forgot my password and can't log in"); err != nil {
		t.Fatal(err)
	}
	var answer discordemu.Record
	waitFor(t, 30*time.Second, "the bot's answer", func() bool {
		for _, r := range dc.UserMessages(mika.ID) {
			if r.FromBot && strings.Contains(r.Message.Content, "Here's what I found") {
				answer = r
				return true
			}
		}
		return false
	})
	dmChannel := answer.Message.ChannelID
	if _, err := dc.ClickButton(ctx, mika.ID, discordemu.ButtonInput{MessageID: answer.Message.ID, CustomID: workflows.ButtonCustomID(workflows.ActionTalkToHuman, 0)}); err != nil {
		t.Fatal(err)
	}
	var task twilioemu.TaskView
	waitFor(t, 30*time.Second, "the Flex task", func() bool {
		tasks := tw.Tasks(twilioemu.TaskWaiting)
		if len(tasks) > 0 {
			task = tasks[0]
		}
		return len(tasks) > 0
	})
	if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil {
		t.Fatal(err)
	}
	convID := workflows.ConversationWorkflowID(mika.ID)
	var supportCase string
	waitFor(t, 30*time.Second, "the conversation to be live", func() bool {
		cs, err := queryConversation(ctx, st.Client, convID)
		supportCase = cs.CaseID
		return err == nil && cs.Stage == workflows.StageLive && cs.CaseID != ""
	})

	// Besides what the workflows wrote: an older transcript and media of both members.
	seedTranscript(t, store, mika.ID, "C-OLDER2", "It crashes on start", "still crashing")
	mikaMedia := blobstore.MediaKey(mika.ID, closedBug, "crash.png")
	if err := store.Put(ctx, mikaMedia, bytes.Repeat([]byte{0x89}, 2048), "image/png"); err != nil {
		t.Fatal(err)
	}
	seedTranscript(t, store, jiwoo.ID, "C-OLDER3", "it flickers", "in dark mode")
	if err := store.Put(ctx, blobstore.MediaKey(jiwoo.ID, jiwooBug, "flicker.mp4"), []byte("mp4"), "video/mp4"); err != nil {
		t.Fatal(err)
	}

	// cases transcript prints the transcript the bug report's workflow wrote.
	var tr string
	waitFor(t, 30*time.Second, "the bug report's transcript", func() bool {
		var out, errb bytes.Buffer
		err := run(ctx, []string{"cases", "transcript", closedBug, "--blob-dir", dir, "--address", st.TemporalAddr, "--namespace", st.Namespace}, &out, &errb)
		tr = out.String()
		return err == nil && strings.Contains(tr, "works as intended")
	})
	t.Logf("cases transcript:\n%s", tr)
	if !strings.HasPrefix(tr, "# Case "+closedBug+" — Crash on start\n") || !strings.Contains(tr, "It happens every time.") || !strings.Contains(tr, "iOS 19") {
		t.Errorf("cases transcript:\n%s", tr)
	}
	// The other member's blobs, once their bug report's workflow has written its transcript.
	waitFor(t, 30*time.Second, "the other member's transcript", func() bool {
		es, err := transcript.Read(ctx, store, jiwoo.ID, jiwooBug)
		return err == nil && len(es) > 0
	})
	jiwooBlobs, _ := store.List(ctx, blobstore.MemberPrefix(jiwoo.ID))

	runsBefore := memberRuns(t, st, mika.ID)
	if len(runsBefore) < 5 { // three bug reports, the support case, the conversation
		t.Fatalf("the member has %d runs before the erase", len(runsBefore))
	}
	treeBefore := blobTree(t, dir)

	// Answered "n": nothing changes.
	out, err := eraseRun(st, "n\n", mika.ID, "--blob-dir", dir)
	t.Logf("erase answered n:\n%s", out)
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("erase answered n: err = %v", err)
	}
	mikaBlobs, err := store.List(ctx, blobstore.MemberPrefix(mika.ID))
	if err != nil || len(mikaBlobs) < 4 { // the seeded three, and what the workflows wrote
		t.Fatalf("the member's blobs: %q, %v", mikaBlobs, err)
	}
	for _, want := range []string{convID, workflows.CaseWorkflowID(closedBug), workflows.CaseWorkflowID(openBug), " blob(s), ", "[y/N]"} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %q", want)
		}
	}
	if got := memberRuns(t, st, mika.ID); len(got) != len(runsBefore) {
		t.Errorf("after n: %d runs, want %d", len(got), len(runsBefore))
	}
	if executionStatus(st, convID) != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Error("after n: the conversation is no longer running")
	}
	if got := blobTree(t, dir); !slices.Equal(got, treeBefore) {
		t.Errorf("after n the blob store changed:\n%q\nwant\n%q", got, treeBefore)
	}

	// --yes: everything of Mika goes.
	began := time.Now()
	out, err = eraseRun(st, "", mika.ID, "--yes", "--blob-dir", dir)
	t.Logf("erase --yes (%v):\n%s", time.Since(began), out)
	if err != nil {
		t.Fatalf("erase --yes: %v", err)
	}
	if m := regexp.MustCompile(`Deleted (\d+) blob\(s\), [^\n]* under members/` + mika.ID + `/ \(directory `).FindStringSubmatch(out); m == nil {
		t.Error("erase output does not count the blobs it deleted")
	} else if n, _ := strconv.Atoi(m[1]); n < len(mikaBlobs) {
		t.Errorf("erase deleted %d blobs, want at least %d", n, len(mikaBlobs))
	}
	for _, want := range []string{
		"Discord: the member's direct messages with the bot (DM channel " + dmChannel + ")",
		"Flex: conversation " + task.ConversationSID, "task " + task.SID,
		"(case " + supportCase + ", " + convID + "): delete it in Twilio",
		workflows.CaseWorkflowID(supportCase) + ": closed with its conversation.\n",
		"Discord: the confirmation of bug report " + openBug + " in channel " + devstack.SandboxBugChannel,
		workflows.CaseWorkflowID(closedBug) + " ", // a closed case is deleted too
		workflows.CaseWorkflowID(openBug) + ": terminated: a case that is open has no graceful close",
		workflows.CaseWorkflowID(resolvedBug) + ": resolved → closed",
		convID + ": closed",
		"is erased from flexcord",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("erase output lacks %q", want)
		}
	}
	for _, r := range runsBefore {
		if !strings.Contains(out, r.WorkflowId+"  run "+r.RunId) {
			t.Errorf("erase output does not name %s run %s", r.WorkflowId, r.RunId)
		}
	}
	// Nothing of Mika's is left in Temporal: not in visibility, not by id.
	if got := memberRuns(t, st, mika.ID); len(got) != 0 {
		t.Errorf("visibility still lists %d runs of the member", len(got))
	}
	for _, r := range runsBefore {
		_, err := st.Client.DescribeWorkflowExecution(ctx, r.WorkflowId, r.RunId)
		if !errors.As(err, new(*serviceerror.NotFound)) {
			t.Errorf("%s run %s can still be described: %v", r.WorkflowId, r.RunId, err)
		}
	}
	// Nor in the blob store, not even a directory named after the member.
	if keys, err := store.List(ctx, blobstore.MemberPrefix(mika.ID)); err != nil || len(keys) != 0 {
		t.Errorf("blobs left: %q, %v", keys, err)
	}
	for _, p := range blobTree(t, dir) {
		if strings.Contains(p, mika.ID) {
			t.Errorf("left in the blob directory: %s", p)
		}
	}
	// Jiwoo keeps everything.
	if keys, _ := store.List(ctx, blobstore.MemberPrefix(jiwoo.ID)); len(jiwooBlobs) < 4 || !containsAll(keys, jiwooBlobs) {
		t.Errorf("the other member's blobs: %q, want at least %q", keys, jiwooBlobs)
	}
	if es, err := transcript.Read(ctx, store, jiwoo.ID, "C-OLDER3"); err != nil || len(es) != 2 {
		t.Errorf("the other member's transcript: %d entries, %v", len(es), err)
	}
	if got := caseIDsOf(t, st, jiwoo.ID); !slices.Equal(got, []string{jiwooBug}) {
		t.Errorf("the other member's cases: %q", got)
	}
	if executionStatus(st, workflows.CaseWorkflowID(jiwooBug)) != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Error("the other member's case is no longer running")
	}
	// The Flex chat was closed by the conversation's close.
	waitFor(t, 30*time.Second, "the Flex conversation closed", func() bool {
		c, err := tw.Conversation(task.ConversationSID)
		return err == nil && c.State == "closed"
	})

	// A second erase finds nothing.
	out, err = eraseRun(st, "", mika.ID, "--yes", "--blob-dir", dir)
	if err != nil || !strings.Contains(out, "Nothing to erase.") {
		t.Errorf("second erase: %v\n%s", err, out)
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func TestMembersEraseArguments(t *testing.T) {
	noS3(t)
	mockTemporal(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"members"}, "want: members erase"},
		{[]string{"members", "forget", "1200000000000000001"}, `unknown members command "forget"`},
		{[]string{"members", "erase"}, "takes one Discord user id"},
		{[]string{"members", "erase", "mika"}, `"mika" is not a Discord user id`},
		{[]string{"members", "erase", "1200000000000000001' OR 1=1"}, "is not a Discord user id"},
	} {
		if _, err := runOps(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
}

// fakeWorkflowService answers DeleteWorkflowExecution with err; nothing else is called.
type fakeWorkflowService struct {
	workflowservice.WorkflowServiceClient
	err     error
	deletes []*workflowservice.DeleteWorkflowExecutionRequest
}

func (f *fakeWorkflowService) DeleteWorkflowExecution(ctx context.Context, req *workflowservice.DeleteWorkflowExecutionRequest, _ ...grpc.CallOption) (*workflowservice.DeleteWorkflowExecutionResponse, error) {
	f.deletes = append(f.deletes, req)
	return &workflowservice.DeleteWorkflowExecutionResponse{}, f.err
}

// TestMembersEraseReportsFailures: when Temporal refuses a deletion, erase still deletes the
// blobs, then exits with an error that says what was not done.
func TestMembersEraseReportsFailures(t *testing.T) {
	dir, store := blobDir(t)
	seedTranscript(t, store, opsUserID, "C-7K3QX2", "hello", "bye")
	tc := mockTemporal(t)
	caseRun := &commonpb.WorkflowExecution{WorkflowId: "case:C-7K3QX2", RunId: "run-1"}
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return r.Query == "DiscordUserID = '"+opsUserID+"'"
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{{
		Execution: caseRun, Type: &commonpb.WorkflowType{Name: "Case"}, Status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, StartTime: timestamppb.Now(),
	}}}, nil)
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return r.Query == "WorkflowId = '"+opsConvID+"'"
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{}, nil)
	tc.On("QueryWorkflow", mock.Anything, "case:C-7K3QX2", "run-1", workflows.QueryStatus).Return(nil, context.DeadlineExceeded).Once()
	ws := &fakeWorkflowService{err: serviceerror.NewUnavailable("frontend is down")}
	tc.On("WorkflowService").Return(ws)

	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"members", "erase", opsUserID, "--yes", "--blob-dir", dir, "--wait", "300ms", "--namespace", "support"}, &out, &errb)
	t.Logf("output:\n%s", out.String())
	if err == nil || !strings.Contains(err.Error(), "erase of member "+opsUserID+" is incomplete") ||
		!strings.Contains(err.Error(), "delete case:C-7K3QX2 run run-1: frontend is down") ||
		!strings.Contains(err.Error(), "Temporal still lists 1 run(s)") {
		t.Errorf("err = %v", err)
	}
	if len(ws.deletes) < 2 || ws.deletes[0].Namespace != "support" || ws.deletes[0].WorkflowExecution.RunId != "run-1" {
		t.Errorf("deletes %v", ws.deletes)
	}
	// The blobs went all the same, and the output says what could not be read.
	if keys, _ := store.List(context.Background(), ""); len(keys) != 0 {
		t.Errorf("blobs left: %q", keys)
	}
	for _, want := range []string{"Deleted 2 blob(s)", "No worker answered", "The status of 1 run(s) could not be read", "case:C-7K3QX2 run run-1: no worker answered", "discord:" + opsUserID} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "is erased from flexcord") {
		t.Error("output claims success")
	}
}
