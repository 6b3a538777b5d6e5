package twilioemu

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	workspacesBase = "https://" + HostTaskRouter + "/v1/Workspaces"
	taskQueueName  = "Everyone"
	workflowName   = "Assign to Anyone"
)

func (s *Server) workspaceJSON() map[string]any {
	ws := &s.workspace
	u := workspacesBase + "/" + ws.sid
	return map[string]any{
		"account_sid":            s.opts.AccountSID,
		"date_created":           apiTime(ws.created),
		"date_updated":           apiTime(ws.updated),
		"default_activity_name":  "Offline",
		"default_activity_sid":   s.activitySID,
		"event_callback_url":     nullable(ws.eventCallbackURL),
		"events_filter":          nullable(ws.eventsFilter),
		"friendly_name":          ws.friendlyName,
		"multi_task_enabled":     ws.multiTask,
		"sid":                    ws.sid,
		"timeout_activity_name":  "Offline",
		"timeout_activity_sid":   s.activitySID,
		"prioritize_queue_order": ws.queueOrder,
		"url":                    u,
		"links": map[string]any{
			"tasks":       u + "/Tasks",
			"workers":     u + "/Workers",
			"workflows":   u + "/Workflows",
			"task_queues": u + "/TaskQueues",
			"activities":  u + "/Activities",
			"events":      u + "/Events",
		},
	}
}

func (s *Server) fetchWorkspace(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.param("Sid") != s.workspace.sid {
		return 0, errNotFound(c.path())
	}
	return http.StatusOK, s.workspaceJSON()
}

func (s *Server) updateWorkspace(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := &s.workspace
	if c.param("Sid") != ws.sid {
		return 0, errNotFound(c.path())
	}
	next := *ws
	if c.has("EventCallbackUrl") {
		v := c.form.Get("EventCallbackUrl")
		if v != "" {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return 0, errInvalid("Invalid EventCallbackUrl %q", v)
			}
		}
		next.eventCallbackURL = v
	}
	if c.has("EventsFilter") {
		next.eventsFilter = strings.Join(splitList(c.form.Get("EventsFilter")), ",")
	}
	if c.has("FriendlyName") {
		if c.form.Get("FriendlyName") == "" {
			return 0, errInvalid("FriendlyName must not be empty")
		}
		next.friendlyName = c.form.Get("FriendlyName")
	}
	if c.has("MultiTaskEnabled") {
		b, err := strconv.ParseBool(c.form.Get("MultiTaskEnabled"))
		if err != nil {
			return 0, errInvalid("Invalid MultiTaskEnabled %q", c.form.Get("MultiTaskEnabled"))
		}
		next.multiTask = b
	}
	if c.has("PrioritizeQueueOrder") {
		v := c.form.Get("PrioritizeQueueOrder")
		if v != "FIFO" && v != "LIFO" {
			return 0, errInvalid("Invalid PrioritizeQueueOrder %q", v)
		}
		next.queueOrder = v
	}
	next.updated = time.Now().UTC().Truncate(time.Second)
	*ws = next
	s.log.Info("workspace updated", "event_callback_url", ws.eventCallbackURL, "events_filter", ws.eventsFilter)
	return http.StatusOK, s.workspaceJSON()
}

func (s *Server) taskJSON(t *task) map[string]any {
	u := workspacesBase + "/" + s.workspace.sid + "/Tasks/" + t.sid
	return map[string]any{
		"account_sid":              s.opts.AccountSID,
		"age":                      int(time.Since(t.created).Seconds()),
		"assignment_status":        t.status,
		"attributes":               t.attributes,
		"addons":                   "{}",
		"date_created":             apiTime(t.created),
		"date_updated":             apiTime(t.updated),
		"task_queue_entered_date":  apiTime(t.created),
		"priority":                 t.priority,
		"reason":                   nullable(t.reason),
		"sid":                      t.sid,
		"task_queue_sid":           s.queueSID,
		"task_queue_friendly_name": taskQueueName,
		"task_channel_sid":         s.taskChannelSID,
		"task_channel_unique_name": t.channelUniqueName,
		"timeout":                  t.timeout,
		"workflow_sid":             t.workflowSID,
		"workflow_friendly_name":   workflowName,
		"workspace_sid":            s.workspace.sid,
		"url":                      u,
		"links": map[string]any{
			"task_queue":   workspacesBase + "/" + s.workspace.sid + "/TaskQueues/" + s.queueSID,
			"workflow":     workspacesBase + "/" + s.workspace.sid + "/Workflows/" + t.workflowSID,
			"workspace":    workspacesBase + "/" + s.workspace.sid,
			"reservations": u + "/Reservations",
		},
		"virtual_start_time": apiTime(t.created),
		"ignore_capacity":    nil,
		"routing_target":     nil,
	}
}

