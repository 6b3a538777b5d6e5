package ingress_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/mock"
	"github.com/twilio/twilio-go/client"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/mocks"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/workflows"
)

const (
	hookAuthToken = "ingressTestToken0123"
	hookPublicURL = "https://support.example.com"
	// hookInternalURL is where requests arrive behind the proxy; signatures never cover it.
	hookInternalURL = "http://10.0.0.5:8080"
	hookUserID      = "2000000000000000001"
	hookConvSID     = "CH0123456789abcdef0123456789abcdef"
	hookServiceSID  = "IS0123456789abcdef0123456789abcdef"
	hookQuery       = "?case=C-7K3QX2&user=" + hookUserID
)

// TestTwilioSignatureKnownAnswer pins the algorithm on the worked example of Twilio's security
// documentation, with twilio-go's validator (what ingress uses) and with the emulator's signer
// (what the other tests sign with). The docs' Caller and From are +14158675310.
func TestTwilioSignatureKnownAnswer(t *testing.T) {
	const (
		docURL   = "https://mycompany.com/myapp.php?foo=1&bar=2"
		docToken = "12345"
		docSig   = "GvWf1cFY/Q7PnoempGyD5oXAezc="
	)
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675310"}, "Digits": {"1234"},
		"From": {"+14158675310"}, "To": {"+18005551212"},
	}
	rv := client.NewRequestValidator(docToken)
	flat := map[string]string{}
	for k := range params {
		flat[k] = params.Get(k)
	}
	if !rv.Validate(docURL, flat, docSig) {
		t.Error("twilio-go rejects the documented signature")
	}
	if got := twilioemu.Signature(docToken, docURL, params); got != docSig {
		t.Errorf("emulator signs %s, documentation says %s", got, docSig)
	}
	flat["Digits"] = "1235"
	if rv.Validate(docURL, flat, docSig) {
		t.Error("a changed parameter still verifies")
	}
}

// newTwilioIngress returns ingress with the Twilio routes over a mocked Temporal client. A
// SignalWorkflow call the test did not expect fails the test.
func newTwilioIngress(t *testing.T, publicURL string, maxInFlight int) (*mocks.Client, http.Handler) {
	t.Helper()
	tc := mocks.NewClient(t)
	s := ingress.New(ingress.Config{
		Temporal:    tc,
		Log:         slog.New(slog.DiscardHandler),
		MaxInFlight: maxInFlight,
		Routes: []func(*ingress.Server, *mux.Router){
			ingress.TwilioRoutes(ingress.TwilioConfig{AuthToken: hookAuthToken, PublicURL: publicURL}),
		},
	})
	return tc, s.Handler()
}

// signedForm is a form webhook to path (with its query) signed over signURL+path.
func signedForm(path, signURL string, params url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, hookInternalURL+path, strings.NewReader(params.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Twilio-Signature", twilioemu.Signature(hookAuthToken, signURL+path, params))
	r.Header.Set("I-Twilio-Idempotency-Token", "idem-1")
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func expectSignal(tc *mocks.Client, signal string, arg any) {
	tc.On("SignalWorkflow", mock.Anything, workflows.ConversationWorkflowID(hookUserID), "", signal, arg).Return(nil).Once()
}

func agentMessage() url.Values {
	return url.Values{
		"EventType": {"onMessageAdded"}, "ConversationSid": {hookConvSID}, "ChatServiceSid": {hookServiceSID}, "MessageSid": {"IM0123456789abcdef0123456789abcdef"},
		"Author": {"Ana"}, "ClientIdentity": {"Ana"}, "Source": {"SDK"}, "Body": {"Hello, I'm Ana"}, "Attributes": {"{}"},
		"Index": {"3"}, "AccountSid": {"AC0123456789abcdef0123456789abcdef"},
	}
}

// wantAgentMessage is the signal of agentMessage(): no agent name (the author is a login
// identity), the Flex conversation and the message's index.
var wantAgentMessage = workflows.AgentMessageSignal{
	EventID: "IM0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", Text: "Hello, I'm Ana", ConversationSID: hookConvSID, Index: 3, HasIndex: true,
}

func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			out.Del(kv[i])
			continue
		}
		out.Set(kv[i], kv[i+1])
	}
	return out
}

