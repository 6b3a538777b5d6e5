package twilioemu

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
)

const interactionsBase = "https://" + HostFlex + "/v1/Interactions"

// Interaction channel statuses.
const (
	channelSetup    = "setup"
	channelActive   = "active"
	channelFailed   = "failed"
	channelClosed   = "closed"
	channelInactive = "inactive"
)

// defaultChannelErrorCode is the error_code of a channel failed by a fault
// without a Code: 45361, Flex's "Failed to add Participant. Downstream
// error".
const defaultChannelErrorCode = 45361

var channelTypes = map[string]bool{
	"voice": true, "sms": true, "email": true, "web": true,
	"whatsapp": true, "chat": true, "messenger": true, "gbm": true,
}

// jsonObjectField decodes a form field that must hold a JSON object (the
// untyped Channel and Routing fields). A malformed value is also recorded
// as a contract violation.
func (s *Server) jsonObjectField(c *call, key string, required bool) (map[string]any, *apiError) {
	if !c.has(key) {
		if required {
			return nil, errInvalid("Missing required parameter %s", key)
		}
		return nil, nil
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(c.form.Get(key)), &obj); err != nil || obj == nil {
		s.addViolation(c.r.Method+" "+c.host+c.r.URL.Path, fmt.Errorf("request: form field %s is not a JSON object: %q", key, c.form.Get(key)))
		return nil, errInvalid("Invalid %s: must be a JSON object", key)
	}
	return obj, nil
}

// objectAt returns obj[key] as an object (nil if absent or not an object).
func objectAt(obj map[string]any, key string) map[string]any {
	m, _ := obj[key].(map[string]any)
	return m
}

func stringAt(obj map[string]any, key string) string {
	v, _ := obj[key].(string)
	return v
}

