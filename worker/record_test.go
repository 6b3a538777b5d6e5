package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/feedadmin"
	"github.com/flexcord/flexcord/workflows"
)

// TestRecordHistories runs a whole support journey, and the failure paths, on the embedded server
// and writes the histories of their Conversations and Cases to the directory
// FLEXCORD_RECORD_HISTORIES names, for the replay tests in workflows/testdata. Run it after a
// released behaviour change, and keep the files it replaces under a new name:
//
//	FLEXCORD_RECORD_HISTORIES=$PWD/workflows/testdata go test -run TestRecordHistories ./worker/
//
// The files are named for the behaviour version that wrote them (versioning.go): "legacy-" for
// workflows started before versioning, "v1-" for every-path-ends, "v2-" for fast-relay, "v3-" for
// local-delivery, "v4-" for record (the behaviour workflows start with now, historyPrefix).
func TestRecordHistories(t *testing.T) {
	dir := os.Getenv("FLEXCORD_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set FLEXCORD_RECORD_HISTORIES to record")
	}
	s := startStack(t, devserver.Options{})
	ctx := context.Background()
	in := ingress.New(ingress.Config{Temporal: s.client})
	member := workflows.Member{UserID: "1001", Username: "mika", DisplayName: "Mika"}
	id := workflows.ConversationWorkflowID(member.UserID)
	status := func() workflows.ConversationStatus {
		var st workflows.ConversationStatus
		if v, err := s.client.QueryWorkflow(ctx, id, "", workflows.QueryStatus); err == nil {
			_ = v.Get(&st)
		}
		return st
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(in.StartConversation(ctx, member, "g1", "Guild", "en-US", workflows.SignalHelpRequested,
		workflows.HelpRequestedSignal{EventID: "i1", Member: member, GuildID: "g1", Locale: "en-US",
			Interaction: &workflows.Interaction{ApplicationID: "app", Token: "token"}}))
	must(in.StartConversation(ctx, member, "g1", "Guild", "", workflows.SignalUserMessage,
		workflows.UserMessageSignal{EventID: "m1", Member: member, Text: "how do I reset my password"}))
	must(in.SignalConversation(ctx, member.UserID, workflows.SignalUserAction,
		workflows.UserActionSignal{EventID: "i2", Member: member, Action: workflows.ActionTalkToHuman}))
	eventually(t, 30*time.Second, "the transfer", func() bool { return status().Flex != nil })
	must(in.SignalConversation(ctx, member.UserID, workflows.SignalAgentJoined, workflows.AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"}))
	must(in.SignalConversation(ctx, member.UserID, workflows.SignalAgentMessage, workflows.AgentMessageSignal{EventID: "IM1", Text: "Hi Mika!"}))
	must(in.StartConversation(ctx, member, "", "", "", workflows.SignalUserMessage,
		workflows.UserMessageSignal{EventID: "m2", Member: member, Text: "thanks"}))
	eventually(t, 30*time.Second, "the relay", func() bool { st := status(); return st.Stage == workflows.StageLive && st.Delivered >= 6 })
	must(in.SignalConversation(ctx, member.UserID, workflows.SignalAgentWrappedUp, workflows.AgentWrappedUpSignal{EventID: "EV2"}))
	eventually(t, 30*time.Second, "the resolution", func() bool { return status().Stage == workflows.StageResolved })
	caseID := status().CaseID
	must(in.SignalConversation(ctx, member.UserID, workflows.SignalUserAction,
		workflows.UserActionSignal{EventID: "i3", Member: member, Action: workflows.ActionRate, Rating: 5}))
	var res workflows.ConversationResult
	must(s.client.GetWorkflow(ctx, id, "").Get(ctx, &res))

	h, err := s.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.CaseWorkflowID(caseID), UpdateName: workflows.UpdateSetCaseStatus,
		Args: []any{workflows.SetCaseStatusRequest{Status: workflows.CaseClosed, Actor: "ops"}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	must(err)
	must(h.Get(ctx, nil))
	must(s.client.GetWorkflow(ctx, workflows.CaseWorkflowID(caseID), "").Get(ctx, nil))

	write := func(workflowID, name string) { writeHistory(t, s, dir, workflowID, "", name) }
	write(id, historyPrefix+"conversation-journey.json")
	write(workflows.CaseWorkflowID(caseID), historyPrefix+"case-support.json")
	recordFailurePaths(t, s, dir)
	recordBugReport(t, s, dir)
	recordFeed(t, s, dir)
}

// recordBugReport records a bug report from filing to closed: its form and each status change
// go into its transcript.
func recordBugReport(t *testing.T, s *stack, dir string) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	caseID := "C-BVG234"
	_, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.CaseWorkflowID(caseID), TaskQueue: workflows.TaskQueue},
		workflows.Case, workflows.CaseInput{
			CaseID: caseID, Type: workflows.CaseBug, Reporter: workflows.Member{UserID: "3001", Username: "rae"}, GuildID: "g1",
			ChannelID: "1100000000000000015", Locale: "en-US", Title: "Crash on login", Description: "The app closes when I log in.",
			Details: []workflows.Field{{Name: "Version", Value: "2.4.1"}}, EventID: "b1",
		})
	must(err)
	for _, to := range []workflows.CaseStatus{workflows.CaseInProgress, workflows.CaseResolved, workflows.CaseClosed} {
		h, err := s.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: workflows.CaseWorkflowID(caseID), UpdateName: workflows.UpdateSetCaseStatus,
			Args: []any{workflows.SetCaseStatusRequest{Status: to, Actor: "ops", Note: "recording"}}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		must(err)
		must(h.Get(ctx, nil))
	}
	must(s.client.GetWorkflow(ctx, workflows.CaseWorkflowID(caseID), "").Get(ctx, nil))
	writeHistory(t, s, dir, workflows.CaseWorkflowID(caseID), "", historyPrefix+"case-bug-report.json")
}

