package twilioemu

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DeliveryKind says which Twilio feature sent a delivery.
type DeliveryKind string

// Delivery kinds.
const (
	// KindConversations is a conversation-scoped webhook (T13).
	KindConversations DeliveryKind = "conversations"
	// KindTaskRouter is a TaskRouter workspace event callback (T14).
	KindTaskRouter DeliveryKind = "taskrouter"
)

// DeliveryState is the progress of a delivery.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"   // queued or being retried
	DeliveryDelivered DeliveryState = "delivered" // answered 2xx
	DeliveryFailed    DeliveryState = "failed"    // all attempts failed
)

// Delivery is one webhook or event callback and what became of it.
type Delivery struct {
	// Token is the I-Twilio-Idempotency-Token, the same on every attempt.
	Token     string       `json:"token"`
	Kind      DeliveryKind `json:"kind"`
	EventType string       `json:"event_type"`
	// URL is the URL the delivery is sent to and signed over: the
	// configured URL without its fragment.
	URL    string `json:"url"`
	Method string `json:"method"`
	// Overrides is the configured URL's fragment, Twilio's connection
	// overrides ("rc=5&rp=all&rt=..."), if it had one; it is never sent.
	Overrides string `json:"overrides,omitempty"`
	// ConversationSID is the conversation the event belongs to (also for
	// TaskRouter events of an interaction's task).
	ConversationSID string `json:"conversation_sid,omitempty"`
	WebhookSID      string `json:"webhook_sid,omitempty"`
	TaskSID         string `json:"task_sid,omitempty"`
	// Params are the form parameters of the first attempt (Conversations
	// deliveries add RetryCount=attempt-1 on each attempt).
	Params     url.Values    `json:"params"`
	Attempts   int           `json:"attempts"`
	LastStatus int           `json:"last_status,omitempty"` // 0 if no answer
	LastError  string        `json:"last_error,omitempty"`
	State      DeliveryState `json:"state"`
	Created    time.Time     `json:"created"`
	Finished   time.Time     `json:"finished,omitzero"`
}

