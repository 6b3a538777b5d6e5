package twilioemu_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
	flex "github.com/twilio/twilio-go/rest/flex/v1"
	taskrouter "github.com/twilio/twilio-go/rest/taskrouter/v1"

	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

// channelSID returns the interaction channel SID of the fixture's interaction.
func (f *flexFixture) channelSID() string {
	return (*f.in.Channel).(map[string]any)["sid"].(string)
}

// TestTaskEndsWithoutAgent ends a waiting task through the control routes
// the sandbox page calls: no agent ever joins.
func TestTaskEndsWithoutAgent(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		body       string
		wantEvents []string
		wantReason string
	}{
		{"cancel", "cancel", `{"reason":"Customer left"}`, []string{"task.canceled"}, "Customer left"},
		{"cancel with the default reason", "cancel", "", []string{"task.canceled"}, "Task canceled"},
		{"workflow timeout", "timeout", "", []string{"workflow.timeout", "task.canceled"}, "Workflow Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlexFixture(t, "task.canceled,workflow.timeout,task.wrapup,task.completed")
			var task twilioemu.TaskView
			ctl(t, f.emu, "POST", "/_emu/twilio/tasks/"+f.task+"/"+tt.path, tt.body, http.StatusOK, &task)
			if task.Status != twilioemu.TaskCanceled || task.Reason != tt.wantReason || task.ConversationState != "active" {
				t.Errorf("task = %+v", task)
			}
			for _, ev := range tt.wantEvents {
				r := f.expect(t, ev)
				if r.Form.Get("TaskSid") != f.task || r.Form.Has("WorkerName") {
					t.Errorf("%s = %v", ev, r.Form)
				}
				if ev == "task.canceled" && r.Form.Get("TaskCanceledReason") != tt.wantReason {
					t.Errorf("TaskCanceledReason = %q, want %q", r.Form.Get("TaskCanceledReason"), tt.wantReason)
				}
			}
			// Ending it again, or accepting it, is refused; an unknown task is 404.
			ctl(t, f.emu, "POST", "/_emu/twilio/tasks/"+f.task+"/"+tt.path, "", http.StatusConflict, nil)
			ctl(t, f.emu, "POST", "/_emu/twilio/tasks/"+f.task+"/accept", `{"agent":"Ana"}`, http.StatusConflict, nil)
			ctl(t, f.emu, "POST", "/_emu/twilio/tasks/WT00000000000000000000000000000000/"+tt.path, "", http.StatusNotFound, nil)
			// As on Flex, the conversation and the channel stay until the integration closes them.
			rc := restClient(f.emu, testAuthToken, 5*time.Second)
			if c, err := rc.FlexV1.FetchInteractionChannel(str(f.in.Sid), f.channelSID()); err != nil || str(c.Status) != "active" {
				t.Errorf("channel = %+v, %v", c, err)
			}
			f.rv.none(t)
		})
	}
}

func TestEndAssignedTaskWithoutAgentIsRefused(t *testing.T) {
	f := newFlexFixture(t, "")
	if _, err := f.emu.AcceptTask(f.task, "Ana"); err != nil {
		t.Fatal(err)
	}
	for _, end := range []func(string) (twilioemu.TaskView, error){
		func(sid string) (twilioemu.TaskView, error) { return f.emu.CancelTask(sid, "") },
		f.emu.TimeoutTask,
	} {
		if _, err := end(f.task); !errors.Is(err, twilioemu.ErrTaskState) {
			t.Errorf("ending an assigned task: %v, want ErrTaskState", err)
		}
	}
}

