package twilioemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
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
	next.updated = s.nowSec()
	*ws = next
	s.log.Info("workspace updated", "event_callback_url", ws.eventCallbackURL, "events_filter", ws.eventsFilter)
	return http.StatusOK, s.workspaceJSON()
}

func (s *Server) taskJSON(t *task) map[string]any {
	u := workspacesBase + "/" + s.workspace.sid + "/Tasks/" + t.sid
	return map[string]any{
		"account_sid":              s.opts.AccountSID,
		"age":                      int(s.now().Sub(t.created).Seconds()),
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
		t.updated = s.nowSec()
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
	t.updated = s.nowSec()
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

// workerLogin derives a simulated agent's worker friendly name from its
// display name. In Flex the friendly name is usually the agent's login (an
// email address with SSO), not the name customers see: that one is the
// full_name attribute. "Alice Agent" becomes "alice.agent@flex.example"; a
// name that already looks like a login is kept.
func workerLogin(name string) string {
	if strings.Contains(name, "@") {
		return name
	}
	var b strings.Builder
	dot := false
	for _, r := range strings.ToLower(name) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r):
			if dot && b.Len() > 0 {
				b.WriteByte('.')
			}
			dot = false
			b.WriteRune(r)
		default:
			dot = true
		}
	}
	if b.Len() == 0 {
		b.WriteString("agent")
	}
	return b.String() + "@flex.example"
}

// AcceptTask lets the agent agentName accept a waiting task: it creates the
// worker if needed (friendly name a login derived from agentName, see
// [TaskView].WorkerFriendlyName; full_name attribute agentName), fires
// reservation.created and reservation.accepted (WorkerName = the friendly
// name, WorkerAttributes with full_name), adds the agent to the
// conversation as a participant (onParticipantAdded) and to the interaction
// channel (an agent channel participant), and returns the task, now
// assigned.
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
		attrs, err := json.Marshal(map[string]any{
			"full_name":   agentName,
			"contact_uri": "client:" + identity,
			"email":       workerLogin(agentName),
			"routing":     map[string]any{"skills": []string{}, "levels": map[string]any{}},
		})
		if err != nil {
			return TaskView{}, fmt.Errorf("accept task %s: encode worker attributes: %w", t.sid, err)
		}
		w = &worker{
			sid:          newSID(prefixWorker),
			name:         agentName,
			friendlyName: workerLogin(agentName),
			identity:     identity,
			attributes:   string(attrs),
		}
		s.workers[agentName] = w
	}
	t.worker = w
	t.reservationSID = newSID(prefixReservation)
	t.status = taskAssigned
	t.updated = s.nowSec()
	s.fireTaskRouter(t, "reservation.created", fmt.Sprintf("Reservation %s created for Worker %s", t.reservationSID, w.sid))
	s.fireTaskRouter(t, "reservation.accepted", fmt.Sprintf("Reservation %s accepted by Worker %s", t.reservationSID, w.sid))
	if in := s.interactions[t.interactionSID]; in != nil {
		in.participants = append(in.participants, &channelParticipant{
			sid:        newSID(prefixChannelPart),
			typ:        "agent",
			mediaProps: map[string]any{"identity": w.identity},
			routingProps: map[string]any{
				"task_sid": t.sid, "worker_sid": w.sid, "reservation_sid": t.reservationSID,
			},
			taskSID: t.sid,
			worker:  w.name,
		})
	}

	p := participantByIdentity(conv, w.identity)
	if p == nil {
		now := s.nowSec()
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
	return s.agentMessage(taskSID, body, nil, nil)
}

