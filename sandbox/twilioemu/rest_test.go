package twilioemu_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
	flex "github.com/twilio/twilio-go/rest/flex/v1"
	taskrouter "github.com/twilio/twilio-go/rest/taskrouter/v1"

	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// createInteraction hands conversation ch to Flex the way flexcord does.
func createInteraction(t *testing.T, svc *flex.ApiService, ch string, attrs map[string]any) *flex.FlexV1Interaction {
	t.Helper()
	p := &flex.CreateInteractionParams{}
	p.SetChannel(map[string]any{
		"type":         "chat",
		"initiated_by": "customer",
		"properties":   map[string]any{"media_channel_sid": ch},
	})
	p.SetRouting(map[string]any{
		"properties": map[string]any{
			"workspace_sid":            testWorkspaceSID,
			"workflow_sid":             testWorkflowSID,
			"task_channel_unique_name": "chat",
			"attributes":               attrs,
		},
	})
	in, err := svc.CreateInteraction(p)
	if err != nil {
		t.Fatalf("CreateInteraction: %v", err)
	}
	return in
}

// TestTwilioGoCalls runs every call of API-CONTRACTS §5 (T1–T12, T15)
// through unmodified twilio-go; StartTest fails the test for any contract
// violation.
func TestTwilioGoCalls(t *testing.T) {
	emu := startEmu(t)
	rc := restClient(emu, testAuthToken, 10*time.Second)
	cv := rc.ConversationsV1

	// T1: create, and a duplicate unique name.
	cp := &conversations.CreateConversationParams{}
	cp.SetUniqueName("discord-42-1").SetFriendlyName("Discord 42").
		SetAttributes(`{"case":"C-1"}`).SetTimersInactive("PT1H").SetTimersClosed("P1D").
		SetXTwilioWebhookEnabled("false")
	conv, err := cv.CreateConversation(cp)
	if err != nil {
		t.Fatalf("CreateConversation: %v", err)
	}
	ch := str(conv.Sid)
	if !strings.HasPrefix(ch, "CH") || len(ch) != 34 || !strings.HasPrefix(str(conv.ChatServiceSid), "IS") ||
		str(conv.State) != "active" || str(conv.UniqueName) != "discord-42-1" || conv.DateCreated == nil {
		t.Fatalf("CreateConversation = %+v", conv)
	}
	_, err = cv.CreateConversation(cp)
	if te := twilioError(t, err); te.Status != http.StatusConflict || te.Code != 50353 {
		t.Errorf("duplicate unique name: %d/%d, want 409/50353", te.Status, te.Code)
	}

	// T2: fetch by SID and by unique name; unknown → 404/20404.
	for _, ref := range []string{ch, "discord-42-1"} {
		got, err := cv.FetchConversation(ref)
		if err != nil || str(got.Sid) != ch || str(got.Attributes) != `{"case":"C-1"}` {
			t.Errorf("FetchConversation(%s) = %+v, %v", ref, got, err)
		}
	}
	_, err = cv.FetchConversation("CH00000000000000000000000000000000")
	if te := twilioError(t, err); te.Status != http.StatusNotFound || te.Code != 20404 {
		t.Errorf("unknown conversation: %d/%d, want 404/20404", te.Status, te.Code)
	}

	// T3: participant, duplicate identity, list.
	pp := &conversations.CreateConversationParticipantParams{}
	pp.SetIdentity("discord_42").SetAttributes(`{"discord_user_id":"42"}`)
	part, err := cv.CreateConversationParticipant(ch, pp)
	if err != nil || !strings.HasPrefix(str(part.Sid), "MB") || str(part.Identity) != "discord_42" || str(part.ConversationSid) != ch {
		t.Fatalf("CreateConversationParticipant = %+v, %v", part, err)
	}
	_, err = cv.CreateConversationParticipant(ch, pp)
	if te := twilioError(t, err); te.Status != http.StatusConflict || te.Code != 50433 {
		t.Errorf("duplicate participant: %d/%d, want 409/50433", te.Status, te.Code)
	}
	parts, err := cv.ListConversationParticipant(ch, nil)
	if err != nil || len(parts) != 1 {
		t.Errorf("ListConversationParticipant = %d, %v", len(parts), err)
	}

	// T4: scoped webhook with lower-case method and repeated filters.
	wp := &conversations.CreateConversationScopedWebhookParams{}
	wp.SetTarget("webhook").SetConfigurationUrl("https://flexcord.example/twilio/conversations?x=1").
		SetConfigurationMethod("post").
		SetConfigurationFilters([]string{"onMessageAdded", "onConversationStateUpdated", "onParticipantAdded"})
	hook, err := cv.CreateConversationScopedWebhook(ch, wp)
	if err != nil {
		t.Fatalf("CreateConversationScopedWebhook: %v", err)
	}
	cfg, _ := (*hook.Configuration).(map[string]any)
	if !strings.HasPrefix(str(hook.Sid), "WH") || str(hook.Target) != "webhook" ||
		cfg["url"] != "https://flexcord.example/twilio/conversations?x=1" || fmt.Sprint(cfg["filters"]) != "[onMessageAdded onConversationStateUpdated onParticipantAdded]" {
		t.Errorf("CreateConversationScopedWebhook = %+v, configuration %v", hook, cfg)
	}
	// The spec allows PageSize ≤ 5 here; twilio-go's default (50) would break the contract.
	hooks, err := cv.ListConversationScopedWebhook(ch, (&conversations.ListConversationScopedWebhookParams{}).SetPageSize(5))
	if err != nil || len(hooks) != 1 {
		t.Errorf("ListConversationScopedWebhook = %d, %v", len(hooks), err)
	}

	// T5: customer messages; participant_sid is filled in from Author.
	for i := range 5 {
		mp := &conversations.CreateConversationMessageParams{}
		mp.SetAuthor("discord_42").SetBody(fmt.Sprintf("message %d", i)).
			SetAttributes(fmt.Sprintf(`{"discord_message_id":"%d","origin":"discord"}`, 1000+i)).
			SetXTwilioWebhookEnabled("false")
		m, err := cv.CreateConversationMessage(ch, mp)
		if err != nil {
			t.Fatalf("CreateConversationMessage: %v", err)
		}
		if !strings.HasPrefix(str(m.Sid), "IM") || m.Index != i || str(m.Author) != "discord_42" ||
			str(m.ParticipantSid) != str(part.Sid) || m.DateCreated == nil {
			t.Errorf("CreateConversationMessage = %+v", m)
		}
	}
	sys, err := cv.CreateConversationMessage(ch, (&conversations.CreateConversationMessageParams{}).SetBody("note"))
	if err != nil || str(sys.Author) != "system" || sys.ParticipantSid != nil {
		t.Errorf("system message = %+v, %v", sys, err)
	}

	// T6: newest first, paged through meta.next_page_url.
	msgs, err := cv.ListConversationMessage(ch, (&conversations.ListConversationMessageParams{}).SetOrder("desc").SetPageSize(2))
	if err != nil || len(msgs) != 6 {
		t.Fatalf("ListConversationMessage = %d messages, %v; want 6", len(msgs), err)
	}
	for i, m := range msgs {
		if m.Index != 5-i {
			t.Errorf("message %d has index %d, want %d (desc)", i, m.Index, 5-i)
		}
	}
	page, err := cv.PageConversationMessage(ch, (&conversations.ListConversationMessageParams{}).SetOrder("desc").SetPageSize(4), "", "")
	if err != nil || len(page.Messages) != 4 || page.Meta.Key != "messages" || page.Meta.NextPageUrl == nil ||
		!strings.Contains(*page.Meta.NextPageUrl, "Order=desc") || page.Meta.PageSize != 4 {
		t.Errorf("PageConversationMessage meta = %+v, %v", page.Meta, err)
	}

	// T7: the interaction.
	in := createInteraction(t, rc.FlexV1, ch, map[string]any{"from": "Tester", "customerAddress": "discord:42", "case_id": "C-1"})
	chanObj, _ := (*in.Channel).(map[string]any)
	routing, _ := (*in.Routing).(map[string]any)
	props, _ := routing["properties"].(map[string]any)
	uo, _ := chanObj["sid"].(string)
	wt, _ := props["sid"].(string)
	var taskAttrs map[string]any
	if s, _ := props["attributes"].(string); json.Unmarshal([]byte(s), &taskAttrs) != nil {
		t.Fatalf("routing.properties.attributes %v is not a JSON string", props["attributes"])
	}
	if !strings.HasPrefix(str(in.Sid), "KD") || !strings.HasPrefix(uo, "UO") || !strings.HasPrefix(wt, "WT") ||
		taskAttrs["conversationSid"] != ch || taskAttrs["flexInteractionSid"] != str(in.Sid) ||
		taskAttrs["flexInteractionChannelSid"] != uo || taskAttrs["case_id"] != "C-1" {
		t.Fatalf("CreateInteraction = sid %s channel %v routing %v", str(in.Sid), chanObj, props)
	}
	if got, err := rc.FlexV1.FetchInteraction(str(in.Sid)); err != nil || str(got.Sid) != str(in.Sid) {
		t.Errorf("FetchInteraction = %+v, %v", got, err)
	}

	// T8: interaction channels.
	chans, err := rc.FlexV1.ListInteractionChannel(str(in.Sid), nil)
	if err != nil || len(chans) != 1 || str(chans[0].Sid) != uo || str(chans[0].Status) != "active" || str(chans[0].Type) != "chat" {
		t.Errorf("ListInteractionChannel = %+v, %v", chans, err)
	}
	if c, err := rc.FlexV1.FetchInteractionChannel(str(in.Sid), uo); err != nil || str(c.Status) != "active" {
		t.Errorf("FetchInteractionChannel = %+v, %v", c, err)
	}

	// T11: workspace callback set-up.
	ws, err := rc.TaskrouterV1.FetchWorkspace(testWorkspaceSID)
	if err != nil || str(ws.Sid) != testWorkspaceSID || ws.EventCallbackUrl != nil {
		t.Errorf("FetchWorkspace = %+v, %v", ws, err)
	}
	up := &taskrouter.UpdateWorkspaceParams{}
	up.SetEventCallbackUrl("https://flexcord.example/twilio/taskrouter").
		SetEventsFilter("task.canceled,task.wrapup,task.completed,reservation.accepted,workflow.timeout")
	ws, err = rc.TaskrouterV1.UpdateWorkspace(testWorkspaceSID, up)
	if err != nil || str(ws.EventCallbackUrl) != "https://flexcord.example/twilio/taskrouter" ||
		!strings.Contains(str(ws.EventsFilter), "reservation.accepted") {
		t.Errorf("UpdateWorkspace = %+v, %v", ws, err)
	}

	// T12: the task.
	task, err := rc.TaskrouterV1.FetchTask(testWorkspaceSID, wt)
	if err != nil || str(task.AssignmentStatus) != "pending" || !strings.Contains(str(task.Attributes), ch) {
		t.Errorf("FetchTask = %+v, %v", task, err)
	}

	// T9: close from our side; the conversation closes, the unaccepted task is canceled.
	closed, err := rc.FlexV1.UpdateInteractionChannel(str(in.Sid), uo, (&flex.UpdateInteractionChannelParams{}).SetStatus("closed"))
	if err != nil || str(closed.Status) != "closed" {
		t.Fatalf("UpdateInteractionChannel = %+v, %v", closed, err)
	}
	if got, _ := cv.FetchConversation(ch); str(got.State) != "closed" {
		t.Errorf("conversation state after channel close = %s, want closed", str(got.State))
	}
	if task, _ := rc.TaskrouterV1.FetchTask(testWorkspaceSID, wt); str(task.AssignmentStatus) != "canceled" {
		t.Errorf("task after channel close = %s, want canceled", str(task.AssignmentStatus))
	}
	_, err = cv.CreateConversationMessage(ch, (&conversations.CreateConversationMessageParams{}).SetAuthor("discord_42").SetBody("late"))
	if te := twilioError(t, err); te.Status != http.StatusBadRequest || te.Code != 50377 {
		t.Errorf("message to closed conversation: %d/%d, want 400/50377", te.Status, te.Code)
	}

	// T10: fallback close of another conversation.
	conv2, err := cv.CreateConversation(&conversations.CreateConversationParams{})
	if err != nil {
		t.Fatalf("CreateConversation: %v", err)
	}
	c2, err := cv.UpdateConversation(str(conv2.Sid), (&conversations.UpdateConversationParams{}).SetState("closed"))
	if err != nil || str(c2.State) != "closed" {
		t.Errorf("UpdateConversation(State=closed) = %+v, %v", c2, err)
	}

	// T15: clean-up calls.
	if err := cv.DeleteConversationScopedWebhook(ch, str(hook.Sid)); err != nil {
		t.Errorf("DeleteConversationScopedWebhook: %v", err)
	}
	if err := cv.DeleteConversationParticipant(ch, str(part.Sid), nil); err != nil {
		t.Errorf("DeleteConversationParticipant: %v", err)
	}
	if err := cv.DeleteConversation(ch, nil); err != nil {
		t.Errorf("DeleteConversation: %v", err)
	}
	if _, err := cv.FetchConversation("discord-42-1"); twilioError(t, err).Code != 20404 {
		t.Errorf("deleted conversation still found by unique name")
	}
}