// TestLoseConversation: Flex loses the chat without a word; every later REST
// call on it, its interaction or its task answers 404/20404.
func TestLoseConversation(t *testing.T) {
	f := newFlexFixture(t, "")
	f.expect(t, "task.created")
	events, cancel := f.emu.Subscribe()
	defer cancel()
	before := len(f.emu.Deliveries())

	ctl(t, f.emu, "DELETE", "/_emu/twilio/conversations/"+f.ch, "", http.StatusNoContent, nil)
	e := waitEvent(t, events, func(e twilioemu.Event) bool { return e.Type == twilioemu.EventConversationLost })
	if e.ConversationSID != f.ch || e.TaskSID != f.task {
		t.Errorf("lost event = %+v", e)
	}
	ctl(t, f.emu, "DELETE", "/_emu/twilio/conversations/"+f.ch, "", http.StatusNotFound, nil)

	rc := restClient(f.emu, testAuthToken, 5*time.Second)
	calls := map[string]func() error{
		"FetchConversation": func() error { _, err := rc.ConversationsV1.FetchConversation(f.ch); return err },
		"CreateConversationMessage": func() error {
			_, err := rc.ConversationsV1.CreateConversationMessage(f.ch, (&conversations.CreateConversationMessageParams{}).SetAuthor("discord_42").SetBody("hello?"))
			return err
		},
		"ListConversationMessage": func() error { _, err := rc.ConversationsV1.ListConversationMessage(f.ch, nil); return err },
		"FetchInteraction":        func() error { _, err := rc.FlexV1.FetchInteraction(str(f.in.Sid)); return err },
		"FetchInteractionChannel": func() error {
			_, err := rc.FlexV1.FetchInteractionChannel(str(f.in.Sid), f.channelSID())
			return err
		},
		"UpdateInteractionChannel": func() error {
			_, err := rc.FlexV1.UpdateInteractionChannel(str(f.in.Sid), f.channelSID(), (&flex.UpdateInteractionChannelParams{}).SetStatus("closed"))
			return err
		},
		"FetchTask": func() error { _, err := rc.TaskrouterV1.FetchTask(testWorkspaceSID, f.task); return err },
	}
	for name, call := range calls {
		if te := twilioError(t, call()); te.Status != http.StatusNotFound || te.Code != 20404 {
			t.Errorf("%s: %d/%d, want 404/20404", name, te.Status, te.Code)
		}
	}
	if tasks := f.emu.Tasks(); len(tasks) != 0 {
		t.Errorf("tasks = %+v, want none", tasks)
	}
	if _, err := f.emu.Conversation(f.ch); !errors.Is(err, twilioemu.ErrNotFound) {
		t.Errorf("Conversation: %v", err)
	}
	if got := len(f.emu.Deliveries()); got != before {
		t.Errorf("%d deliveries after losing the conversation, want %d (no webhook)", got, before)
	}
	f.rv.none(t)
}

