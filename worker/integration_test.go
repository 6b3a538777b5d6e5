package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

// recorder stands in for Discord, Flex and the knowledge base: it records every delivery, and
// fails the ways Flex does on demand.
type recorder struct {
	mu      sync.Mutex
	dms     []activities.SendDirectMessageInput
	flex    []activities.PostFlexMessageInput
	started chan time.Time // one value each time SendDirectMessage starts, if not nil

	createFails bool            // every hand-over fails for good
	gone        map[string]bool // Flex conversations Flex has lost

	feedDocs      []activities.FetchFeedResult // what each fetch returns; the last repeats
	fetches       int
	announcements []activities.PostAnnouncementInput
	// records keeps the transcripts the workflows write, in memory.
	records activities.Records
}

// FetchFeed returns the scripted documents in turn, 304 when the validator matches.
func (r *recorder) FetchFeed(ctx context.Context, in activities.FetchFeedInput) (activities.FetchFeedResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.feedDocs) == 0 {
		return activities.FetchFeedResult{}, temporal.NewNonRetryableApplicationError("no feed here", activities.ErrFeedRejected, nil)
	}
	r.fetches++
	doc := r.feedDocs[min(r.fetches, len(r.feedDocs))-1]
	if in.ETag != "" && in.ETag == doc.ETag {
		return activities.FetchFeedResult{NotModified: true, ETag: doc.ETag, Status: 304}, nil
	}
	return doc, nil
}

// PostAnnouncement records the post.
func (r *recorder) PostAnnouncement(ctx context.Context, in activities.PostAnnouncementInput) (activities.PostAnnouncementResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.announcements = append(r.announcements, in)
	return activities.PostAnnouncementResult{MessageID: fmt.Sprint(1300000000000000000 + len(r.announcements)), Crossposted: true}, nil
}

func (r *recorder) register(w sdkworker.Worker) {
	w.RegisterActivityWithOptions(r.SendDirectMessage, activity.RegisterOptions{Name: "SendDirectMessage"})
	w.RegisterActivityWithOptions(r.FetchFeed, activity.RegisterOptions{Name: "FetchFeed"})
	w.RegisterActivityWithOptions(r.PostAnnouncement, activity.RegisterOptions{Name: "PostAnnouncement"})
	w.RegisterActivityWithOptions(r.SendInteractionFollowUp, activity.RegisterOptions{Name: "SendInteractionFollowUp"})
	w.RegisterActivityWithOptions(r.PostChannelMessage, activity.RegisterOptions{Name: "PostChannelMessage"})
	w.RegisterActivityWithOptions(r.CreateFlexInteraction, activity.RegisterOptions{Name: "CreateFlexInteraction"})
	w.RegisterActivityWithOptions(r.PostFlexMessage, activity.RegisterOptions{Name: "PostFlexMessage"})
	w.RegisterActivityWithOptions(r.CloseFlexInteraction, activity.RegisterOptions{Name: "CloseFlexInteraction"})
	w.RegisterActivityWithOptions(r.SearchKnowledgeBase, activity.RegisterOptions{Name: "SearchKnowledgeBase"})
	w.RegisterActivityWithOptions(r.EditDirectMessage, activity.RegisterOptions{Name: "EditDirectMessage"})
	w.RegisterActivityWithOptions(r.CheckFlexInteraction, activity.RegisterOptions{Name: "CheckFlexInteraction"})
	w.RegisterActivityWithOptions(r.FetchAgentMessages, activity.RegisterOptions{Name: "FetchAgentMessages"})
	if r.records.Store == nil {
		r.records.Store = blobstore.NewMemory()
	}
	w.RegisterActivityWithOptions(r.records.SaveTranscript, activity.RegisterOptions{Name: "SaveTranscript"})
}

func (r *recorder) EditDirectMessage(context.Context, activities.EditDirectMessageInput) error {
	return nil
}

func (r *recorder) CheckFlexInteraction(ctx context.Context, in activities.CheckFlexInteractionInput) (activities.CheckFlexInteractionResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone[in.Interaction.ConversationSID] {
		return activities.CheckFlexInteractionResult{LastIndex: -1}, nil
	}
	return activities.CheckFlexInteractionResult{Open: true, ConversationState: "active", LastIndex: -1}, nil
}

