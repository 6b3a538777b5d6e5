package ingress_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

const (
	e2eAccountSID   = "AC0123456789abcdef0123456789abcdef"
	e2eWorkspaceSID = "WS0123456789abcdef0123456789abcdef"
	e2eWorkflowSID  = "WW0123456789abcdef0123456789abcdef"
	e2eUserID       = "2000000000000000042"
)

// memberSide stands in for Discord and the knowledge base: it records every direct message,
// once per nonce, in delivery order.
type memberSide struct {
	mu  sync.Mutex
	dms []activities.SendDirectMessageInput
}

// startTemporal starts an embedded Temporal server with flexcord's search attributes and returns
// a client of it and its namespace; both close when the test ends.
func startTemporal(ctx context.Context, t *testing.T) (client.Client, string) {
	t.Helper()
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: worker.SearchAttributeTypes()})
	if err != nil {
		t.Fatalf("start Temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	tc, err := client.Dial(client.Options{HostPort: srv.FrontendAddr, Namespace: srv.Namespace,
		Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	return tc, srv.Namespace
}

// startMemberSide starts a worker with acts whose Discord calls and knowledge base the member
// side plays, on the main queue and on the Discord queue (where the workflows send Discord
// calls), until the test ends.
func startMemberSide(t *testing.T, tc client.Client, acts worker.Activities) *memberSide {
	t.Helper()
	member := &memberSide{}
	w := worker.New(tc, acts, sdkworker.Options{})
	member.register(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	dw := sdkworker.New(tc, workflows.DiscordTaskQueue, sdkworker.Options{DisableWorkflowWorker: true})
	member.register(dw)
	if err := dw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dw.Stop)
	return member
}

func (m *memberSide) register(w sdkworker.Worker) {
	w.RegisterActivityWithOptions(m.SendDirectMessage, activity.RegisterOptions{Name: "SendDirectMessage"})
	w.RegisterActivityWithOptions(m.SendInteractionFollowUp, activity.RegisterOptions{Name: "SendInteractionFollowUp"})
	w.RegisterActivityWithOptions(m.PostChannelMessage, activity.RegisterOptions{Name: "PostChannelMessage"})
	w.RegisterActivityWithOptions(m.SearchKnowledgeBase, activity.RegisterOptions{Name: "SearchKnowledgeBase"})
}

func (m *memberSide) SendDirectMessage(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	return activities.SendEach(in, func(one activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
		return m.sendOneDM(ctx, one)
	})
}

func (m *memberSide) sendOneDM(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.ContainsFunc(m.dms, func(d activities.SendDirectMessageInput) bool { return d.Nonce == in.Nonce }) {
		m.dms = append(m.dms, in)
	}
	return activities.SendDirectMessageResult{ChannelID: "dm-" + in.UserID, MessageIDs: []string{in.Nonce}}, nil
}

func (m *memberSide) SendInteractionFollowUp(ctx context.Context, in activities.SendInteractionFollowUpInput) (activities.SendInteractionFollowUpResult, error) {
	return activities.SendInteractionFollowUpResult{MessageID: "1"}, nil
}

func (m *memberSide) PostChannelMessage(ctx context.Context, in activities.PostChannelMessageInput) (activities.PostChannelMessageResult, error) {
	return activities.PostChannelMessageResult{MessageIDs: []string{in.Nonce}}, nil
}

func (m *memberSide) SearchKnowledgeBase(ctx context.Context, in activities.SearchKnowledgeBaseInput) (activities.SearchKnowledgeBaseResult, error) {
	return activities.SearchKnowledgeBaseResult{}, nil
}

// texts returns the content of every DM so far, in order.
func (m *memberSide) texts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.dms))
	for _, d := range m.dms {
		out = append(out, d.Message.Content)
	}
	return out
}

// ratingAsked reports whether the rating request (the last thing a resolved conversation says)
// has been delivered.
func (m *memberSide) ratingAsked() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.dms {
		for _, b := range d.Message.Buttons {
			if strings.HasPrefix(b.CustomID, "flexcord:rate:") {
				return true
			}
		}
	}
	return false
}

// loseFirstAnswer passes every request to ingress, but answers 500 to the first webhook of the
// agent message whose body is lostBody after ingress handled it, as when ingress's answer is lost
// on the way back: Twilio (the emulator) sends the same webhook again.
type loseFirstAnswer struct {
	next     http.Handler
	lostBody string

	mu   sync.Mutex
	lost string // the MessageSid whose answer was lost
}

