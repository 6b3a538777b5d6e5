package twilioemu

import (
	"time"
)

// Conversation states.
const (
	stateActive   = "active"
	stateInactive = "inactive"
	stateClosed   = "closed"
)

// Reasons of onConversationStateUpdated.
const (
	reasonAPI   = "API"   // a REST call or a Flex action changed the state
	reasonTimer = "TIMER" // a state timer came due
	reasonEvent = "EVENT" // a new message reactivated an inactive conversation
)

type conversation struct {
	sid, uniqueName, friendlyName string
	attributes, state             string
	messagingServiceSID           string
	timersInactive, timersClosed  time.Duration
	created, updated              time.Time
	activity                      time.Time // state timers count from here
	participants                  []*participant
	webhooks                      []*scopedWebhook
	messages                      []*message
	nextIndex                     int
}

type participant struct {
	sid, identity, attributes, roleSID string
	created, updated                   time.Time
}

type scopedWebhook struct {
	sid, target, url, method string
	filters, triggers        []string
	flowSID                  string
	replayAfter              *int
	created, updated         time.Time
}

func (w *scopedWebhook) wants(event string) bool {
	if w.target != "webhook" || w.url == "" {
		return false
	}
	for _, f := range w.filters {
		if f == event {
			return true
		}
	}
	return false
}

type message struct {
	sid                                   string
	index                                 int
	author, body, attributes, participant string
	media                                 []*media
	created, updated                      time.Time
}

type interaction struct {
	sid, channelSID, inviteSID string
	channelType                string
	initiatedBy                string
	channelProps               map[string]any
	channelStatus              string
	channelErrorCode           int    // set when the channel failed
	channelErrorMessage        string // likewise
	setupFetches               int    // fetches that still see the channel in setup
	conversationSID, taskSID   string
	contextSID, webhookTTID    string
	participants               []*channelParticipant
	created                    time.Time
}

// channelParticipant is an interaction channel participant (UT...).
type channelParticipant struct {
	sid, typ        string
	mediaProps      map[string]any
	routingProps    map[string]any // nil: null
	status          string         // "" (in the channel), "wrapup" or "closed"
	taskSID, worker string         // agents: the task and the worker they accepted it as
}

// TaskRouter assignment statuses.
const (
	taskPending   = "pending"
	taskAssigned  = "assigned"
	taskWrapping  = "wrapping"
	taskCompleted = "completed"
	taskCanceled  = "canceled"
)

type task struct {
	sid, status, attributes    string
	channelUniqueName          string
	workflowSID                string
	reason                     string
	priority, timeout          int
	interactionSID, channelSID string
	conversationSID            string
	reservationSID             string
	worker                     *worker
	created, updated           time.Time
}

type worker struct {
	sid          string
	name         string // the display name: the full_name attribute
	friendlyName string // the worker's friendly name: a login (WorkerName)
	identity     string // the chat identity
	attributes   string
}

type workspace struct {
	sid, friendlyName              string
	eventCallbackURL, eventsFilter string
	multiTask                      bool
	queueOrder                     string
	created, updated               time.Time
}

// wantsEvent reports whether the workspace's EventsFilter lets eventType
// through (an empty filter lets everything through).
func (w *workspace) wantsEvent(eventType string) bool {
	if w.eventCallbackURL == "" {
		return false
	}
	if w.eventsFilter == "" {
		return true
	}
	for _, f := range splitList(w.eventsFilter) {
		if f == eventType {
			return true
		}
	}
	return false
}