// recordFeed records a source's Feed through its life (added, a first run over an archive, a run
// with new items, one not modified, a push, a retry, removal) and one Announcements run.
func recordFeed(t *testing.T, s *stack, dir string) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	item := func(n int) activities.FeedItem {
		return activities.FeedItem{Key: fmt.Sprint("id:", n), Title: fmt.Sprint("Post ", n), URL: fmt.Sprint("https://blog.example/", n),
			Summary: "Text.", Published: time.Date(2026, 1, n, 9, 0, 0, 0, time.UTC)}
	}
	doc := func(etag string, ns ...int) activities.FetchFeedResult {
		r := activities.FetchFeedResult{ETag: etag, Title: "Blog", Status: 200}
		for _, n := range ns {
			r.Items = append(r.Items, item(n))
		}
		return r
	}
	s.rec.mu.Lock()
	s.rec.feedDocs = []activities.FetchFeedResult{doc(`"1"`, 3, 2, 1), doc(`"2"`, 5, 4, 3, 2, 1)}
	s.rec.mu.Unlock()
	cfg := workflows.FeedConfig{Name: "blog", URL: "https://blog.example/feed.xml", ChannelID: "1100000000000000014"}
	_, err := feedadmin.Apply(ctx, s.client, cfg)
	must(err)
	for range 3 {
		_, err := feedadmin.Run(ctx, s.client, "blog", "operator", time.Minute)
		must(err)
	}
	must(s.client.SignalWorkflow(ctx, workflows.FeedWorkflowID("blog"), "", workflows.SignalFeedPush,
		workflows.FeedPushSignal{EventID: "push1", Items: []activities.FeedItem{item(6)}}))
	h, err := s.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.FeedWorkflowID("blog"), UpdateName: workflows.UpdateRetryDeliveries,
		Args: []any{workflows.RetryDeliveriesRequest{}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	must(err)
	must(h.Get(ctx, nil))
	_, err = feedadmin.Remove(ctx, s.client, "blog", "ops")
	must(err)
	must(s.client.GetWorkflow(ctx, workflows.FeedWorkflowID("blog"), "").Get(ctx, nil))
	s.rec.mu.Lock()
	posted := len(s.rec.announcements)
	s.rec.mu.Unlock()
	if posted != 4 {
		t.Fatalf("%d posts, want 4 (the newest of the archive, two new, one pushed)", posted)
	}
	write := func(workflowID, name string) { writeHistory(t, s, dir, workflowID, "", name) }
	write(workflows.FeedWorkflowID("blog"), historyPrefix+"feed.json")
	resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowType = 'Announcements'"})
	must(err)
	if len(resp.Executions) == 0 {
		t.Fatal("no Announcements run")
	}
	write(resp.Executions[0].GetExecution().GetWorkflowId(), historyPrefix+"announcements-run.json")
}

