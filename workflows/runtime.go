package workflows

import (
	"errors"
	"hash/fnv"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
)

// Activities are referred to through method values on nil pointers: only their names matter here.
var (
	discordActs   *activities.Discord
	flexActs      *activities.Flex
	knowledgeActs *activities.Knowledge
)

// DeliveryPolicy bounds how hard one delivery is tried before it is recorded as failed.
type DeliveryPolicy struct {
	// MaxAttempts is how many times an activity tries one delivery (default 8).
	MaxAttempts int32 `json:"max_attempts,omitempty"`
	// InitialInterval is the first retry delay (default 1 s); it doubles up to one minute.
	InitialInterval time.Duration `json:"initial_interval,omitempty"`
	// Timeout bounds one attempt (default 30 s).
	Timeout time.Duration `json:"timeout,omitempty"`
}

func (p DeliveryPolicy) withDefaults() DeliveryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 8
	}
	if p.InitialInterval <= 0 {
		p.InitialInterval = time.Second
	}
	if p.Timeout <= 0 {
		p.Timeout = 30 * time.Second
	}
	return p
}

func (p DeliveryPolicy) activityOptions(summary string) workflow.ActivityOptions {
	p = p.withDefaults()
	return workflow.ActivityOptions{
		StartToCloseTimeout: p.Timeout,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    p.InitialInterval,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    p.MaxAttempts,
		},
	}
}

// keyPrefix derives a short, stable prefix for idempotency keys from the id of the first run, so
// that a later conversation of the same member never reuses an earlier one's keys.
func keyPrefix(runID string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(runID))
	s := strconv.FormatUint(h.Sum64(), 36)
	if len(s) > 10 {
		s = s[:10]
	}
	return s
}

// outbox drives a Ledger inside a workflow: it starts the deliveries that are ready, one per
// destination, as activities, and records their results when the workflow's selector sees them.
type outbox struct {
	ledger   *Ledger
	policy   DeliveryPolicy
	inFlight int
	// flexLink resolves a DestFlex destination; ok is false while the conversation has none.
	flexLink func(caseID string) (activities.FlexInteraction, bool)
	// summary names the member or channel in activity summaries.
	summary func(d Delivery) string
	// onDelivered is called for every delivery that arrived.
	onDelivered func(ctx workflow.Context, d Delivery)
	// onFailed is called once for every delivery that fails.
	onFailed func(ctx workflow.Context, d Delivery)
	// failedChanged is called when the number of failed deliveries may have changed.
	failedChanged func(ctx workflow.Context)
	paused        bool
}

func (o *outbox) ready(dest Destination) bool {
	if dest.Kind == DestFlex {
		_, ok := o.flexLink(dest.ID)
		return ok
	}
	return true
}

// pump starts every delivery that may start now.
func (o *outbox) pump(ctx workflow.Context, sel workflow.Selector) {
	if o.paused {
		return
	}
	for _, seq := range o.ledger.Ready(o.ready) {
		d, _ := o.ledger.Get(seq)
		o.ledger.Start(seq)
		o.inFlight++
		f := o.start(ctx, *d)
		sel.AddFuture(f, func(f workflow.Future) {
			o.inFlight--
			err := f.Get(ctx, nil)
			if err == nil {
				d, _ := o.ledger.Get(seq)
				done := *d
				o.ledger.Succeed(seq)
				if o.onDelivered != nil {
					o.onDelivered(ctx, done)
				}
				return
			}
			errType := "Error"
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) {
				errType = appErr.Type()
			} else if errors.As(err, new(*temporal.TimeoutError)) {
				errType = "Timeout"
			}
			o.ledger.Fail(seq, errType, rootMessage(err))
			if failed, ok := o.ledger.Get(seq); ok && o.onFailed != nil {
				o.onFailed(ctx, *failed)
			}
			if o.failedChanged != nil {
				o.failedChanged(ctx)
			}
		})
	}
}