func (l *loseFirstAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	l.mu.Lock()
	lose := l.lost == "" && form.Get("EventType") == "onMessageAdded" && form.Get("Body") == l.lostBody
	if lose {
		l.lost = form.Get("MessageSid")
	}
	l.mu.Unlock()
	if !lose {
		l.next.ServeHTTP(w, r)
		return
	}
	l.next.ServeHTTP(httptest.NewRecorder(), r)
	http.Error(w, "answer lost", http.StatusInternalServerError)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// TestTwilioEndToEnd runs a conversation on an embedded Temporal server with the real Flex
// activities against the Twilio emulator: it goes queued → live → resolved driven only by the
// emulator's signed webhooks, and webhooks delivered twice reach the member once.
func TestTwilioEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	t.Setenv("TWILIO_EDGE", "")
	t.Setenv("TWILIO_REGION", "")

	tc, _ := startTemporal(ctx, t)

	// Ingress, reachable at a URL that the emulator's webhooks and the signatures use.
	flaky := &loseFirstAnswer{lostBody: "Hi, I'm Ana. Let me look."}
	ts := httptest.NewServer(flaky)
	t.Cleanup(ts.Close)
	in := ingress.New(ingress.Config{
		Temporal: tc,
		Log:      quiet,
		Routes: []func(*ingress.Server, *mux.Router){
			ingress.TwilioRoutes(ingress.TwilioConfig{AuthToken: "e2eAuthToken0123", PublicURL: ts.URL}),
		},
	})
	flaky.next = in.Handler()

	emu := twilioemu.StartTest(t, twilioemu.Options{
		AccountSID: e2eAccountSID, AuthToken: "e2eAuthToken0123",
		WorkspaceSID: e2eWorkspaceSID, WorkflowSID: e2eWorkflowSID,
		SpecDir: "../sandbox/twilioemu/testdata/twilio-oai",
		Logger:  quiet,
		Retry:   twilioemu.RetryPolicy{MaxAttempts: 5, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Timeout: 5 * time.Second},
	})
	rc := twilioclient.New(twilioclient.Credentials{AccountSID: e2eAccountSID, AuthToken: "e2eAuthToken0123"}, emu.Transport())
	if _, err := twilioclient.SetupEventCallback(rc, e2eWorkspaceSID, ts.URL+ingress.TwilioTaskRouterPath, false); err != nil {
		t.Fatal(err)
	}

	member := startMemberSide(t, tc, worker.Activities{Flex: activities.NewFlex(rc, activities.FlexConfig{
		WorkspaceSID: e2eWorkspaceSID, WorkflowSID: e2eWorkflowSID, WebhookURL: ts.URL + ingress.TwilioConversationsPath,
	}, quiet)})

	status := func() workflows.ConversationStatus {
		t.Helper()
		v, err := tc.QueryWorkflow(ctx, workflows.ConversationWorkflowID(e2eUserID), "", workflows.QueryStatus)
		if err != nil {
			t.Fatalf("query status: %v", err)
		}
		var st workflows.ConversationStatus
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	say := func(eventID, text string) {
		t.Helper()
		m := workflows.Member{UserID: e2eUserID, Username: "alice"}
		if err := in.StartConversation(ctx, m, "1000000000000000001", "Example Guild", "en-US", workflows.SignalUserMessage,
			workflows.UserMessageSignal{EventID: eventID, Member: m, ChannelID: "dm-1", Text: text, WantsHuman: i18n.WantsHuman(text)}); err != nil {
			t.Fatal(err)
		}
	}

	// The member asks for a human: a case, a Flex conversation and a waiting task.
	say("3000000000000000001", "I want to talk to a human")
	var task twilioemu.TaskView
	eventually(t, "a waiting Flex task", func() bool {
		tasks := emu.Tasks(twilioemu.TaskWaiting)
		if len(tasks) == 1 {
			task = tasks[0]
		}
		return len(tasks) == 1
	})
	st := status()
	if st.Stage != workflows.StageQueued || st.CaseID == "" || task.Attributes["case_id"] != st.CaseID || task.Attributes["discord_user_id"] != e2eUserID {
		t.Fatalf("stage %s, case %q, task attributes %v", st.Stage, st.CaseID, task.Attributes)
	}

	// The agent accepts: reservation.accepted reaches ingress, the conversation goes live.
	if _, err := emu.AcceptTask(task.SID, "Ana"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stage live", func() bool { st = status(); return st.Stage == workflows.StageLive })
	if st.Agent != "Ana" {
		t.Errorf("agent = %q", st.Agent)
	}

	// Twilio sends reservation.accepted again, exactly as before.
	var accepted twilioemu.Delivery
	eventually(t, "reservation.accepted delivered", func() bool {
		for _, d := range emu.Deliveries() {
			if d.EventType == "reservation.accepted" && d.State == twilioemu.DeliveryDelivered {
				accepted = d
				return true
			}
		}
		return false
	})
	resend, err := http.NewRequestWithContext(ctx, http.MethodPost, accepted.URL, strings.NewReader(accepted.Params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resend.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resend.Header.Set("X-Twilio-Signature", twilioemu.Signature("e2eAuthToken0123", accepted.URL, accepted.Params))
	resend.Header.Set("I-Twilio-Idempotency-Token", accepted.Token)
	resp, err := http.DefaultClient.Do(resend)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("re-sent reservation.accepted: status %d", resp.StatusCode)
	}

	// The agent writes twice; ingress's answer to the first webhook is lost, so it comes twice.
	for _, text := range []string{"Hi, I'm Ana. Let me look.", "Could you try again now?"} {
		if _, err := emu.SendAgentMessage(task.SID, text); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "both agent messages relayed", func() bool {
		n := 0
		for _, s := range member.texts() {
			if strings.Contains(s, "Let me look.") || strings.Contains(s, "Could you try again now?") {
				n++
			}
		}
		return n == 2
	})

	// The member answers: the message lands in the Flex conversation as the customer, once.
	say("3000000000000000002", "It works now, thanks!")
	eventually(t, "the member's reply in Flex", func() bool {
		msgs, err := emu.ConversationMessages(task.ConversationSID)
		return err == nil && slices.ContainsFunc(msgs, func(m twilioemu.MessageView) bool { return m.Body == "It works now, thanks!" })
	})

	// The agent wraps up: resolved, and the member is asked for a rating.
	if _, err := emu.WrapUpTask(task.SID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stage resolved", func() bool { return status().Stage == workflows.StageResolved })
	eventually(t, "the rating request", member.ratingAsked)

	// Every DM before the rating request has been delivered by now (one destination, in order).
	texts := member.texts()
	count := func(sub string) (n, at int) {
		at = -1
		for i, s := range texts {
			if strings.Contains(s, sub) {
				n++
				at = i
			}
		}
		return n, at
	}
	joined, joinedAt := count("Ana joined")
	first, firstAt := count("Hi, I'm Ana. Let me look.")
	second, secondAt := count("Could you try again now?")
	if joined != 1 || first != 1 || second != 1 || !(joinedAt < firstAt && firstAt < secondAt) {
		t.Errorf("member got joined×%d, first×%d, second×%d (at %d, %d, %d):\n%s",
			joined, first, second, joinedAt, firstAt, secondAt, strings.Join(texts, "\n"))
	}

	msgs, err := emu.ConversationMessages(task.ConversationSID)
	if err != nil {
		t.Fatal(err)
	}
	var customer []string
	for _, m := range msgs {
		if m.Author == activities.CustomerIdentity(e2eUserID) {
			customer = append(customer, m.Body)
		}
	}
	if fmt.Sprint(customer) != "[It works now, thanks!]" {
		t.Errorf("customer messages in Flex = %q", customer)
	}

	// The lost answer made the emulator send that webhook twice; nothing failed for good.
	flaky.mu.Lock()
	lost := flaky.lost
	flaky.mu.Unlock()
	var resent bool
	for _, d := range emu.Deliveries() {
		if d.State == twilioemu.DeliveryFailed {
			t.Errorf("delivery failed: %s %s: %d %s", d.EventType, d.URL, d.LastStatus, d.LastError)
		}
		if d.EventType == "onMessageAdded" && d.Params.Get("MessageSid") == lost && d.Attempts == 2 && d.State == twilioemu.DeliveryDelivered {
			resent = true
		}
	}
	if lost == "" || !resent {
		t.Errorf("the agent's first message (%q) was not delivered twice", lost)
	}
}