// recordFailurePaths records the ways out of the journey: a failed hand-over, no agent (keep
// waiting, then leave a message), an operator close while queued, continue-as-new during a
// hand-over, and Flex losing the chat mid-conversation.
func recordFailurePaths(t *testing.T, s *stack, dir string) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	in := ingress.New(ingress.Config{Temporal: s.client})
	status := func(userID string) workflows.ConversationStatus {
		var st workflows.ConversationStatus
		if v, err := s.client.QueryWorkflow(ctx, workflows.ConversationWorkflowID(userID), "", workflows.QueryStatus); err == nil {
			_ = v.Get(&st)
		}
		return st
	}
	start := func(userID, eventID string) workflows.Member {
		m := workflows.Member{UserID: userID, Username: "member" + userID}
		must(in.StartConversation(ctx, m, "g1", "Guild", "en-US", workflows.SignalUserMessage,
			workflows.UserMessageSignal{EventID: eventID, Member: m, Text: "I want a human", WantsHuman: true}))
		return m
	}
	signal := func(userID, name string, arg any) { must(in.SignalConversation(ctx, userID, name, arg)) }
	closeByOperator := func(userID string) {
		h, err := s.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: workflows.ConversationWorkflowID(userID), UpdateName: workflows.UpdateClose,
			Args: []any{workflows.CloseRequest{Reason: "recording", Operator: "ops"}}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		must(err)
		must(h.Get(ctx, nil))
	}
	finish := func(userID string) {
		var res workflows.ConversationResult
		must(s.client.GetWorkflow(ctx, workflows.ConversationWorkflowID(userID), "").Get(ctx, &res))
	}
	write := func(workflowID, runID, name string) { writeHistory(t, s, dir, workflowID, runID, name) }

	// A hand-over Flex refuses; the member then finds the answer themselves.
	s.rec.mu.Lock()
	s.rec.createFails = true
	s.rec.mu.Unlock()
	start("2001", "f1")
	eventually(t, 30*time.Second, "the failed hand-over", func() bool { return status("2001").Transfer.Error != "" })
	s.rec.mu.Lock()
	s.rec.createFails = false
	s.rec.mu.Unlock()
	signal("2001", workflows.SignalUserAction, workflows.UserActionSignal{EventID: "f2", Action: workflows.ActionSolved})
	finish("2001")
	write(workflows.ConversationWorkflowID("2001"), "", historyPrefix+"conversation-handover-failed.json")

	// No agent: keep waiting, no agent again, leave a message.
	start("2002", "n1")
	eventually(t, 30*time.Second, "the queue", func() bool { return status("2002").Flex != nil })
	st := status("2002")
	signal("2002", workflows.SignalNoAgent, workflows.NoAgentSignal{EventID: "n2", CaseID: st.CaseID, TaskSID: st.Flex.TaskSID, Reason: "task.canceled"})
	eventually(t, 30*time.Second, "the offer", func() bool { return status("2002").Stage == workflows.StageNoAgent })
	signal("2002", workflows.SignalUserAction, workflows.UserActionSignal{EventID: "n3", Action: workflows.ActionKeepWaiting, CaseID: st.CaseID})
	eventually(t, 30*time.Second, "the second hand-over", func() bool { st := status("2002"); return st.Flex != nil && st.Handovers == 2 })
	st = status("2002")
	signal("2002", workflows.SignalNoAgent, workflows.NoAgentSignal{EventID: "n4", CaseID: st.CaseID, TaskSID: st.Flex.TaskSID, Reason: "workflow.timeout"})
	eventually(t, 30*time.Second, "the second offer", func() bool { return status("2002").Stage == workflows.StageNoAgent })
	signal("2002", workflows.SignalUserAction, workflows.UserActionSignal{EventID: "n5", Action: workflows.ActionLeaveMessage, CaseID: st.CaseID})
	finish("2002")
	write(workflows.ConversationWorkflowID("2002"), "", historyPrefix+"conversation-no-agent.json")
	write(workflows.CaseWorkflowID(st.CaseID), "", historyPrefix+"case-awaiting-follow-up.json")

	// An operator closes a conversation waiting in the queue; its case closes with it.
	start("2003", "o1")
	eventually(t, 30*time.Second, "the queue", func() bool { return status("2003").Flex != nil })
	caseID := status("2003").CaseID
	closeByOperator("2003")
	finish("2003")
	must(s.client.GetWorkflow(ctx, workflows.CaseWorkflowID(caseID), "").Get(ctx, nil))
	write(workflows.ConversationWorkflowID("2003"), "", historyPrefix+"conversation-operator-close-queued.json")
	write(workflows.CaseWorkflowID(caseID), "", historyPrefix+"case-closed-by-operator.json")

	// Continue-as-new while the hand-over is under way: signals pile up during the transfer.
	canIn := ingress.New(ingress.Config{Temporal: s.client, Conversation: workflows.ConversationOptions{ContinueAsNewAfter: 3}})
	m := workflows.Member{UserID: "2004", Username: "member2004"}
	first, err := s.client.SignalWithStartWorkflow(ctx, workflows.ConversationWorkflowID("2004"), workflows.SignalUserMessage,
		workflows.UserMessageSignal{EventID: "c1", Member: m, Text: "I want a human", WantsHuman: true},
		client.StartWorkflowOptions{TaskQueue: workflows.TaskQueue}, workflows.Conversation,
		workflows.ConversationInput{Member: m, Locale: "en-US", Options: workflows.ConversationOptions{ContinueAsNewAfter: 3}})
	must(err)
	for i := 2; i <= 4; i++ {
		must(canIn.StartConversation(ctx, m, "", "", "", workflows.SignalUserMessage,
			workflows.UserMessageSignal{EventID: fmt.Sprint("c", i), Member: m, Text: fmt.Sprint("while you connect me ", i)}))
	}
	eventually(t, 30*time.Second, "the next run", func() bool { st := status("2004"); return st.Runs >= 1 && st.Flex != nil })
	signal("2004", workflows.SignalUserAction, workflows.UserActionSignal{EventID: "c5", Action: workflows.ActionLeaveMessage})
	closeByOperator("2004")
	finish("2004")
	write(workflows.ConversationWorkflowID("2004"), first.GetRunID(), historyPrefix+"conversation-continue-as-new-during-handover.json")
	write(workflows.ConversationWorkflowID("2004"), "", historyPrefix+"conversation-after-continue-as-new.json")

	// Flex loses the chat while live: the member is handed to a new interaction of the case.
	start("2005", "l1")
	eventually(t, 30*time.Second, "the queue", func() bool { return status("2005").Flex != nil })
	st = status("2005")
	signal("2005", workflows.SignalAgentJoined, workflows.AgentJoinedSignal{EventID: "l2", AgentName: "Ana", TaskSID: st.Flex.TaskSID})
	eventually(t, 30*time.Second, "the agent", func() bool { return status("2005").Stage == workflows.StageLive })
	s.rec.lose(st.Flex.ConversationSID)
	must(in.StartConversation(ctx, workflows.Member{UserID: "2005"}, "", "", "", workflows.SignalUserMessage,
		workflows.UserMessageSignal{EventID: "l3", Member: workflows.Member{UserID: "2005"}, Text: "hello?"}))
	eventually(t, 30*time.Second, "the new hand-over", func() bool { st := status("2005"); return st.Handovers == 2 && st.Flex != nil })
	st = status("2005")
	signal("2005", workflows.SignalAgentJoined, workflows.AgentJoinedSignal{EventID: "l4", AgentName: "Bo", TaskSID: st.Flex.TaskSID})
	signal("2005", workflows.SignalAgentWrappedUp, workflows.AgentWrappedUpSignal{EventID: "l5", TaskSID: st.Flex.TaskSID})
	eventually(t, 30*time.Second, "the resolution", func() bool { return status("2005").Stage == workflows.StageResolved })
	signal("2005", workflows.SignalUserAction, workflows.UserActionSignal{EventID: "l6", Action: workflows.ActionRate, Rating: 4, CaseID: st.CaseID})
	finish("2005")
	write(workflows.ConversationWorkflowID("2005"), "", historyPrefix+"conversation-flex-lost-mid-chat.json")

	// Files both ways (one over the cap), an edit and a deletion, the transcript offer.
	m = start("2006", "a1")
	eventually(t, 30*time.Second, "the queue", func() bool { return status("2006").Flex != nil })
	st = status("2006")
	signal("2006", workflows.SignalAgentJoined, workflows.AgentJoinedSignal{EventID: "a2", AgentName: "Ana", TaskSID: st.Flex.TaskSID})
	must(in.StartConversation(ctx, m, "", "", "", workflows.SignalUserMessage, workflows.UserMessageSignal{EventID: "1300000000000000003", Member: m, Text: "see the screenshot",
		Files: []workflows.Attachment{{ID: "A1", Name: "shot.png", ContentType: "image/png", Size: 2048, URL: "https://cdn.discordapp.com/attachments/1/A1/shot.png"},
			{ID: "A2", Name: "video.mp4", ContentType: "video/mp4", Size: 40 << 20, URL: "https://cdn.discordapp.com/attachments/1/A2/video.mp4"}}}))
	signal("2006", workflows.SignalAgentMessage, workflows.AgentMessageSignal{EventID: "IMa1", Text: workflows.AttachmentPlaceholder, ConversationSID: st.Flex.ConversationSID,
		Files: []workflows.Attachment{{ID: "ME1", Name: "steps.pdf", ContentType: "application/pdf", Size: 4096, MediaSID: "ME1", ServiceSID: "IS1"}}})
	signal("2006", workflows.SignalUserMessageChanged, workflows.UserMessageChangedSignal{EventID: "edit:1300000000000000003:1", MessageID: "1300000000000000003", Member: m, Text: "see the screenshot above"})
	signal("2006", workflows.SignalUserMessageChanged, workflows.UserMessageChangedSignal{EventID: "delete:1300000000000000003", MessageID: "1300000000000000003", Member: m, Deleted: true})
	signal("2006", workflows.SignalAgentWrappedUp, workflows.AgentWrappedUpSignal{EventID: "a3", TaskSID: st.Flex.TaskSID})
	eventually(t, 30*time.Second, "the resolution", func() bool { return status("2006").Stage == workflows.StageResolved })
	signal("2006", workflows.SignalUserAction, workflows.UserActionSignal{EventID: "a4", Action: workflows.ActionRate, Rating: 5, CaseID: st.CaseID})
	finish("2006")
	write(workflows.ConversationWorkflowID("2006"), "", historyPrefix+"conversation-files-and-edits.json")
}

// writeHistory writes the history of a workflow run (runID empty: the latest) to dir/name, as
// the replay tests read it.
// historyPrefix names the histories TestRecordHistories writes: the behaviour version that
// workflows start with today.
const historyPrefix = "v4-"

func writeHistory(t *testing.T, s *stack, dir, workflowID, runID, name string) {
	t.Helper()
	var events []*historypb.HistoryEvent
	it := s.client.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
