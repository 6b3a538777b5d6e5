package twilioemu_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	flex "github.com/twilio/twilio-go/rest/flex/v1"
	taskrouter "github.com/twilio/twilio-go/rest/taskrouter/v1"

	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

// flexFixture is a conversation handed to Flex the way flexcord does it,
// with both callbacks pointing at one receiver.
type flexFixture struct {
	emu     *twilioemu.Server
	rv      *receiver
	convURL string
	trURL   string
	ch      string
	in      *flex.FlexV1Interaction
	task    string
}

func newFlexFixture(t *testing.T, eventsFilter string) *flexFixture {
	t.Helper()
	f := &flexFixture{emu: startEmu(t), rv: newReceiver(t)}
	f.convURL = f.rv.srv.URL + "/twilio/conversations"
	f.trURL = f.rv.srv.URL + "/twilio/taskrouter"
	rc := restClient(f.emu, testAuthToken, 5*time.Second)
	if _, err := rc.TaskrouterV1.UpdateWorkspace(testWorkspaceSID, (&taskrouter.UpdateWorkspaceParams{}).
		SetEventCallbackUrl(f.trURL).SetEventsFilter(eventsFilter)); err != nil {
		t.Fatalf("UpdateWorkspace: %v", err)
	}
	f.ch = setupConversation(t, rc.ConversationsV1, f.convURL, "post",
		"onMessageAdded", "onConversationStateUpdated", "onParticipantAdded")
	customerMessage(t, rc.ConversationsV1, f.ch, "I need help", "")
	f.in = createInteraction(t, rc.FlexV1, f.ch, map[string]any{"customerName": "Tester"})
	routing := (*f.in.Routing).(map[string]any)
	f.task = routing["properties"].(map[string]any)["sid"].(string)
	return f
}

// expect reads the next webhook and checks its endpoint and event type.
func (f *flexFixture) expect(t *testing.T, eventType string) hookRequest {
	t.Helper()
	r := f.rv.next(t)
	url := f.convURL
	if strings.Contains(eventType, ".") {
		url = f.trURL
	}
	if got := r.Form.Get("EventType"); got != eventType || !strings.HasPrefix(r.URL, url) {
		t.Fatalf("got %s at %s, want %s at %s", got, r.URL, eventType, url)
	}
	verify(t, r, url)
	return r
}

