package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

const (
	testAccountSID   = "AC0123456789abcdef0123456789abcdef"
	testAuthToken    = "flexcordTestToken0123"
	testWorkspaceSID = "WS0123456789abcdef0123456789abcdef"
	testWorkflowSID  = "WW0123456789abcdef0123456789abcdef"
	testWebhookURL   = "https://support.example.com/twilio/conversations"
	testUserID       = "2000000000000000001"
	testCaseID       = "C-7K3QX2"
	specDir          = "../sandbox/twilioemu/testdata/twilio-oai"
)

// startFlex starts a contract-validating emulator and returns it with the Flex activities and a
// twilio-go client for looking around, both talking to it through its transport only.
func startFlex(t *testing.T) (*twilioemu.Server, *activities.Flex, *twilioclient.RestClient) {
	t.Helper()
	t.Setenv("TWILIO_EDGE", "sydney") // must have no effect
	t.Setenv("TWILIO_REGION", "au1")
	emu := twilioemu.StartTest(t, twilioemu.Options{
		AccountSID:   testAccountSID,
		AuthToken:    testAuthToken,
		WorkspaceSID: testWorkspaceSID,
		WorkflowSID:  testWorkflowSID,
		SpecDir:      specDir,
		Logger:       slog.New(slog.DiscardHandler),
	})
	rc := twilioclient.New(twilioclient.Credentials{AccountSID: testAccountSID, AuthToken: testAuthToken}, emu.Transport())
	f := activities.NewFlex(rc, activities.FlexConfig{
		WorkspaceSID: testWorkspaceSID,
		WorkflowSID:  testWorkflowSID,
		WebhookURL:   testWebhookURL,
	}, slog.New(slog.DiscardHandler))
	return emu, f, rc
}

func handOverInput() activities.CreateFlexInteractionInput {
	at := time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	return activities.CreateFlexInteractionInput{
		CaseID: testCaseID, DiscordUserID: testUserID, Username: "alice",
		GuildID: "1000000000000000001", GuildName: "Example Guild", Locale: "en-US",
		Transcript: []activities.TranscriptLine{
			{At: at, From: "member", Name: "alice", Text: "My password reset mail never arrives"},
			{At: at.Add(time.Second), From: "bot", Text: "Suggested: Reset your password"},
			{At: at.Add(2 * time.Second), From: "member", Name: "alice", Text: "I want to talk to a human"},
		},
		Articles: []activities.Article{{ID: "reset", Title: "Reset your password", URL: "https://help.example.com/reset"}},
	}
}

func asAppError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v (%T) is not an ApplicationError", err, err)
	}
	return appErr
}