// taskFor resolves the WorkspaceSid and Sid path parameters.
func (s *Server) taskFor(c *call) (*task, *apiError) {
	if c.param("WorkspaceSid") != s.workspace.sid {
		return nil, errNotFound(c.path())
	}
	t := s.tasks[c.param("Sid")]
	if t == nil {
		return nil, errNotFound(c.path())
	}
	return t, nil
}

func (s *Server) fetchTask(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.taskFor(c)
	if e != nil {
		return 0, e
	}
	return http.StatusOK, s.taskJSON(t)
}

func (s *Server) updateTask(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.taskFor(c)
	if e != nil {
		return 0, e
	}
	if c.has("Attributes") {
		attrs := c.form.Get("Attributes")
		if !validJSON(attrs) {
			return 0, errInvalid("Invalid Attributes: must be valid JSON")
		}
		t.attributes = attrs
		t.updated = time.Now().UTC().Truncate(time.Second)
	}
	if c.has("Priority") {
		n, err := strconv.Atoi(c.form.Get("Priority"))
		if err != nil {
			return 0, errInvalid("Invalid Priority %q", c.form.Get("Priority"))
		}
		t.priority = n
	}
	if st := c.form.Get("AssignmentStatus"); st != "" && st != t.status {
		ok := (t.status == taskPending && st == taskCanceled) ||
			(t.status == taskAssigned && (st == taskWrapping || st == taskCompleted)) ||
			(t.status == taskWrapping && st == taskCompleted)
		if !ok {
			return 0, &apiError{Status: http.StatusBadRequest, Code: 20001,
				Message: fmt.Sprintf("Cannot change the assignment status of task %s from %s to %s", t.sid, t.status, st)}
		}
		s.setTaskStatus(t, st, c.form.Get("Reason"))
		if st == taskWrapping || st == taskCompleted {
			s.closeChannel(t)
		}
	}
	return http.StatusOK, s.taskJSON(t)
}

// setTaskStatus moves t to status and fires the TaskRouter callbacks of
// that transition. The caller holds s.mu and has checked the transition.
func (s *Server) setTaskStatus(t *task, status, reason string) {
	t.status = status
	t.reason = reason
	t.updated = time.Now().UTC().Truncate(time.Second)
	switch status {
	case taskCanceled:
		s.fireTaskRouter(t, "task.canceled", fmt.Sprintf("Task %s canceled: %s", t.sid, reason))
	case taskWrapping:
		s.fireTaskRouter(t, "task.wrapup", fmt.Sprintf("Task %s wrapping up", t.sid))
		s.fireTaskRouter(t, "reservation.wrapup", fmt.Sprintf("Reservation %s wrapping up", t.reservationSID))
	case taskCompleted:
		s.fireTaskRouter(t, "task.completed", fmt.Sprintf("Task %s completed", t.sid))
		s.fireTaskRouter(t, "reservation.completed", fmt.Sprintf("Reservation %s completed", t.reservationSID))
	}
	s.publishTask(EventTaskUpdated, t)
}

// closeChannel marks the task's interaction channel closed. The caller holds s.mu.
func (s *Server) closeChannel(t *task) {
	if in := s.interactions[t.interactionSID]; in != nil {
		in.channelStatus = channelClosed
	}
}

// Errors returned by the control methods.
var (
	// ErrNotFound: no task or conversation has the given SID.
	ErrNotFound = errors.New("twilioemu: not found")
	// ErrTaskState: the task is not in a state that allows the action.
	ErrTaskState = errors.New("twilioemu: task is not in the right state")
	// ErrConversationClosed: the task's conversation is closed.
	ErrConversationClosed = errors.New("twilioemu: conversation is closed")
)

