package twilioemu

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const conversationsBase = "https://" + HostConversations + "/v1/Conversations"

// lookupConversation finds a conversation by SID or unique name. The caller
// holds s.mu.
func (s *Server) lookupConversation(ref string) *conversation {
	if c, ok := s.conversations[ref]; ok {
		return c
	}
	if sid, ok := s.uniqueNames[ref]; ok {
		return s.conversations[sid]
	}
	return nil
}

func (s *Server) conversationJSON(c *conversation) map[string]any {
	u := conversationsBase + "/" + c.sid
	// timers holds the dates the state timers come due, as the spec's
	// examples show them; a closed conversation has none left.
	timers := map[string]any{}
	if c.state != stateClosed {
		inactiveAt, closedAt := c.timerDates()
		if !inactiveAt.IsZero() {
			timers["date_inactive"] = apiTime(inactiveAt)
		}
		if !closedAt.IsZero() {
			timers["date_closed"] = apiTime(closedAt)
		}
	}
	return map[string]any{
		"account_sid":           s.opts.AccountSID,
		"chat_service_sid":      s.chatServiceSID,
		"messaging_service_sid": nullable(c.messagingServiceSID),
		"sid":                   c.sid,
		"friendly_name":         nullable(c.friendlyName),
		"unique_name":           nullable(c.uniqueName),
		"attributes":            c.attributes,
		"state":                 c.state,
		"date_created":          apiTime(c.created),
		"date_updated":          apiTime(c.updated),
		"timers":                timers,
		"url":                   u,
		"links": map[string]any{
			"participants": u + "/Participants",
			"messages":     u + "/Messages",
			"webhooks":     u + "/Webhooks",
		},
		"bindings": nil,
	}
}

func (s *Server) participantJSON(c *conversation, p *participant) map[string]any {
	return map[string]any{
		"account_sid":             s.opts.AccountSID,
		"conversation_sid":        c.sid,
		"sid":                     p.sid,
		"identity":                nullable(p.identity),
		"attributes":              p.attributes,
		"messaging_binding":       nil,
		"role_sid":                nullable(p.roleSID),
		"date_created":            apiTime(p.created),
		"date_updated":            apiTime(p.updated),
		"url":                     conversationsBase + "/" + c.sid + "/Participants/" + p.sid,
		"last_read_message_index": nil,
		"last_read_timestamp":     nil,
	}
}

func (s *Server) webhookJSON(c *conversation, w *scopedWebhook) map[string]any {
	cfg := map[string]any{}
	if w.url != "" {
		cfg["url"] = w.url
		cfg["method"] = w.method
	}
	if w.filters != nil {
		cfg["filters"] = w.filters
	}
	if w.triggers != nil {
		cfg["triggers"] = w.triggers
	}
	if w.flowSID != "" {
		cfg["flow_sid"] = w.flowSID
	}
	if w.replayAfter != nil {
		cfg["replay_after"] = *w.replayAfter
	}
	return map[string]any{
		"sid":              w.sid,
		"account_sid":      s.opts.AccountSID,
		"conversation_sid": c.sid,
		"target":           w.target,
		"url":              conversationsBase + "/" + c.sid + "/Webhooks/" + w.sid,
		"configuration":    cfg,
		"date_created":     apiTime(w.created),
		"date_updated":     apiTime(w.updated),
	}
}

func (s *Server) messageJSON(c *conversation, m *message) map[string]any {
	u := conversationsBase + "/" + c.sid + "/Messages/" + m.sid
	return map[string]any{
		"account_sid":      s.opts.AccountSID,
		"conversation_sid": c.sid,
		"sid":              m.sid,
		"index":            m.index,
		"author":           m.author,
		"body":             nullable(m.body),
		"media":            messageMediaJSON(m.media),
		"attributes":       m.attributes,
		"participant_sid":  nullable(m.participant),
		"date_created":     apiTime(m.created),
		"date_updated":     apiTime(m.updated),
		"url":              u,
		"delivery":         nil,
		"links": map[string]any{
			"delivery_receipts": u + "/Receipts",
			"channel_metadata":  u + "/ChannelMetadata",
		},
		"content_sid": nil,
	}
}

// formTime reads an optional RFC 3339 form field.
func formTime(c *call, key string, def time.Time) (time.Time, *apiError) {
	v := c.form.Get(key)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return def, errInvalid("Invalid %s %q: not an RFC 3339 date", key, v)
	}
	return t.UTC().Truncate(time.Second), nil
}