// TestInteractionChannelParticipants runs the participant routes of
// twilio_flex_v1.json through twilio-go (StartTest fails on any contract
// violation).
func TestInteractionChannelParticipants(t *testing.T) {
	f := newFlexFixture(t, "task.wrapup,task.completed")
	fx := restClient(f.emu, testAuthToken, 5*time.Second).FlexV1
	kd, uo := str(f.in.Sid), f.channelSID()

	list := func() []flex.FlexV1InteractionChannelParticipant {
		t.Helper()
		ps, err := fx.ListInteractionChannelParticipant(kd, uo, (&flex.ListInteractionChannelParticipantParams{}).SetPageSize(2))
		if err != nil {
			t.Fatalf("ListInteractionChannelParticipant: %v", err)
		}
		return ps
	}
	ps := list()
	if len(ps) != 1 || str(ps[0].Type) != "customer" || !strings.HasPrefix(str(ps[0].Sid), "UT") ||
		str(ps[0].ChannelSid) != uo || str(ps[0].InteractionSid) != kd || ps[0].RoutingProperties != nil {
		t.Fatalf("participants before accept = %+v", ps)
	}
	customer := str(ps[0].Sid)

	accepted, err := f.emu.AcceptTask(f.task, "Ana Agent")
	if err != nil {
		t.Fatal(err)
	}
	f.expect(t, "onParticipantAdded")
	ps = list() // paged through: PageSize 2
	if len(ps) != 2 || str(ps[1].Type) != "agent" {
		t.Fatalf("participants after accept = %+v", ps)
	}
	agent := str(ps[1].Sid)
	routing, _ := (*ps[1].RoutingProperties).(map[string]any)
	if routing["task_sid"] != f.task || routing["worker_sid"] != accepted.WorkerSID || routing["reservation_sid"] != accepted.ReservationSID {
		t.Errorf("agent routing_properties = %v", routing)
	}

	ext, err := fx.CreateInteractionChannelParticipant(kd, uo, (&flex.CreateInteractionChannelParticipantParams{}).
		SetType("external").SetMediaProperties(map[string]any{"identity": "partner_1"}))
	if err != nil || str(ext.Type) != "external" || !strings.HasPrefix(str(ext.Sid), "UT") {
		t.Fatalf("CreateInteractionChannelParticipant = %+v, %v", ext, err)
	}
	if len(list()) != 3 {
		t.Errorf("participants after create = %d, want 3", len(list()))
	}
	_, err = fx.CreateInteractionChannelParticipant(kd, uo, (&flex.CreateInteractionChannelParticipantParams{}).SetType("robot").SetMediaProperties(map[string]any{}))
	if te := twilioError(t, err); te.Status != http.StatusBadRequest {
		t.Errorf("bad type: %d/%d", te.Status, te.Code)
	}
	f.emu.CheckViolations(&recordingTB{TB: t}) // the bad Type breaks the spec's enum on purpose

	// Only agents can be updated.
	_, err = fx.UpdateInteractionChannelParticipant(kd, uo, customer, (&flex.UpdateInteractionChannelParticipantParams{}).SetStatus("closed"))
	if te := twilioError(t, err); te.Status != http.StatusBadRequest {
		t.Errorf("closing the customer: %d/%d, want 400", te.Status, te.Code)
	}
	_, err = fx.UpdateInteractionChannelParticipant(kd, uo, "UT00000000000000000000000000000000", (&flex.UpdateInteractionChannelParticipantParams{}).SetStatus("closed"))
	if te := twilioError(t, err); te.Code != 20404 {
		t.Errorf("unknown participant: %d/%d, want 20404", te.Status, te.Code)
	}

	// wrapup, then closed: the task wraps up, then completes; the conversation stays (parked).
	steps := []struct {
		status, event string
		want          twilioemu.TaskStatus
	}{
		{"wrapup", "task.wrapup", twilioemu.TaskWrapping},
		{"wrapup", "", twilioemu.TaskWrapping}, // the same status again is a no-op
		{"closed", "task.completed", twilioemu.TaskCompleted},
	}
	for i, st := range steps {
		p, err := fx.UpdateInteractionChannelParticipant(kd, uo, agent, (&flex.UpdateInteractionChannelParticipantParams{}).SetStatus(st.status))
		if err != nil || str(p.Sid) != agent {
			t.Fatalf("step %d: UpdateInteractionChannelParticipant(%s) = %+v, %v", i, st.status, p, err)
		}
		if st.event != "" {
			f.expect(t, st.event)
		}
		if task, _ := f.emu.Task(f.task); task.Status != st.want || task.ConversationState != "active" {
			t.Errorf("step %d: task %s, conversation %s", i, task.Status, task.ConversationState)
		}
	}
	conv, err := f.emu.Conversation(f.ch)
	if err != nil || len(conv.Participants) != 1 || conv.Participants[0].Identity != "discord_42" {
		t.Errorf("conversation after the agent left = %+v, %v", conv, err)
	}
	if _, err := fx.ListInteractionChannelParticipant(kd, "UO00000000000000000000000000000000", nil); twilioError(t, err).Code != 20404 {
		t.Errorf("participants of an unknown channel: %v", err)
	}
}

// apiCall sends a raw, authenticated request for host to the emulator.
func apiCall(t *testing.T, emu *twilioemu.Server, method, host, path string, form url.Values) *http.Response {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, emu.URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.SetBasicAuth(testAccountSID, testAuthToken)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestRetryAfterOn429: twilio-go hides error headers, so this looks at the raw answer.
func TestRetryAfterOn429(t *testing.T) {
	tests := []struct {
		name  string
		fault twilioemu.Fault
		want  string
	}{
		{"default", twilioemu.Fault{Status: 429}, "1"},
		{"given", twilioemu.Fault{Status: 429, RetryAfter: 7}, "7"},
		{"APS code", twilioemu.Fault{Status: 429, Code: 50063}, "1"},
		{"not a 429", twilioemu.Fault{Status: 503}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := startEmu(t)
			if _, err := emu.InjectFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			resp := apiCall(t, emu, "GET", twilioemu.HostConversations, "/v1/Conversations/CH00000000000000000000000000000000", nil)
			if resp.StatusCode != tt.fault.Status || resp.Header.Get("Retry-After") != tt.want {
				t.Errorf("answer %d with Retry-After %q, want %d with %q", resp.StatusCode, resp.Header.Get("Retry-After"), tt.fault.Status, tt.want)
			}
		})
	}
}