func TestAuthentication(t *testing.T) {
	emu := startEmu(t)
	_, err := restClient(emu, "wrongToken", 5*time.Second).ConversationsV1.FetchConversation("CH00000000000000000000000000000000")
	if te := twilioError(t, err); te.Status != http.StatusUnauthorized || te.Code != 20003 {
		t.Errorf("wrong token: %d/%d, want 401/20003", te.Status, te.Code)
	}
}

func TestContractViolationRecorded(t *testing.T) {
	emu := startEmu(t)
	rc := restClient(emu, testAuthToken, 5*time.Second)
	conv, err := rc.ConversationsV1.CreateConversation(nil)
	if err != nil {
		t.Fatalf("CreateConversation: %v", err)
	}
	// Upper-case POST works on Twilio (and here), but breaks the spec's enum.
	wp := (&conversations.CreateConversationScopedWebhookParams{}).SetTarget("webhook").
		SetConfigurationUrl("https://flexcord.example/hook").SetConfigurationMethod("POST")
	if _, err := rc.ConversationsV1.CreateConversationScopedWebhook(str(conv.Sid), wp); err != nil {
		t.Fatalf("CreateConversationScopedWebhook: %v", err)
	}
	v := emu.Violations()
	if len(v) != 1 || !strings.Contains(v[0], "Configuration.Method") {
		t.Fatalf("Violations() = %q, want one about Configuration.Method", v)
	}
	rec := &recordingTB{TB: t}
	emu.CheckViolations(rec)
	if len(rec.errors) != 1 {
		t.Errorf("CheckViolations reported %d errors, want 1", len(rec.errors))
	}
	emu.CheckViolations(rec) // already reported: nothing new
	if len(rec.errors) != 1 {
		t.Errorf("CheckViolations reported a violation twice")
	}
}