// Signature computes X-Twilio-Signature the way Twilio does: base64 of the
// HMAC-SHA1, keyed with the auth token, of the full URL followed by every
// POST parameter name and value, sorted by name (and, for repeated names,
// by value). For GET webhooks params is empty: they are in the URL.
func Signature(authToken, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// deliverer sends deliveries, one queue (and at most one goroutine) per
// ordering key, retrying failed attempts with backoff.
type deliverer struct {
	client   *http.Client
	token    string
	policy   RetryPolicy
	log      *slog.Logger
	onUpdate func(Delivery)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	queues  map[string][]*delivery
	running map[string]bool
	all     []*delivery
}

type delivery struct {
	mu         sync.Mutex // guards d
	d          Delivery
	retryCount bool // add RetryCount to the params of each attempt
	ov         connOverrides
}

func (dl *delivery) snapshot() Delivery {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	d := dl.d
	d.Params = cloneValues(dl.d.Params)
	return d
}

func newDeliverer(client *http.Client, token string, policy RetryPolicy, log *slog.Logger, onUpdate func(Delivery)) *deliverer {
	ctx, cancel := context.WithCancel(context.Background())
	return &deliverer{
		client: client, token: token, policy: policy, log: log, onUpdate: onUpdate,
		ctx: ctx, cancel: cancel,
		queues:  make(map[string][]*delivery),
		running: make(map[string]bool),
	}
}

// enqueue queues d behind the other deliveries with the same key. d.URL is
// the configured URL; its fragment, if any, holds connection overrides.
func (q *deliverer) enqueue(key string, d Delivery, retryCount bool) {
	d.State = DeliveryPending
	d.Created = time.Now().UTC()
	var frag string
	d.URL, frag, _ = strings.Cut(d.URL, "#") // fragments never go on the wire
	dl := &delivery{d: d, retryCount: retryCount}
	if frag != "" {
		var problems []string
		dl.ov, problems = parseOverrides(frag)
		dl.d.Overrides = frag
		for _, p := range problems {
			q.log.Warn("webhook connection override ignored or clamped", "url", d.URL, "overrides", frag, "problem", p)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.all = append(q.all, dl)
	q.queues[key] = append(q.queues[key], dl)
	if q.ctx.Err() != nil || q.running[key] {
		return
	}
	q.running[key] = true
	q.wg.Add(1)
	go q.run(key)
}

func (q *deliverer) run(key string) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		pending := q.queues[key]
		if len(pending) == 0 || q.ctx.Err() != nil {
			delete(q.queues, key)
			delete(q.running, key)
			q.mu.Unlock()
			return
		}
		dl := pending[0]
		q.queues[key] = pending[1:]
		q.mu.Unlock()
		q.deliver(dl)
	}
}

// deliver makes up to MaxAttempts attempts, or as many as the URL's
// connection overrides allow, retrying the failures they name.
func (q *deliverer) deliver(dl *delivery) {
	maxAttempts := q.policy.MaxAttempts
	if dl.ov.set {
		maxAttempts = 1 + dl.ov.retryCount
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		status, connected, err := q.attempt(dl, attempt)
		dl.mu.Lock()
		dl.d.Attempts = attempt
		dl.d.LastStatus = status
		dl.d.LastError = ""
		if err != nil {
			dl.d.LastError = err.Error()
		}
		ok := err == nil && status >= 200 && status < 300
		retry := !ok && attempt < maxAttempts && q.ctx.Err() == nil
		if retry && dl.ov.set {
			retry = dl.ov.retries(failureClass(status, connected, err))
			if tt := dl.ov.totalTimeout; tt > 0 && time.Since(start)+q.policy.backoff(attempt) >= tt {
				retry = false
			}
		}
		last := !retry
		switch {
		case ok:
			dl.d.State = DeliveryDelivered
		case last:
			dl.d.State = DeliveryFailed
		}
		if last {
			dl.d.Finished = time.Now().UTC()
		}
		dl.mu.Unlock()
		snap := dl.snapshot()
		q.log.Debug("webhook attempt", "event", snap.EventType, "url", snap.URL, "attempt", attempt,
			"status", status, "err", err, "state", snap.State)
		if !ok && last {
			q.log.Warn("webhook delivery failed", "event", snap.EventType, "url", snap.URL,
				"attempts", attempt, "status", status, "err", err)
		}
		q.onUpdate(snap)
		if last {
			return
		}
		if !sleepCtx(q.ctx, q.policy.backoff(attempt)) {
			return
		}
	}
}

// attempt sends one attempt and returns the HTTP status and whether a
// connection to the receiver was made.
func (q *deliverer) attempt(dl *delivery, n int) (status int, connected bool, err error) {
	dl.mu.Lock()
	d := dl.d
	params := cloneValues(d.Params)
	dl.mu.Unlock()
	if dl.retryCount {
		params.Set("RetryCount", strconv.Itoa(n-1))
	}
	timeout := q.policy.Timeout
	if dl.ov.readTimeout > 0 {
		timeout = dl.ov.connectTimeout + dl.ov.readTimeout
	}
	ctx, cancel := context.WithTimeout(q.ctx, timeout)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected = true },
	})

	target := d.URL // already without the fragment: it is neither sent nor signed
	var req *http.Request
	if d.Method == http.MethodGet {
		u, perr := url.Parse(target)
		if perr != nil {
			return 0, false, fmt.Errorf("parse webhook URL: %w", perr)
		}
		qv := u.Query()
		for k, vs := range params {
			qv[k] = vs
		}
		u.RawQuery = qv.Encode()
		full := u.String()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
		if err == nil {
			req.Header.Set("X-Twilio-Signature", Signature(q.token, full, nil))
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(params.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", Signature(q.token, target, params))
		}
	}
	if err != nil {
		return 0, false, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("I-Twilio-Idempotency-Token", d.Token)
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("X-Home-Region", "us1")
	resp, err := q.client.Do(req)
	if err != nil {
		return 0, connected, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, true, nil
}

// list returns a snapshot of every delivery, oldest first.
func (q *deliverer) list() []Delivery {
	q.mu.Lock()
	all := append([]*delivery(nil), q.all...)
	q.mu.Unlock()
	out := make([]Delivery, len(all))
	for i, dl := range all {
		out[i] = dl.snapshot()
	}
	return out
}

// close abandons queued deliveries and waits for the running ones.
func (q *deliverer) close() {
	q.cancel()
	q.wg.Wait()
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// fireConversation queues eventType to every scoped webhook of conv whose
// filters include it. sdkIdentity, when set, makes the event come from an
// SDK client (Source=SDK, ClientIdentity). The caller holds s.mu, which
// keeps the queue order equal to the order of the events.
func (s *Server) fireConversation(conv *conversation, eventType, sdkIdentity string, params url.Values) {
	for _, w := range conv.webhooks {
		if !w.wants(eventType) {
			continue
		}
		p := cloneValues(params)
		p.Set("AccountSid", s.opts.AccountSID)
		p.Set("ChatServiceSid", s.chatServiceSID)
		p.Set("ConversationSid", conv.sid)
		p.Set("EventType", eventType)
		if sdkIdentity != "" {
			p.Set("Source", "SDK")
			p.Set("ClientIdentity", sdkIdentity)
		} else {
			p.Set("Source", "API")
		}
		s.hooks.enqueue(conv.sid, Delivery{
			Token:           newToken(),
			Kind:            KindConversations,
			EventType:       eventType,
			URL:             w.url,
			Method:          strings.ToUpper(w.method),
			ConversationSID: conv.sid,
			WebhookSID:      w.sid,
			Params:          p,
		}, true)
	}
}

// fireTaskRouter queues a workspace event callback for t if the workspace
// has a callback URL and its EventsFilter lets eventType through. The caller
// holds s.mu.
func (s *Server) fireTaskRouter(t *task, eventType, description string) {
	ws := &s.workspace
	if !ws.wantsEvent(eventType) {
		return
	}
	now := s.now()
	p := url.Values{}
	p.Set("Sid", newSID(prefixEvent))
	p.Set("EventType", eventType)
	p.Set("EventDescription", description)
	p.Set("AccountSid", s.opts.AccountSID)
	p.Set("WorkspaceSid", ws.sid)
	p.Set("WorkspaceName", ws.friendlyName)
	p.Set("Timestamp", strconv.FormatInt(now.Unix(), 10))
	p.Set("TimestampMs", strconv.FormatInt(now.UnixMilli(), 10))
	p.Set("EventDate", apiTime(now))
	p.Set("EventDateMs", strconv.FormatInt(now.UnixMilli(), 10))
	p.Set("TaskSid", t.sid)
	p.Set("TaskAttributes", t.attributes)
	p.Set("TaskAge", strconv.Itoa(int(now.Sub(t.created).Seconds())))
	p.Set("TaskPriority", strconv.Itoa(t.priority))
	p.Set("TaskAssignmentStatus", t.status)
	p.Set("TaskChannelSid", s.taskChannelSID)
	p.Set("TaskChannelUniqueName", t.channelUniqueName)
	p.Set("TaskQueueSid", s.queueSID)
	p.Set("TaskQueueName", taskQueueName)
	p.Set("TaskQueueEnteredDate", strconv.FormatInt(t.created.Unix(), 10))
	p.Set("TaskDateCreated", strconv.FormatInt(t.created.Unix(), 10))
	p.Set("TaskTimeout", strconv.Itoa(t.timeout))
	p.Set("WorkflowSid", t.workflowSID)
	p.Set("WorkflowName", workflowName)
	switch {
	case eventType == "task.canceled":
		p.Set("TaskCanceledReason", t.reason)
	case eventType == "task.completed":
		p.Set("TaskCompletedReason", t.reason)
	}
	if strings.HasPrefix(eventType, "reservation.") {
		p.Set("ResourceType", "Reservation")
		p.Set("ResourceSid", t.reservationSID)
		p.Set("ReservationSid", t.reservationSID)
	} else {
		p.Set("ResourceType", "Task")
		p.Set("ResourceSid", t.sid)
	}
	if w := t.worker; w != nil {
		p.Set("WorkerSid", w.sid)
		p.Set("WorkerName", w.friendlyName)
		p.Set("WorkerAttributes", w.attributes)
		p.Set("WorkerActivitySid", s.activitySID)
		p.Set("WorkerActivityName", "Available")
	}
	key := t.conversationSID
	if key == "" {
		key = t.sid
	}
	s.hooks.enqueue(key, Delivery{
		Token:           newToken(),
		Kind:            KindTaskRouter,
		EventType:       eventType,
		URL:             ws.eventCallbackURL,
		Method:          http.MethodPost,
		ConversationSID: t.conversationSID,
		TaskSID:         t.sid,
		Params:          p,
	}, false)
}

// Deliveries returns every webhook and event callback queued so far, oldest
// first, with its current state.
func (s *Server) Deliveries() []Delivery { return s.hooks.list() }

func (s *Server) deliveryUpdated(d Delivery) {
	s.events.publish(Event{Type: EventDelivery, ConversationSID: d.ConversationSID, TaskSID: d.TaskSID, Delivery: &d})
}