func (o *outbox) start(ctx workflow.Context, d Delivery) workflow.Future {
	ctx = workflow.WithActivityOptions(ctx, o.policy.activityOptions(o.summary(d)))
	switch d.Dest.Kind {
	case DestMember:
		return workflow.ExecuteActivity(ctx, discordActs.SendDirectMessage, activities.SendDirectMessageInput{
			UserID: d.Dest.ID, Nonce: d.Key, Message: d.Message,
		})
	case DestChannel:
		return workflow.ExecuteActivity(ctx, discordActs.PostChannelMessage, activities.PostChannelMessageInput{
			ChannelID: d.Dest.ID, Nonce: d.Key, Message: d.Message,
		})
	case DestInteraction:
		var in activities.SendInteractionFollowUpInput
		if d.Interaction != nil {
			in = activities.SendInteractionFollowUpInput{
				ApplicationID: d.Interaction.ApplicationID, Token: d.Interaction.Token, Message: d.Message,
			}
		}
		return workflow.ExecuteActivity(ctx, discordActs.SendInteractionFollowUp, in)
	case DestFlex:
		link, _ := o.flexLink(d.Dest.ID)
		return workflow.ExecuteActivity(ctx, flexActs.PostFlexMessage, activities.PostFlexMessageInput{
			ConversationSID: link.ConversationSID, Identity: link.Identity, Body: d.Message.Content, DeliveryKey: d.Key,
		})
	}
	// Unknown kinds cannot come from this package; fail the delivery visibly rather than panic.
	f, set := workflow.NewFuture(ctx)
	set.SetError(temporal.NewNonRetryableApplicationError("unknown destination "+d.Dest.String(), "UnknownDestination", nil))
	return f
}

// retry re-queues every failed delivery and returns what it re-queued.
func (o *outbox) retry(ctx workflow.Context) []DeliveryView {
	out := o.ledger.Retry()
	if len(out) > 0 && o.failedChanged != nil {
		o.failedChanged(ctx)
	}
	return out
}

// rootMessage returns the message of the innermost error: for an activity failure, the activity's
// own error rather than Temporal's wrapping.
func rootMessage(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// deadlineTimer keeps at most one timer running for the workflow's next deadline.
type deadlineTimer struct {
	at     time.Time
	label  string
	cancel workflow.CancelFunc
	fired  bool
}

// arm makes sure a timer runs until at (zero: none). When it fires, fired becomes true.
func (t *deadlineTimer) arm(ctx workflow.Context, sel workflow.Selector, at time.Time, label string) {
	if at.Equal(t.at) && label == t.label {
		return
	}
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
	t.at, t.label, t.fired = at, label, false
	if at.IsZero() {
		return
	}
	d := at.Sub(workflow.Now(ctx))
	if d < time.Millisecond {
		d = time.Millisecond
	}
	tctx, cancel := workflow.WithCancel(ctx)
	t.cancel = cancel
	armedAt := at
	f := workflow.NewTimerWithOptions(tctx, d, workflow.TimerOptions{Summary: label})
	sel.AddFuture(f, func(f workflow.Future) {
		if f.Get(ctx, nil) == nil && t.at.Equal(armedAt) {
			t.fired = true
		}
	})
}

// due reports whether the armed deadline has passed, and disarms it if so.
func (t *deadlineTimer) due(ctx workflow.Context) bool {
	if t.at.IsZero() || (!t.fired && workflow.Now(ctx).Before(t.at)) {
		return false
	}
	t.at, t.label, t.fired, t.cancel = time.Time{}, "", false, nil
	return true
}

// waker lets update handlers, which run beside the main loop, wake the loop after they changed
// the state, so that it starts deliveries and re-arms deadlines at once.
type waker struct {
	ch workflow.Channel
}

func newWaker(ctx workflow.Context, sel workflow.Selector) waker {
	w := waker{ch: workflow.NewBufferedChannel(ctx, 1)}
	sel.AddReceive(w.ch, func(ch workflow.ReceiveChannel, more bool) {
		ch.ReceiveAsync(nil)
	})
	return w
}

// wake makes the main loop's next Select return; extra wake-ups are merged.
func (w waker) wake() { w.ch.SendAsync(struct{}{}) }
