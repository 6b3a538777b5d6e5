package activities_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

// flexWith returns Flex activities configured by cfg (workspace, workflow and webhook URL filled
// in) talking to emu.
func flexWith(emu *twilioemu.Server, cfg activities.FlexConfig) *activities.Flex {
	rc := twilioclient.New(twilioclient.Credentials{AccountSID: testAccountSID, AuthToken: testAuthToken}, emu.Transport())
	cfg.WorkspaceSID, cfg.WorkflowSID = testWorkspaceSID, testWorkflowSID
	if cfg.WebhookURL == "" {
		cfg.WebhookURL = testWebhookURL
	}
	return activities.NewFlex(rc, cfg, slog.New(slog.DiscardHandler))
}

func TestHandoverUniqueName(t *testing.T) {
	for _, tt := range []struct {
		handover int
		want     string
	}{{0, "flexcord-C-1"}, {1, "flexcord-C-1"}, {2, "flexcord-C-1-2"}, {13, "flexcord-C-1-13"}} {
		if got := activities.HandoverUniqueName("C-1", tt.handover); got != tt.want {
			t.Errorf("HandoverUniqueName(C-1, %d) = %q, want %q", tt.handover, got, tt.want)
		}
	}
	if got := activities.ConversationUniqueName("C-1"); got != "flexcord-C-1" {
		t.Errorf("ConversationUniqueName = %q", got)
	}
}

// TestHandoverGetsItsOwnConversation: a retry of hand-over 1 finds its conversation; hand-over 2
// creates a second one, with its own interaction and task.
func TestHandoverGetsItsOwnConversation(t *testing.T) {
	emu, f, _ := startFlex(t)
	ctx := context.Background()
	in := handOverInput()
	first, err := f.CreateFlexInteraction(ctx, in) // Handover 0 counts as 1
	if err != nil {
		t.Fatal(err)
	}
	in.Handover = 1
	retry, err := f.CreateFlexInteraction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if first.Handover != 1 || retry != first {
		t.Errorf("retry of hand-over 1 = %+v, first %+v", retry, first)
	}
	in.Handover = 2
	second, err := f.CreateFlexInteraction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if second.Handover != 2 || second.ConversationSID == first.ConversationSID || second.TaskSID == first.TaskSID || second.InteractionSID == first.InteractionSID {
		t.Errorf("hand-over 2 = %+v, hand-over 1 %+v", second, first)
	}
	conv, err := emu.Conversation("flexcord-" + testCaseID + "-2")
	if err != nil || conv.SID != second.ConversationSID || len(conv.Participants) != 1 || conv.Webhooks != 1 {
		t.Errorf("conversation of hand-over 2 = %+v, %v", conv, err)
	}
	again, err := f.CreateFlexInteraction(ctx, in)
	if err != nil || again != second {
		t.Errorf("retry of hand-over 2 = %+v, %v", again, err)
	}
	if tasks := emu.Tasks(); len(tasks) != 2 {
		t.Errorf("%d tasks, want 2", len(tasks))
	}
	task, _ := emu.Task(second.TaskSID)
	if task.Attributes["handover"] != float64(2) {
		t.Errorf("task attributes = %v", task.Attributes)
	}
}