// formJSON reads an optional form field that must hold JSON; def is used
// when it is absent.
func formJSON(c *call, key, def string) (string, *apiError) {
	if !c.has(key) {
		return def, nil
	}
	v := c.form.Get(key)
	if !validJSON(v) {
		return "", errInvalid("Invalid %s: must be valid JSON", key)
	}
	return v, nil
}

// applyConversationFields applies the fields shared by create and update.
// It reports whether a state timer was set.
func (s *Server) applyConversationFields(c *call, conv *conversation) (timersSet bool, e *apiError) {
	if c.has("FriendlyName") {
		conv.friendlyName = c.form.Get("FriendlyName")
	}
	if c.has("MessagingServiceSid") {
		conv.messagingServiceSID = c.form.Get("MessagingServiceSid")
	}
	attrs, e := formJSON(c, "Attributes", conv.attributes)
	if e != nil {
		return false, e
	}
	conv.attributes = attrs
	for _, t := range []struct {
		key string
		dst *time.Duration
		min time.Duration
	}{
		{"Timers.Inactive", &conv.timersInactive, time.Minute},
		{"Timers.Closed", &conv.timersClosed, 10 * time.Minute},
	} {
		if !c.has(t.key) {
			continue
		}
		d, err := parseISODuration(c.form.Get(t.key))
		if err != nil || d < t.min {
			return false, errInvalid("Invalid %s %q: an ISO 8601 duration of at least %s is required", t.key, c.form.Get(t.key), t.min)
		}
		*t.dst = d
		timersSet = true
	}
	return timersSet, nil
}

func validState(st string) bool {
	return st == "initializing" || st == stateActive || st == stateInactive || st == stateClosed
}

func (s *Server) createConversation(c *call) (int, any) {
	now := s.nowSec()
	conv := &conversation{sid: newSID(prefixConversation), attributes: "{}", state: stateActive}
	var e *apiError
	if conv.created, e = formTime(c, "DateCreated", now); e != nil {
		return 0, e
	}
	if conv.updated, e = formTime(c, "DateUpdated", conv.created); e != nil {
		return 0, e
	}
	conv.activity = conv.updated
	if _, e := s.applyConversationFields(c, conv); e != nil {
		return 0, e
	}
	if st := c.form.Get("State"); st != "" {
		if !validState(st) {
			return 0, errInvalid("Invalid State %q", st)
		}
		conv.state = st
	}
	name := c.form.Get("UniqueName")

	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		if isSID(name, prefixConversation) {
			return 0, &apiError{Status: http.StatusBadRequest, Code: 50390,
				Message: "Unique name must not look like a Conversation SID"}
		}
		if _, dup := s.uniqueNames[name]; dup {
			return 0, &apiError{Status: http.StatusConflict, Code: 50353,
				Message: "Conversation with provided unique name already exists"}
		}
		conv.uniqueName = name
		s.uniqueNames[name] = conv.sid
	}
	s.conversations[conv.sid] = conv
	s.convOrder = append(s.convOrder, conv.sid)
	s.publishConversation(conv)
	return http.StatusCreated, s.conversationJSON(conv)
}