func (s *Server) lookupTask(sid string) (*task, error) {
	t := s.tasks[sid]
	if t == nil {
		return nil, fmt.Errorf("task %s: %w", sid, ErrNotFound)
	}
	return t, nil
}

// Tasks returns the tasks whose status is one of statuses (all tasks when
// none is given), oldest first, each with its conversation transcript.
func (s *Server) Tasks(statuses ...TaskStatus) []TaskView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []TaskView{}
	for _, sid := range s.taskOrder {
		t := s.tasks[sid]
		st := taskStatusOf(t.status)
		if len(statuses) > 0 && !containsStatus(statuses, st) {
			continue
		}
		out = append(out, s.taskView(t))
	}
	return out
}

func containsStatus(list []TaskStatus, st TaskStatus) bool {
	for _, x := range list {
		if x == st {
			return true
		}
	}
	return false
}

// Task returns one task.
func (s *Server) Task(sid string) (TaskView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(sid)
	if err != nil {
		return TaskView{}, err
	}
	return s.taskView(t), nil
}

// agentIdentity derives an agent's chat identity from its name, as Flex
// derives it from the worker's contact URI: characters other than letters,
// digits, '-', '.' and '_' are replaced by '_'.
func agentIdentity(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			return r
		}
		return '_'
	}, name)
}

