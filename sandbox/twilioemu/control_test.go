package twilioemu_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

// ctl calls the control API and decodes the JSON answer into out.
func ctl(t *testing.T, emu *twilioemu.Server, method, path, body string, wantStatus int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, emu.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// sseTypes streams the event types of /_emu/twilio/events.
func sseTypes(t *testing.T, emu *twilioemu.Server) <-chan string {
	t.Helper()
	resp, err := http.Get(emu.URL() + "/_emu/twilio/events")
	if err != nil {
		t.Fatalf("GET events: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events Content-Type = %q", ct)
	}
	types := make(chan string, 100)
	go func() {
		defer resp.Body.Close()
		defer close(types)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var typ string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var e twilioemu.Event
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e) != nil || string(e.Type) != typ {
					typ = "bad:" + typ
				}
			case line == "" && typ != "":
				types <- typ
				typ = ""
			}
		}
	}()
	// The handler subscribes before it sends the headers, so every event
	// published from now on is on the stream.
	return types
}

func waitType(t *testing.T, types <-chan string, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got, ok := <-types:
			if !ok {
				t.Fatalf("event stream ended before %s", want)
			}
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event on the stream", want)
		}
	}
}

func TestControlHTTP(t *testing.T) {
	f := newFlexFixture(t, "")
	emu := f.emu
	types := sseTypes(t, emu)

	var list struct{ Tasks []twilioemu.TaskView }
	ctl(t, emu, "GET", "/_emu/twilio/tasks?status=waiting", "", http.StatusOK, &list)
	if len(list.Tasks) != 1 || list.Tasks[0].SID != f.task || list.Tasks[0].Messages[0].Body != "I need help" {
		t.Fatalf("waiting tasks = %+v", list.Tasks)
	}
	ctl(t, emu, "GET", "/_emu/twilio/tasks?status=assigned,wrapping", "", http.StatusOK, &list)
	if len(list.Tasks) != 0 {
		t.Errorf("assigned tasks = %+v, want none", list.Tasks)
	}

	var task twilioemu.TaskView
	ctl(t, emu, "POST", "/_emu/twilio/tasks/"+f.task+"/accept", `{"agent":"alice"}`, http.StatusOK, &task)
	if task.Status != twilioemu.TaskAssigned || task.WorkerName != "alice" {
		t.Errorf("accepted = %+v", task)
	}
	waitType(t, types, string(twilioemu.EventTaskUpdated))
	ctl(t, emu, "POST", "/_emu/twilio/tasks/"+f.task+"/accept", `{"agent":"bob"}`, http.StatusConflict, nil)

	var msg twilioemu.MessageView
	ctl(t, emu, "POST", "/_emu/twilio/tasks/"+f.task+"/messages", `{"body":"Hi from Alice"}`, http.StatusCreated, &msg)
	if msg.Author != "alice" || msg.Role != twilioemu.RoleAgent {
		t.Errorf("agent message = %+v", msg)
	}
	waitType(t, types, string(twilioemu.EventMessageAdded))

	var msgs struct{ Messages []twilioemu.MessageView }
	ctl(t, emu, "GET", "/_emu/twilio/conversations/"+f.ch+"/messages", "", http.StatusOK, &msgs)
	if len(msgs.Messages) != 2 || msgs.Messages[1].Body != "Hi from Alice" {
		t.Errorf("messages = %+v", msgs.Messages)
	}
	var conv twilioemu.ConversationView
	ctl(t, emu, "GET", "/_emu/twilio/conversations/"+f.ch, "", http.StatusOK, &conv)
	if conv.State != "active" || len(conv.Participants) != 2 {
		t.Errorf("conversation = %+v", conv)
	}

	ctl(t, emu, "POST", "/_emu/twilio/tasks/"+f.task+"/wrapup", "", http.StatusOK, &task)
	if task.Status != twilioemu.TaskWrapping || task.ConversationState != "closed" {
		t.Errorf("wrapped = %+v", task)
	}
	ctl(t, emu, "POST", "/_emu/twilio/tasks/"+f.task+"/messages", `{"body":"late"}`, http.StatusConflict, nil)
	ctl(t, emu, "POST", "/_emu/twilio/tasks/"+f.task+"/complete", "", http.StatusOK, &task)
	if task.Status != twilioemu.TaskCompleted {
		t.Errorf("completed = %+v", task)
	}
	ctl(t, emu, "GET", "/_emu/twilio/tasks/WT00000000000000000000000000000000", "", http.StatusNotFound, nil)
	ctl(t, emu, "POST", "/_emu/twilio/tasks/"+f.task+"/accept", `{"agent":`, http.StatusBadRequest, nil)

	var id struct{ ID string }
	ctl(t, emu, "POST", "/_emu/twilio/faults",
		`{"host":"conversations","method":"POST","path":"/v1/Conversations/*/Messages","status":500,"after":true,"latency_ms":10,"count":2}`,
		http.StatusCreated, &id)
	var faults struct{ Faults []twilioemu.FaultStatus }
	ctl(t, emu, "GET", "/_emu/twilio/faults", "", http.StatusOK, &faults)
	if len(faults.Faults) != 1 || faults.Faults[0].ID != id.ID || faults.Faults[0].Fault.Latency != 10*time.Millisecond ||
		!faults.Faults[0].Fault.After || faults.Faults[0].Remaining != 2 {
		t.Errorf("faults = %+v", faults.Faults)
	}
	ctl(t, emu, "POST", "/_emu/twilio/faults", `{"status":200}`, http.StatusBadRequest, nil)
	ctl(t, emu, "DELETE", "/_emu/twilio/faults/"+id.ID, "", http.StatusNoContent, nil)
	ctl(t, emu, "DELETE", "/_emu/twilio/faults/"+id.ID, "", http.StatusNotFound, nil)
	ctl(t, emu, "DELETE", "/_emu/twilio/faults", "", http.StatusNoContent, nil)

	var deliveries struct{ Deliveries []twilioemu.Delivery }
	ctl(t, emu, "GET", "/_emu/twilio/deliveries", "", http.StatusOK, &deliveries)
	if len(deliveries.Deliveries) == 0 || deliveries.Deliveries[0].EventType != "task.created" {
		t.Errorf("deliveries = %+v", deliveries.Deliveries)
	}
	var violations struct{ Violations []string }
	ctl(t, emu, "GET", "/_emu/twilio/violations", "", http.StatusOK, &violations)
	if len(violations.Violations) != 0 {
		t.Errorf("violations = %q", violations.Violations)
	}
	var ws twilioemu.WorkspaceView
	ctl(t, emu, "GET", "/_emu/twilio/workspace", "", http.StatusOK, &ws)
	if ws.SID != testWorkspaceSID || ws.WorkflowSID != testWorkflowSID || ws.EventCallbackURL != f.trURL {
		t.Errorf("workspace = %+v", ws)
	}
	ctl(t, emu, "GET", "/_emu/twilio/nothing", "", http.StatusNotFound, nil)
}
