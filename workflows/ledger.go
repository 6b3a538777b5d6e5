package workflows

import (
	"strconv"
	"time"

	"github.com/flexcord/flexcord/activities"
)

// DestinationKind says where a delivery goes.
type DestinationKind string

// Destination kinds.
const (
	// DestMember is a Discord direct message to the member with user id Destination.ID.
	DestMember DestinationKind = "member"
	// DestChannel is a post in the Discord guild channel Destination.ID.
	DestChannel DestinationKind = "channel"
	// DestInteraction is a follow-up to the interaction with id Destination.ID.
	DestInteraction DestinationKind = "interaction"
	// DestFlex is the Flex conversation of the case Destination.ID, posted as the customer.
	DestFlex DestinationKind = "flex"
	// DestAnnouncement is a feed item posted (and published) in the Discord channel
	// Destination.ID; the delivery's Announcement says what.
	DestAnnouncement DestinationKind = "announcement"
)

// Destination is one ordered stream of deliveries.
type Destination struct {
	Kind DestinationKind `json:"kind"`
	ID   string          `json:"id"`
}

// String returns "kind:id".
func (d Destination) String() string { return string(d.Kind) + ":" + d.ID }

// DeliveryStatus is the state of a delivery that has not been delivered yet.
type DeliveryStatus string

// Delivery statuses. Delivered deliveries leave the ledger.
const (
	DeliveryPending  DeliveryStatus = "pending"
	DeliveryInFlight DeliveryStatus = "in_flight"
	DeliveryFailed   DeliveryStatus = "failed"
)

// Delivery is one outbound message waiting in the ledger.
type Delivery struct {
	Seq         int64              `json:"seq"`
	Key         string             `json:"key"` // idempotency key, ≤ 25 characters
	Dest        Destination        `json:"dest"`
	Label       string             `json:"label"` // what it is, for people ("greeting", "agent reply")
	Message     activities.Message `json:"message"`
	Interaction *Interaction       `json:"interaction,omitempty"` // for DestInteraction
	Status      DeliveryStatus     `json:"status"`
	Attempts    int                `json:"attempts,omitempty"` // times it was handed to an activity
	QueuedAt    time.Time          `json:"queued_at"`
	// FirstTriedAt is when the first activity started; a retry long after it cannot rely on the
	// provider's short de-duplication window.
	FirstTriedAt time.Time `json:"first_tried_at,omitempty"`
	// Delayed is set once a try did not get through; the other side was told.
	Delayed bool `json:"delayed,omitempty"`
	// WrittenAt is when the member wrote the message a Flex post relays (from its Discord id),
	// when known: a local try long after it may repeat one whose record was lost (see
	// outbox.startLocal).
	WrittenAt time.Time `json:"written_at,omitempty"`
	// LocalTried is set once the delivery's local-activity try (the fast path) did not get
	// through; the tries after it are regular activities.
	LocalTried bool `json:"local_tried,omitempty"`
	// EditOf, when set, makes the delivery an edit of a message already sent to the member.
	EditOf *MessageRef `json:"edit_of,omitempty"`
	// Buttons names the kind of buttons the message carries ("bot", "no_agent", "rating"), so
	// that they can be disabled once they no longer apply.
	Buttons string `json:"buttons,omitempty"`
	// Announcement is the post of a DestAnnouncement delivery; Ref is the feed item's key.
	Announcement *activities.PostAnnouncementInput `json:"announcement,omitempty"`
	Ref          string                            `json:"ref,omitempty"`
	Error        string                            `json:"error,omitempty"`
	ErrorType    string                            `json:"error_type,omitempty"`
}

// MessageRef is a Discord message the bot sent.
type MessageRef struct {
	ChannelID string `json:"channel_id"`
	MessageID string `json:"message_id"`
}