func (s *Server) createInteraction(c *call) (int, any) {
	channel, e := s.jsonObjectField(c, "Channel", true)
	if e != nil {
		return 0, e
	}
	routing, e := s.jsonObjectField(c, "Routing", false)
	if e != nil {
		return 0, e
	}
	chType := stringAt(channel, "type")
	if !channelTypes[chType] {
		return 0, errInvalid("Invalid Channel.type %q", chType)
	}
	initiatedBy := stringAt(channel, "initiated_by")
	props := objectAt(channel, "properties")
	mediaSID := stringAt(props, "media_channel_sid")
	if chType != "chat" || mediaSID == "" {
		return 0, errInvalid("only chat channels with properties.media_channel_sid are emulated")
	}
	if initiatedBy != "customer" && initiatedBy != "api" {
		return 0, errInvalid("Invalid Channel.initiated_by %q: customer or api expected for an existing conversation", initiatedBy)
	}
	if routing == nil {
		return 0, errInvalid("Missing required parameter Routing")
	}
	rprops := objectAt(routing, "properties")
	if rprops == nil {
		return 0, errInvalid("Invalid Routing: properties is required")
	}
	if ws := stringAt(rprops, "workspace_sid"); ws != s.workspace.sid {
		return 0, &apiError{Status: http.StatusBadRequest, Code: 20001,
			Message: fmt.Sprintf("Invalid Routing.properties.workspace_sid %q", ws)}
	}
	workflow := stringAt(rprops, "workflow_sid")
	if workflow == "" {
		workflow = s.opts.WorkflowSID
	}
	if workflow != s.opts.WorkflowSID {
		return 0, errInvalid("Invalid Routing.properties.workflow_sid %q", workflow)
	}
	taskChannel := stringAt(rprops, "task_channel_unique_name")
	if taskChannel == "" {
		taskChannel = "default"
	}
	attrs := map[string]any{}
	switch a := rprops["attributes"].(type) {
	case nil:
	case map[string]any:
		maps.Copy(attrs, a)
	case string:
		if err := json.Unmarshal([]byte(a), &attrs); err != nil {
			return 0, errInvalid("Invalid Routing.properties.attributes: %v", err)
		}
	default:
		return 0, errInvalid("Invalid Routing.properties.attributes: an object is required")
	}
	priority, _ := rprops["priority"].(float64)
	timeout, _ := rprops["timeout"].(float64)
	if timeout <= 0 {
		timeout = 86400
	}
	contextSID := c.form.Get("InteractionContextSid")

	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.conversations[mediaSID]
	if conv == nil {
		return 0, &apiError{Status: http.StatusBadRequest, Code: 45376,
			Message: fmt.Sprintf("Conversation %s not found or closed", mediaSID)}
	}
	if conv.state == stateClosed {
		return 0, &apiError{Status: http.StatusBadRequest, Code: 45354,
			Message: fmt.Sprintf("Cannot create a channel for closed conversation %s", mediaSID)}
	}
	now := s.nowSec()
	in := &interaction{
		sid:             newSID(prefixInteraction),
		channelSID:      newSID(prefixChannel),
		inviteSID:       newSID(prefixInvite),
		channelType:     chType,
		initiatedBy:     initiatedBy,
		channelProps:    props,
		channelStatus:   channelActive,
		conversationSID: conv.sid,
		contextSID:      contextSID,
		webhookTTID:     c.form.Get("WebhookTtid"),
		created:         now,
	}
	for k, v := range map[string]any{
		"conversationSid":           conv.sid,
		"flexInteractionSid":        in.sid,
		"flexInteractionChannelSid": in.channelSID,
		"flexChannelInviteSid":      in.inviteSID,
	} {
		attrs[k] = v
	}
	for k, v := range map[string]any{"channelType": chType, "initiatedBy": initiatedBy, "direction": "inbound"} {
		if _, ok := attrs[k]; !ok {
			attrs[k] = v
		}
	}
	attrJSON, err := json.Marshal(attrs)
	if err != nil {
		return 0, errInvalid("Invalid Routing.properties.attributes: %v", err)
	}
	if f := c.fault; f != nil && f.ChannelStatus == channelFailed {
		// Creating an interaction is asynchronous: the 200 only says the
		// request was accepted. This channel's set-up failed; no task is
		// routed and the conversation is left as it was.
		in.channelStatus = channelFailed
		in.channelErrorCode = f.Code
		if in.channelErrorCode == 0 {
			in.channelErrorCode = defaultChannelErrorCode
		}
		in.channelErrorMessage = f.Message
		if in.channelErrorMessage == "" {
			in.channelErrorMessage = "Failed to add Participant. Downstream error"
		}
		s.interactions[in.sid] = in
		s.log.Info("interaction channel failed (injected)", "interaction", in.sid, "channel", in.channelSID)
		return http.StatusOK, s.interactionJSON(in)
	}
	if f := c.fault; f != nil && f.ChannelStatus == channelSetup {
		in.setupFetches = 1
	}
	in.participants = append(in.participants, &channelParticipant{
		sid:        newSID(prefixChannelPart),
		typ:        "customer",
		mediaProps: map[string]any{"conversation_sid": conv.sid},
	})
	t := &task{
		sid:               newSID(prefixTask),
		status:            taskPending,
		attributes:        string(attrJSON),
		channelUniqueName: taskChannel,
		workflowSID:       workflow,
		priority:          int(priority),
		timeout:           int(timeout),
		interactionSID:    in.sid,
		channelSID:        in.channelSID,
		conversationSID:   conv.sid,
		created:           now,
		updated:           now,
	}
	in.taskSID = t.sid
	s.interactions[in.sid] = in
	s.tasks[t.sid] = t
	s.taskOrder = append(s.taskOrder, t.sid)
	s.fireTaskRouter(t, "task.created", fmt.Sprintf("Task %s created", t.sid))
	s.publishTask(EventTaskCreated, t)
	return http.StatusOK, s.interactionJSON(in)
}