// timerConversation creates a conversation with state timers and a scoped
// webhook for state updates.
func timerConversation(t *testing.T, emu *twilioemu.Server, rv *receiver) *conversations.ConversationsV1Conversation {
	t.Helper()
	cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
	conv, err := cv.CreateConversation((&conversations.CreateConversationParams{}).SetTimersInactive("PT1M").SetTimersClosed("PT10M"))
	if err != nil {
		t.Fatalf("CreateConversation: %v", err)
	}
	if _, err := cv.CreateConversationParticipant(str(conv.Sid), (&conversations.CreateConversationParticipantParams{}).SetIdentity("discord_42")); err != nil {
		t.Fatal(err)
	}
	if _, err := cv.CreateConversationScopedWebhook(str(conv.Sid), (&conversations.CreateConversationScopedWebhookParams{}).
		SetTarget("webhook").SetConfigurationUrl(rv.srv.URL+"/hook").SetConfigurationMethod("post").
		SetConfigurationFilters([]string{"onConversationStateUpdated"})); err != nil {
		t.Fatal(err)
	}
	return conv
}

func expectState(t *testing.T, rv *receiver, from, to, reason string) {
	t.Helper()
	r := rv.next(t)
	for k, want := range map[string]string{"EventType": "onConversationStateUpdated", "StateFrom": from, "StateTo": to, "Reason": reason} {
		if got := r.Form.Get(k); got != want {
			t.Errorf("%s→%s: %s = %q, want %q", from, to, k, got, want)
		}
	}
}