// DeliveryView is how a delivery appears in queries and update results.
type DeliveryView struct {
	Seq         int64          `json:"seq"`
	Key         string         `json:"key"`
	Destination string         `json:"destination"`
	Label       string         `json:"label"`
	Status      DeliveryStatus `json:"status"`
	Attempts    int            `json:"attempts,omitempty"`
	Preview     string         `json:"preview,omitempty"`
	Error       string         `json:"error,omitempty"`
	ErrorType   string         `json:"error_type,omitempty"`
}

func (d Delivery) view() DeliveryView {
	return DeliveryView{
		Seq: d.Seq, Key: d.Key, Destination: d.Dest.String(), Label: d.Label, Status: d.Status,
		Attempts: d.Attempts, Preview: d.preview(), Error: d.Error, ErrorType: d.ErrorType,
	}
}

func (d Delivery) preview() string {
	if d.Announcement != nil {
		return truncate(d.Announcement.Title, 80)
	}
	return preview(d.Message)
}

func preview(m activities.Message) string {
	s := m.Content
	if s == "" && len(m.Embeds) > 0 {
		s = m.Embeds[0].Title
	}
	return truncate(s, 80)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Ledger is the outbox of a workflow: deliveries queued per destination, in sequence order.
//
// At most one delivery per destination is in flight, and a destination whose oldest delivery
// failed is held, so that a retried delivery is still delivered before the ones queued after it.
// The ledger is plain data: it is part of the workflow state and carried through continue-as-new.
type Ledger struct {
	// KeyPrefix makes idempotency keys unique to this conversation or case.
	KeyPrefix string     `json:"key_prefix"`
	NextSeq   int64      `json:"next_seq"`
	Queue     []Delivery `json:"queue,omitempty"`
	Delivered int64      `json:"delivered"`
}

// Enqueue adds a delivery at the end of its destination's stream and returns its sequence number.
func (l *Ledger) Enqueue(now time.Time, dest Destination, label string, msg activities.Message) int64 {
	l.NextSeq++
	l.Queue = append(l.Queue, Delivery{
		Seq:      l.NextSeq,
		Key:      l.KeyPrefix + "-" + strconv.FormatInt(l.NextSeq, 36),
		Dest:     dest,
		Label:    label,
		Message:  msg,
		Status:   DeliveryPending,
		QueuedAt: now,
	})
	return l.NextSeq
}

// Ready returns the sequence numbers of the deliveries that may start now: for every destination
// that ready accepts and that has nothing in flight or failed ahead, its oldest pending delivery.
func (l *Ledger) Ready(ready func(Destination) bool) []int64 {
	decided := make(map[Destination]bool)
	var out []int64
	for _, d := range l.Queue {
		if decided[d.Dest] {
			continue
		}
		decided[d.Dest] = true
		if d.Status == DeliveryPending && ready(d.Dest) {
			out = append(out, d.Seq)
		}
	}
	return out
}

// Following returns seq and the pending deliveries right behind it in the queue with the same
// destination that ok accepts, at most max in all, in order. It stops at the first delivery to
// that destination that does not qualify, so that order per destination is kept.
func (l *Ledger) Following(seq int64, max int, ok func(Delivery) bool) []int64 {
	out := []int64{seq}
	var dest Destination
	found := false
	for _, d := range l.Queue {
		if !found {
			if d.Seq == seq {
				found, dest = true, d.Dest
			}
			continue
		}
		if d.Dest != dest {
			continue
		}
		if len(out) >= max || d.Status != DeliveryPending || !ok(d) {
			break
		}
		out = append(out, d.Seq)
	}
	return out
}

// Get returns the delivery with sequence number seq.
func (l *Ledger) Get(seq int64) (*Delivery, bool) {
	for i := range l.Queue {
		if l.Queue[i].Seq == seq {
			return &l.Queue[i], true
		}
	}
	return nil, false
}

// Start marks a delivery in flight.
func (l *Ledger) Start(seq int64, now time.Time) {
	if d, ok := l.Get(seq); ok {
		d.Status = DeliveryInFlight
		d.Attempts++
		if d.FirstTriedAt.IsZero() {
			d.FirstTriedAt = now
		}
	}
}

// Remove takes a delivery out of the ledger without counting it as delivered.
func (l *Ledger) Remove(seq int64) {
	for i := range l.Queue {
		if l.Queue[i].Seq == seq {
			l.Queue = append(l.Queue[:i], l.Queue[i+1:]...)
			return
		}
	}
}

// Succeed removes a delivered delivery.
func (l *Ledger) Succeed(seq int64) {
	for i := range l.Queue {
		if l.Queue[i].Seq == seq {
			l.Queue = append(l.Queue[:i], l.Queue[i+1:]...)
			l.Delivered++
			return
		}
	}
}

// Fail records a delivery as failed with its error; its destination is held until a retry.
func (l *Ledger) Fail(seq int64, errType, msg string) {
	if d, ok := l.Get(seq); ok {
		d.Status = DeliveryFailed
		d.ErrorType = errType
		d.Error = truncate(msg, 500)
	}
}

// Retry moves every failed delivery back to pending and returns them, in order.
func (l *Ledger) Retry() []DeliveryView {
	var out []DeliveryView
	for i := range l.Queue {
		if l.Queue[i].Status == DeliveryFailed {
			l.Queue[i].Status = DeliveryPending
			out = append(out, l.Queue[i].view())
			l.Queue[i].Error, l.Queue[i].ErrorType = "", ""
		}
	}
	return out
}

// RequeueFailed moves the failed deliveries to dest back to pending, in order, and removes those
// that keep rejects (stale chatter nobody needs any more). It returns how many it re-queued and
// dropped.
func (l *Ledger) RequeueFailed(dest Destination, keep func(Delivery) bool) (requeued, dropped int) {
	kept := l.Queue[:0]
	for _, d := range l.Queue {
		if d.Dest == dest && d.Status == DeliveryFailed {
			if !keep(d) {
				dropped++
				continue
			}
			d.Status, d.Error, d.ErrorType = DeliveryPending, "", ""
			requeued++
		}
		kept = append(kept, d)
	}
	l.Queue = kept
	return requeued, dropped
}

// DropKind removes every pending or failed delivery to a destination of kind k and returns how
// many it removed.
func (l *Ledger) DropKind(k DestinationKind) int {
	kept := l.Queue[:0]
	n := 0
	for _, d := range l.Queue {
		if d.Dest.Kind == k && d.Status != DeliveryInFlight {
			n++
			continue
		}
		kept = append(kept, d)
	}
	l.Queue = kept
	return n
}

// Drop removes the pending deliveries to dest and returns how many it removed.
func (l *Ledger) Drop(dest Destination) int {
	kept := l.Queue[:0]
	n := 0
	for _, d := range l.Queue {
		if d.Dest == dest && d.Status == DeliveryPending {
			n++
			continue
		}
		kept = append(kept, d)
	}
	l.Queue = kept
	return n
}

// Count returns how many deliveries have status s.
func (l *Ledger) Count(s DeliveryStatus) int {
	n := 0
	for _, d := range l.Queue {
		if d.Status == s {
			n++
		}
	}
	return n
}

// Views returns the deliveries with status s, in order.
func (l *Ledger) Views(s DeliveryStatus) []DeliveryView {
	var out []DeliveryView
	for _, d := range l.Queue {
		if d.Status == s {
			out = append(out, d.view())
		}
	}
	return out
}

// resetInFlight turns deliveries left in flight by an earlier run back into pending ones; their
// activities belonged to that run. Delivery is idempotent, so sending them again is safe.
func (l *Ledger) resetInFlight() {
	for i := range l.Queue {
		if l.Queue[i].Status == DeliveryInFlight {
			l.Queue[i].Status = DeliveryPending
		}
	}
}
