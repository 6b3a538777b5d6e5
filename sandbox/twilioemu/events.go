package twilioemu

import (
	"encoding/json"
	"sync"
	"time"
)

// EventType names what an Event reports.
type EventType string

// Event types published to subscribers.
const (
	// EventTaskCreated: an interaction created a task (Event.Task).
	EventTaskCreated EventType = "task.created"
	// EventTaskUpdated: a task was accepted, wrapped up, completed or
	// canceled (Event.Task).
	EventTaskUpdated EventType = "task.updated"
	// EventMessageAdded: a message was stored in a conversation
	// (Event.Message), whoever wrote it.
	EventMessageAdded EventType = "message.added"
	// EventConversationUpdated: a conversation was created or changed
	// state or participants (Event.Conversation).
	EventConversationUpdated EventType = "conversation.updated"
	// EventDelivery: a webhook or event callback attempt finished
	// (Event.Delivery).
	EventDelivery EventType = "delivery"
	// EventViolation: a request or response broke the API contract
	// (Event.Violation).
	EventViolation EventType = "violation"
	// EventConversationLost: Flex lost a conversation with its interaction
	// and task ([Server.LoseConversation]); nothing was told to anyone.
	// One event per task removed (Event.TaskSID), or one without a task.
	EventConversationLost EventType = "conversation.lost"
)

// Event is a change inside the emulator, for tests and the sandbox page.
type Event struct {
	// Seq increases by one for every event published.
	Seq             int64     `json:"seq"`
	Type            EventType `json:"type"`
	Time            time.Time `json:"time"`
	ConversationSID string    `json:"conversation_sid,omitempty"`
	TaskSID         string    `json:"task_sid,omitempty"`

	Task         *TaskView         `json:"task,omitempty"`
	Message      *MessageView      `json:"message,omitempty"`
	Conversation *ConversationView `json:"conversation,omitempty"`
	Delivery     *Delivery         `json:"delivery,omitempty"`
	Violation    string            `json:"violation,omitempty"`
}

// TaskStatus is a task's state as the agent desk shows it.
type TaskStatus string

// Task statuses (TaskRouter's assignment_status in brackets).
const (
	TaskWaiting   TaskStatus = "waiting"   // pending: no agent yet
	TaskAssigned  TaskStatus = "assigned"  // assigned: an agent accepted it
	TaskWrapping  TaskStatus = "wrapping"  // wrapping: the chat ended
	TaskCompleted TaskStatus = "completed" // completed
	TaskCanceled  TaskStatus = "canceled"  // canceled: closed before anyone accepted it
)

func taskStatusOf(assignment string) TaskStatus {
	switch assignment {
	case taskPending, "reserved":
		return TaskWaiting
	case taskAssigned:
		return TaskAssigned
	case taskWrapping:
		return TaskWrapping
	case taskCompleted:
		return TaskCompleted
	default:
		return TaskCanceled
	}
}

// TaskView is a task with its conversation, as the control API shows it.
type TaskView struct {
	SID              string     `json:"sid"`
	Status           TaskStatus `json:"status"`
	AssignmentStatus string     `json:"assignment_status"`
	// Attributes are the task attributes (routing attributes plus
	// conversationSid, flexInteractionSid, flexInteractionChannelSid, ...).
	Attributes      map[string]any `json:"attributes"`
	Reason          string         `json:"reason,omitempty"`
	ConversationSID string         `json:"conversation_sid"`
	InteractionSID  string         `json:"interaction_sid"`
	ChannelSID      string         `json:"channel_sid"`
	ReservationSID  string         `json:"reservation_sid,omitempty"`
	WorkerSID       string         `json:"worker_sid,omitempty"`
	// WorkerName is the accepting agent's display name (the worker's
	// full_name attribute, the name given to AcceptTask).
	WorkerName string `json:"worker_name,omitempty"`
	// WorkerFriendlyName is the worker's friendly name, a login such as
	// "ana@flex.example": what TaskRouter events carry as WorkerName.
	WorkerFriendlyName string `json:"worker_friendly_name,omitempty"`
	// AgentIdentity is the accepting agent's chat identity (the Author of
	// the agent's messages).
	AgentIdentity     string    `json:"agent_identity,omitempty"`
	ConversationState string    `json:"conversation_state,omitempty"`
	DateCreated       time.Time `json:"date_created"`
	DateUpdated       time.Time `json:"date_updated"`
	// Messages is the conversation transcript, oldest first.
	Messages []MessageView `json:"messages"`
}

// MessageRole says who wrote a message, from the agent desk's point of view.
type MessageRole string

// Message roles.
const (
	RoleAgent    MessageRole = "agent"    // the identity of an agent that accepted a task
	RoleCustomer MessageRole = "customer" // any other participant
	RoleSystem   MessageRole = "system"   // an author that is not a participant
)

// MessageView is a stored conversation message.
type MessageView struct {
	SID             string `json:"sid"`
	ConversationSID string `json:"conversation_sid"`
	Index           int    `json:"index"`
	Author          string `json:"author"`
	Body            string `json:"body"`
	// Attributes is the raw JSON string stored with the message.
	Attributes     string      `json:"attributes"`
	ParticipantSID string      `json:"participant_sid,omitempty"`
	Role           MessageRole `json:"role"`
	// Media are the files the message carries (Media resources).
	Media       []MediaView `json:"media,omitempty"`
	DateCreated time.Time   `json:"date_created"`
}

