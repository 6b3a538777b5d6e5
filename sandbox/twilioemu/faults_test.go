package twilioemu_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
	conversations "github.com/twilio/twilio-go/rest/conversations/v1"

	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

func TestFaultsOnMessageCreate(t *testing.T) {
	route := twilioemu.Fault{Host: twilioemu.HostConversations, Method: http.MethodPost, Path: "/v1/Conversations/*/Messages"}
	with := func(mod func(*twilioemu.Fault)) twilioemu.Fault {
		f := route
		mod(&f)
		return f
	}
	tests := []struct {
		name       string
		fault      twilioemu.Fault
		timeout    time.Duration
		wantStatus int // 0: success; -1: client-side timeout
		wantCode   int
		wantStored int
	}{
		{"5xx after store", with(func(f *twilioemu.Fault) { f.Status, f.After = 500, true }), 5 * time.Second, 500, 20500, 1},
		{"5xx before store", with(func(f *twilioemu.Fault) { f.Status = 503 }), 5 * time.Second, 503, 20503, 0},
		{"429", with(func(f *twilioemu.Fault) { f.Status = 429 }), 5 * time.Second, 429, 20429, 0},
		{"custom code", with(func(f *twilioemu.Fault) { f.Status, f.Code = 400, 50377 }), 5 * time.Second, 400, 50377, 0},
		{"slow answer after store", with(func(f *twilioemu.Fault) { f.Latency, f.After = 400*time.Millisecond, true }), 100 * time.Millisecond, -1, 0, 1},
		{"latency only", with(func(f *twilioemu.Fault) { f.Latency = 20 * time.Millisecond }), 5 * time.Second, 0, 0, 1},
		{"other route untouched", twilioemu.Fault{Path: "/v1/Conversations/*/Participants", Status: 500}, 5 * time.Second, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := startEmu(t)
			cv := restClient(emu, testAuthToken, tt.timeout).ConversationsV1
			conv, err := cv.CreateConversation(&conversations.CreateConversationParams{})
			if err != nil {
				t.Fatalf("CreateConversation: %v", err)
			}
			if _, err := emu.InjectFault(tt.fault); err != nil {
				t.Fatalf("InjectFault: %v", err)
			}
			_, err = cv.CreateConversationMessage(str(conv.Sid), (&conversations.CreateConversationMessageParams{}).
				SetAuthor("discord_42").SetBody("hi").SetAttributes(`{"discord_message_id":"1"}`))
			var te *client.TwilioRestError
			switch {
			case tt.wantStatus == 0 && err != nil:
				t.Fatalf("CreateConversationMessage: %v", err)
			case tt.wantStatus == -1 && (err == nil || errors.As(err, &te)):
				t.Fatalf("CreateConversationMessage error = %v, want a client timeout", err)
			case tt.wantStatus > 0:
				te := twilioError(t, err)
				if te.Status != tt.wantStatus || te.Code != tt.wantCode {
					t.Errorf("error %d/%d, want %d/%d", te.Status, te.Code, tt.wantStatus, tt.wantCode)
				}
			}
			// The recovery path of PostFlexMessage: look before re-sending.
			msgs, err := cv.ListConversationMessage(str(conv.Sid), (&conversations.ListConversationMessageParams{}).SetOrder("desc").SetPageSize(20))
			if err != nil {
				t.Fatalf("ListConversationMessage: %v", err)
			}
			if len(msgs) != tt.wantStored {
				t.Errorf("%d messages stored, want %d", len(msgs), tt.wantStored)
			}
			if faults := emu.Faults(); len(faults) != 0 && tt.name != "other route untouched" {
				t.Errorf("fault still active after one request: %+v", faults)
			}
		})
	}
}

func TestFaultCountAndRemoval(t *testing.T) {
	emu := startEmu(t)
	cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
	if _, err := emu.InjectFault(twilioemu.Fault{Host: "conversations", Method: "GET", Count: 2, Status: 500}); err != nil {
		t.Fatalf("InjectFault: %v", err)
	}
	for i := range 2 {
		if _, err := cv.FetchConversation("nothing"); twilioError(t, err).Status != 500 {
			t.Fatalf("request %d: %v, want the injected 500", i, err)
		}
	}
	if _, err := cv.FetchConversation("nothing"); twilioError(t, err).Code != 20404 {
		t.Fatalf("third request: %v, want the real 404", err)
	}

	id, err := emu.InjectFault(twilioemu.Fault{Count: -1, Status: 500})
	if err != nil {
		t.Fatalf("InjectFault: %v", err)
	}
	for range 3 {
		if _, err := cv.FetchConversation("nothing"); twilioError(t, err).Status != 500 {
			t.Fatalf("unlimited fault did not fire: %v", err)
		}
	}
	if f := emu.Faults(); len(f) != 1 || f[0].Hits != 3 || f[0].Remaining != -1 {
		t.Errorf("Faults() = %+v", f)
	}
	if !emu.RemoveFault(id) || len(emu.Faults()) != 0 {
		t.Errorf("RemoveFault(%s) did not remove it", id)
	}
	if _, err := emu.InjectFault(twilioemu.Fault{Status: 200}); err == nil {
		t.Error("InjectFault accepted status 200")
	}
}