// AcceptTask lets the agent agentName accept a waiting task: it creates the
// worker if needed, fires reservation.created and reservation.accepted
// (WorkerName = agentName), adds the agent to the conversation as a
// participant (onParticipantAdded) and returns the task, now assigned.
func (s *Server) AcceptTask(taskSID, agentName string) (TaskView, error) {
	agentName = strings.TrimSpace(agentName)
	if agentName == "" {
		return TaskView{}, errors.New("twilioemu: accept task: agent name is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(taskSID)
	if err != nil {
		return TaskView{}, fmt.Errorf("accept: %w", err)
	}
	if t.status != taskPending {
		return TaskView{}, fmt.Errorf("accept task %s (%s): %w", t.sid, t.status, ErrTaskState)
	}
	conv := s.conversations[t.conversationSID]
	if conv == nil || conv.state == stateClosed {
		return TaskView{}, fmt.Errorf("accept task %s: %w", t.sid, ErrConversationClosed)
	}
	w := s.workers[agentName]
	if w == nil {
		identity := agentIdentity(agentName)
		w = &worker{
			sid:        newSID(prefixWorker),
			name:       agentName,
			identity:   identity,
			attributes: fmt.Sprintf(`{"full_name":%q,"contact_uri":%q,"routing":{"skills":[],"levels":{}}}`, agentName, "client:"+identity),
		}
		s.workers[agentName] = w
	}
	t.worker = w
	t.reservationSID = newSID(prefixReservation)
	t.status = taskAssigned
	t.updated = time.Now().UTC().Truncate(time.Second)
	s.fireTaskRouter(t, "reservation.created", fmt.Sprintf("Reservation %s created for Worker %s", t.reservationSID, w.sid))
	s.fireTaskRouter(t, "reservation.accepted", fmt.Sprintf("Reservation %s accepted by Worker %s", t.reservationSID, w.sid))

	p := participantByIdentity(conv, w.identity)
	if p == nil {
		now := time.Now().UTC().Truncate(time.Second)
		p = &participant{
			sid:        newSID(prefixParticipant),
			identity:   w.identity,
			attributes: fmt.Sprintf(`{"member_type":"agent","friendlyName":%q}`, w.name),
			created:    now,
			updated:    now,
		}
		conv.participants = append(conv.participants, p)
		s.fireParticipantAdded(conv, p, "")
		s.publishConversation(conv)
	}
	s.publishTask(EventTaskUpdated, t)
	return s.taskView(t), nil
}

// SendAgentMessage posts body into the task's conversation as the agent
// that accepted the task (Author = its identity) and fires onMessageAdded
// with Source=SDK and ClientIdentity to every scoped webhook that wants it.
func (s *Server) SendAgentMessage(taskSID, body string) (MessageView, error) {
	if body == "" {
		return MessageView{}, errors.New("twilioemu: agent message: body is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(taskSID)
	if err != nil {
		return MessageView{}, fmt.Errorf("agent message: %w", err)
	}
	if t.worker == nil || (t.status != taskAssigned && t.status != taskWrapping) {
		return MessageView{}, fmt.Errorf("agent message on task %s (%s): %w", t.sid, t.status, ErrTaskState)
	}
	conv := s.conversations[t.conversationSID]
	if conv == nil || conv.state == stateClosed {
		return MessageView{}, fmt.Errorf("agent message on task %s: %w", t.sid, ErrConversationClosed)
	}
	m := s.addMessage(conv, t.worker.identity, body, "{}", time.Now().UTC(), true, t.worker.identity)
	return s.messageView(conv, m), nil
}

// WrapUpTask ends the chat as the agent would: the task goes to wrapping
// (task.wrapup, reservation.wrapup), the interaction channel and the
// conversation are closed (onConversationStateUpdated StateFrom=active,
// StateTo=closed, Reason=API).
func (s *Server) WrapUpTask(taskSID string) (TaskView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(taskSID)
	if err != nil {
		return TaskView{}, fmt.Errorf("wrap up: %w", err)
	}
	if t.status != taskAssigned {
		return TaskView{}, fmt.Errorf("wrap up task %s (%s): %w", t.sid, t.status, ErrTaskState)
	}
	s.setTaskStatus(t, taskWrapping, "Agent ended the conversation")
	s.closeChannel(t)
	s.closeConversation(s.conversations[t.conversationSID])
	return s.taskView(t), nil
}

// CompleteTask completes an assigned or wrapping task (task.completed,
// reservation.completed). Completing an assigned task closes its channel
// and conversation as a wrap-up would, without the wrap-up callbacks.
func (s *Server) CompleteTask(taskSID string) (TaskView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(taskSID)
	if err != nil {
		return TaskView{}, fmt.Errorf("complete: %w", err)
	}
	if t.status != taskAssigned && t.status != taskWrapping {
		return TaskView{}, fmt.Errorf("complete task %s (%s): %w", t.sid, t.status, ErrTaskState)
	}
	wasAssigned := t.status == taskAssigned
	s.setTaskStatus(t, taskCompleted, "Task completed by agent")
	if wasAssigned {
		s.closeChannel(t)
		s.closeConversation(s.conversations[t.conversationSID])
	}
	return s.taskView(t), nil
}

// Conversation returns a conversation by SID or unique name.
func (s *Server) Conversation(ref string) (ConversationView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.lookupConversation(ref)
	if conv == nil {
		return ConversationView{}, fmt.Errorf("conversation %s: %w", ref, ErrNotFound)
	}
	return s.conversationView(conv), nil
}

// ConversationMessages returns the messages of a conversation (by SID or
// unique name), oldest first.
func (s *Server) ConversationMessages(ref string) ([]MessageView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.lookupConversation(ref)
	if conv == nil {
		return nil, fmt.Errorf("conversation %s: %w", ref, ErrNotFound)
	}
	out := make([]MessageView, 0, len(conv.messages))
	for _, m := range conv.messages {
		out = append(out, s.messageView(conv, m))
	}
	return out, nil
}

// WorkspaceView is the TaskRouter workspace's callback configuration.
type WorkspaceView struct {
	SID              string `json:"sid"`
	WorkflowSID      string `json:"workflow_sid"`
	FriendlyName     string `json:"friendly_name"`
	EventCallbackURL string `json:"event_callback_url"`
	EventsFilter     string `json:"events_filter"`
}

// Workspace returns the workspace's current configuration.
func (s *Server) Workspace() WorkspaceView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return WorkspaceView{
		SID:              s.workspace.sid,
		WorkflowSID:      s.opts.WorkflowSID,
		FriendlyName:     s.workspace.friendlyName,
		EventCallbackURL: s.workspace.eventCallbackURL,
		EventsFilter:     s.workspace.eventsFilter,
	}
}