func TestCreateFlexInteractionBuildsTheHandOver(t *testing.T) {
	emu, f, rc := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"conversation": fi.ConversationSID, "interaction": fi.InteractionSID, "channel": fi.ChannelSID, "task": fi.TaskSID} {
		if v == "" {
			t.Errorf("%s SID is empty in %+v", name, fi)
		}
	}
	if fi.Identity != "discord:"+testUserID {
		t.Errorf("identity = %q", fi.Identity)
	}

	conv, err := emu.Conversation(activities.ConversationUniqueName(testCaseID))
	if err != nil {
		t.Fatal(err)
	}
	if conv.SID != fi.ConversationSID || !strings.Contains(conv.FriendlyName, "alice") || !strings.Contains(conv.FriendlyName, testCaseID) {
		t.Errorf("conversation = %+v", conv)
	}
	if len(conv.Participants) != 1 || conv.Participants[0].Identity != fi.Identity {
		t.Errorf("participants = %+v", conv.Participants)
	}

	page, err := rc.ConversationsV1.PageConversationScopedWebhook(fi.ConversationSID,
		(&conversations.ListConversationScopedWebhookParams{}).SetPageSize(5), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Webhooks) != 1 {
		t.Fatalf("webhooks = %d, want 1", len(page.Webhooks))
	}
	cfg := (*page.Webhooks[0].Configuration).(map[string]any)
	u, err := url.Parse(cfg["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != testWebhookURL || u.Query().Get("user") != testUserID || u.Query().Get("case") != testCaseID {
		t.Errorf("webhook url = %s", u)
	}
	if cfg["method"] != "post" {
		t.Errorf("webhook method = %v", cfg["method"])
	}
	if got := fmt.Sprint(cfg["filters"]); got != "[onMessageAdded onConversationStateUpdated onParticipantAdded]" {
		t.Errorf("webhook filters = %s", got)
	}

	task, err := emu.Task(fi.TaskSID)
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != twilioemu.TaskWaiting || task.ConversationSID != fi.ConversationSID || task.InteractionSID != fi.InteractionSID || task.ChannelSID != fi.ChannelSID {
		t.Errorf("task = %+v", task)
	}
	a := task.Attributes
	for k, want := range map[string]string{
		"case_id": testCaseID, "discord_user_id": testUserID, "discord_username": "alice",
		"guild_id": "1000000000000000001", "guild_name": "Example Guild", "locale": "en-US",
		"customerAddress": "alice", "customerName": "alice", "conversationSid": fi.ConversationSID,
	} {
		if a[k] != want {
			t.Errorf("task attribute %s = %v, want %q", k, a[k], want)
		}
	}
	transcript, _ := a["transcript"].(string)
	if !strings.Contains(transcript, "[09:30] member alice: My password reset mail never arrives") ||
		!strings.HasSuffix(transcript, "I want to talk to a human") {
		t.Errorf("transcript = %q", transcript)
	}
	if got := fmt.Sprint(a["articles"]); !strings.Contains(got, "Reset your password") || !strings.Contains(got, "https://help.example.com/reset") {
		t.Errorf("articles = %s", got)
	}
}

func TestTranscriptIsBounded(t *testing.T) {
	emu, f, _ := startFlex(t)
	in := handOverInput()
	in.Transcript = nil
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for i := range 100 {
		in.Transcript = append(in.Transcript, activities.TranscriptLine{At: at, From: "member", Text: fmt.Sprintf("line %03d %s", i, strings.Repeat("x", 1000))})
	}
	fi, err := f.CreateFlexInteraction(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	task, err := emu.Task(fi.TaskSID)
	if err != nil {
		t.Fatal(err)
	}
	transcript := task.Attributes["transcript"].(string)
	if len(transcript) > 6000 {
		t.Errorf("transcript is %d bytes", len(transcript))
	}
	lines := strings.Split(transcript, "\n")
	if len(lines) < 5 || len(lines) > 30 || !strings.Contains(lines[len(lines)-1], "line 099") {
		t.Errorf("transcript keeps %d lines, last %.40q", len(lines), lines[len(lines)-1])
	}
}

// TestCreateFlexInteractionIsIdempotent retries the hand-over after each step's answer was lost
// (Twilio did the work, then answered 500): the retry finishes the job with one conversation,
// one participant, one webhook and one task.
func TestCreateFlexInteractionIsIdempotent(t *testing.T) {
	tests := []struct {
		name  string
		fault twilioemu.Fault
	}{
		{"no fault", twilioemu.Fault{}},
		{"conversation created, answer lost", twilioemu.Fault{Method: "POST", Path: "/v1/Conversations", Status: 500, After: true}},
		{"participant added, answer lost", twilioemu.Fault{Method: "POST", Path: "/v1/Conversations/*/Participants", Status: 500, After: true}},
		{"webhook added, answer lost", twilioemu.Fault{Method: "POST", Path: "/v1/Conversations/*/Webhooks", Status: 503, After: true}},
		{"interaction recorded, answer lost", twilioemu.Fault{Method: "POST", Path: "/v1/Conversations/*", Status: 500, After: true, Count: 3}},
		{"rate limited", twilioemu.Fault{Host: "flex-api", Method: "POST", Path: "/v1/Interactions", Status: 429}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, f, _ := startFlex(t)
			ctx := context.Background()
			if tt.fault.Status != 0 {
				if _, err := emu.InjectFault(tt.fault); err != nil {
					t.Fatal(err)
				}
			}
			first, err := f.CreateFlexInteraction(ctx, handOverInput())
			if tt.fault.Status != 0 {
				if err == nil {
					t.Fatal("first attempt succeeded despite the fault")
				}
				if appErr := asAppError(t, err); appErr.NonRetryable() {
					t.Fatalf("first attempt failed for good: %v", err)
				}
			}
			second, err := f.CreateFlexInteraction(ctx, handOverInput())
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if tt.fault.Status == 0 && first != second {
				t.Errorf("second call = %+v, first %+v", second, first)
			}
			conv, err := emu.Conversation(activities.ConversationUniqueName(testCaseID))
			if err != nil {
				t.Fatal(err)
			}
			if len(conv.Participants) != 1 || conv.Webhooks != 1 || conv.SID != second.ConversationSID {
				t.Errorf("conversation has %d participants and %d webhooks: %+v", len(conv.Participants), conv.Webhooks, conv)
			}
			if tasks := emu.Tasks(); len(tasks) != 1 || tasks[0].SID != second.TaskSID {
				t.Errorf("tasks = %d (%+v), want only %s", len(tasks), tasks, second.TaskSID)
			}
		})
	}
}