func TestConversationsWebhookMapping(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		params url.Values
		signal string
		arg    any
	}{
		{"agent message", hookQuery, agentMessage(), workflows.SignalAgentMessage, wantAgentMessage},
		{"the author is never the agent name", hookQuery, with(agentMessage(), "Author", "ana_40example_2Ecom", "ClientIdentity", "ana_40example_2Ecom"),
			workflows.SignalAgentMessage, wantAgentMessage},
		{"first message of the conversation", hookQuery, with(agentMessage(), "Index", "0"), workflows.SignalAgentMessage, workflows.AgentMessageSignal{
			EventID: "IM0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", Text: "Hello, I'm Ana", ConversationSID: hookConvSID, Index: 0, HasIndex: true,
		}},
		{"no index", hookQuery, with(agentMessage(), "Index", ""), workflows.SignalAgentMessage, workflows.AgentMessageSignal{
			EventID: "IM0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", Text: "Hello, I'm Ana", ConversationSID: hookConvSID,
		}},
		{"index not a number", hookQuery, with(agentMessage(), "Index", "three"), workflows.SignalAgentMessage, workflows.AgentMessageSignal{
			EventID: "IM0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", Text: "Hello, I'm Ana", ConversationSID: hookConvSID,
		}},
		{"attachment only", hookQuery, with(agentMessage(), "Body", "", "Media", `[{"Sid":"ME1","ContentType":"image/png","Filename":"shot.png","Size":2048}]`), workflows.SignalAgentMessage, workflows.AgentMessageSignal{
			EventID: "IM0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", Text: "[attachment]", ConversationSID: hookConvSID, Index: 3, HasIndex: true,
			Files: []workflows.Attachment{{ID: "ME1", Name: "shot.png", ContentType: "image/png", Size: 2048, MediaSID: "ME1", ServiceSID: hookServiceSID}},
		}},
		{"echo of the member's message", hookQuery, with(agentMessage(), "Author", "discord:"+hookUserID, "Source", "API"), "", nil},
		{"message carrying our delivery marker", hookQuery, with(agentMessage(), "Author", "system", "Attributes", `{"flexcord_delivery":"k1-2"}`), "", nil},
		{"conversation closed", hookQuery, url.Values{
			"EventType": {"onConversationStateUpdated"}, "ConversationSid": {hookConvSID}, "StateFrom": {"active"}, "StateTo": {"closed"}, "Reason": {"API"},
		}, workflows.SignalAgentWrappedUp, workflows.AgentWrappedUpSignal{
			EventID: "closed:" + hookConvSID, CaseID: "C-7K3QX2", Reason: "conversation closed", ConversationSID: hookConvSID, ConversationClosed: true,
		}},
		{"conversation inactive", hookQuery, url.Values{
			"EventType": {"onConversationStateUpdated"}, "ConversationSid": {hookConvSID}, "StateFrom": {"active"}, "StateTo": {"inactive"},
		}, "", nil},
		{"participant added", hookQuery, url.Values{
			"EventType": {"onParticipantAdded"}, "ConversationSid": {hookConvSID}, "ParticipantSid": {"MB1"}, "Identity": {"Ana"},
		}, "", nil},
		{"no member in the URL", "", agentMessage(), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, h := newTwilioIngress(t, hookPublicURL, 0)
			if tt.signal != "" {
				expectSignal(tc, tt.signal, tt.arg)
			}
			w := serve(h, signedForm(ingress.TwilioConversationsPath+tt.query, hookPublicURL, tt.params))
			if w.Code != http.StatusOK {
				t.Errorf("status = %d %s", w.Code, w.Body)
			}
		})
	}
}

func taskEvent(eventType string) url.Values {
	return url.Values{
		"EventType": {eventType}, "Sid": {"EV0123456789abcdef0123456789abcdef"},
		"TaskSid": {"WT0123456789abcdef0123456789abcdef"}, "WorkerSid": {"WK0123456789abcdef0123456789abcdef"}, "WorkerName": {"ana_40example_2Ecom"},
		"WorkerAttributes": {`{"full_name":"Ana Souza","contact_uri":"client:ana_40example_2Ecom"}`},
		"TaskAttributes":   {`{"case_id":"C-7K3QX2","discord_user_id":"` + hookUserID + `","conversationSid":"` + hookConvSID + `"}`},
		"WorkspaceSid":     {"WS0123456789abcdef0123456789abcdef"}, "ResourceType": {"Reservation"},
	}
}

// joined is the AgentJoined signal of taskEvent("reservation.accepted").
func joined(eventID, agentName string) workflows.AgentJoinedSignal {
	return workflows.AgentJoinedSignal{
		EventID: eventID, CaseID: "C-7K3QX2", AgentName: agentName,
		WorkerSID: "WK0123456789abcdef0123456789abcdef", TaskSID: "WT0123456789abcdef0123456789abcdef",
	}
}