func (r *recorder) FetchAgentMessages(ctx context.Context, in activities.FetchAgentMessagesInput) (activities.FetchAgentMessagesResult, error) {
	return activities.FetchAgentMessagesResult{LastIndex: in.AfterIndex}, nil
}

// lose makes Flex lose a conversation: posts to it fail as Twilio's 20404 does.
func (r *recorder) lose(conversationSID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone == nil {
		r.gone = map[string]bool{}
	}
	r.gone[conversationSID] = true
}

func (r *recorder) SendDirectMessage(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	return activities.SendEach(in, func(one activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
		return r.sendOneDM(ctx, one)
	})
}

func (r *recorder) sendOneDM(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	if r.started != nil {
		r.started <- time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dms = append(r.dms, in)
	return activities.SendDirectMessageResult{ChannelID: "dm", MessageIDs: []string{fmt.Sprint(len(r.dms))}}, nil
}

func (r *recorder) SendInteractionFollowUp(context.Context, activities.SendInteractionFollowUpInput) (activities.SendInteractionFollowUpResult, error) {
	return activities.SendInteractionFollowUpResult{}, nil
}

func (r *recorder) PostChannelMessage(context.Context, activities.PostChannelMessageInput) (activities.PostChannelMessageResult, error) {
	return activities.PostChannelMessageResult{}, nil
}

func (r *recorder) CreateFlexInteraction(ctx context.Context, in activities.CreateFlexInteractionInput) (activities.FlexInteraction, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.createFails {
		return activities.FlexInteraction{}, temporal.NewNonRetryableApplicationError("twilio 45361: downstream error", activities.ErrTwilioRejected, nil)
	}
	sid := fmt.Sprintf("CH%s-%d", in.CaseID, max(in.Handover, 1))
	return activities.FlexInteraction{ConversationSID: sid, InteractionSID: "KD" + sid[2:], ChannelSID: "UO" + sid[2:], TaskSID: "WT" + sid[2:],
		Identity: "discord:" + in.DiscordUserID, Handover: in.Handover}, nil
}

func (r *recorder) PostFlexMessage(ctx context.Context, in activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
	return activities.PostEach(in, func(one activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
		return r.postOneFlex(ctx, one)
	})
}

func (r *recorder) postOneFlex(ctx context.Context, in activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone[in.ConversationSID] {
		return activities.PostFlexMessageResult{}, temporal.NewNonRetryableApplicationError("twilio 20404: not found", activities.ErrFlexConversationGone, nil)
	}
	r.flex = append(r.flex, in)
	return activities.PostFlexMessageResult{MessageSID: fmt.Sprint("IM", len(r.flex)), Index: len(r.flex) - 1}, nil
}

func (r *recorder) CloseFlexInteraction(context.Context, activities.CloseFlexInteractionInput) error {
	return nil
}

func (r *recorder) SearchKnowledgeBase(context.Context, activities.SearchKnowledgeBaseInput) (activities.SearchKnowledgeBaseResult, error) {
	return activities.SearchKnowledgeBaseResult{}, nil
}

func (r *recorder) snapshot() (dms, flex []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.dms {
		dms = append(dms, d.Message.Content)
	}
	for _, f := range r.flex {
		flex = append(flex, f.Body)
	}
	return dms, flex
}

// stack is an embedded Temporal server with a client and a worker running the real workflows.
type stack struct {
	srv    *devserver.Server
	client client.Client
	rec    *recorder
}

func startStack(t testing.TB, opts devserver.Options) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if opts.LogLevel == "" {
		opts.LogLevel = "fatal"
	}
	if opts.SearchAttributes == nil {
		opts.SearchAttributes = worker.SearchAttributeTypes()
	}
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start embedded Temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr, Namespace: srv.Namespace, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	rec := &recorder{}
	w := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{})
	worker.Register(w, worker.Activities{})
	rec.register(w)
	// The recorder plays the providers on their own queues too, where the workflows send them.
	for _, q := range []string{workflows.DiscordTaskQueue, workflows.TwilioTaskQueue} {
		pw := sdkworker.New(c, q, sdkworker.Options{DisableWorkflowWorker: true})
		rec.register(pw)
		if err := pw.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pw.Stop)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &stack{srv: srv, client: c, rec: rec}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for a result
	}
}

func TestConversationThroughTheRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	s := startStack(t, devserver.Options{})
	ctx := context.Background()
	in := ingress.New(ingress.Config{Temporal: s.client, Conversation: workflows.ConversationOptions{ContinueAsNewAfter: 10}})
	member := workflows.Member{UserID: "42", Username: "mika"}
	const n = 30

	if err := in.StartConversation(ctx, member, "g1", "Guild", "en-US", workflows.SignalUserMessage,
		workflows.UserMessageSignal{EventID: "m0", Member: member, Text: "I want to talk to a human", WantsHuman: true}); err != nil {
		t.Fatal(err)
	}
	status := func() workflows.ConversationStatus {
		var st workflows.ConversationStatus
		v, err := s.client.QueryWorkflow(ctx, workflows.ConversationWorkflowID("42"), "", workflows.QueryStatus)
		if err == nil {
			_ = v.Get(&st)
		}
		return st
	}
	eventually(t, 30*time.Second, "the transfer", func() bool { return status().Flex != nil })
	if err := in.SignalConversation(ctx, "42", workflows.SignalAgentJoined, workflows.AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		agent := workflows.AgentMessageSignal{EventID: fmt.Sprint("IM", i), Text: fmt.Sprint("agent ", i)}
		if err := in.SignalConversation(ctx, "42", workflows.SignalAgentMessage, agent); err != nil {
			t.Fatal(err)
		}
		// Every fifth agent message is delivered twice, as a re-sent webhook would be.
		if i%5 == 0 {
			if err := in.SignalConversation(ctx, "42", workflows.SignalAgentMessage, agent); err != nil {
				t.Fatal(err)
			}
		}
		if err := in.StartConversation(ctx, member, "g1", "Guild", "", workflows.SignalUserMessage,
			workflows.UserMessageSignal{EventID: fmt.Sprint("m", i), Member: member, Text: fmt.Sprint("member ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "every message delivered", func() bool {
		dms, flex := s.rec.snapshot()
		return countPrefix(dms, "**Ana:** agent ") >= n && len(flex) >= n
	})

	dms, flex := s.rec.snapshot()
	var agentLines []string
	for _, d := range dms {
		if strings.HasPrefix(d, "**Ana:** agent ") {
			agentLines = append(agentLines, strings.TrimPrefix(d, "**Ana:** "))
		}
	}
	for i := 1; i <= n; i++ {
		if agentLines[i-1] != fmt.Sprint("agent ", i) || flex[i-1] != fmt.Sprint("member ", i) {
			t.Fatalf("out of order at %d:\nagent: %q\nmember: %q", i, agentLines, flex)
		}
	}
	if len(agentLines) != n || len(flex) != n {
		t.Fatalf("delivered %d agent lines and %d member lines, want %d each (no duplicates)", len(agentLines), len(flex), n)
	}
	st := status()
	if st.Runs < 3 {
		t.Errorf("conversation continued as new %d times, want at least 3 with %d signals and a threshold of 10", st.Runs, 2*n+n/5+2)
	}
	if st.Stage != workflows.StageLive || st.Agent != "Ana" || st.CaseID == "" {
		t.Errorf("status = stage %s agent %q case %q", st.Stage, st.Agent, st.CaseID)
	}

	// The conversation is listable by stage in visibility (what the Temporal UI uses).
	query := "FlexcordStage = 'live' AND DiscordUserID = '42' AND ExecutionStatus = 'Running'"
	eventually(t, 30*time.Second, "the visibility query", func() bool {
		resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		return err == nil && len(resp.Executions) == 1 &&
			resp.Executions[0].Execution.WorkflowId == workflows.ConversationWorkflowID("42")
	})
	// The support case is listable by its id.
	caseQuery := fmt.Sprintf("FlexcordCaseID = '%s' AND FlexcordCaseType = 'support'", st.CaseID)
	eventually(t, 30*time.Second, "the case in visibility", func() bool {
		resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: caseQuery})
		return err == nil && len(resp.Executions) == 1
	})
}

func countPrefix(ss []string, prefix string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// quiet silences the SDK's logs in tests.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