func TestAgentFlowCallbacksInOrder(t *testing.T) {
	f := newFlexFixture(t, "reservation.accepted,task.wrapup,reservation.wrapup,task.completed")
	emu := f.emu
	events, cancel := emu.Subscribe()
	defer cancel()

	waiting := emu.Tasks(twilioemu.TaskWaiting)
	if len(waiting) != 1 || waiting[0].SID != f.task || len(waiting[0].Messages) != 1 ||
		waiting[0].Messages[0].Role != twilioemu.RoleCustomer || waiting[0].Attributes["conversationSid"] != f.ch {
		t.Fatalf("waiting tasks = %+v", waiting)
	}

	accepted, err := emu.AcceptTask(f.task, "Alice Agent")
	if err != nil {
		t.Fatalf("AcceptTask: %v", err)
	}
	if accepted.Status != twilioemu.TaskAssigned || accepted.AgentIdentity != "Alice_Agent" {
		t.Errorf("accepted task = %+v", accepted)
	}
	if _, err := emu.AcceptTask(f.task, "Bob"); !errors.Is(err, twilioemu.ErrTaskState) {
		t.Errorf("second accept: %v, want ErrTaskState", err)
	}
	msg, err := emu.SendAgentMessage(f.task, "Hello, I am Alice")
	if err != nil {
		t.Fatalf("SendAgentMessage: %v", err)
	}
	if _, err := emu.WrapUpTask(f.task); err != nil {
		t.Fatalf("WrapUpTask: %v", err)
	}
	if _, err := emu.CompleteTask(f.task); err != nil {
		t.Fatalf("CompleteTask: %v", err)
	}

	r := f.expect(t, "reservation.accepted")
	var attrs map[string]any
	if err := json.Unmarshal([]byte(r.Form.Get("TaskAttributes")), &attrs); err != nil || attrs["conversationSid"] != f.ch {
		t.Errorf("TaskAttributes = %s (%v)", r.Form.Get("TaskAttributes"), err)
	}
	// WorkerName is the worker's friendly name, a login; the display name is full_name.
	var worker map[string]any
	if err := json.Unmarshal([]byte(r.Form.Get("WorkerAttributes")), &worker); err != nil || worker["full_name"] != "Alice Agent" {
		t.Errorf("WorkerAttributes = %s (%v), want full_name Alice Agent", r.Form.Get("WorkerAttributes"), err)
	}
	if accepted.WorkerName != "Alice Agent" || accepted.WorkerFriendlyName != "alice.agent@flex.example" {
		t.Errorf("accepted worker %q / %q", accepted.WorkerName, accepted.WorkerFriendlyName)
	}
	for k, want := range map[string]string{
		"WorkerName": "alice.agent@flex.example", "TaskSid": f.task, "ReservationSid": accepted.ReservationSID,
		"WorkerSid": accepted.WorkerSID, "WorkspaceSid": testWorkspaceSID, "ResourceType": "Reservation",
	} {
		if got := r.Form.Get(k); got != want {
			t.Errorf("reservation.accepted %s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(r.Form.Get("Sid"), "EV") || !strings.HasPrefix(r.Form.Get("WorkerSid"), "WK") ||
		!strings.HasPrefix(r.Form.Get("ReservationSid"), "WR") || r.Header.Get("I-Twilio-Idempotency-Token") == "" {
		t.Errorf("reservation.accepted SIDs: %v", r.Form)
	}

	r = f.expect(t, "onParticipantAdded")
	if r.Form.Get("Identity") != "Alice_Agent" || !strings.HasPrefix(r.Form.Get("ParticipantSid"), "MB") {
		t.Errorf("onParticipantAdded = %v", r.Form)
	}

	r = f.expect(t, "onMessageAdded")
	for k, want := range map[string]string{
		"Source": "SDK", "ClientIdentity": "Alice_Agent", "Author": "Alice_Agent", "Body": "Hello, I am Alice",
		"MessageSid": msg.SID, "ParticipantSid": msg.ParticipantSID, "Index": "1", "RetryCount": "0",
	} {
		if got := r.Form.Get(k); got != want {
			t.Errorf("onMessageAdded %s = %q, want %q", k, got, want)
		}
	}

	f.expect(t, "task.wrapup")
	f.expect(t, "reservation.wrapup")
	r = f.expect(t, "onConversationStateUpdated")
	for k, want := range map[string]string{"StateFrom": "active", "StateTo": "closed", "Reason": "API"} {
		if got := r.Form.Get(k); got != want {
			t.Errorf("onConversationStateUpdated %s = %q, want %q", k, got, want)
		}
	}
	r = f.expect(t, "task.completed")
	if r.Form.Get("TaskAssignmentStatus") != "completed" {
		t.Errorf("task.completed TaskAssignmentStatus = %q", r.Form.Get("TaskAssignmentStatus"))
	}

	// Everything delivered; filtered events (task.created, reservation.created,
	// reservation.completed) were never sent.
	for range 7 {
		waitEvent(t, events, func(e twilioemu.Event) bool {
			return e.Type == twilioemu.EventDelivery && e.Delivery.State == twilioemu.DeliveryDelivered
		})
	}
	if all := emu.Deliveries(); len(all) != 7 {
		t.Errorf("%d deliveries, want 7: %+v", len(all), all)
	}
	f.rv.none(t)

	done, err := emu.Task(f.task)
	if err != nil || done.Status != twilioemu.TaskCompleted || done.ConversationState != "closed" || len(done.Messages) != 2 ||
		done.Messages[1].Role != twilioemu.RoleAgent {
		t.Errorf("final task = %+v, %v", done, err)
	}
}

func TestCustomerCloseWhileAssigned(t *testing.T) {
	tests := []struct {
		name       string
		routing    map[string]any
		wantStatus twilioemu.TaskStatus
		wantEvents []string
	}{
		{"no routing: wrapping", nil, twilioemu.TaskWrapping, []string{"task.wrapup", "onConversationStateUpdated"}},
		{"routing closed: completed", map[string]any{"status": "closed"}, twilioemu.TaskCompleted, []string{"task.completed", "onConversationStateUpdated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlexFixture(t, "task.wrapup,task.completed,task.canceled")
			if _, err := f.emu.AcceptTask(f.task, "alice"); err != nil {
				t.Fatalf("AcceptTask: %v", err)
			}
			f.expect(t, "onParticipantAdded")
			rc := restClient(f.emu, testAuthToken, 5*time.Second)
			uo := (*f.in.Channel).(map[string]any)["sid"].(string)
			p := (&flex.UpdateInteractionChannelParams{}).SetStatus("closed")
			if tt.routing != nil {
				p.SetRouting(tt.routing)
			}
			if _, err := rc.FlexV1.UpdateInteractionChannel(str(f.in.Sid), uo, p); err != nil {
				t.Fatalf("UpdateInteractionChannel: %v", err)
			}
			for _, ev := range tt.wantEvents {
				f.expect(t, ev)
			}
			if got, _ := f.emu.Task(f.task); got.Status != tt.wantStatus {
				t.Errorf("task status %s, want %s", got.Status, tt.wantStatus)
			}
			// Closing again is a no-op.
			if c, err := rc.FlexV1.UpdateInteractionChannel(str(f.in.Sid), uo, (&flex.UpdateInteractionChannelParams{}).SetStatus("closed")); err != nil || str(c.Status) != "closed" {
				t.Errorf("second close = %+v, %v", c, err)
			}
			if _, err := f.emu.SendAgentMessage(f.task, "too late"); !errors.Is(err, twilioemu.ErrConversationClosed) && !errors.Is(err, twilioemu.ErrTaskState) {
				t.Errorf("agent message after close: %v", err)
			}
		})
	}
}

func TestEventsFilterAndNoCallbackURL(t *testing.T) {
	f := newFlexFixture(t, "task.completed")
	if _, err := f.emu.AcceptTask(f.task, "alice"); err != nil {
		t.Fatalf("AcceptTask: %v", err)
	}
	// Only the conversation webhook arrives: reservation.accepted is filtered.
	f.expect(t, "onParticipantAdded")

	// Clearing the callback URL stops all callbacks.
	rc := restClient(f.emu, testAuthToken, 5*time.Second)
	if _, err := rc.TaskrouterV1.UpdateWorkspace(testWorkspaceSID, (&taskrouter.UpdateWorkspaceParams{}).SetEventCallbackUrl("")); err != nil {
		t.Fatalf("UpdateWorkspace: %v", err)
	}
	if _, err := f.emu.CompleteTask(f.task); err != nil {
		t.Fatalf("CompleteTask: %v", err)
	}
	f.expect(t, "onConversationStateUpdated")
	for _, d := range f.emu.Deliveries() {
		if d.Kind == twilioemu.KindTaskRouter {
			t.Errorf("unexpected TaskRouter delivery %s", d.EventType)
		}
	}
	if ws := f.emu.Workspace(); ws.EventCallbackURL != "" || ws.EventsFilter != "task.completed" {
		t.Errorf("Workspace() = %+v", ws)
	}
}

func TestCustomerEchoOnlyWithHeader(t *testing.T) {
	f := newFlexFixture(t, "")
	cv := restClient(f.emu, testAuthToken, 5*time.Second).ConversationsV1
	customerMessage(t, cv, f.ch, "no echo", "false")
	m := customerMessage(t, cv, f.ch, "echo", "true")
	// Empty EventsFilter: every TaskRouter event; task.created came first.
	f.expect(t, "task.created")
	r := f.expect(t, "onMessageAdded")
	if r.Form.Get("MessageSid") != str(m.Sid) || r.Form.Get("Source") != "API" {
		t.Errorf("echo = %v", r.Form)
	}
	f.rv.none(t)
}

func TestUpdateTaskThroughREST(t *testing.T) {
	f := newFlexFixture(t, "task.wrapup,task.completed,task.canceled")
	tr := restClient(f.emu, testAuthToken, 5*time.Second).TaskrouterV1
	if _, err := tr.UpdateTask(testWorkspaceSID, f.task, (&taskrouter.UpdateTaskParams{}).SetAssignmentStatus("completed")); err == nil {
		t.Error("completing a pending task succeeded")
	}
	if _, err := f.emu.AcceptTask(f.task, "alice"); err != nil {
		t.Fatalf("AcceptTask: %v", err)
	}
	f.expect(t, "onParticipantAdded")
	got, err := tr.UpdateTask(testWorkspaceSID, f.task, (&taskrouter.UpdateTaskParams{}).
		SetAssignmentStatus("wrapping").SetReason("agent left").SetAttributes(`{"conversationSid":"`+f.ch+`","rated":true}`))
	if err != nil || str(got.AssignmentStatus) != "wrapping" || str(got.Reason) != "agent left" || !strings.Contains(str(got.Attributes), "rated") {
		t.Fatalf("UpdateTask(wrapping) = %+v, %v", got, err)
	}
	f.expect(t, "task.wrapup")
	if _, err := tr.UpdateTask(testWorkspaceSID, f.task, (&taskrouter.UpdateTaskParams{}).SetAssignmentStatus("completed")); err != nil {
		t.Fatalf("UpdateTask(completed): %v", err)
	}
	if r := f.expect(t, "task.completed"); !strings.Contains(r.Form.Get("TaskAttributes"), "rated") {
		t.Errorf("task.completed TaskAttributes = %s", r.Form.Get("TaskAttributes"))
	}
}