func TestTaskRouterMapping(t *testing.T) {
	tests := []struct {
		name   string
		params url.Values
		signal string
		arg    any
	}{
		{"reservation accepted", taskEvent("reservation.accepted"), workflows.SignalAgentJoined, joined("EV0123456789abcdef0123456789abcdef", "Ana Souza")},
		{"event without Sid uses the idempotency token", with(taskEvent("reservation.accepted"), "Sid", ""), workflows.SignalAgentJoined,
			joined("idem-1", "Ana Souza")},
		{"no full name: the friendly name", with(taskEvent("reservation.accepted"), "WorkerName", "Ana", "WorkerAttributes", `{"contact_uri":"client:ana_40example_2Ecom"}`),
			workflows.SignalAgentJoined, joined("EV0123456789abcdef0123456789abcdef", "Ana")},
		{"friendly name that is the login identity", with(taskEvent("reservation.accepted"), "WorkerAttributes", `{"contact_uri":"client:ana_40example_2Ecom"}`),
			workflows.SignalAgentJoined, joined("EV0123456789abcdef0123456789abcdef", "")},
		{"friendly name that is an e-mail address", with(taskEvent("reservation.accepted"), "WorkerName", "ana@example.com", "WorkerAttributes", `{}`),
			workflows.SignalAgentJoined, joined("EV0123456789abcdef0123456789abcdef", "")},
		{"worker attributes not JSON", with(taskEvent("reservation.accepted"), "WorkerName", "Ana", "WorkerAttributes", "nope"),
			workflows.SignalAgentJoined, joined("EV0123456789abcdef0123456789abcdef", "Ana")},
		{"task wrap-up", taskEvent("task.wrapup"), workflows.SignalAgentWrappedUp, workflows.AgentWrappedUpSignal{
			EventID: "EV0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", Reason: "wrapped up", TaskSID: "WT0123456789abcdef0123456789abcdef",
		}},
		{"task completed", taskEvent("task.completed"), workflows.SignalAgentWrappedUp, workflows.AgentWrappedUpSignal{
			EventID: "EV0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", Reason: "completed", TaskSID: "WT0123456789abcdef0123456789abcdef",
		}},
		{"task canceled: no agent", taskEvent("task.canceled"), workflows.SignalNoAgent, workflows.NoAgentSignal{
			EventID: "EV0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", TaskSID: "WT0123456789abcdef0123456789abcdef", Reason: "task canceled",
		}},
		{"task canceled with a reason", with(taskEvent("task.canceled"), "TaskCanceledReason", "Task TTL Exceeded"), workflows.SignalNoAgent, workflows.NoAgentSignal{
			EventID: "EV0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", TaskSID: "WT0123456789abcdef0123456789abcdef", Reason: "task canceled: Task TTL Exceeded",
		}},
		{"workflow timeout: no agent", taskEvent("workflow.timeout"), workflows.SignalNoAgent, workflows.NoAgentSignal{
			EventID: "EV0123456789abcdef0123456789abcdef", CaseID: "C-7K3QX2", TaskSID: "WT0123456789abcdef0123456789abcdef", Reason: "workflow timeout",
		}},
		{"other event", taskEvent("reservation.created"), "", nil},
		{"task of another channel", with(taskEvent("reservation.accepted"), "TaskAttributes", `{"channelType":"sms"}`), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, h := newTwilioIngress(t, hookPublicURL, 0)
			if tt.signal != "" {
				expectSignal(tc, tt.signal, tt.arg)
			}
			w := serve(h, signedForm(ingress.TwilioTaskRouterPath, hookPublicURL, tt.params))
			if w.Code != http.StatusNoContent || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("status = %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
			}
		})
	}
}