func TestPostFlexMessage(t *testing.T) {
	emu, f, _ := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.PostFlexMessage(ctx, activities.PostFlexMessageInput{
		ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: "It still fails", DeliveryKey: "k1-7",
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := emu.ConversationMessages(fi.ConversationSID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("messages = %+v", msgs)
	}
	m := msgs[0]
	if m.SID != res.MessageSID || res.AlreadyPosted || m.Author != fi.Identity || m.Body != "It still fails" || m.Role != twilioemu.RoleCustomer {
		t.Errorf("message = %+v, result %+v", m, res)
	}
	var attrs map[string]string
	if err := json.Unmarshal([]byte(m.Attributes), &attrs); err != nil || attrs[activities.DeliveryMarker] != "k1-7" {
		t.Errorf("attributes = %s", m.Attributes)
	}
	// The message was posted without X-Twilio-Webhook-Enabled, so no webhook echoes it back.
	for _, d := range emu.Deliveries() {
		if d.EventType == "onMessageAdded" {
			t.Errorf("our own message was echoed to the webhook: %+v", d)
		}
	}
}

// retryPost runs PostFlexMessage in a Temporal test workflow with a retry policy, so that a
// failed first attempt is retried as attempt 2 as on a real worker.
func retryPost(t *testing.T, f *activities.Flex, in activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(f)
	wf := func(ctx workflow.Context) (activities.PostFlexMessageResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
		})
		var res activities.PostFlexMessageResult
		err := workflow.ExecuteActivity(ctx, f.PostFlexMessage, in).Get(ctx, &res)
		return res, err
	}
	env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "post"})
	env.ExecuteWorkflow("post")
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var res activities.PostFlexMessageResult
	if err := env.GetWorkflowError(); err != nil {
		return res, err
	}
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

