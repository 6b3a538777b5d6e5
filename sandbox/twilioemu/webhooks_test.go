package twilioemu_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
	conversations "github.com/twilio/twilio-go/rest/conversations/v1"

	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

func TestSignatureKnownAnswer(t *testing.T) {
	// The test vector twilio-go's own validator tests use.
	params := url.Values{
		"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
		"Caller": {"+14158675309"}, "From": {"+14158675309"},
		"ReasonConferenceEnded": {"test"}, "Reason": {"Participant"},
	}
	got := twilioemu.Signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
	if want := "vOEb5UThFn24KEfnOFLQY2AE5FY="; got != want {
		t.Errorf("Signature = %q, want %q", got, want)
	}
	flat := map[string]string{}
	for k := range params {
		flat[k] = params.Get(k)
	}
	rv := client.NewRequestValidator("12345")
	if !rv.Validate("https://mycompany.com/myapp.php?foo=1&bar=2", flat, got) {
		t.Error("twilio-go does not accept the signature")
	}
	if rv.Validate("https://mycompany.com/myapp.php?foo=1&bar=3", flat, got) {
		t.Error("signature still valid for another URL")
	}
}

// setupConversation creates a conversation with a customer participant and
// a scoped webhook to hookURL, through twilio-go.
func setupConversation(t *testing.T, cv *conversations.ApiService, hookURL, method string, filters ...string) (ch string) {
	t.Helper()
	conv, err := cv.CreateConversation(&conversations.CreateConversationParams{})
	if err != nil {
		t.Fatalf("CreateConversation: %v", err)
	}
	if _, err := cv.CreateConversationParticipant(str(conv.Sid),
		(&conversations.CreateConversationParticipantParams{}).SetIdentity("discord_42")); err != nil {
		t.Fatalf("CreateConversationParticipant: %v", err)
	}
	if _, err := cv.CreateConversationScopedWebhook(str(conv.Sid), (&conversations.CreateConversationScopedWebhookParams{}).
		SetTarget("webhook").SetConfigurationUrl(hookURL).SetConfigurationMethod(method).
		SetConfigurationFilters(filters)); err != nil {
		t.Fatalf("CreateConversationScopedWebhook: %v", err)
	}
	return str(conv.Sid)
}

func customerMessage(t *testing.T, cv *conversations.ApiService, ch, body, webhookEnabled string) *conversations.ConversationsV1ConversationMessage {
	t.Helper()
	p := (&conversations.CreateConversationMessageParams{}).SetAuthor("discord_42").SetBody(body).
		SetAttributes(`{"origin":"discord"}`)
	if webhookEnabled != "" {
		p.SetXTwilioWebhookEnabled(webhookEnabled)
	}
	m, err := cv.CreateConversationMessage(ch, p)
	if err != nil {
		t.Fatalf("CreateConversationMessage: %v", err)
	}
	return m
}

func TestWebhookRetriedWithSameToken(t *testing.T) {
	rv := newReceiver(t, http.StatusInternalServerError, http.StatusServiceUnavailable) // then 200
	emu := startEmu(t)
	events, cancel := emu.Subscribe()
	defer cancel()
	cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
	hookURL := rv.srv.URL + "/twilio/conversations?tenant=a%20b"
	ch := setupConversation(t, cv, hookURL, "post", "onMessageAdded")

	// Without X-Twilio-Webhook-Enabled a REST message fires nothing.
	customerMessage(t, cv, ch, "quiet", "")
	m := customerMessage(t, cv, ch, "echo me", "true")

	var token string
	for attempt := range 3 {
		r := rv.next(t)
		verify(t, r, hookURL)
		if r.Form.Get("Body") != "echo me" {
			t.Fatalf("attempt %d delivered %q, want the echoed message only", attempt, r.Form.Get("Body"))
		}
		if got := r.Form.Get("RetryCount"); got != strconv.Itoa(attempt) {
			t.Errorf("attempt %d: RetryCount = %q", attempt, got)
		}
		tok := r.Header.Get("I-Twilio-Idempotency-Token")
		if attempt == 0 {
			token = tok
		} else if tok != token {
			t.Errorf("attempt %d: idempotency token %q, want %q", attempt, tok, token)
		}
		for k, want := range map[string]string{
			"EventType": "onMessageAdded", "Source": "API", "ConversationSid": ch, "MessageSid": str(m.Sid),
			"Author": "discord_42", "ParticipantSid": str(m.ParticipantSid), "Index": "1",
			"Attributes": `{"origin":"discord"}`, "AccountSid": testAccountSID,
		} {
			if got := r.Form.Get(k); got != want {
				t.Errorf("attempt %d: %s = %q, want %q", attempt, k, got, want)
			}
		}
		if r.Form.Has("ClientIdentity") {
			t.Errorf("API-sourced event carries ClientIdentity")
		}
	}
	e := waitEvent(t, events, func(e twilioemu.Event) bool {
		return e.Type == twilioemu.EventDelivery && e.Delivery.State != twilioemu.DeliveryPending
	})
	if d := e.Delivery; d.State != twilioemu.DeliveryDelivered || d.Attempts != 3 || d.LastStatus != 200 || d.Token != token {
		t.Errorf("delivery = %+v", d)
	}
	rv.none(t)
}

