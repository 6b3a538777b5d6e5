package ingress

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/twilio/twilio-go/client"
	"go.temporal.io/api/serviceerror"

	"github.com/flexcord/flexcord/workflows"
)

// Twilio webhook routes.
const (
	TwilioConversationsPath = "/twilio/conversations"
	TwilioTaskRouterPath    = "/twilio/taskrouter"
)

// maxTwilioBody bounds a webhook body. Conversations messages hold at most 32 KB of text.
const maxTwilioBody = 256 << 10

// deliveryMarker is the key, in a message's Attributes, that flexcord's own messages carry
// (activities.DeliveryMarker; ingress does not import activities).
const deliveryMarker = "flexcord_delivery"

// TwilioConfig configures the Twilio webhook routes.
type TwilioConfig struct {
	// AuthToken is the account's auth token; Twilio signs every webhook with it (also when the
	// REST API is used with an API key).
	AuthToken string
	// PublicURL is the scheme, host and optional path prefix Twilio calls, such as
	// https://support.example.com (FLEXCORD_PUBLIC_URL). Signatures are checked against it and
	// the request's path and query, so they hold behind a proxy that rewrites the host. Empty
	// means the URL the request was made to.
	PublicURL string
	// CustomerIdentityPrefix starts the chat identity of Discord members (default "discord:").
	// Messages by such an author are the member's own and are not relayed back.
	CustomerIdentityPrefix string
}

// TwilioRoutes adds POST /twilio/conversations (conversation-scoped webhooks) and
// POST /twilio/taskrouter (TaskRouter workspace event callbacks). Both check X-Twilio-Signature,
// answering 403 without signalling anything when it does not verify, map the event to a signal
// of the member's Conversation and answer at once: 200 (conversations) or 204 (TaskRouter) when
// the signal was delivered or there is nothing to deliver, 503 when Temporal could not take it,
// so that Twilio sends the webhook again. The provider's event SID is the signal's EventID, so a
// webhook sent twice changes nothing.
func TwilioRoutes(cfg TwilioConfig) func(*Server, *mux.Router) {
	if cfg.CustomerIdentityPrefix == "" {
		cfg.CustomerIdentityPrefix = "discord:"
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	return func(s *Server, r *mux.Router) {
		h := &twilioHandler{s: s, cfg: cfg, validator: client.NewRequestValidator(cfg.AuthToken)}
		if cfg.PublicURL == "" {
			s.Log().Warn("FLEXCORD_PUBLIC_URL is not set; Twilio signatures are checked against the Host header, which fails behind a proxy")
		}
		r.HandleFunc(TwilioConversationsPath, h.conversations).Methods(http.MethodPost)
		r.HandleFunc(TwilioTaskRouterPath, h.taskRouter).Methods(http.MethodPost)
	}
}

type twilioHandler struct {
	s         *Server
	cfg       TwilioConfig
	validator client.RequestValidator
}

// twilioEvent is a verified webhook: its parameters and the query of the URL it was sent to.
type twilioEvent struct {
	params url.Values
	query  url.Values
	token  string // I-Twilio-Idempotency-Token
}

func (e twilioEvent) get(k string) string { return e.params.Get(k) }

// verify reads the body and checks X-Twilio-Signature. It writes the error answer itself and
// reports false when the request must not be processed.
func (h *twilioHandler) verify(w http.ResponseWriter, r *http.Request) (twilioEvent, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTwilioBody))
	if err != nil {
		status := http.StatusBadRequest
		if errors.As(err, new(*http.MaxBytesError)) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "cannot read the request body", status)
		return twilioEvent{}, false
	}
	fullURL := h.publicURL(r)
	sig := r.Header.Get("X-Twilio-Signature")
	ev := twilioEvent{query: r.URL.Query(), token: r.Header.Get("I-Twilio-Idempotency-Token")}
	var ok bool
	if r.URL.Query().Has("bodySHA256") {
		// JSON body: the signature covers the URL (with the body's hash) only.
		ok = sig != "" && h.validator.ValidateBody(fullURL, body, sig)
		if ok {
			ev.params, err = jsonParams(body)
		}
	} else {
		ev.params, err = url.ParseQuery(string(body))
		if err == nil && sig != "" {
			ok = h.validator.Validate(fullURL, firstValues(ev.params), sig)
		}
	}
	if !ok {
		h.s.Log().Warn("rejected a Twilio webhook with a missing or invalid signature", "path", r.URL.Path, "signed", sig != "")
		http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
		return twilioEvent{}, false
	}
	if err != nil {
		http.Error(w, "malformed body", http.StatusBadRequest)
		return twilioEvent{}, false
	}
	return ev, true
}