// TestPostFlexMessageRetryDoesNotDuplicate: when Twilio stored the message but its answer was
// lost, the retry finds the message by its delivery key instead of posting it again; when Twilio
// did not store it, the retry posts it.
func TestPostFlexMessageRetryDoesNotDuplicate(t *testing.T) {
	tests := []struct {
		name          string
		fault         twilioemu.Fault
		alreadyPosted bool
	}{
		{"stored, then 500", twilioemu.Fault{Method: "POST", Path: "/v1/Conversations/*/Messages", Status: 500, After: true}, true},
		{"stored, then 503", twilioemu.Fault{Method: "POST", Path: "/v1/Conversations/*/Messages", Status: 503, After: true}, true},
		{"rejected with 500 before storing", twilioemu.Fault{Method: "POST", Path: "/v1/Conversations/*/Messages", Status: 500}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, f, _ := startFlex(t)
			fi, err := f.CreateFlexInteraction(context.Background(), handOverInput())
			if err != nil {
				t.Fatal(err)
			}
			// An older message with another key must not be mistaken for this one.
			if _, err := f.PostFlexMessage(context.Background(), activities.PostFlexMessageInput{
				ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: "first", DeliveryKey: "k1-1",
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := emu.InjectFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			res, err := retryPost(t, f, activities.PostFlexMessageInput{
				ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: "second", DeliveryKey: "k1-2",
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.AlreadyPosted != tt.alreadyPosted {
				t.Errorf("AlreadyPosted = %v, want %v", res.AlreadyPosted, tt.alreadyPosted)
			}
			msgs, err := emu.ConversationMessages(fi.ConversationSID)
			if err != nil {
				t.Fatal(err)
			}
			var bodies []string
			for _, m := range msgs {
				bodies = append(bodies, m.Body)
			}
			if fmt.Sprint(bodies) != "[first second]" || msgs[1].SID != res.MessageSID {
				t.Errorf("conversation holds %q (result %s)", bodies, res.MessageSID)
			}
		})
	}
}

func TestPostToClosedConversationFailsForGood(t *testing.T) {
	_, f, _ := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.CloseFlexInteraction(ctx, activities.CloseFlexInteractionInput{Interaction: fi}); err != nil {
		t.Fatal(err)
	}
	_, err = f.PostFlexMessage(ctx, activities.PostFlexMessageInput{
		ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: "hello?", DeliveryKey: "k1-3",
	})
	appErr := asAppError(t, err)
	if appErr.Type() != activities.ErrFlexConversationClosed || !appErr.NonRetryable() {
		t.Errorf("error type %s, non-retryable %v: %v", appErr.Type(), appErr.NonRetryable(), err)
	}
	if !strings.Contains(err.Error(), "post message to Flex conversation "+fi.ConversationSID+": twilio 50377") {
		t.Errorf("error lacks context: %v", err)
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name      string
		fault     twilioemu.Fault
		wantType  string
		retryable bool
		delay     bool
	}{
		{"429", twilioemu.Fault{Status: 429}, activities.ErrTwilioRateLimited, true, true},
		{"APS exceeded", twilioemu.Fault{Status: 429, Code: 50063}, activities.ErrTwilioRateLimited, true, true},
		{"Flex too many requests", twilioemu.Fault{Status: 400, Code: 45780}, activities.ErrTwilioRateLimited, true, true},
		{"500", twilioemu.Fault{Status: 500}, activities.ErrTwilioUnavailable, true, false},
		{"503", twilioemu.Fault{Status: 503}, activities.ErrTwilioUnavailable, true, false},
		{"Flex downstream", twilioemu.Fault{Status: 400, Code: 45361}, activities.ErrTwilioUnavailable, true, false},
		{"authentication", twilioemu.Fault{Status: 401, Code: 20003}, activities.ErrTwilioRejected, false, false},
		{"not found", twilioemu.Fault{Status: 404, Code: 20404}, activities.ErrFlexConversationGone, false, false},
		{"bad request", twilioemu.Fault{Status: 400, Code: 21610}, activities.ErrTwilioRejected, false, false},
		{"closed", twilioemu.Fault{Status: 400, Code: 50377}, activities.ErrFlexConversationClosed, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, f, _ := startFlex(t)
			ctx := context.Background()
			fi, err := f.CreateFlexInteraction(ctx, handOverInput())
			if err != nil {
				t.Fatal(err)
			}
			fault := tt.fault
			fault.Method, fault.Path = "POST", "/v1/Conversations/*/Messages"
			if _, err := emu.InjectFault(fault); err != nil {
				t.Fatal(err)
			}
			_, err = f.PostFlexMessage(ctx, activities.PostFlexMessageInput{
				ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: "hi", DeliveryKey: "k",
			})
			appErr := asAppError(t, err)
			if appErr.Type() != tt.wantType || appErr.NonRetryable() == tt.retryable {
				t.Errorf("type %s non-retryable %v, want %s retryable %v: %v", appErr.Type(), appErr.NonRetryable(), tt.wantType, tt.retryable, err)
			}
			if got := appErr.NextRetryDelay(); (got > 0) != tt.delay {
				t.Errorf("NextRetryDelay = %v", got)
			}
		})
	}
}

// failingTransport fails every request the way a dropped connection does.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connection reset by peer")
}

func TestTransportFailureIsRetryable(t *testing.T) {
	rc := twilioclient.New(twilioclient.Credentials{AccountSID: testAccountSID, AuthToken: testAuthToken}, failingTransport{})
	f := activities.NewFlex(rc, activities.FlexConfig{WorkspaceSID: testWorkspaceSID, WorkflowSID: testWorkflowSID, WebhookURL: testWebhookURL}, slog.New(slog.DiscardHandler))
	_, err := f.PostFlexMessage(context.Background(), activities.PostFlexMessageInput{
		ConversationSID: "CH0123456789abcdef0123456789abcdef", Identity: "discord:1", Body: "hi", DeliveryKey: "k",
	})
	appErr := asAppError(t, err)
	if appErr.Type() != activities.ErrTwilioUnavailable || appErr.NonRetryable() {
		t.Errorf("type %s non-retryable %v: %v", appErr.Type(), appErr.NonRetryable(), err)
	}
	if strings.Contains(err.Error(), testAuthToken) {
		t.Errorf("error leaks the auth token: %v", err)
	}
}

func TestCloseFlexInteraction(t *testing.T) {
	tests := []struct {
		name       string
		accept     bool
		wantStatus twilioemu.TaskStatus
	}{
		{"waiting task is canceled", false, twilioemu.TaskCanceled},
		{"accepted task is completed", true, twilioemu.TaskCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, f, _ := startFlex(t)
			ctx := context.Background()
			fi, err := f.CreateFlexInteraction(ctx, handOverInput())
			if err != nil {
				t.Fatal(err)
			}
			if tt.accept {
				if _, err := emu.AcceptTask(fi.TaskSID, "Ana"); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 2 { // closing again is fine
				if err := f.CloseFlexInteraction(ctx, activities.CloseFlexInteractionInput{Interaction: fi}); err != nil {
					t.Fatalf("close #%d: %v", i+1, err)
				}
			}
			task, err := emu.Task(fi.TaskSID)
			if err != nil {
				t.Fatal(err)
			}
			if task.Status != tt.wantStatus || task.ConversationState != "closed" {
				t.Errorf("task %s, conversation %s", task.Status, task.ConversationState)
			}
		})
	}
}

func TestCloseFallsBackToTheConversation(t *testing.T) {
	emu, f, _ := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	gone := fi
	gone.ChannelSID = "UO0123456789abcdef0123456789abcdef" // no such channel
	if err := f.CloseFlexInteraction(ctx, activities.CloseFlexInteractionInput{Interaction: gone}); err != nil {
		t.Fatal(err)
	}
	conv, err := emu.Conversation(fi.ConversationSID)
	if err != nil {
		t.Fatal(err)
	}
	if conv.State != "closed" {
		t.Errorf("conversation state = %s", conv.State)
	}
}

func TestZeroFlexIsNotConfigured(t *testing.T) {
	var f activities.Flex
	_, err := f.PostFlexMessage(context.Background(), activities.PostFlexMessageInput{ConversationSID: "CH1", Body: "x"})
	if appErr := asAppError(t, err); appErr.Type() != activities.ErrNotConfigured || !appErr.NonRetryable() {
		t.Errorf("error = %v", err)
	}
}