// ParticipantView is a conversation participant.
type ParticipantView struct {
	SID        string `json:"sid"`
	Identity   string `json:"identity"`
	Attributes string `json:"attributes"`
}

// ConversationView is a conversation as the control API shows it.
type ConversationView struct {
	SID          string            `json:"sid"`
	UniqueName   string            `json:"unique_name,omitempty"`
	FriendlyName string            `json:"friendly_name,omitempty"`
	State        string            `json:"state"`
	Attributes   string            `json:"attributes"`
	Participants []ParticipantView `json:"participants"`
	Webhooks     int               `json:"webhooks"`
	Messages     int               `json:"messages"`
	DateCreated  time.Time         `json:"date_created"`
	DateUpdated  time.Time         `json:"date_updated"`
}

// broker fans events out to subscribers.
type broker struct {
	mu     sync.Mutex
	seq    int64
	subs   map[int]chan Event
	nextID int
	closed bool
}

// subscriberBuffer is how many events a slow subscriber may fall behind
// before further events are dropped for it.
const subscriberBuffer = 4096

func (b *broker) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.seq++
	e.Seq = b.seq
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	for _, ch := range b.subs {
		select {
		case ch <- e:
		default: // the subscriber is too slow; drop rather than block the emulator
		}
	}
}

func (b *broker) subscribe() (<-chan Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan Event, subscriberBuffer)
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	if b.subs == nil {
		b.subs = make(map[int]chan Event)
	}
	id := b.nextID
	b.nextID++
	b.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if c, ok := b.subs[id]; ok {
				delete(b.subs, id)
				close(c)
			}
		})
	}
}

func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for id, ch := range b.subs {
		delete(b.subs, id)
		close(ch)
	}
}

// Subscribe returns a channel of every event published from now on and a
// function that ends the subscription (and closes the channel). The channel
// is also closed by [Server.Close]. A subscriber that falls more than 4096
// events behind loses events.
func (s *Server) Subscribe() (<-chan Event, func()) { return s.events.subscribe() }

// The publish helpers below are called with s.mu held, so that events are
// published in the order the changes happened.

func (s *Server) publishConversation(conv *conversation) {
	v := s.conversationView(conv)
	s.events.publish(Event{Type: EventConversationUpdated, ConversationSID: conv.sid, Conversation: &v})
}

func (s *Server) publishMessage(conv *conversation, m *message) {
	v := s.messageView(conv, m)
	s.events.publish(Event{Type: EventMessageAdded, ConversationSID: conv.sid, Message: &v})
}

func (s *Server) publishTask(typ EventType, t *task) {
	v := s.taskView(t)
	s.events.publish(Event{Type: typ, ConversationSID: t.conversationSID, TaskSID: t.sid, Task: &v})
}

func (s *Server) conversationView(conv *conversation) ConversationView {
	v := ConversationView{
		SID:          conv.sid,
		UniqueName:   conv.uniqueName,
		FriendlyName: conv.friendlyName,
		State:        conv.state,
		Attributes:   conv.attributes,
		Participants: make([]ParticipantView, 0, len(conv.participants)),
		Webhooks:     len(conv.webhooks),
		Messages:     len(conv.messages),
		DateCreated:  conv.created,
		DateUpdated:  conv.updated,
	}
	for _, p := range conv.participants {
		v.Participants = append(v.Participants, ParticipantView{SID: p.sid, Identity: p.identity, Attributes: p.attributes})
	}
	return v
}

// isAgentIdentity reports whether identity belongs to a simulated agent.
func (s *Server) isAgentIdentity(identity string) bool {
	for _, w := range s.workers {
		if w.identity == identity {
			return true
		}
	}
	return false
}

func (s *Server) messageView(conv *conversation, m *message) MessageView {
	role := RoleSystem
	switch {
	case s.isAgentIdentity(m.author):
		role = RoleAgent
	case m.participant != "":
		role = RoleCustomer
	}
	v := MessageView{
		SID:             m.sid,
		ConversationSID: conv.sid,
		Index:           m.index,
		Author:          m.author,
		Body:            m.body,
		Attributes:      m.attributes,
		ParticipantSID:  m.participant,
		Role:            role,
		DateCreated:     m.created,
	}
	for _, md := range m.media {
		v.Media = append(v.Media, s.mediaView(md))
	}
	return v
}

func (s *Server) taskView(t *task) TaskView {
	v := TaskView{
		SID:              t.sid,
		Status:           taskStatusOf(t.status),
		AssignmentStatus: t.status,
		Reason:           t.reason,
		ConversationSID:  t.conversationSID,
		InteractionSID:   t.interactionSID,
		ChannelSID:       t.channelSID,
		ReservationSID:   t.reservationSID,
		DateCreated:      t.created,
		DateUpdated:      t.updated,
		Messages:         []MessageView{},
	}
	_ = json.Unmarshal([]byte(t.attributes), &v.Attributes)
	if t.worker != nil {
		v.WorkerSID, v.WorkerName, v.AgentIdentity = t.worker.sid, t.worker.name, t.worker.identity
		v.WorkerFriendlyName = t.worker.friendlyName
	}
	if conv := s.conversations[t.conversationSID]; conv != nil {
		v.ConversationState = conv.state
		for _, m := range conv.messages {
			v.Messages = append(v.Messages, s.messageView(conv, m))
		}
	}
	return v
}