func (s *Server) listConversations(c *call) (int, any) {
	p, e := readPage(c, 100)
	if e != nil {
		return 0, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*conversation
	for _, sid := range s.convOrder {
		if conv := s.conversations[sid]; conv != nil && (c.form.Get("State") == "" || conv.state == c.form.Get("State")) {
			all = append(all, conv)
		}
	}
	lo, hi := p.bounds(len(all))
	items := make([]any, 0, hi-lo)
	for _, conv := range all[lo:hi] {
		items = append(items, s.conversationJSON(conv))
	}
	return http.StatusOK, map[string]any{
		"conversations": items,
		"meta":          p.meta(conversationsBase, "conversations", len(all), nil),
	}
}

func (s *Server) fetchConversation(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.lookupConversation(c.param("Sid"))
	if conv == nil {
		return 0, errNotFound(c.path())
	}
	return http.StatusOK, s.conversationJSON(conv)
}

func (s *Server) updateConversation(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.lookupConversation(c.param("Sid"))
	if conv == nil {
		return 0, errNotFound(c.path())
	}
	if conv.state == stateClosed {
		return 0, errClosed(conv.sid)
	}
	next := *conv
	timersSet, e := s.applyConversationFields(c, &next)
	if e != nil {
		return 0, e
	}
	if st := c.form.Get("State"); st != "" {
		if !validState(st) || st == "initializing" {
			return 0, errInvalid("Invalid State %q", st)
		}
		next.state = st
	}
	if c.has("UniqueName") {
		name := c.form.Get("UniqueName")
		if name != conv.uniqueName {
			if other, dup := s.uniqueNames[name]; dup && other != conv.sid {
				return 0, &apiError{Status: http.StatusConflict, Code: 50353,
					Message: "Conversation with provided unique name already exists"}
			}
			delete(s.uniqueNames, conv.uniqueName)
			if name != "" {
				s.uniqueNames[name] = conv.sid
			}
			next.uniqueName = name
		}
	}
	if next.updated, e = formTime(c, "DateUpdated", s.nowSec()); e != nil {
		return 0, e
	}
	from := conv.state
	if timersSet || (next.state == stateActive && from != stateActive) {
		next.activity = s.now() // the timers start again
	}
	*conv = next
	if conv.state == stateClosed {
		s.endInteractionsOf(conv, "Conversation closed")
	}
	if c.webhookEnabled() {
		if from != conv.state {
			s.fireStateUpdated(conv, from, "", reasonAPI)
		}
		s.fireConversation(conv, "onConversationUpdated", "", s.conversationUpdatedParams(conv))
	}
	s.publishConversation(conv)
	return http.StatusOK, s.conversationJSON(conv)
}

func (s *Server) deleteConversation(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.lookupConversation(c.param("Sid"))
	if conv == nil {
		return 0, errNotFound(c.path())
	}
	if c.webhookEnabled() {
		p := s.conversationUpdatedParams(conv)
		p.Set("DateRemoved", hookTime(s.now()))
		s.fireConversation(conv, "onConversationRemoved", "", p)
	}
	delete(s.conversations, conv.sid)
	delete(s.uniqueNames, conv.uniqueName)
	s.convOrder = slices.DeleteFunc(s.convOrder, func(sid string) bool { return sid == conv.sid })
	return http.StatusNoContent, nil
}

func (s *Server) conversationUpdatedParams(conv *conversation) url.Values {
	p := url.Values{}
	p.Set("DateCreated", hookTime(conv.created))
	p.Set("DateUpdated", hookTime(conv.updated))
	p.Set("FriendlyName", conv.friendlyName)
	p.Set("UniqueName", conv.uniqueName)
	p.Set("Attributes", conv.attributes)
	p.Set("MessagingServiceSid", conv.messagingServiceSID)
	p.Set("State", conv.state)
	return p
}

// fireStateUpdated queues onConversationStateUpdated. The caller holds s.mu.
func (s *Server) fireStateUpdated(conv *conversation, from, sdkIdentity, reason string) {
	p := url.Values{}
	p.Set("StateFrom", from)
	p.Set("StateTo", conv.state)
	p.Set("StateUpdated", hookTime(conv.updated))
	p.Set("Reason", reason)
	p.Set("MessagingServiceSid", conv.messagingServiceSID)
	s.fireConversation(conv, "onConversationStateUpdated", sdkIdentity, p)
}

// closeConversation closes conv (if open) on behalf of Flex and fires
// onConversationStateUpdated. The caller holds s.mu.
func (s *Server) closeConversation(conv *conversation) {
	s.closeConversationAt(conv, reasonAPI, s.now())
}

// closeConversationAt closes conv (if open) at the given time and fires
// onConversationStateUpdated with reason. The caller holds s.mu.
func (s *Server) closeConversationAt(conv *conversation, reason string, at time.Time) {
	if conv == nil || conv.state == stateClosed {
		return
	}
	from := conv.state
	conv.state = stateClosed
	conv.updated = at.UTC().Truncate(time.Second)
	s.fireStateUpdated(conv, from, "", reason)
	s.publishConversation(conv)
}

// conversationFor resolves the ConversationSid path parameter.
func (s *Server) conversationFor(c *call) (*conversation, *apiError) {
	conv := s.lookupConversation(c.param("ConversationSid"))
	if conv == nil {
		return nil, errNotFound(c.path())
	}
	return conv, nil
}

func findParticipant(conv *conversation, ref string) *participant {
	for _, p := range conv.participants {
		if p.sid == ref || (p.identity != "" && p.identity == ref) {
			return p
		}
	}
	return nil
}

// participantByIdentity returns the participant with this identity.
func participantByIdentity(conv *conversation, identity string) *participant {
	if identity == "" {
		return nil
	}
	for _, p := range conv.participants {
		if p.identity == identity {
			return p
		}
	}
	return nil
}

func (s *Server) createParticipant(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	if conv.state == stateClosed {
		return 0, errClosed(conv.sid)
	}
	identity := c.form.Get("Identity")
	if identity == "" && c.form.Get("MessagingBinding.Address") == "" {
		return 0, errInvalid("Identity or MessagingBinding.Address is required")
	}
	if identity == "" {
		return 0, errInvalid("only chat participants (Identity) are emulated")
	}
	if participantByIdentity(conv, identity) != nil {
		return 0, &apiError{Status: http.StatusConflict, Code: 50433, Message: "Participant already exists"}
	}
	attrs, e := formJSON(c, "Attributes", "{}")
	if e != nil {
		return 0, e
	}
	now := s.nowSec()
	p := &participant{sid: newSID(prefixParticipant), identity: identity, attributes: attrs, roleSID: c.form.Get("RoleSid")}
	if p.created, e = formTime(c, "DateCreated", now); e != nil {
		return 0, e
	}
	if p.updated, e = formTime(c, "DateUpdated", p.created); e != nil {
		return 0, e
	}
	conv.participants = append(conv.participants, p)
	if c.webhookEnabled() {
		s.fireParticipantAdded(conv, p, "")
	}
	s.publishConversation(conv)
	return http.StatusCreated, s.participantJSON(conv, p)
}

func (s *Server) participantParams(p *participant) url.Values {
	v := url.Values{}
	v.Set("ParticipantSid", p.sid)
	v.Set("Identity", p.identity)
	v.Set("Attributes", p.attributes)
	v.Set("RoleSid", p.roleSID)
	v.Set("DateCreated", hookTime(p.created))
	return v
}

// fireParticipantAdded queues onParticipantAdded. The caller holds s.mu.
func (s *Server) fireParticipantAdded(conv *conversation, p *participant, sdkIdentity string) {
	s.fireConversation(conv, "onParticipantAdded", sdkIdentity, s.participantParams(p))
}

func (s *Server) listParticipants(c *call) (int, any) {
	pg, e := readPage(c, 100)
	if e != nil {
		return 0, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	lo, hi := pg.bounds(len(conv.participants))
	items := make([]any, 0, hi-lo)
	for _, p := range conv.participants[lo:hi] {
		items = append(items, s.participantJSON(conv, p))
	}
	return http.StatusOK, map[string]any{
		"participants": items,
		"meta":         pg.meta(conversationsBase+"/"+conv.sid+"/Participants", "participants", len(conv.participants), nil),
	}
}

func (s *Server) fetchParticipant(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	p := findParticipant(conv, c.param("Sid"))
	if p == nil {
		return 0, errNotFound(c.path())
	}
	return http.StatusOK, s.participantJSON(conv, p)
}

func (s *Server) deleteParticipant(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	p := findParticipant(conv, c.param("Sid"))
	if p == nil {
		return 0, errNotFound(c.path())
	}
	conv.participants = slices.DeleteFunc(conv.participants, func(q *participant) bool { return q == p })
	if c.webhookEnabled() {
		v := s.participantParams(p)
		now := hookTime(s.now())
		v.Set("DateUpdated", now)
		v.Set("DateRemoved", now)
		s.fireConversation(conv, "onParticipantRemoved", "", v)
	}
	s.publishConversation(conv)
	return http.StatusNoContent, nil
}

func (s *Server) createWebhook(c *call) (int, any) {
	target := c.form.Get("Target")
	switch target {
	case "webhook", "trigger", "studio":
	default:
		return 0, errInvalid("Invalid Target %q: must be webhook, trigger or studio", target)
	}
	w := &scopedWebhook{
		sid:      newSID(prefixWebhook),
		target:   target,
		url:      c.form.Get("Configuration.Url"),
		method:   strings.ToLower(c.form.Get("Configuration.Method")),
		filters:  c.form["Configuration.Filters"],
		triggers: c.form["Configuration.Triggers"],
		flowSID:  c.form.Get("Configuration.FlowSid"),
	}
	if w.method == "" {
		w.method = "post"
	}
	if w.method != "post" && w.method != "get" {
		return 0, errInvalid("Invalid Configuration.Method %q", c.form.Get("Configuration.Method"))
	}
	if target != "studio" {
		u, err := url.Parse(w.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return 0, errInvalid("Invalid Configuration.Url %q: an absolute http(s) URL is required", w.url)
		}
	}
	if target == "studio" && !isSID(w.flowSID, "FW") {
		return 0, errInvalid("Configuration.FlowSid is required for target studio")
	}
	if v := c.form.Get("Configuration.ReplayAfter"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, errInvalid("Invalid Configuration.ReplayAfter %q", v)
		}
		w.replayAfter = &n
	}
	w.created = s.nowSec()
	w.updated = w.created

	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	if len(conv.webhooks) >= 5 {
		return 0, errInvalid("A conversation can have at most 5 scoped webhooks")
	}
	conv.webhooks = append(conv.webhooks, w)
	return http.StatusCreated, s.webhookJSON(conv, w)
}

func (s *Server) listWebhooks(c *call) (int, any) {
	pg, e := readPage(c, 5)
	if e != nil {
		return 0, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	lo, hi := pg.bounds(len(conv.webhooks))
	items := make([]any, 0, hi-lo)
	for _, w := range conv.webhooks[lo:hi] {
		items = append(items, s.webhookJSON(conv, w))
	}
	return http.StatusOK, map[string]any{
		"webhooks": items,
		"meta":     pg.meta(conversationsBase+"/"+conv.sid+"/Webhooks", "webhooks", len(conv.webhooks), nil),
	}
}

func findWebhook(conv *conversation, sid string) *scopedWebhook {
	for _, w := range conv.webhooks {
		if w.sid == sid {
			return w
		}
	}
	return nil
}

func (s *Server) fetchWebhook(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	w := findWebhook(conv, c.param("Sid"))
	if w == nil {
		return 0, errNotFound(c.path())
	}
	return http.StatusOK, s.webhookJSON(conv, w)
}

func (s *Server) deleteWebhook(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	w := findWebhook(conv, c.param("Sid"))
	if w == nil {
		return 0, errNotFound(c.path())
	}
	conv.webhooks = slices.DeleteFunc(conv.webhooks, func(x *scopedWebhook) bool { return x == w })
	return http.StatusNoContent, nil
}

// addMessage stores a message carrying media (checked with
// attachableMedia) and fires onMessageAdded when fire is set.
// A message restarts the conversation's state timers and reactivates it
// when it is inactive (onConversationStateUpdated, Reason=EVENT, fired like
// the message itself). The caller holds s.mu and has checked that conv is
// open.
func (s *Server) addMessage(conv *conversation, author, body, attrs string, mediaList []*media, created time.Time, fire bool, sdkIdentity string) *message {
	conv.activity = s.now()
	if conv.state == stateInactive {
		conv.state = stateActive
		conv.updated = s.nowSec()
		if fire {
			s.fireStateUpdated(conv, stateInactive, sdkIdentity, reasonEvent)
		}
		s.publishConversation(conv)
	}
	m := &message{
		sid:        newSID(prefixMessage),
		index:      conv.nextIndex,
		author:     author,
		body:       body,
		attributes: attrs,
		media:      mediaList,
		created:    created,
		updated:    created,
	}
	for _, md := range mediaList {
		md.messageSID, md.conversationSID = m.sid, conv.sid
	}
	if p := participantByIdentity(conv, author); p != nil {
		m.participant = p.sid
	}
	conv.nextIndex++
	conv.messages = append(conv.messages, m)
	if fire {
		v := url.Values{}
		v.Set("MessageSid", m.sid)
		v.Set("MessagingServiceSid", conv.messagingServiceSID)
		v.Set("Index", strconv.Itoa(m.index))
		v.Set("DateCreated", hookTime(m.created))
		v.Set("Body", m.body)
		v.Set("Author", m.author)
		v.Set("ParticipantSid", m.participant)
		v.Set("Attributes", m.attributes)
		if len(m.media) > 0 {
			v.Set("Media", webhookMediaParam(m.media))
		}
		s.fireConversation(conv, "onMessageAdded", sdkIdentity, v)
	}
	s.publishMessage(conv, m)
	return m
}

func (s *Server) createMessage(c *call) (int, any) {
	author := c.form.Get("Author")
	if author == "" {
		author = "system"
	}
	body := c.form.Get("Body")
	if body == "" && c.form.Get("MediaSid") == "" && c.form.Get("ContentSid") == "" {
		return 0, errInvalid("Body, MediaSid or ContentSid is required")
	}
	attrs, e := formJSON(c, "Attributes", "{}")
	if e != nil {
		return 0, e
	}
	created, e := formTime(c, "DateCreated", s.nowSec())
	if e != nil {
		return 0, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	if conv.state == stateClosed {
		return 0, errClosed(conv.sid)
	}
	var mediaList []*media
	if sid := c.form.Get("MediaSid"); sid != "" {
		md, e := s.attachableMedia(sid)
		if e != nil {
			return 0, e
		}
		mediaList = []*media{md}
	}
	m := s.addMessage(conv, author, body, attrs, mediaList, created, c.webhookEnabled(), "")
	return http.StatusCreated, s.messageJSON(conv, m)
}

func (s *Server) listMessages(c *call) (int, any) {
	pg, e := readPage(c, 100)
	if e != nil {
		return 0, e
	}
	order := c.form.Get("Order")
	if order == "" {
		order = "asc"
	}
	if order != "asc" && order != "desc" {
		return 0, errInvalid("Invalid Order %q", order)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	all := slices.Clone(conv.messages)
	if order == "desc" {
		slices.Reverse(all)
	}
	lo, hi := pg.bounds(len(all))
	items := make([]any, 0, hi-lo)
	for _, m := range all[lo:hi] {
		items = append(items, s.messageJSON(conv, m))
	}
	var extra url.Values
	if c.form.Get("Order") != "" {
		extra = url.Values{"Order": {order}}
	}
	return http.StatusOK, map[string]any{
		"messages": items,
		"meta":     pg.meta(conversationsBase+"/"+conv.sid+"/Messages", "messages", len(all), extra),
	}
}

func findMessage(conv *conversation, ref string) *message {
	for _, m := range conv.messages {
		if m.sid == ref || strconv.Itoa(m.index) == ref {
			return m
		}
	}
	return nil
}

func (s *Server) fetchMessage(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	m := findMessage(conv, c.param("Sid"))
	if m == nil {
		return 0, errNotFound(c.path())
	}
	return http.StatusOK, s.messageJSON(conv, m)
}

func (s *Server) deleteMessage(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv, e := s.conversationFor(c)
	if e != nil {
		return 0, e
	}
	m := findMessage(conv, c.param("Sid"))
	if m == nil {
		return 0, errNotFound(c.path())
	}
	conv.messages = slices.DeleteFunc(conv.messages, func(x *message) bool { return x == m })
	return http.StatusNoContent, nil
}

// parseISODuration parses the ISO 8601 durations Twilio's timers accept:
// PnDTnHnMnS (weeks, days, hours, minutes and whole seconds).
func parseISODuration(s string) (time.Duration, error) {
	rest, ok := strings.CutPrefix(strings.ToUpper(s), "P")
	if !ok || rest == "" {
		return 0, fmt.Errorf("duration %q does not start with P", s)
	}
	var d time.Duration
	inTime := false
	units, timeUnits := 0, 0
	num := ""
	for _, r := range rest {
		switch {
		case r >= '0' && r <= '9':
			num += string(r)
		case r == 'T':
			if inTime || num != "" {
				return 0, fmt.Errorf("malformed duration %q", s)
			}
			inTime = true
		default:
			if num == "" {
				return 0, fmt.Errorf("malformed duration %q", s)
			}
			n, err := strconv.Atoi(num)
			if err != nil {
				return 0, fmt.Errorf("malformed duration %q: %w", s, err)
			}
			num = ""
			unit := map[bool]map[rune]time.Duration{
				false: {'W': 7 * 24 * time.Hour, 'D': 24 * time.Hour},
				true:  {'H': time.Hour, 'M': time.Minute, 'S': time.Second},
			}[inTime][r]
			if unit == 0 {
				return 0, fmt.Errorf("unsupported unit %q in duration %q", r, s)
			}
			d += time.Duration(n) * unit
			units++
			if inTime {
				timeUnits++
			}
		}
	}
	if num != "" || units == 0 || (inTime && timeUnits == 0) {
		return 0, fmt.Errorf("malformed duration %q", s)
	}
	return d, nil
}
