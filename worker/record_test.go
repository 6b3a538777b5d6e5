package worker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/workflows"
)

// TestRecordHistories runs a whole support journey on the embedded server and writes the histories
// of its Conversation and Case to the directory FLEXCORD_RECORD_HISTORIES names, for the replay
// tests in workflows/testdata. Run it after a released behaviour change:
//
//	FLEXCORD_RECORD_HISTORIES=$PWD/workflows/testdata go test -run TestRecordHistories ./worker/
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

	write := func(workflowID, name string) {
		var events []*historypb.HistoryEvent
		it := s.client.GetWorkflowHistory(ctx, workflowID, "", false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			must(err)
			events = append(events, ev)
		}
		raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
		must(err)
		must(os.WriteFile(filepath.Join(dir, name), raw, 0o644))
	}
	write(id, "conversation-journey.json")
	write(workflows.CaseWorkflowID(caseID), "case-support.json")
}