func TestCreateFlexInteractionSetsTimers(t *testing.T) {
	tests := []struct {
		name                   string
		inactive, closed       time.Duration
		wantInactive, wantDays time.Duration // 0: no timer
	}{
		{"defaults", 0, 0, time.Hour, 24 * time.Hour},
		{"below the minimums", 30 * time.Second, 5 * time.Minute, time.Minute, 10 * time.Minute},
		{"custom", 90 * time.Minute, 48 * time.Hour, 90 * time.Minute, 48 * time.Hour},
		{"off", -1, -1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, _, rc := startFlex(t)
			f := flexWith(emu, activities.FlexConfig{InactiveTimer: tt.inactive, ClosedTimer: tt.closed})
			fi, err := f.CreateFlexInteraction(context.Background(), handOverInput())
			if err != nil {
				t.Fatal(err)
			}
			conv, err := rc.ConversationsV1.FetchConversation(fi.ConversationSID)
			if err != nil {
				t.Fatal(err)
			}
			timers, _ := (*conv.Timers).(map[string]any)
			// The timers count from the conversation's last activity: the first message or set-up.
			check := func(key string, want time.Duration) {
				t.Helper()
				v, ok := timers[key].(string)
				if want == 0 {
					if ok {
						t.Errorf("%s = %s, want none", key, v)
					}
					return
				}
				at, err := time.Parse(time.RFC3339, v)
				if err != nil {
					t.Fatalf("%s = %v: %v", key, timers[key], err)
				}
				if d := at.Sub(*conv.DateCreated); d < want || d > want+5*time.Second {
					t.Errorf("%s is %v after the creation, want %v", key, d, want)
				}
			}
			check("date_inactive", tt.wantInactive)
			check("date_closed", tt.wantDays)
		})
	}
}

// TestFailedChannelIsRetried: Flex accepts the interaction but its channel fails; the hand-over
// fails with a retryable error and its retry creates a working interaction on the same
// conversation.
func TestFailedChannelIsRetried(t *testing.T) {
	emu, f, _ := startFlex(t)
	ctx := context.Background()
	if _, err := emu.InjectFault(twilioemu.Fault{ChannelStatus: "failed", Code: 45361}); err != nil {
		t.Fatal(err)
	}
	_, err := f.CreateFlexInteraction(ctx, handOverInput())
	appErr := asAppError(t, err)
	if appErr.Type() != activities.ErrTwilioUnavailable || appErr.NonRetryable() ||
		!strings.Contains(err.Error(), "could not set up interaction channel") || !strings.Contains(err.Error(), "45361") {
		t.Fatalf("error = %v (type %s, non-retryable %v)", err, appErr.Type(), appErr.NonRetryable())
	}
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	conv, err := emu.Conversation(activities.ConversationUniqueName(testCaseID))
	if err != nil || conv.SID != fi.ConversationSID || len(conv.Participants) != 1 || conv.Webhooks != 1 {
		t.Errorf("conversation = %+v, %v", conv, err)
	}
	if tasks := emu.Tasks(); len(tasks) != 1 || tasks[0].SID != fi.TaskSID || tasks[0].Status != twilioemu.TaskWaiting {
		t.Errorf("tasks = %+v, want only %s", tasks, fi.TaskSID)
	}
	res, err := f.CheckFlexInteraction(ctx, activities.CheckFlexInteractionInput{Interaction: fi})
	if err != nil || !res.Open || res.ChannelStatus != "active" {
		t.Errorf("CheckFlexInteraction = %+v, %v", res, err)
	}
}

