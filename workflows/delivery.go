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

// onQueue runs the activities started with the returned context on task queue q.
func onQueue(ctx workflow.Context, q string) workflow.Context {
	o := workflow.GetActivityOptions(ctx)
	o.TaskQueue = q
	return workflow.WithActivityOptions(ctx, o)
}

// discordCtx and twilioCtx put activities on their provider's rate-limited task queue.
func discordCtx(ctx workflow.Context) workflow.Context { return onQueue(ctx, DiscordTaskQueue) }
func twilioCtx(ctx workflow.Context) workflow.Context  { return onQueue(ctx, TwilioTaskQueue) }

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

// fastTry bounds the first activity of a delivery to Flex: if it does not get through within
// seconds, the member hears that delivery is delayed while the full policy keeps trying.
var fastTry = DeliveryPolicy{MaxAttempts: 2, InitialInterval: time.Second, Timeout: 5 * time.Second}

// deliveryResult is what a delivered delivery produced that the workflow may need.
type deliveryResult struct {
	ChannelID  string   // DM channel of a direct message
	MessageIDs []string // Discord messages created
	FlexIndex  int      // index of the message in the Flex conversation
	HasIndex   bool
}

// outbox drives a Ledger inside a workflow: it starts the deliveries that are ready, one per
// destination, as activities, and records their results when the workflow's selector sees them.
type outbox struct {
	ledger   *Ledger
	policy   DeliveryPolicy
	inFlight int
	// fastFirst makes the first activity of a Flex delivery short (fastTry): a delivery that does
	// not get through then is marked delayed and handed to the full policy.
	fastFirst bool
	// flexLink resolves a DestFlex destination; ok is false while the conversation has none.
	flexLink func(caseID string) (activities.FlexInteraction, bool)
	// summary names the member or channel in activity summaries.
	summary func(d Delivery) string
	// onDelivered is called for every delivery that arrived.
	onDelivered func(ctx workflow.Context, d Delivery, res deliveryResult)
	// onDelayed is called when a delivery's fast first try did not get through.
	onDelayed func(ctx workflow.Context, d Delivery)
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
		o.ledger.Start(seq, workflow.Now(ctx))
		o.inFlight++
		fast := o.fastFirst && d.Dest.Kind == DestFlex && d.EditOf == nil && d.Attempts == 1
		f := o.start(ctx, *d, fast)
		sel.AddFuture(f, func(f workflow.Future) {
			o.inFlight--
			o.settle(ctx, seq, f, fast)
		})
	}
}

// settle records the outcome of a delivery's activity.
func (o *outbox) settle(ctx workflow.Context, seq int64, f workflow.Future, fast bool) {
	d, ok := o.ledger.Get(seq)
	if !ok {
		return // dropped while in flight
	}
	var res deliveryResult
	var err error
	switch {
	case d.EditOf != nil:
		err = f.Get(ctx, nil)
	case d.Dest.Kind == DestMember:
		var r activities.SendDirectMessageResult
		err = f.Get(ctx, &r)
		res.ChannelID, res.MessageIDs = r.ChannelID, r.MessageIDs
	case d.Dest.Kind == DestFlex:
		var r activities.PostFlexMessageResult
		err = f.Get(ctx, &r)
		res.FlexIndex, res.HasIndex = r.Index, r.MessageSID != ""
	case d.Dest.Kind == DestAnnouncement:
		var r activities.PostAnnouncementResult
		err = f.Get(ctx, &r)
		if r.MessageID != "" {
			res.MessageIDs = []string{r.MessageID}
		}
	default:
		err = f.Get(ctx, nil)
	}
	if err == nil {
		done := *d
		o.ledger.Succeed(seq)
		if o.onDelivered != nil {
			o.onDelivered(ctx, done, res)
		}
		return
	}
	errType := "Error"
	var appErr *temporal.ApplicationError
	nonRetryable := false
	if errors.As(err, &appErr) {
		errType, nonRetryable = appErr.Type(), appErr.NonRetryable()
	} else if errors.As(err, new(*temporal.TimeoutError)) {
		errType = "Timeout"
	}
	if fast && !nonRetryable {
		d.Status, d.Delayed, d.ErrorType, d.Error = DeliveryPending, true, errType, truncate(rootMessage(err), 500)
		if o.onDelayed != nil {
			o.onDelayed(ctx, *d)
		}
		return
	}
	o.ledger.Fail(seq, errType, rootMessage(err))
	countMetric(ctx, MetricDeliveriesFailed, "destination", string(d.Dest.Kind), "error_type", errType)
	if failed, ok := o.ledger.Get(seq); ok && o.onFailed != nil {
		o.onFailed(ctx, *failed)
	}
	if o.failedChanged != nil {
		o.failedChanged(ctx)
	}
}

func (o *outbox) start(ctx workflow.Context, d Delivery, fast bool) workflow.Future {
	policy := o.policy
	if fast {
		policy = fastTry
	}
	ctx = workflow.WithActivityOptions(ctx, policy.activityOptions(o.summary(d)))
	if d.Dest.Kind == DestFlex {
		ctx = twilioCtx(ctx)
	} else {
		ctx = discordCtx(ctx)
	}
	prior := max(d.Attempts-1, 0)
	switch {
	case d.EditOf != nil:
		return workflow.ExecuteActivity(ctx, discordActs.EditDirectMessage, activities.EditDirectMessageInput{
			ChannelID: d.EditOf.ChannelID, MessageID: d.EditOf.MessageID, Message: d.Message,
		})
	case d.Dest.Kind == DestMember:
		return workflow.ExecuteActivity(ctx, discordActs.SendDirectMessage, activities.SendDirectMessageInput{
			UserID: d.Dest.ID, Nonce: d.Key, Message: d.Message, PriorAttempts: prior, FirstTriedAt: d.FirstTriedAt,
		})
	case d.Dest.Kind == DestChannel:
		return workflow.ExecuteActivity(ctx, discordActs.PostChannelMessage, activities.PostChannelMessageInput{
			ChannelID: d.Dest.ID, Nonce: d.Key, Message: d.Message,
		})
	case d.Dest.Kind == DestInteraction:
		var in activities.SendInteractionFollowUpInput
		if d.Interaction != nil {
			in = activities.SendInteractionFollowUpInput{
				ApplicationID: d.Interaction.ApplicationID, Token: d.Interaction.Token, Message: d.Message,
			}
		}
		return workflow.ExecuteActivity(ctx, discordActs.SendInteractionFollowUp, in)
	case d.Dest.Kind == DestAnnouncement && d.Announcement != nil:
		in := *d.Announcement
		in.ChannelID, in.Nonce, in.PriorAttempts, in.FirstTriedAt = d.Dest.ID, d.Key, prior, d.FirstTriedAt
		return workflow.ExecuteActivity(ctx, discordActs.PostAnnouncement, in)
	case d.Dest.Kind == DestFlex:
		link, _ := o.flexLink(d.Dest.ID)
		return workflow.ExecuteActivity(ctx, flexActs.PostFlexMessage, activities.PostFlexMessageInput{
			ConversationSID: link.ConversationSID, Identity: link.Identity, Body: d.Message.Content, DeliveryKey: d.Key,
			PriorAttempts: prior,
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