func TestWebhookGivesUp(t *testing.T) {
	rv := newReceiver(t, 500, 500, 500, 500)
	emu := startEmu(t, func(o *twilioemu.Options) { o.Retry.MaxAttempts = 2 })
	events, cancel := emu.Subscribe()
	defer cancel()
	cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
	ch := setupConversation(t, cv, rv.srv.URL+"/hook", "post", "onMessageAdded")
	customerMessage(t, cv, ch, "hello", "true")
	e := waitEvent(t, events, func(e twilioemu.Event) bool {
		return e.Type == twilioemu.EventDelivery && e.Delivery.State != twilioemu.DeliveryPending
	})
	if d := e.Delivery; d.State != twilioemu.DeliveryFailed || d.Attempts != 2 || d.LastStatus != 500 {
		t.Errorf("delivery = %+v, want failed after 2 attempts", d)
	}
	if got := emu.Deliveries(); len(got) != 1 || got[0].State != twilioemu.DeliveryFailed {
		t.Errorf("Deliveries() = %+v", got)
	}
}

func TestWebhookTimeoutIsRetried(t *testing.T) {
	release := make(chan struct{})
	calls := make(chan string, 10)
	var answered atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- r.Header.Get("I-Twilio-Idempotency-Token")
		if answered.CompareAndSwap(false, true) {
			<-release // the first attempt never gets an answer in time
		}
	}))
	t.Cleanup(srv.Close)
	defer close(release)
	emu := startEmu(t, func(o *twilioemu.Options) { o.Retry.Timeout = 100 * time.Millisecond })
	events, cancel := emu.Subscribe()
	defer cancel()
	cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
	ch := setupConversation(t, cv, srv.URL+"/hook", "post", "onMessageAdded")
	customerMessage(t, cv, ch, "hello", "true")
	e := waitEvent(t, events, func(e twilioemu.Event) bool {
		return e.Type == twilioemu.EventDelivery && e.Delivery.State != twilioemu.DeliveryPending
	})
	if d := e.Delivery; d.State != twilioemu.DeliveryDelivered || d.Attempts != 2 {
		t.Errorf("delivery = %+v, want delivered on attempt 2", d)
	}
	if a, b := <-calls, <-calls; a == "" || a != b {
		t.Errorf("tokens %q and %q, want the same", a, b)
	}
}

func TestGetWebhookSigned(t *testing.T) {
	rv := newReceiver(t)
	emu := startEmu(t)
	cv := restClient(emu, testAuthToken, 5*time.Second).ConversationsV1
	ch := setupConversation(t, cv, rv.srv.URL+"/hook?k=v", "get", "onMessageAdded")
	customerMessage(t, cv, ch, "hello get", "true")
	r := rv.next(t)
	if r.Form.Get("Body") != "hello get" || r.Form.Get("k") != "v" {
		t.Fatalf("GET webhook query = %v", r.Form)
	}
	verify(t, r, r.URL)
	if !strings.Contains(r.URL, "EventType=onMessageAdded") {
		t.Errorf("GET webhook URL %s lacks the event parameters", r.URL)
	}
}
