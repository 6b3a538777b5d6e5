package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/workflows"
)

// TestConversationSurvivesARestart stops the embedded server, worker and all, and starts them again
// on the same data directory, as `flexcord dev` does across a Ctrl-C.
func TestConversationSurvivesARestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server twice")
	}
	dir := t.TempDir()
	ctx := context.Background()
	member := workflows.Member{UserID: "7", Username: "jo"}

	first := startStack(t, devserver.Options{DataDir: dir})
	port := first.srv.FrontendPort()
	in := ingress.New(ingress.Config{Temporal: first.client})
	if err := in.StartConversation(ctx, member, "g", "G", "en-US", workflows.SignalUserMessage,
		workflows.UserMessageSignal{EventID: "m1", Member: member, Text: "talk to a human please", WantsHuman: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the transfer", func() bool {
		v, err := first.client.QueryWorkflow(ctx, workflows.ConversationWorkflowID("7"), "", workflows.QueryStatus)
		var st workflows.ConversationStatus
		return err == nil && v.Get(&st) == nil && st.Stage == workflows.StageQueued && st.Flex != nil
	})
	first.client.Close()
	if err := first.srv.Stop(); err != nil {
		t.Fatal(err)
	}

	second := startStack(t, devserver.Options{DataDir: dir, FrontendPort: port})
	in = ingress.New(ingress.Config{Temporal: second.client})
	if err := in.SignalConversation(ctx, "7", workflows.SignalAgentJoined, workflows.AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"}); err != nil {
		t.Fatalf("the conversation did not survive the restart: %v", err)
	}
	t0 := time.Now()
	defer func() { t.Logf("announced %v after the restart", time.Since(t0)) }()
	eventually(t, 30*time.Second, "the agent announced after the restart", func() bool {
		dms, _ := second.rec.snapshot()
		return countPrefix(dms, "Ana joined") == 1
	})
}