func TestConversationTimers(t *testing.T) {
	rv := newReceiver(t)
	emu := startEmu(t)
	cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
	conv := timerConversation(t, emu, rv)
	ch := str(conv.Sid)

	timers, _ := (*conv.Timers).(map[string]any)
	inactiveAt, err1 := time.Parse(time.RFC3339, timers["date_inactive"].(string))
	closedAt, err2 := time.Parse(time.RFC3339, timers["date_closed"].(string))
	if err1 != nil || err2 != nil || inactiveAt.Sub(*conv.DateUpdated) != time.Minute || closedAt.Sub(*conv.DateUpdated) != 10*time.Minute {
		t.Fatalf("timers = %v (date_updated %v)", timers, conv.DateUpdated)
	}

	state := func() string {
		t.Helper()
		c, err := cv.FetchConversation(ch)
		if err != nil {
			t.Fatal(err)
		}
		return str(c.State)
	}
	if _, err := emu.AdvanceClock(50 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "active" {
		t.Fatalf("state after 50 s = %s", got)
	}
	var clock struct{ Now time.Time }
	ctl(t, emu, "POST", "/_emu/twilio/clock/advance", `{"seconds":15}`, http.StatusOK, &clock)
	if got := state(); got != "inactive" {
		t.Fatalf("state after 65 s = %s, want inactive", got)
	}
	expectState(t, rv, "active", "inactive", "TIMER")

	// A message reactivates it and restarts both timers; a REST message fires no webhook.
	customerMessage(t, cv, ch, "still there?", "")
	if got := state(); got != "active" {
		t.Fatalf("state after a message = %s, want active", got)
	}
	rv.none(t)
	if _, err := emu.AdvanceClock(9 * time.Minute); err != nil { // inactive again, not closed
		t.Fatal(err)
	}
	expectState(t, rv, "active", "inactive", "TIMER")
	ctl(t, emu, "POST", "/_emu/twilio/clock/advance", `{"duration":"PT1M"}`, http.StatusOK, nil)
	expectState(t, rv, "inactive", "closed", "TIMER")
	if got := state(); got != "closed" {
		t.Fatalf("state after 10 min = %s, want closed", got)
	}
	if c, _ := cv.FetchConversation(ch); len((*c.Timers).(map[string]any)) != 0 {
		t.Errorf("closed conversation still has timers %v", *c.Timers)
	}
	ctl(t, emu, "POST", "/_emu/twilio/clock/advance", `{"seconds":-1}`, http.StatusBadRequest, nil)
	rv.none(t)
}

func TestConversationTimersValidatedAndUpdated(t *testing.T) {
	emu := startEmu(t)
	cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
	for _, p := range []*conversations.CreateConversationParams{
		(&conversations.CreateConversationParams{}).SetTimersInactive("PT30S"),
		(&conversations.CreateConversationParams{}).SetTimersClosed("PT9M"),
		(&conversations.CreateConversationParams{}).SetTimersClosed("soon"),
	} {
		if _, err := cv.CreateConversation(p); twilioError(t, err).Status != http.StatusBadRequest {
			t.Errorf("CreateConversation(%+v) = %v, want 400", p, err)
		}
	}
	conv, err := cv.CreateConversation(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len((*conv.Timers).(map[string]any)) != 0 {
		t.Errorf("timers without Timers.* = %v", *conv.Timers)
	}
	if _, err := emu.AdvanceClock(time.Hour); err != nil {
		t.Fatal(err)
	}
	up, err := cv.UpdateConversation(str(conv.Sid), (&conversations.UpdateConversationParams{}).SetTimersClosed("PT10M"))
	if err != nil {
		t.Fatal(err)
	}
	// The timer counts from the update, not from the creation an hour ago.
	closedAt, _ := time.Parse(time.RFC3339, (*up.Timers).(map[string]any)["date_closed"].(string))
	if d := closedAt.Sub(emu.Now()); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("date_closed is %v from now, want about 10 min", d)
	}
	if c, _ := emu.AdvanceClock(10 * time.Minute); c.IsZero() {
		t.Fatal("AdvanceClock returned no time")
	}
	if c, _ := cv.FetchConversation(str(conv.Sid)); str(c.State) != "closed" {
		t.Errorf("state = %s, want closed", str(c.State))
	}
}

// TestTimerClosesTheInteraction: Flex ends the task of a conversation its
// closed timer closes.
func TestTimerClosesTheInteraction(t *testing.T) {
	f := newFlexFixture(t, "task.canceled,task.wrapup")
	rc := restClient(f.emu, testAuthToken, 5*time.Second)
	if _, err := rc.ConversationsV1.UpdateConversation(f.ch, (&conversations.UpdateConversationParams{}).SetTimersClosed("PT10M")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.emu.AdvanceClock(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	r := f.expect(t, "onConversationStateUpdated")
	if r.Form.Get("StateTo") != "closed" || r.Form.Get("Reason") != "TIMER" {
		t.Errorf("state update = %v", r.Form)
	}
	f.expect(t, "task.canceled")
	if c, err := rc.FlexV1.FetchInteractionChannel(str(f.in.Sid), f.channelSID()); err != nil || str(c.Status) != "closed" {
		t.Errorf("channel = %+v, %v", c, err)
	}
}

func TestChannelStatusFaults(t *testing.T) {
	t.Run("failed", func(t *testing.T) {
		emu := startEmu(t)
		var id struct{ ID string }
		ctl(t, emu, "POST", "/_emu/twilio/faults", `{"channel_status":"failed"}`, http.StatusCreated, &id)
		rc := restClient(emu, testAuthToken, 5*time.Second)
		ch := setupConversation(t, rc.ConversationsV1, "https://flexcord.example/hook", "post", "onMessageAdded")
		in := createInteraction(t, rc.FlexV1, ch, map[string]any{"customerName": "Tester"})
		uo := (*in.Channel).(map[string]any)["sid"].(string)
		c, err := rc.FlexV1.FetchInteractionChannel(str(in.Sid), uo)
		if err != nil || str(c.Status) != "failed" || c.ErrorCode == nil || *c.ErrorCode != 45361 || str(c.ErrorMessage) == "" {
			t.Fatalf("channel = %+v, %v", c, err)
		}
		if routing := (*in.Routing).(map[string]any); routing["properties"] != nil {
			t.Errorf("a failed channel routed a task: %v", routing)
		}
		if tasks := emu.Tasks(); len(tasks) != 0 {
			t.Errorf("tasks = %+v", tasks)
		}
		// The next interaction works.
		in2 := createInteraction(t, rc.FlexV1, ch, nil)
		uo2 := (*in2.Channel).(map[string]any)["sid"].(string)
		if c, err := rc.FlexV1.FetchInteractionChannel(str(in2.Sid), uo2); err != nil || str(c.Status) != "active" || c.ErrorCode != nil {
			t.Errorf("second channel = %+v, %v", c, err)
		}
	})
	t.Run("setup", func(t *testing.T) {
		emu := startEmu(t)
		if _, err := emu.InjectFault(twilioemu.Fault{ChannelStatus: "setup"}); err != nil {
			t.Fatal(err)
		}
		rc := restClient(emu, testAuthToken, 5*time.Second)
		ch := setupConversation(t, rc.ConversationsV1, "https://flexcord.example/hook", "post", "onMessageAdded")
		in := createInteraction(t, rc.FlexV1, ch, nil)
		uo := (*in.Channel).(map[string]any)["sid"].(string)
		for i, want := range []string{"setup", "active", "active"} {
			if c, err := rc.FlexV1.FetchInteractionChannel(str(in.Sid), uo); err != nil || str(c.Status) != want {
				t.Errorf("fetch %d: channel = %+v, %v; want %s", i, c, err, want)
			}
		}
	})
	t.Run("invalid", func(t *testing.T) {
		emu := startEmu(t)
		for _, f := range []twilioemu.Fault{{ChannelStatus: "closed"}, {ChannelStatus: "failed", Status: 500}} {
			if _, err := emu.InjectFault(f); err == nil {
				t.Errorf("InjectFault(%+v) succeeded", f)
			}
		}
	})
}

// TestWebhookConnectionOverrides: the fragment's rc and rp decide the
// retries; the fragment is neither sent nor signed.
func TestWebhookConnectionOverrides(t *testing.T) {
	tests := []struct {
		name         string
		fragment     string
		statuses     []int
		wantAttempts int
		wantState    twilioemu.DeliveryState
	}{
		{"no fragment: emulator policy", "", []int{500, 500}, 3, twilioemu.DeliveryDelivered},
		{"rc=0", "rc=0", []int{500}, 1, twilioemu.DeliveryFailed},
		{"default rp does not retry 5xx", "rc=3", []int{500}, 1, twilioemu.DeliveryFailed},
		{"rp=5xx", "rc=3&rp=5xx", []int{500, 503, 502}, 4, twilioemu.DeliveryDelivered},
		{"rp=4xx leaves 5xx", "rc=3&rp=4xx", []int{500}, 1, twilioemu.DeliveryFailed},
		{"rp=all with rc=5", "ct=1000&rt=5000&rc=5&rp=all", []int{404, 500, 429}, 4, twilioemu.DeliveryDelivered},
		{"rc caps the attempts", "rc=2&rp=all", []int{500, 500, 500, 500}, 3, twilioemu.DeliveryFailed},
		{"rc above 5 is clamped", "rc=9&rp=5xx", []int{500, 500, 500, 500, 500, 500, 500}, 6, twilioemu.DeliveryFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv := newReceiver(t, tt.statuses...)
			emu := startEmu(t)
			events, cancel := emu.Subscribe()
			defer cancel()
			cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
			base := rv.srv.URL + "/twilio/conversations?case=C-1"
			configured := base
			if tt.fragment != "" {
				configured += "#" + tt.fragment
			}
			ch := setupConversation(t, cv, configured, "post", "onMessageAdded")
			customerMessage(t, cv, ch, "hello", "true")
			e := waitEvent(t, events, func(e twilioemu.Event) bool {
				return e.Type == twilioemu.EventDelivery && e.Delivery.State != twilioemu.DeliveryPending
			})
			d := e.Delivery
			if d.State != tt.wantState || d.Attempts != tt.wantAttempts || d.URL != base || d.Overrides != tt.fragment {
				t.Errorf("delivery = state %s, %d attempts, URL %s, overrides %q; want %s, %d, %s, %q",
					d.State, d.Attempts, d.URL, d.Overrides, tt.wantState, tt.wantAttempts, base, tt.fragment)
			}
			for i := range tt.wantAttempts {
				r := rv.next(t)
				if r.URL != base {
					t.Errorf("attempt %d went to %s, want %s", i+1, r.URL, base)
				}
				verify(t, r, base) // signed over the URL without the fragment
			}
			rv.none(t)
			// The configured URL keeps its fragment.
			hooks, err := cv.ListConversationScopedWebhook(ch, (&conversations.ListConversationScopedWebhookParams{}).SetPageSize(5))
			if err != nil || len(hooks) != 1 || (*hooks[0].Configuration).(map[string]any)["url"] != configured {
				t.Errorf("webhooks = %+v, %v", hooks, err)
			}
		})
	}
}

func TestWebhookOverridesConnectAndReadFailures(t *testing.T) {
	t.Run("ct: nothing listens", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String() + "/hook"
		ln.Close()
		for _, tc := range []struct {
			fragment string
			attempts int
		}{{"rc=2&rp=ct", 3}, {"rc=2&rp=5xx", 1}} {
			emu := startEmu(t)
			events, cancel := emu.Subscribe()
			cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
			ch := setupConversation(t, cv, dead+"#"+tc.fragment, "post", "onMessageAdded")
			customerMessage(t, cv, ch, "hello", "true")
			e := waitEvent(t, events, func(e twilioemu.Event) bool {
				return e.Type == twilioemu.EventDelivery && e.Delivery.State != twilioemu.DeliveryPending
			})
			cancel()
			if d := e.Delivery; d.State != twilioemu.DeliveryFailed || d.Attempts != tc.attempts || d.LastStatus != 0 {
				t.Errorf("%s: delivery = %+v, want failed after %d attempts", tc.fragment, d, tc.attempts)
			}
		}
	})
	t.Run("rt: no answer in time", func(t *testing.T) {
		release := make(chan struct{})
		var answered atomic.Bool
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if answered.CompareAndSwap(false, true) {
				<-release // the first attempt gets no answer within rt
			}
		}))
		t.Cleanup(srv.Close)
		defer close(release)
		emu := startEmu(t)
		events, cancel := emu.Subscribe()
		defer cancel()
		cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
		ch := setupConversation(t, cv, srv.URL+"/hook#ct=100&rt=100&rc=1&rp=rt", "post", "onMessageAdded")
		customerMessage(t, cv, ch, "hello", "true")
		e := waitEvent(t, events, func(e twilioemu.Event) bool {
			return e.Type == twilioemu.EventDelivery && e.Delivery.State != twilioemu.DeliveryPending
		})
		if d := e.Delivery; d.State != twilioemu.DeliveryDelivered || d.Attempts != 2 {
			t.Errorf("delivery = %+v, want delivered on attempt 2", d)
		}
	})
}