// taskRoutingProps renders a task the way an interaction's
// routing.properties does (Unix timestamps, queue names, ...).
func (s *Server) taskRoutingProps(t *task) map[string]any {
	p := map[string]any{
		"sid":                      t.sid,
		"account_sid":              s.opts.AccountSID,
		"workspace_sid":            s.workspace.sid,
		"workflow_sid":             t.workflowSID,
		"workflow_name":            workflowName,
		"queue_sid":                s.queueSID,
		"queue_name":               taskQueueName,
		"task_channel_sid":         s.taskChannelSID,
		"task_channel_unique_name": t.channelUniqueName,
		"assignment_status":        t.status,
		"attributes":               t.attributes,
		"addons":                   "{}",
		"priority":                 t.priority,
		"timeout":                  t.timeout,
		"reason":                   t.reason,
		"age":                      int(s.now().Sub(t.created).Seconds()),
		"age_in_queue":             int(s.now().Sub(t.created).Seconds()),
		"assignmentCounter":        0,
		"date_created":             t.created.Unix(),
		"date_updated":             t.updated.Unix(),
		"task_queue_entered_date":  t.created.Unix(),
	}
	if t.worker != nil {
		p["assignmentCounter"] = 1
		p["routing_target"] = t.worker.sid
	}
	return p
}

func (s *Server) interactionJSON(in *interaction) map[string]any {
	u := interactionsBase + "/" + in.sid
	channel := map[string]any{"type": in.channelType, "sid": in.channelSID}
	if in.channelProps != nil {
		channel["properties"] = in.channelProps
	}
	routing := map[string]any{"reservation": nil}
	if t := s.tasks[in.taskSID]; t != nil {
		routing["properties"] = s.taskRoutingProps(t)
	}
	return map[string]any{
		"sid":                     in.sid,
		"channel":                 channel,
		"routing":                 routing,
		"interaction_context_sid": nullable(in.contextSID),
		"webhook_ttid":            nullable(in.webhookTTID),
		"url":                     u,
		"links":                   map[string]any{"channels": u + "/Channels"},
	}
}

// channelJSON renders the interaction channel. fetched counts the request
// as a fetch: a channel still in set-up becomes active after it.
func (s *Server) channelJSON(in *interaction, fetched bool) map[string]any {
	u := interactionsBase + "/" + in.sid + "/Channels/" + in.channelSID
	status := in.channelStatus
	if in.setupFetches > 0 && status == channelActive {
		status = channelSetup
		if fetched {
			in.setupFetches--
		}
	}
	var errCode, errMessage any
	if in.channelErrorCode != 0 {
		errCode, errMessage = in.channelErrorCode, in.channelErrorMessage
	}
	return map[string]any{
		"sid":             in.channelSID,
		"interaction_sid": in.sid,
		"type":            in.channelType,
		"status":          status,
		"error_code":      errCode,
		"error_message":   errMessage,
		"url":             u,
		"links": map[string]any{
			"participants": u + "/Participants",
			"invites":      u + "/Invites",
			"transfers":    u + "/Transfers",
		},
	}
}

func (s *Server) fetchInteraction(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.interactions[c.param("Sid")]
	if in == nil {
		return 0, errNotFound(c.path())
	}
	return http.StatusOK, s.interactionJSON(in)
}