// TestTwilioSignatureVariants: what Twilio may sign is accepted, and anything else is refused
// with 403 before a signal is sent.
func TestTwilioSignatureVariants(t *testing.T) {
	path := ingress.TwilioConversationsPath + hookQuery
	msg := agentMessage()
	jsonBody := []byte(`{"EventType":"onMessageAdded","ConversationSid":"` + hookConvSID + `","MessageSid":"IM0123456789abcdef0123456789abcdef","Author":"Ana","Body":"Hello, I'm Ana","Index":3}`)
	sum := sha256.Sum256(jsonBody)
	jsonPath := path + "&bodySHA256=" + hex.EncodeToString(sum[:])
	jsonRequest := func(body []byte, signURL string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, hookInternalURL+jsonPath, strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Twilio-Signature", twilioemu.Signature(hookAuthToken, signURL+jsonPath, nil))
		return r
	}
	tests := []struct {
		name      string
		publicURL string
		req       func() *http.Request
		ok        bool
	}{
		{"form", hookPublicURL, func() *http.Request { return signedForm(path, hookPublicURL, msg) }, true},
		{"public URL with a trailing slash", hookPublicURL + "/", func() *http.Request { return signedForm(path, hookPublicURL, msg) }, true},
		{"signed without the default port", hookPublicURL + ":443", func() *http.Request { return signedForm(path, hookPublicURL, msg) }, true},
		{"signed with the default port", hookPublicURL, func() *http.Request { return signedForm(path, hookPublicURL+":443", msg) }, true},
		{"signed with another port", "https://support.example.com:8443", func() *http.Request {
			return signedForm(path, "https://support.example.com:8443", msg)
		}, true},
		{"JSON body", hookPublicURL, func() *http.Request { return jsonRequest(jsonBody, hookPublicURL) }, true},

		{"no signature", hookPublicURL, func() *http.Request {
			r := signedForm(path, hookPublicURL, msg)
			r.Header.Del("X-Twilio-Signature")
			return r
		}, false},
		{"signed with another token", hookPublicURL, func() *http.Request {
			r := signedForm(path, hookPublicURL, msg)
			r.Header.Set("X-Twilio-Signature", twilioemu.Signature("someoneElse123", hookPublicURL+path, msg))
			return r
		}, false},
		{"tampered body", hookPublicURL, func() *http.Request {
			r := signedForm(path, hookPublicURL, msg)
			r2 := signedForm(path, hookPublicURL, with(msg, "Body", "Send me your password"))
			r2.Header.Set("X-Twilio-Signature", r.Header.Get("X-Twilio-Signature"))
			return r2
		}, false},
		{"tampered member in the URL", hookPublicURL, func() *http.Request {
			r := signedForm(path, hookPublicURL, msg)
			r2 := signedForm(ingress.TwilioConversationsPath+"?case=C-7K3QX2&user=2000000000000000002", hookPublicURL, msg)
			r2.Header.Set("X-Twilio-Signature", r.Header.Get("X-Twilio-Signature"))
			return r2
		}, false},
		{"signed over the internal URL", hookPublicURL, func() *http.Request { return signedForm(path, hookInternalURL, msg) }, false},
		{"signed over another scheme", hookPublicURL, func() *http.Request { return signedForm(path, "http://support.example.com", msg) }, false},
		{"tampered JSON body", hookPublicURL, func() *http.Request {
			return jsonRequest([]byte(strings.Replace(string(jsonBody), "Hello", "Hullo", 1)), hookPublicURL)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, h := newTwilioIngress(t, tt.publicURL, 0)
			want := http.StatusForbidden
			if tt.ok {
				want = http.StatusOK
				expectSignal(tc, workflows.SignalAgentMessage, wantAgentMessage)
			}
			if w := serve(h, tt.req()); w.Code != want {
				t.Errorf("status = %d, want %d (%s)", w.Code, want, strings.TrimSpace(w.Body.String()))
			}
		})
	}
}

func TestTwilioTemporalErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"conversation gone", serviceerror.NewNotFound("workflow not found"), http.StatusNoContent},
		{"Temporal unavailable", serviceerror.NewUnavailable("connection refused"), http.StatusServiceUnavailable},
		{"deadline", context.DeadlineExceeded, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, h := newTwilioIngress(t, hookPublicURL, 0)
			tc.On("SignalWorkflow", mock.Anything, workflows.ConversationWorkflowID(hookUserID), "", workflows.SignalAgentJoined, mock.Anything).
				Return(tt.err).Once()
			w := serve(h, signedForm(ingress.TwilioTaskRouterPath, hookPublicURL, taskEvent("reservation.accepted")))
			if w.Code != tt.want {
				t.Errorf("status = %d, want %d", w.Code, tt.want)
			}
			// Every refusal says when to come back.
			if w.Code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
		})
	}
}

func TestTwilioBusyAnswers503(t *testing.T) {
	tc, h := newTwilioIngress(t, hookPublicURL, 1)
	entered, release := make(chan struct{}), make(chan struct{})
	tc.On("SignalWorkflow", mock.Anything, workflows.ConversationWorkflowID(hookUserID), "", workflows.SignalAgentMessage, mock.Anything).
		Run(func(mock.Arguments) { close(entered); <-release }).Return(nil).Once()
	done := make(chan int)
	go func() {
		done <- serve(h, signedForm(ingress.TwilioConversationsPath+hookQuery, hookPublicURL, agentMessage())).Code
	}()
	<-entered
	w := serve(h, signedForm(ingress.TwilioConversationsPath+hookQuery, hookPublicURL, agentMessage()))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("second request: status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("first request: status %d", code)
	}
}

func TestTwilioBodyIsBounded(t *testing.T) {
	_, h := newTwilioIngress(t, hookPublicURL, 0)
	big := with(agentMessage(), "Body", strings.Repeat("x", 300<<10))
	if w := serve(h, signedForm(ingress.TwilioConversationsPath+hookQuery, hookPublicURL, big)); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d", w.Code)
	}
}

func TestTwilioRoutesAcceptOnlyPOST(t *testing.T) {
	_, h := newTwilioIngress(t, hookPublicURL, 0)
	r := httptest.NewRequest(http.MethodGet, hookInternalURL+ingress.TwilioConversationsPath, nil)
	if w := serve(h, r); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET status = %d", w.Code)
	}
}