// TestTaskRouterCallbackOverrides: the workspace's EventCallbackUrl honours
// connection overrides too.
func TestTaskRouterCallbackOverrides(t *testing.T) {
	rv := newReceiver(t, 500, 500)
	emu := startEmu(t, func(o *twilioemu.Options) {
		o.EventsFilter = "task.created"
	})
	rc := restClient(emu, testAuthToken, 5*time.Second)
	events, cancel := emu.Subscribe()
	defer cancel()
	if _, err := rc.TaskrouterV1.UpdateWorkspace(testWorkspaceSID, (&taskrouter.UpdateWorkspaceParams{}).
		SetEventCallbackUrl(rv.srv.URL+"/twilio/taskrouter#rc=2&rp=5xx")); err != nil {
		t.Fatal(err)
	}
	ch := setupConversation(t, rc.ConversationsV1, "https://flexcord.example/hook", "post", "onMessageAdded")
	createInteraction(t, rc.FlexV1, ch, nil)
	e := waitEvent(t, events, func(e twilioemu.Event) bool {
		return e.Type == twilioemu.EventDelivery && e.Delivery.State != twilioemu.DeliveryPending
	})
	if d := e.Delivery; d.State != twilioemu.DeliveryDelivered || d.Attempts != 3 || d.URL != rv.srv.URL+"/twilio/taskrouter" {
		t.Errorf("delivery = %+v", d)
	}
	for range 3 {
		verify(t, rv.next(t), rv.srv.URL+"/twilio/taskrouter")
	}
}