func (s *Server) listInteractionChannels(c *call) (int, any) {
	pg, e := readPage(c, 1000)
	if e != nil {
		return 0, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.interactions[c.param("InteractionSid")]
	if in == nil {
		return 0, errNotFound(c.path())
	}
	lo, hi := pg.bounds(1)
	items := make([]any, 0, 1)
	if lo < hi {
		items = append(items, s.channelJSON(in, true))
	}
	return http.StatusOK, map[string]any{
		"channels": items,
		"meta":     pg.meta(interactionsBase+"/"+in.sid+"/Channels", "channels", 1, nil),
	}
}

// interactionChannel resolves the InteractionSid and Sid path parameters.
func (s *Server) interactionChannel(c *call) (*interaction, *apiError) {
	in := s.interactions[c.param("InteractionSid")]
	if in == nil || in.channelSID != c.param("Sid") {
		return nil, errNotFound(c.path())
	}
	return in, nil
}

func (s *Server) fetchInteractionChannel(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, e := s.interactionChannel(c)
	if e != nil {
		return 0, e
	}
	return http.StatusOK, s.channelJSON(in, true)
}

func (s *Server) updateInteractionChannel(c *call) (int, any) {
	status := c.form.Get("Status")
	if status != channelClosed && status != channelInactive {
		return 0, errInvalid("Invalid Status %q: closed or inactive expected", status)
	}
	routing, e := s.jsonObjectField(c, "Routing", false)
	if e != nil {
		return 0, e
	}
	routingStatus := stringAt(routing, "status")
	if routing != nil && routingStatus != "closed" {
		return 0, errInvalid("Invalid Routing.status %q: closed expected", routingStatus)
	}
	if status == channelInactive && routingStatus == "" {
		return 0, errInvalid("Routing status is required when the channel status is inactive")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	in, e := s.interactionChannel(c)
	if e != nil {
		return 0, e
	}
	if in.channelStatus == status || in.channelStatus == channelClosed {
		return http.StatusOK, s.channelJSON(in, false) // already there
	}
	if in.channelStatus == channelFailed {
		return 0, &apiError{Status: http.StatusBadRequest, Code: 20001,
			Message: fmt.Sprintf("Interaction channel %s failed; its status cannot be changed", in.channelSID)}
	}
	in.setupFetches = 0
	in.channelStatus = status
	if t := s.tasks[in.taskSID]; t != nil {
		const reason = "Interaction channel closed"
		switch {
		case t.status == taskPending:
			s.setTaskStatus(t, taskCanceled, reason)
		case routingStatus == "closed" && (t.status == taskAssigned || t.status == taskWrapping):
			s.setTaskStatus(t, taskCompleted, reason)
		case t.status == taskAssigned:
			s.setTaskStatus(t, taskWrapping, reason)
		}
	}
	if status == channelClosed {
		s.closeConversation(s.conversations[in.conversationSID])
	}
	return http.StatusOK, s.channelJSON(in, false)
}

// Interaction channel participant types and statuses (spec enums).
var participantTypes = map[string]bool{
	"supervisor": true, "customer": true, "external": true, "agent": true, "unknown": true,
}

const (
	participantWrapup = "wrapup"
	participantClosed = "closed"
)

// channelParticipantJSON renders an interaction channel participant.
func (s *Server) channelParticipantJSON(in *interaction, p *channelParticipant) map[string]any {
	var routing any
	if p.routingProps != nil {
		routing = p.routingProps
	}
	return map[string]any{
		"sid":                p.sid,
		"type":               p.typ,
		"interaction_sid":    in.sid,
		"channel_sid":        in.channelSID,
		"routing_properties": routing,
		"url":                interactionsBase + "/" + in.sid + "/Channels/" + in.channelSID + "/Participants/" + p.sid,
	}
}

// participantChannel resolves the InteractionSid and ChannelSid path
// parameters of the participant routes.
func (s *Server) participantChannel(c *call) (*interaction, *apiError) {
	in := s.interactions[c.param("InteractionSid")]
	if in == nil || in.channelSID != c.param("ChannelSid") {
		return nil, errNotFound(c.path())
	}
	return in, nil
}

func (s *Server) listChannelParticipants(c *call) (int, any) {
	pg, e := readPage(c, 1000)
	if e != nil {
		return 0, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, e := s.participantChannel(c)
	if e != nil {
		return 0, e
	}
	lo, hi := pg.bounds(len(in.participants))
	items := make([]any, 0, hi-lo)
	for _, p := range in.participants[lo:hi] {
		items = append(items, s.channelParticipantJSON(in, p))
	}
	base := interactionsBase + "/" + in.sid + "/Channels/" + in.channelSID + "/Participants"
	return http.StatusOK, map[string]any{
		"participants": items,
		"meta":         pg.meta(base, "participants", len(in.participants), nil),
	}
}

// createChannelParticipant adds a participant record to the channel (Type,
// MediaProperties, optional RoutingProperties). The emulator keeps the
// record and lists it; it does not add anyone to the conversation.
func (s *Server) createChannelParticipant(c *call) (int, any) {
	typ := c.form.Get("Type")
	if !participantTypes[typ] {
		return 0, errInvalid("Invalid Type %q: supervisor, customer, external, agent or unknown expected", typ)
	}
	media, e := s.jsonObjectField(c, "MediaProperties", true)
	if e != nil {
		return 0, e
	}
	routing, e := s.jsonObjectField(c, "RoutingProperties", false)
	if e != nil {
		return 0, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, e := s.participantChannel(c)
	if e != nil {
		return 0, e
	}
	if in.channelStatus == channelClosed || in.channelStatus == channelFailed {
		return 0, &apiError{Status: http.StatusBadRequest, Code: 20001,
			Message: fmt.Sprintf("Interaction channel %s is %s", in.channelSID, in.channelStatus)}
	}
	p := &channelParticipant{sid: newSID(prefixChannelPart), typ: typ, mediaProps: media, routingProps: routing}
	in.participants = append(in.participants, p)
	return http.StatusOK, s.channelParticipantJSON(in, p)
}

// updateChannelParticipant sets an agent participant's Status: wrapup moves
// the agent's task to wrapping (task.wrapup, reservation.wrapup), closed
// completes it (task.completed, reservation.completed). Either way the agent
// leaves the conversation (onParticipantRemoved) while the customer, the
// conversation and the channel stay: the interaction is parked, as Flex
// does. Only agents can be updated; the same status again is a no-op.
func (s *Server) updateChannelParticipant(c *call) (int, any) {
	status := c.form.Get("Status")
	if status != participantWrapup && status != participantClosed {
		return 0, errInvalid("Invalid Status %q: closed or wrapup expected", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, e := s.participantChannel(c)
	if e != nil {
		return 0, e
	}
	var p *channelParticipant
	for _, x := range in.participants {
		if x.sid == c.param("Sid") {
			p = x
		}
	}
	if p == nil {
		return 0, errNotFound(c.path())
	}
	if p.typ != "agent" {
		return 0, errInvalid("Participant %s is a %s; only agents can be updated", p.sid, p.typ)
	}
	if p.status == status || p.status == participantClosed {
		return http.StatusOK, s.channelParticipantJSON(in, p)
	}
	p.status = status
	if t := s.tasks[p.taskSID]; t != nil {
		switch {
		case status == participantWrapup && t.status == taskAssigned:
			s.setTaskStatus(t, taskWrapping, "Agent participant wrapped up")
		case status == participantClosed && (t.status == taskAssigned || t.status == taskWrapping):
			s.setTaskStatus(t, taskCompleted, "Agent participant closed")
		}
	}
	if conv := s.conversations[in.conversationSID]; conv != nil {
		if w := s.workers[p.worker]; w != nil {
			if cp := participantByIdentity(conv, w.identity); cp != nil {
				conv.participants = slices.DeleteFunc(conv.participants, func(q *participant) bool { return q == cp })
				v := s.participantParams(cp)
				now := hookTime(s.now())
				v.Set("DateUpdated", now)
				v.Set("DateRemoved", now)
				s.fireConversation(conv, "onParticipantRemoved", "", v)
				s.publishConversation(conv)
			}
		}
	}
	return http.StatusOK, s.channelParticipantJSON(in, p)
}