// publicURL is the URL Twilio signed: the configured public base URL followed by the request's
// path and query as received.
func (h *twilioHandler) publicURL(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		return h.cfg.PublicURL + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// firstValues flattens form values the way Twilio's validator expects: one value per name.
func firstValues(v url.Values) map[string]string {
	out := make(map[string]string, len(v))
	for k, vs := range v {
		if len(vs) > 0 {
			out[k] = vs[0]
		}
	}
	return out
}

// jsonParams reads a flat JSON object into parameters; nested values keep their JSON text.
func jsonParams(body []byte) (url.Values, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("decode JSON webhook body: %w", err)
	}
	out := url.Values{}
	for k, raw := range obj {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out.Set(k, s)
			continue
		}
		out.Set(k, string(raw))
	}
	return out, nil
}

// conversations handles conversation-scoped webhooks. The member comes from the "user" query
// parameter that CreateFlexInteraction put in the webhook URL (covered by the signature).
func (h *twilioHandler) conversations(w http.ResponseWriter, r *http.Request) {
	ev, ok := h.verify(w, r)
	if !ok {
		return
	}
	userID := ev.query.Get("user")
	log := h.s.Log().With("event", ev.get("EventType"), "conversation", ev.get("ConversationSid"), "member", userID, "case", ev.query.Get("case"))
	var signal string
	var arg any
	switch ev.get("EventType") {
	case "onMessageAdded":
		author := ev.get("Author")
		if strings.HasPrefix(author, h.cfg.CustomerIdentityPrefix) || hasDeliveryMarker(ev.get("Attributes")) {
			log.Debug("dropped the echo of a member's message", "message", ev.get("MessageSid"))
			break
		}
		text := ev.get("Body")
		files := webhookMedia(ev.get("Media"), ev.get("ChatServiceSid"))
		if strings.TrimSpace(text) == "" && ev.get("Media") != "" {
			text = workflows.AttachmentPlaceholder
		}
		// AgentName stays empty: the author is the agent's login identity, which the member
		// must not see; they see the name the agent joined with (reservation.accepted).
		sig := workflows.AgentMessageSignal{
			EventID:         orDefault(ev.get("MessageSid"), ev.token),
			CaseID:          ev.query.Get("case"),
			Text:            text,
			ConversationSID: ev.get("ConversationSid"),
			Files:           files,
		}
		if idx, err := strconv.Atoi(strings.TrimSpace(ev.get("Index"))); err == nil && idx >= 0 {
			sig.Index, sig.HasIndex = idx, true
		}
		signal, arg = workflows.SignalAgentMessage, sig
	case "onConversationStateUpdated":
		if ev.get("StateTo") == "closed" {
			// No agent message can follow: the conversation ends on the Flex side.
			signal = workflows.SignalAgentWrappedUp
			arg = workflows.AgentWrappedUpSignal{
				EventID: "closed:" + ev.get("ConversationSid"), CaseID: ev.query.Get("case"), Reason: "conversation closed",
				ConversationSID: ev.get("ConversationSid"), ConversationClosed: true,
			}
		}
	default:
		// onParticipantAdded and the rest: TaskRouter's reservation.accepted is the reliable
		// "agent joined" signal, so these are only acknowledged.
	}
	h.deliver(w, r, log, userID, signal, arg, http.StatusOK)
}

// taskAttributes is what ingress reads from a task's attributes.
type taskAttributes struct {
	DiscordUserID string `json:"discord_user_id"`
	CaseID        string `json:"case_id"`
}