// agentMessage posts a message as the task's agent with media uploaded
// before (mediaSIDs) and/or files uploaded now as the agent.
func (s *Server) agentMessage(taskSID, body string, mediaSIDs []string, files []MediaFile) (MessageView, error) {
	if body == "" && len(mediaSIDs) == 0 && len(files) == 0 {
		return MessageView{}, errors.New("twilioemu: agent message: a body or media is required")
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
	var mediaList []*media
	for _, sid := range mediaSIDs {
		md, e := s.attachableMedia(sid)
		if e == nil && slices.Contains(mediaList, md) {
			e = errInvalid("Media %s is given twice", sid)
		}
		if e != nil {
			return MessageView{}, fmt.Errorf("agent message on task %s: %w", t.sid, e)
		}
		mediaList = append(mediaList, md)
	}
	for _, f := range files {
		if e := checkMediaFile(f, s.opts.MaxMediaSize); e != nil {
			return MessageView{}, fmt.Errorf("agent message on task %s: %w", t.sid, e)
		}
	}
	for _, f := range files {
		md, e := s.storeMedia(f, t.worker.identity)
		if e != nil {
			return MessageView{}, fmt.Errorf("agent message on task %s: %w", t.sid, e)
		}
		mediaList = append(mediaList, md)
	}
	m := s.addMessage(conv, t.worker.identity, body, "{}", mediaList, s.now(), true, t.worker.identity)
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

// CancelTask ends a task no agent has accepted (pending or reserved) as
// TaskRouter does when it is canceled: the task becomes canceled with
// reason (a default when empty) and task.canceled is fired with
// TaskCanceledReason. As on Flex, the interaction channel and the
// conversation are left as they are: closing them is the integration's job.
func (s *Server) CancelTask(taskSID, reason string) (TaskView, error) {
	if reason == "" {
		reason = "Task canceled"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(taskSID)
	if err != nil {
		return TaskView{}, fmt.Errorf("cancel: %w", err)
	}
	if t.status != taskPending {
		return TaskView{}, fmt.Errorf("cancel task %s (%s): %w", t.sid, t.status, ErrTaskState)
	}
	s.setTaskStatus(t, taskCanceled, reason)
	return s.taskView(t), nil
}

// workflowTimeoutReason is the TaskCanceledReason of a task that timed out
// of its workflow.
const workflowTimeoutReason = "Workflow Timeout"

// TimeoutTask lets a task no agent has accepted (pending or reserved) time
// out of its workflow: workflow.timeout is fired, then the task is canceled
// (task.canceled, TaskCanceledReason "Workflow Timeout"). The interaction
// channel and the conversation are left as they are.
func (s *Server) TimeoutTask(taskSID string) (TaskView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(taskSID)
	if err != nil {
		return TaskView{}, fmt.Errorf("time out: %w", err)
	}
	if t.status != taskPending {
		return TaskView{}, fmt.Errorf("time out task %s (%s): %w", t.sid, t.status, ErrTaskState)
	}
	t.reason = workflowTimeoutReason
	s.fireTaskRouter(t, "workflow.timeout", fmt.Sprintf("Task %s timed out of Workflow %s", t.sid, t.workflowSID))
	s.setTaskStatus(t, taskCanceled, workflowTimeoutReason)
	return s.taskView(t), nil
}

// LoseConversation makes Flex lose a conversation (by SID or unique name)
// without telling anyone: the conversation, its interactions and their
// tasks are removed and no webhook or event callback is sent. Later REST
// calls on any of them answer 404/20404. It returns the SIDs of the tasks
// removed with it. An [EventConversationLost] is published.
func (s *Server) LoseConversation(ref string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := s.lookupConversation(ref)
	if conv == nil {
		return nil, fmt.Errorf("conversation %s: %w", ref, ErrNotFound)
	}
	delete(s.conversations, conv.sid)
	if conv.uniqueName != "" {
		delete(s.uniqueNames, conv.uniqueName)
	}
	s.convOrder = slices.DeleteFunc(s.convOrder, func(sid string) bool { return sid == conv.sid })
	var lost []string
	for sid, in := range s.interactions {
		if in.conversationSID != conv.sid {
			continue
		}
		delete(s.interactions, sid)
		if in.taskSID != "" && s.tasks[in.taskSID] != nil {
			delete(s.tasks, in.taskSID)
			lost = append(lost, in.taskSID)
		}
	}
	s.taskOrder = slices.DeleteFunc(s.taskOrder, func(sid string) bool { return slices.Contains(lost, sid) })
	slices.Sort(lost)
	s.log.Info("conversation lost (no webhooks)", "conversation", conv.sid, "tasks", lost)
	for _, t := range lost {
		s.events.publish(Event{Type: EventConversationLost, ConversationSID: conv.sid, TaskSID: t})
	}
	if len(lost) == 0 {
		s.events.publish(Event{Type: EventConversationLost, ConversationSID: conv.sid})
	}
	return lost, nil
}