// recordingTB captures Errorf calls instead of failing the test.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestMountedOnHTTPTestServer(t *testing.T) {
	emu, err := twilioemu.New(twilioemu.Options{AccountSID: testAccountSID, AuthToken: testAuthToken, WorkspaceSID: testWorkspaceSID})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(emu)
	t.Cleanup(func() {
		ts.Close()
		if err := emu.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "not twilio")
	}))
	t.Cleanup(other.Close)

	tr := twilioemu.NewTransport(ts.URL, nil)
	c := &client.Client{Credentials: client.NewCredentials(testAccountSID, testAuthToken), HTTPClient: &http.Client{Transport: tr}}
	ws, err := taskrouter.NewApiServiceWithClient(c).FetchWorkspace(testWorkspaceSID)
	if err != nil || str(ws.Sid) != testWorkspaceSID {
		t.Fatalf("FetchWorkspace through NewTransport = %+v, %v", ws, err)
	}
	resp, err := (&http.Client{Transport: tr}).Get(other.URL)
	if err != nil {
		t.Fatalf("GET other host: %v", err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "not twilio" {
		t.Errorf("other host answered %q; the transport must pass it through", b)
	}
	if _, err := twilioemu.New(twilioemu.Options{AccountSID: "AC1", AuthToken: "x"}); err == nil {
		t.Error("New accepted an invalid account SID")
	}
	if _, err := twilioemu.New(twilioemu.Options{AccountSID: testAccountSID, AuthToken: "not-alnum"}); err == nil {
		t.Error("New accepted a non-alphanumeric auth token")
	}
}