func TestChannelInSetupIsWaitedFor(t *testing.T) {
	emu, f, _ := startFlex(t)
	if _, err := emu.InjectFault(twilioemu.Fault{ChannelStatus: "setup"}); err != nil {
		t.Fatal(err)
	}
	fi, err := f.CreateFlexInteraction(context.Background(), handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.CheckFlexInteraction(context.Background(), activities.CheckFlexInteractionInput{Interaction: fi})
	if err != nil || res.ChannelStatus != "active" {
		t.Errorf("CheckFlexInteraction = %+v, %v", res, err)
	}
}

// TestMemberShownByDisplayName: the agent sees the member's display name; only the chat identity
// is "discord:<id>".
func TestMemberShownByDisplayName(t *testing.T) {
	emu, f, _ := startFlex(t)
	in := handOverInput()
	in.Username = "Alice Liddell"
	fi, err := f.CreateFlexInteraction(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := emu.Conversation(fi.ConversationSID)
	if err != nil || len(conv.Participants) != 1 {
		t.Fatalf("conversation = %+v, %v", conv, err)
	}
	p := conv.Participants[0]
	var attrs map[string]string
	if err := json.Unmarshal([]byte(p.Attributes), &attrs); err != nil || p.Identity != "discord:"+testUserID ||
		attrs["friendlyName"] != "Alice Liddell" || strings.Contains(p.Attributes, "discord:") {
		t.Errorf("participant = %+v (%v)", p, err)
	}
	task, err := emu.Task(fi.TaskSID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "from", "customerName", "customerAddress"} {
		if task.Attributes[k] != "Alice Liddell" {
			t.Errorf("task attribute %s = %v", k, task.Attributes[k])
		}
	}
	for k, v := range task.Attributes {
		if s, ok := v.(string); ok && strings.Contains(s, "discord:") {
			t.Errorf("task attribute %s = %q shows the chat identity", k, s)
		}
	}
}

// TestWebhookCarriesConnectionOverrides: the scoped webhook's URL has Twilio's connection
// overrides as its fragment, and a retried hand-over recognises the webhook with or without them.
func TestWebhookCarriesConnectionOverrides(t *testing.T) {
	emu, _, rc := startFlex(t)
	ctx := context.Background()
	// The first attempt (without overrides, as an older flexcord made it) adds the webhook and
	// then fails on the interaction.
	if _, err := emu.InjectFault(twilioemu.Fault{Host: "flex-api", Method: "POST", Path: "/v1/Interactions", Status: 503}); err != nil {
		t.Fatal(err)
	}
	if _, err := flexWith(emu, activities.FlexConfig{WebhookOverrides: "-"}).CreateFlexInteraction(ctx, handOverInput()); err == nil {
		t.Fatal("first attempt succeeded despite the fault")
	}
	fi, err := flexWith(emu, activities.FlexConfig{}).CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	hooks := webhookURLs(t, rc, fi.ConversationSID)
	if len(hooks) != 1 || strings.Contains(hooks[0], "#") {
		t.Errorf("webhooks = %q, want the first one only", hooks)
	}

	in := handOverInput()
	in.Handover = 2
	fi2, err := flexWith(emu, activities.FlexConfig{}).CreateFlexInteraction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	hooks = webhookURLs(t, rc, fi2.ConversationSID)
	if len(hooks) != 1 || !strings.HasSuffix(hooks[0], "#"+activities.DefaultWebhookOverrides) ||
		!strings.HasPrefix(hooks[0], testWebhookURL+"?") {
		t.Errorf("webhooks = %q", hooks)
	}
	if _, err := flexWith(emu, activities.FlexConfig{}).CreateFlexInteraction(ctx, in); err != nil {
		t.Fatal(err)
	}
	if again := webhookURLs(t, rc, fi2.ConversationSID); len(again) != 1 {
		t.Errorf("webhooks after a retry = %q", again)
	}

	// A fragment in WebhookURL wins.
	in.Handover = 3
	fi3, err := flexWith(emu, activities.FlexConfig{WebhookURL: testWebhookURL + "#rc=2&rp=5xx"}).CreateFlexInteraction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if hooks := webhookURLs(t, rc, fi3.ConversationSID); len(hooks) != 1 || !strings.HasSuffix(hooks[0], "#rc=2&rp=5xx") {
		t.Errorf("webhooks = %q", hooks)
	}
}

func webhookURLs(t *testing.T, rc *twilioclient.RestClient, conversationSID string) []string {
	t.Helper()
	page, err := rc.ConversationsV1.PageConversationScopedWebhook(conversationSID,
		(&conversations.ListConversationScopedWebhookParams{}).SetPageSize(5), "", "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, w := range page.Webhooks {
		out = append(out, (*w.Configuration).(map[string]any)["url"].(string))
	}
	return out
}

// TestPostFlexMessageIndexAndPriorAttempts: the result carries the index; an activity that
// follows an earlier one (PriorAttempts) looks for the marker even on its first attempt.
func TestPostFlexMessageIndexAndPriorAttempts(t *testing.T) {
	emu, f, _ := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	post := func(key string, prior int) (activities.PostFlexMessageResult, error) {
		return f.PostFlexMessage(ctx, activities.PostFlexMessageInput{
			ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: "body " + key, DeliveryKey: key, PriorAttempts: prior,
		})
	}
	for i, key := range []string{"k-0", "k-1"} {
		res, err := post(key, 0)
		if err != nil || res.Index != i || res.AlreadyPosted {
			t.Fatalf("post %s = %+v, %v; want index %d", key, res, err, i)
		}
	}
	// The earlier activity's message was stored, but its answer was lost.
	if _, err := emu.InjectFault(twilioemu.Fault{Method: "POST", Path: "/v1/Conversations/*/Messages", Status: 500, After: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := post("k-2", 0); err == nil {
		t.Fatal("post succeeded despite the fault")
	}
	res, err := post("k-2", 1) // attempt 1 of a new activity, PriorAttempts 1
	if err != nil || !res.AlreadyPosted || res.Index != 2 || res.MessageSID == "" {
		t.Fatalf("re-post = %+v, %v", res, err)
	}
	// Nothing stored yet: PriorAttempts only makes it look first.
	res, err = post("k-3", 2)
	if err != nil || res.AlreadyPosted || res.Index != 3 {
		t.Fatalf("post with nothing to find = %+v, %v", res, err)
	}
	msgs, err := emu.ConversationMessages(fi.ConversationSID)
	if err != nil || len(msgs) != 4 {
		t.Fatalf("%d messages, want 4 (%v)", len(msgs), err)
	}
	for i, m := range msgs {
		if m.Index != i || m.Body != fmt.Sprintf("body k-%d", i) {
			t.Errorf("message %d = %+v", i, m)
		}
	}
}

func TestPostToLostConversationIsGone(t *testing.T) {
	emu, f, _ := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.LoseConversation(fi.ConversationSID); err != nil {
		t.Fatal(err)
	}
	for _, prior := range []int{0, 1} { // the look for the marker gets the 20404 too
		_, err = f.PostFlexMessage(ctx, activities.PostFlexMessageInput{
			ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: "hello?", DeliveryKey: "k", PriorAttempts: prior,
		})
		appErr := asAppError(t, err)
		if appErr.Type() != activities.ErrFlexConversationGone || !appErr.NonRetryable() || !strings.Contains(err.Error(), "20404") {
			t.Errorf("prior %d: error type %s, non-retryable %v: %v", prior, appErr.Type(), appErr.NonRetryable(), err)
		}
	}
}

func TestCheckFlexInteraction(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, emu *twilioemu.Server, f *activities.Flex, fi activities.FlexInteraction) activities.FlexInteraction
		want    activities.CheckFlexInteractionResult
	}{
		{"open, no message", nil,
			activities.CheckFlexInteractionResult{Open: true, ConversationState: "active", ChannelStatus: "active", LastIndex: -1}},
		{"open with messages", func(t *testing.T, emu *twilioemu.Server, f *activities.Flex, fi activities.FlexInteraction) activities.FlexInteraction {
			for _, key := range []string{"a", "b"} {
				if _, err := f.PostFlexMessage(context.Background(), activities.PostFlexMessageInput{
					ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: key, DeliveryKey: key,
				}); err != nil {
					t.Fatal(err)
				}
			}
			return fi
		}, activities.CheckFlexInteractionResult{Open: true, ConversationState: "active", ChannelStatus: "active", LastIndex: 1}},
		{"inactive is still open", func(t *testing.T, emu *twilioemu.Server, f *activities.Flex, fi activities.FlexInteraction) activities.FlexInteraction {
			if _, err := emu.AdvanceClock(61 * time.Minute); err != nil {
				t.Fatal(err)
			}
			return fi
		}, activities.CheckFlexInteractionResult{Open: true, ConversationState: "inactive", ChannelStatus: "active", LastIndex: -1}},
		{"closed", func(t *testing.T, emu *twilioemu.Server, f *activities.Flex, fi activities.FlexInteraction) activities.FlexInteraction {
			if err := f.CloseFlexInteraction(context.Background(), activities.CloseFlexInteractionInput{Interaction: fi}); err != nil {
				t.Fatal(err)
			}
			return fi
		}, activities.CheckFlexInteractionResult{ConversationState: "closed", ChannelStatus: "closed", LastIndex: -1}},
		{"closed by its timer", func(t *testing.T, emu *twilioemu.Server, f *activities.Flex, fi activities.FlexInteraction) activities.FlexInteraction {
			if _, err := emu.AdvanceClock(25 * time.Hour); err != nil {
				t.Fatal(err)
			}
			return fi
		}, activities.CheckFlexInteractionResult{ConversationState: "closed", ChannelStatus: "closed", LastIndex: -1}},
		{"lost by Flex", func(t *testing.T, emu *twilioemu.Server, f *activities.Flex, fi activities.FlexInteraction) activities.FlexInteraction {
			if _, err := emu.LoseConversation(fi.ConversationSID); err != nil {
				t.Fatal(err)
			}
			return fi
		}, activities.CheckFlexInteractionResult{LastIndex: -1}},
		{"interaction unknown", func(t *testing.T, emu *twilioemu.Server, f *activities.Flex, fi activities.FlexInteraction) activities.FlexInteraction {
			return activities.FlexInteraction{ConversationSID: fi.ConversationSID}
		}, activities.CheckFlexInteractionResult{Open: true, ConversationState: "active", LastIndex: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, f, _ := startFlex(t)
			fi, err := f.CreateFlexInteraction(context.Background(), handOverInput())
			if err != nil {
				t.Fatal(err)
			}
			if tt.prepare != nil {
				fi = tt.prepare(t, emu, f, fi)
			}
			got, err := f.CheckFlexInteraction(context.Background(), activities.CheckFlexInteractionInput{Interaction: fi})
			if err != nil || got != tt.want {
				t.Errorf("CheckFlexInteraction = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestCheckFlexInteractionErrors(t *testing.T) {
	emu, f, _ := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	for _, fault := range []twilioemu.Fault{
		{Host: "conversations", Method: "GET", Path: "/v1/Conversations/*", Status: 503},
		{Host: "flex-api", Method: "GET", Status: 500},
		{Host: "conversations", Method: "GET", Path: "/v1/Conversations/*/Messages", Status: 429},
	} {
		if _, err := emu.InjectFault(fault); err != nil {
			t.Fatal(err)
		}
		_, err := f.CheckFlexInteraction(ctx, activities.CheckFlexInteractionInput{Interaction: fi})
		if appErr := asAppError(t, err); appErr.NonRetryable() {
			t.Errorf("fault %+v: %v is not retryable", fault, err)
		}
	}
	_, err = f.CheckFlexInteraction(ctx, activities.CheckFlexInteractionInput{})
	if appErr := asAppError(t, err); !appErr.NonRetryable() {
		t.Errorf("no conversation: %v", err)
	}
}

// TestFetchAgentMessagesAfterAGap: the workflow missed some webhooks; it gets the agent's
// messages after the last index it knows, in order, without the member's and its own.
func TestFetchAgentMessagesAfterAGap(t *testing.T) {
	emu, f, rc := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.AcceptTask(fi.TaskSID, "Ana"); err != nil {
		t.Fatal(err)
	}
	member := func(key string) {
		t.Helper()
		if _, err := f.PostFlexMessage(ctx, activities.PostFlexMessageInput{
			ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: "member " + key, DeliveryKey: key,
		}); err != nil {
			t.Fatal(err)
		}
	}
	agent := func(body string) {
		t.Helper()
		if _, err := emu.SendAgentMessage(fi.TaskSID, body); err != nil {
			t.Fatal(err)
		}
	}
	member("m0") // 0
	agent("a1")  // 1
	member("m2") // 2
	agent("a3")  // 3
	// 4: a message flexcord posted as someone else, marked with its delivery key.
	if _, err := rc.ConversationsV1.CreateConversationMessage(fi.ConversationSID, (&conversations.CreateConversationMessageParams{}).
		SetAuthor("system").SetBody("notice").SetAttributes(`{"`+activities.DeliveryMarker+`":"n-1"}`)); err != nil {
		t.Fatal(err)
	}
	agent("a5") // 5
	tests := []struct {
		after     int
		want      string
		wantIndex []int
		last      int
	}{
		{-1, "[a1 a3 a5]", []int{1, 3, 5}, 5},
		{1, "[a3 a5]", []int{3, 5}, 5},
		{3, "[a5]", []int{5}, 5},
		{5, "[]", nil, 5},
		{9, "[]", nil, 9},
	}
	for _, tt := range tests {
		res, err := f.FetchAgentMessages(ctx, activities.FetchAgentMessagesInput{ConversationSID: fi.ConversationSID, AfterIndex: tt.after})
		if err != nil {
			t.Fatalf("after %d: %v", tt.after, err)
		}
		var bodies []string
		var indexes []int
		for _, m := range res.Messages {
			bodies = append(bodies, m.Body)
			indexes = append(indexes, m.Index)
			if !strings.HasPrefix(m.SID, "IM") {
				t.Errorf("message sid %q", m.SID)
			}
		}
		if got := "[" + strings.Join(bodies, " ") + "]"; got != tt.want || fmt.Sprint(indexes) != fmt.Sprint(tt.wantIndex) || res.LastIndex != tt.last {
			t.Errorf("after %d: %s %v, last %d; want %s %v, last %d", tt.after, got, indexes, res.LastIndex, tt.want, tt.wantIndex, tt.last)
		}
	}
}

// TestFetchAgentMessagesPagesAndCaps reads across pages and returns at most 200, oldest first;
// LastIndex lets the next call continue.
func TestFetchAgentMessagesPagesAndCaps(t *testing.T) {
	emu, f, _ := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.AcceptTask(fi.TaskSID, "Ana"); err != nil {
		t.Fatal(err)
	}
	for i := range 260 {
		if _, err := emu.SendAgentMessage(fi.TaskSID, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.FetchAgentMessages(ctx, activities.FetchAgentMessagesInput{ConversationSID: fi.ConversationSID, AfterIndex: 9})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 200 || res.Messages[0].Index != 10 || res.Messages[199].Index != 209 || res.LastIndex != 209 {
		t.Fatalf("got %d messages, %d..%d, last %d", len(res.Messages), res.Messages[0].Index, res.Messages[len(res.Messages)-1].Index, res.LastIndex)
	}
	for i, m := range res.Messages {
		if m.Index != 10+i || m.Body != fmt.Sprintf("m%d", 10+i) {
			t.Fatalf("message %d = %+v", i, m)
		}
	}
	rest, err := f.FetchAgentMessages(ctx, activities.FetchAgentMessagesInput{ConversationSID: fi.ConversationSID, AfterIndex: res.LastIndex})
	if err != nil || len(rest.Messages) != 50 || rest.Messages[0].Index != 210 || rest.LastIndex != 259 {
		t.Errorf("the rest = %d messages, last %d, %v", len(rest.Messages), rest.LastIndex, err)
	}
}

func TestFetchAgentMessagesOfLostConversation(t *testing.T) {
	emu, f, _ := startFlex(t)
	ctx := context.Background()
	fi, err := f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.LoseConversation(fi.ConversationSID); err != nil {
		t.Fatal(err)
	}
	_, err = f.FetchAgentMessages(ctx, activities.FetchAgentMessagesInput{ConversationSID: fi.ConversationSID, AfterIndex: -1})
	if appErr := asAppError(t, err); appErr.Type() != activities.ErrFlexConversationGone || !appErr.NonRetryable() {
		t.Errorf("error type %s, non-retryable %v: %v", appErr.Type(), appErr.NonRetryable(), err)
	}
	if _, err := emu.InjectFault(twilioemu.Fault{Host: "conversations", Status: 503}); err != nil {
		t.Fatal(err)
	}
	_, err = f.FetchAgentMessages(ctx, activities.FetchAgentMessagesInput{ConversationSID: fi.ConversationSID, AfterIndex: -1})
	if appErr := asAppError(t, err); appErr.Type() != activities.ErrTwilioUnavailable || appErr.NonRetryable() {
		t.Errorf("503: error type %s, non-retryable %v: %v", appErr.Type(), appErr.NonRetryable(), err)
	}
}
