package ingress_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"google.golang.org/grpc"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

// TestBacklogAdmission runs ingress against an embedded Temporal server with no worker polling
// the conversations' task queue, so that every signal-with-start leaves a workflow task waiting.
// Once the backlog is older than MaxBacklogAge, agents' messages are refused (ErrBusy, and a 503
// with Retry-After on the Twilio route) while members' DMs are still taken; an ingress that
// cannot read the stats keeps admitting. When a worker starts and works the backlog off, signals are admitted again, and
// every signal taken before, during and after the refusal reaches its conversation.
//
// The server recomputes task queue stats at most every 5 s (matching.TaskQueueInfoByBuildIdTTL,
// left at its default here), so the refusal and the recovery each come up to 5 s after the
// backlog changed, whatever the poll interval.
func TestBacklogAdmission(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tc, namespace := startTemporal(ctx, t)

	logs := &logRecords{}
	in := ingress.New(ingress.Config{
		Temporal: tc, Namespace: namespace, Log: slog.New(logs),
		MaxBacklogAge: 300 * time.Millisecond, BacklogPollInterval: 50 * time.Millisecond,
		Routes: []func(*ingress.Server, *mux.Router){
			ingress.TwilioRoutes(ingress.TwilioConfig{AuthToken: hookAuthToken, PublicURL: hookPublicURL}),
		},
	})
	// An ingress whose Temporal server reports no stats, as an old server would.
	old := &statslessClient{Client: tc}
	oldLogs := &logRecords{}
	inOld := ingress.New(ingress.Config{
		Temporal: old, Namespace: namespace, Log: slog.New(oldLogs),
		MaxBacklogAge: 300 * time.Millisecond, BacklogPollInterval: 50 * time.Millisecond,
	})

	accepted := map[string]string{} // member id → event id of the signal ingress took
	n := 0
	say := func(s *ingress.Server) error {
		n++
		userID := strconv.Itoa(2100000000000000000 + n)
		eventID := strconv.Itoa(3100000000000000000 + n)
		m := workflows.Member{UserID: userID, Username: "member" + strconv.Itoa(n)}
		err := s.StartConversation(ctx, m, "", "", "en-US", workflows.SignalUserMessage,
			workflows.UserMessageSignal{EventID: eventID, Member: m, ChannelID: "dm-" + userID, Text: "hello"})
		if err == nil {
			accepted[userID] = eventID
		}
		return err
	}
	webhook := func(userID string) *http.Response {
		r := signedForm(ingress.TwilioConversationsPath+"?case=C-1&user="+userID, hookPublicURL, agentMessage())
		return serve(in.Handler(), r).Result()
	}

	agentSays := func(s *ingress.Server, userID string) error {
		return s.SignalConversation(ctx, userID, workflows.SignalAgentMessage, workflows.AgentMessageSignal{EventID: "IM-" + userID, Text: "hi"})
	}

	// Members write in, one every 50 ms, and an agent answers each, until ingress refuses an
	// agent's message. Members' DMs are never refused for the backlog: the gateway could not
	// have Discord send them again.
	start := time.Now()
	var refusal error
	eventuallyEvery(t, "an agent's message refused for the backlog", 30*time.Second, 50*time.Millisecond, func() bool {
		if err := say(in); err != nil {
			t.Fatalf("a member's DM: %v", err)
		}
		err := agentSays(in, strconv.Itoa(2100000000000000000+n))
		if err != nil && !errors.Is(err, ingress.ErrBusy) {
			t.Fatalf("signal: %v", err)
		}
		refusal = err
		return err != nil
	})
	t.Logf("refused after %s and %d members' DMs taken: %v", time.Since(start).Round(time.Millisecond), len(accepted), refusal)
	if ra := ingress.RetryAfter(refusal); ra < time.Second || ra > 30*time.Second {
		t.Errorf("RetryAfter(%v) = %s, want 1 to 30 s", refusal, ra)
	}
	if err := say(in); err != nil {
		t.Errorf("a member's DM while the workers are behind: %v, want it taken", err)
	}
	var someMember string
	for id := range accepted {
		someMember = id
		break
	}
	resp := webhook(someMember)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusServiceUnavailable || ra < 1 || ra > 30 {
		t.Errorf("Twilio webhook while the workers are behind: %d, Retry-After %q; want 503 with 1 to 30", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if logs.count("the workers are behind") != 1 {
		t.Errorf("logged the refusal %d times, want once", logs.count("the workers are behind"))
	}

	// Without stats, only the in-flight bound applies: the same backlog does not refuse, and
	// the failing stats call is logged once however often it is polled.
	if err := agentSays(inOld, someMember); err != nil {
		t.Fatalf("signal through the ingress without stats: %v", err)
	}
	eventuallyEvery(t, "three stats calls without stats", 10*time.Second, 20*time.Millisecond, func() bool { return old.calls.Load() >= 3 })
	if err := agentSays(inOld, someMember); err != nil {
		t.Fatalf("signal through the ingress without stats: %v", err)
	}
	if got := oldLogs.count("cannot read the workflow task queue's backlog"); got != 1 {
		t.Errorf("logged the missing stats %d times over %d polls, want once", got, old.calls.Load())
	}

	// A worker starts and works the backlog off: ingress admits again.
	startMemberSide(t, tc, worker.Activities{})
	workerStart := time.Now()
	eventuallyEvery(t, "a Twilio webhook accepted again", 60*time.Second, 100*time.Millisecond, func() bool {
		return webhook(someMember).StatusCode == http.StatusOK
	})
	t.Logf("admitting again %s after the worker started", time.Since(workerStart).Round(time.Millisecond))
	if err := agentSays(in, someMember); err != nil {
		t.Fatalf("an agent's message after the recovery: %v", err)
	}
	if logs.count("the workers caught up") != 1 {
		t.Errorf("logged the recovery %d times, want once", logs.count("the workers caught up"))
	}

	// Nothing taken was lost: every conversation took its member's message.
	pending := maps.Clone(accepted)
	eventuallyEvery(t, "every accepted signal seen by its conversation", 60*time.Second, 100*time.Millisecond, func() bool {
		for id, ev := range pending {
			st, err := in.ConversationStatus(ctx, id)
			if err != nil || st.LastMessageID != ev {
				return false
			}
			delete(pending, id)
		}
		return true
	})
	t.Logf("%d conversations took their signal", len(accepted))
}

// eventuallyEvery calls cond every tick until it holds, failing the test after timeout.
func eventuallyEvery(t *testing.T, what string, timeout, tick time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tk.C
	}
}

// statslessClient is a Temporal client whose server answers DescribeTaskQueue with Unimplemented,
// as a server too old to report task queue stats would.
type statslessClient struct {
	client.Client
	calls atomic.Int32
}

func (c *statslessClient) WorkflowService() workflowservice.WorkflowServiceClient {
	return statslessService{WorkflowServiceClient: c.Client.WorkflowService(), calls: &c.calls}
}

type statslessService struct {
	workflowservice.WorkflowServiceClient
	calls *atomic.Int32
}

func (s statslessService) DescribeTaskQueue(context.Context, *workflowservice.DescribeTaskQueueRequest, ...grpc.CallOption) (*workflowservice.DescribeTaskQueueResponse, error) {
	s.calls.Add(1)
	return nil, serviceerror.NewUnimplemented("DescribeTaskQueue stats are not supported")
}

// logRecords is a log handler that keeps the messages of records at Info and above.
type logRecords struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecords) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *logRecords) WithGroup(string) slog.Handler                { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

// count returns how many records begin with prefix.
func (h *logRecords) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// TestSignalRateAdmission: beyond MaxSignalRate, agents' messages are refused with a Retry-After
// of when the next may pass (no Temporal call is made for them). Members' DMs are always sent and
// take their share of the rate, so agents' messages wait longer; feed pushes and an agent joining
// are not bounded by it; messages pass again once the bucket has refilled.
func TestSignalRateAdmission(t *testing.T) {
	tc := mocks.NewClient(t)
	tc.On("SignalWorkflow", mock.Anything, mock.Anything, "", mock.Anything, mock.Anything).Return(nil)
	in := ingress.New(ingress.Config{Temporal: tc, Log: slog.New(slog.DiscardHandler), MaxSignalRate: 4})
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ingress.SetSignalRateClock(in, func() time.Time { return now })
	ctx := context.Background()
	agent := func() error {
		return in.SignalConversation(ctx, "42", workflows.SignalAgentMessage, workflows.AgentMessageSignal{EventID: "IM"})
	}
	member := func() error {
		return in.SignalConversation(ctx, "42", workflows.SignalUserMessage, workflows.UserMessageSignal{EventID: "m"})
	}
	calls := 0
	for i := range 4 { // a second's worth passes at once
		if err := agent(); err != nil {
			t.Fatalf("agent's message %d: %v", i+1, err)
		}
		calls++
	}
	err := agent()
	if !errors.Is(err, ingress.ErrBusy) {
		t.Fatalf("fifth agent's message in the same instant: %v, want ErrBusy", err)
	}
	if got := ingress.RetryAfter(err); got != time.Second {
		t.Errorf("Retry-After = %v, want 1s (the next token comes in 250 ms; the header counts whole seconds)", got)
	}
	if err := in.SignalFeed(ctx, "blog", workflows.SignalFeedPoll, nil); err != nil {
		t.Errorf("a feed signal is bounded by in-flight slots only: %v", err)
	}
	// An agent joining moves the conversation on and is not always sent again: it passes.
	if err := in.SignalConversation(ctx, "42", workflows.SignalAgentJoined, workflows.AgentJoinedSignal{EventID: "EV1"}); err != nil {
		t.Errorf("an agent joining is bounded by in-flight slots only: %v", err)
	}
	calls += 2
	// A member's DM is sent with the bucket empty, and owes its token.
	for i := range 2 {
		if err := member(); err != nil {
			t.Fatalf("member's DM %d with the bucket empty: %v", i+1, err)
		}
		calls++
	}
	now = now.Add(500 * time.Millisecond) // two tokens, owed to the DMs
	if err := agent(); !errors.Is(err, ingress.ErrBusy) {
		t.Errorf("after 500 ms the DMs' debt is paid and nothing is left: %v, want ErrBusy", err)
	}
	now = now.Add(250 * time.Millisecond)
	if err := agent(); err != nil {
		t.Errorf("after 250 ms more one agent's message passes: %v", err)
	}
	calls++
	if err := agent(); !errors.Is(err, ingress.ErrBusy) {
		t.Errorf("and only one: %v", err)
	}
	// A surge of DMs runs the bucket into debt by one second's worth at most.
	for range 100 {
		if err := member(); err != nil {
			t.Fatalf("member's DM in a surge: %v", err)
		}
		calls++
	}
	now = now.Add(2*time.Second + 250*time.Millisecond)
	if err := agent(); err != nil {
		t.Errorf("2.25 s after a surge of 100 DMs at 4/s: %v, want an agent's message to pass", err)
	}
	calls++
	now = now.Add(10 * time.Second)
	for i := range 4 {
		if err := agent(); err != nil {
			t.Fatalf("after the bucket refilled, agent's message %d: %v", i+1, err)
		}
		calls++
	}
	tc.AssertNumberOfCalls(t, "SignalWorkflow", calls)
}
