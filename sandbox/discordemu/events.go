package discordemu

import (
	"encoding/json"
	"time"
)

// EventType names what happened in an Event.
type EventType string

// Event types published to subscribers (Go and Server-Sent Events alike).
const (
	// EventMessageCreate: a message was posted (by the bot or a member).
	EventMessageCreate EventType = "message_create"
	// EventMessageUpdate: a message was edited (for example a deferred
	// interaction response filled in). Record holds the new state.
	EventMessageUpdate EventType = "message_update"
	// EventMessageDelete: a message was deleted.
	EventMessageDelete EventType = "message_delete"
	// EventInteractionCreate: a member used a command, button or modal.
	EventInteractionCreate EventType = "interaction_create"
	// EventInteractionResponse: the bot acknowledged an interaction
	// (Interaction.ResponseType says how).
	EventInteractionResponse EventType = "interaction_response"
	// EventInteractionFailed: an interaction was not acknowledged in time,
	// or the HTTP interactions endpoint answered badly. Detail says why.
	EventInteractionFailed EventType = "interaction_failed"
	// EventModal: the bot answered with a modal (Interaction.Modal).
	EventModal EventType = "modal"
	// EventCommandsUpdate: the bot overwrote its application commands.
	EventCommandsUpdate EventType = "commands_update"
	// EventMemberUpdate: a member was added or changed.
	EventMemberUpdate EventType = "member_update"
	// EventGatewayReady, EventGatewayResumed and EventGatewayClosed track
	// the bot's gateway sessions; Detail holds the session id or close
	// reason.
	EventGatewayReady   EventType = "gateway_ready"
	EventGatewayResumed EventType = "gateway_resumed"
	EventGatewayClosed  EventType = "gateway_closed"
	// EventViolation: a request or response broke the API contract.
	EventViolation EventType = "violation"
)

// Event is one live update from the emulator.
type Event struct {
	// Seq increases by one per event.
	Seq  int64     `json:"seq"`
	Type EventType `json:"type"`
	Time time.Time `json:"time"`
	// Record is set for message events.
	Record *Record `json:"record,omitempty"`
	// Interaction is set for interaction events.
	Interaction *InteractionInfo `json:"interaction,omitempty"`
	// Member is set for member events.
	Member *Member `json:"member,omitempty"`
	// Commands is set for EventCommandsUpdate: the guild id ("" = global)
	// and the commands now registered there.
	GuildID  string    `json:"guild_id,omitempty"`
	Commands []Command `json:"commands,omitempty"`
	// Detail is a human-readable explanation.
	Detail string `json:"detail,omitempty"`
}

// eventBuffer is the per-subscriber channel capacity; a subscriber that
// falls this far behind loses events rather than stalling the emulator.
const eventBuffer = 1024

// Subscribe returns a channel of live events and a function that ends the
// subscription. The channel is closed by cancel or by Close. A subscriber
// that does not keep up loses events.
func (s *Server) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, eventBuffer)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	s.subSeq++
	id := s.subSeq
	s.subs[id] = ch
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
}

// publishLocked sends e to every subscriber. s.mu must be held.
func (s *Server) publishLocked(e Event) {
	s.eventSeq++
	e.Seq = s.eventSeq
	e.Time = s.now()
	// Copy the record so subscribers do not race with later edits.
	if e.Record != nil {
		r := *e.Record
		e.Record = &r
	}
	for _, ch := range s.subs {
		select {
		case ch <- e:
		default:
			s.log.Warn("discord emulator: subscriber too slow, event dropped", "type", e.Type)
		}
	}
}

func (s *Server) publish(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked(e)
}

// mustJSON marshals v, which must be marshalable.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("discordemu: marshal: " + err.Error())
	}
	return b
}