// taskRouter handles TaskRouter workspace event callbacks. Only tasks that CreateFlexInteraction
// made (their attributes name a Discord member) are of interest; the workspace is shared with
// every other Flex channel.
func (h *twilioHandler) taskRouter(w http.ResponseWriter, r *http.Request) {
	ev, ok := h.verify(w, r)
	if !ok {
		return
	}
	var attrs taskAttributes
	_ = json.Unmarshal([]byte(ev.get("TaskAttributes")), &attrs)
	log := h.s.Log().With("event", ev.get("EventType"), "task", ev.get("TaskSid"), "case", attrs.CaseID, "member", attrs.DiscordUserID)
	eventID := orDefault(ev.get("Sid"), ev.token)
	var signal string
	var arg any
	if attrs.DiscordUserID != "" {
		taskSID := ev.get("TaskSid")
		switch ev.get("EventType") {
		case "reservation.accepted":
			signal = workflows.SignalAgentJoined
			arg = workflows.AgentJoinedSignal{
				EventID: eventID, CaseID: attrs.CaseID, AgentName: agentName(ev.get("WorkerAttributes"), ev.get("WorkerName")),
				WorkerSID: ev.get("WorkerSid"), TaskSID: taskSID,
			}
		case "task.wrapup":
			// The agent ended the chat; their messages are still relayed until the Flex
			// conversation closes (onConversationStateUpdated).
			signal = workflows.SignalAgentWrappedUp
			arg = workflows.AgentWrappedUpSignal{EventID: eventID, CaseID: attrs.CaseID, Reason: "wrapped up", TaskSID: taskSID}
		case "task.completed":
			// Normally after task.wrapup, which the workflow has seen; a task completed without a
			// wrap-up still ends the chat.
			signal = workflows.SignalAgentWrappedUp
			arg = workflows.AgentWrappedUpSignal{EventID: eventID, CaseID: attrs.CaseID, Reason: "completed", TaskSID: taskSID}
		case "task.canceled", "workflow.timeout":
			// Nobody took the chat: not a wrap-up. The member is told and chooses to keep
			// waiting or leave a message.
			reason := "task canceled"
			if ev.get("EventType") == "workflow.timeout" {
				reason = "workflow timeout"
			}
			if why := strings.TrimSpace(ev.get("TaskCanceledReason")); why != "" {
				reason += ": " + why
			}
			signal = workflows.SignalNoAgent
			arg = workflows.NoAgentSignal{EventID: eventID, CaseID: attrs.CaseID, TaskSID: taskSID, Reason: reason}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	h.deliver(w, r, log, attrs.DiscordUserID, signal, arg, http.StatusNoContent)
}

// agentName is the name Flex shows the customer for a worker: the full_name attribute, else the
// worker's friendly name unless that is a login identity (an e-mail address, or the identity the
// worker chats as, from its contact_uri). It is never the Conversations author, which is a login
// identity too. Empty means the workflow names no one.
func agentName(workerAttributes, workerName string) string {
	var attrs struct {
		FullName   string `json:"full_name"`
		ContactURI string `json:"contact_uri"`
	}
	_ = json.Unmarshal([]byte(workerAttributes), &attrs)
	if n := strings.TrimSpace(attrs.FullName); n != "" {
		return n
	}
	n := strings.TrimSpace(workerName)
	identity := strings.TrimPrefix(attrs.ContactURI, "client:")
	if n == "" || strings.Contains(n, "@") || (identity != "" && n == identity) {
		return ""
	}
	return n
}

// temporalErrorRetryAfter is the Retry-After of a 503 for a signal Temporal did not take (not a
// busy refusal, which says its own).
const temporalErrorRetryAfter = 2 * time.Second

// deliver sends the signal (if any) and answers: okStatus on success or when there is nothing to
// retry, 503 when Twilio should send the webhook again, with the Retry-After a busy refusal asks
// for (derived from the workers' backlog when that is what refused it).
func (h *twilioHandler) deliver(w http.ResponseWriter, r *http.Request, log *slog.Logger, userID, signal string, arg any, okStatus int) {
	if signal == "" {
		w.WriteHeader(okStatus)
		return
	}
	if !validUserID(userID) {
		log.Warn("Twilio event names no Discord member; nothing to signal", "signal", signal)
		w.WriteHeader(okStatus)
		return
	}
	err := h.s.SignalConversation(r.Context(), userID, signal, arg)
	switch {
	case err == nil:
		log.Info("signalled the conversation", "signal", signal)
		w.WriteHeader(okStatus)
	case errors.Is(err, ErrBusy):
		WriteBusyError(w, err)
	case errors.As(err, new(*serviceerror.NotFound)):
		// The conversation has ended: nothing would change on a retry.
		log.Info("no running conversation for a Twilio event", "signal", signal)
		w.WriteHeader(okStatus)
	default:
		log.Error("signal the conversation", "signal", signal, "error", err)
		setRetryAfter(w, temporalErrorRetryAfter)
		http.Error(w, "cannot reach the workflow service; send again later", http.StatusServiceUnavailable)
	}
}

// hasDeliveryMarker reports whether message attributes carry flexcord's delivery marker.
func hasDeliveryMarker(attributes string) bool {
	if attributes == "" {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(attributes), &m) != nil {
		return false
	}
	_, ok := m[deliveryMarker]
	return ok
}

// validUserID reports whether s looks like a Discord snowflake.
func validUserID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// webhookMedia reads the Media parameter of onMessageAdded: a JSON list of the message's media
// ({"Sid","ContentType","Filename","Size"}; Event Streams name the SID "MediaSid", and keys
// match in any case). What cannot be read is left out; the conversation also sees the
// message's text.
func webhookMedia(raw, serviceSID string) []workflows.Attachment {
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	var media []struct {
		Sid         string `json:"Sid"`
		MediaSid    string `json:"MediaSid"`
		ContentType string `json:"ContentType"`
		Filename    string `json:"Filename"`
		Size        int64  `json:"Size"`
	}
	if err := json.Unmarshal([]byte(raw), &media); err != nil {
		return nil
	}
	var out []workflows.Attachment
	for _, m := range media {
		m.Sid = orDefault(m.Sid, m.MediaSid)
		if m.Sid == "" {
			continue
		}
		out = append(out, workflows.Attachment{ID: m.Sid, Name: orDefault(m.Filename, m.Sid), ContentType: m.ContentType,
			Size: m.Size, MediaSID: m.Sid, ServiceSID: serviceSID})
	}
	return out
}
