package twilioemu

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// now is the emulator's clock: the wall clock moved on by every
// [Server.AdvanceClock], in UTC. Everything the emulator stamps or times
// (dates, task ages, conversation state timers) reads it.
func (s *Server) now() time.Time {
	s.clockMu.Lock()
	off := s.clockOffset
	s.clockMu.Unlock()
	return time.Now().UTC().Add(off)
}

// nowSec is now truncated to whole seconds, as Twilio's REST dates are.
func (s *Server) nowSec() time.Time { return s.now().Truncate(time.Second) }

// Now returns the emulator's current time (see [Server.AdvanceClock]).
func (s *Server) Now() time.Time { return s.now() }

// AdvanceClock moves the emulator's clock forward by d (d must not be
// negative) and then applies every conversation state timer that has come
// due, as if that much time had passed: conversations go inactive or closed
// (onConversationStateUpdated with Reason=TIMER) before AdvanceClock
// returns. Webhook deliveries and their retries keep using real time.
func (s *Server) AdvanceClock(d time.Duration) (time.Time, error) {
	if d < 0 {
		return time.Time{}, errors.New("twilioemu: the clock cannot go back")
	}
	s.clockMu.Lock()
	s.clockOffset += d
	s.clockMu.Unlock()
	s.checkTimers()
	return s.now(), nil
}

// runTimers applies conversation state timers every interval until Close.
func (s *Server) runTimers(interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			s.checkTimers()
		}
	}
}

// checkTimers applies the state timers of every conversation.
func (s *Server) checkTimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, sid := range s.convOrder {
		if conv := s.conversations[sid]; conv != nil {
			s.applyTimers(conv, now)
		}
	}
}

// timerDates returns when conv goes inactive and closed by its timers (zero
// when the timer is not set). Both count from the conversation's last
// activity: its creation, a message, or a change of its timers or state.
func (conv *conversation) timerDates() (inactiveAt, closedAt time.Time) {
	if conv.timersInactive > 0 {
		inactiveAt = conv.activity.Add(conv.timersInactive)
	}
	if conv.timersClosed > 0 {
		closedAt = conv.activity.Add(conv.timersClosed)
	}
	return inactiveAt, closedAt
}

// applyTimers moves conv to inactive and/or closed when its timers have
// come due at now. The caller holds s.mu.
func (s *Server) applyTimers(conv *conversation, now time.Time) {
	if conv.state == stateClosed {
		return
	}
	inactiveAt, closedAt := conv.timerDates()
	if conv.state == stateActive && !inactiveAt.IsZero() && !now.Before(inactiveAt) &&
		(closedAt.IsZero() || inactiveAt.Before(closedAt)) {
		from := conv.state
		conv.state = stateInactive
		conv.updated = inactiveAt.Truncate(time.Second)
		s.fireStateUpdated(conv, from, "", reasonTimer)
		s.publishConversation(conv)
	}
	if !closedAt.IsZero() && !now.Before(closedAt) {
		s.closeConversationAt(conv, reasonTimer, closedAt)
		s.endInteractionsOf(conv, "Conversation closed by its timer")
	}
}

// endInteractionsOf closes the interaction channels of a conversation that
// was closed other than through the channel (a state timer): Flex then ends
// the channel's task as closing the channel would, canceling a task no agent
// accepted and wrapping up an assigned one. The caller holds s.mu.
func (s *Server) endInteractionsOf(conv *conversation, reason string) {
	for _, in := range s.interactions {
		if in.conversationSID != conv.sid || in.channelStatus == channelClosed || in.channelStatus == channelFailed {
			continue
		}
		in.channelStatus = channelClosed
		if t := s.tasks[in.taskSID]; t != nil {
			switch t.status {
			case taskPending:
				s.setTaskStatus(t, taskCanceled, reason)
			case taskAssigned:
				s.setTaskStatus(t, taskWrapping, reason)
			}
		}
	}
}

// parseClockAdvance reads the body of POST /_emu/twilio/clock/advance:
// {"seconds": 3600} or {"duration": "PT1H"} (ISO 8601, or Go's "1h").
func parseClockAdvance(r *http.Request) (time.Duration, error) {
	var in struct {
		Seconds  float64 `json:"seconds"`
		Duration string  `json:"duration"`
	}
	if err := decodeBody(r, &in); err != nil {
		return 0, err
	}
	switch {
	case in.Duration != "" && in.Seconds != 0:
		return 0, errors.New("give seconds or duration, not both")
	case in.Duration != "":
		if strings.HasPrefix(strings.ToUpper(in.Duration), "P") {
			return parseISODuration(in.Duration)
		}
		d, err := time.ParseDuration(in.Duration)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %w", in.Duration, err)
		}
		return d, nil
	case in.Seconds < 0:
		return 0, errors.New("the clock cannot go back")
	default:
		return time.Duration(in.Seconds * float64(time.Second)), nil
	}
}