func TestWorkerLoginDistinctFromFullName(t *testing.T) {
	tests := []struct{ agent, login string }{
		{"Ana", "ana@flex.example"},
		{"Alice  Agent", "alice.agent@flex.example"},
		{"José María", "josé.maría@flex.example"},
		{"bob@support.example", "bob@support.example"},
	}
	for _, tt := range tests {
		t.Run(tt.agent, func(t *testing.T) {
			f := newFlexFixture(t, "reservation.accepted")
			task, err := f.emu.AcceptTask(f.task, tt.agent)
			if err != nil {
				t.Fatal(err)
			}
			if task.WorkerName != tt.agent || task.WorkerFriendlyName != tt.login {
				t.Errorf("task worker = %q / %q", task.WorkerName, task.WorkerFriendlyName)
			}
			r := f.expect(t, "reservation.accepted")
			var attrs map[string]any
			if err := json.Unmarshal([]byte(r.Form.Get("WorkerAttributes")), &attrs); err != nil {
				t.Fatal(err)
			}
			if r.Form.Get("WorkerName") != tt.login || attrs["full_name"] != tt.agent {
				t.Errorf("WorkerName %q, full_name %v; want %q, %q", r.Form.Get("WorkerName"), attrs["full_name"], tt.login, tt.agent)
			}
		})
	}
}
