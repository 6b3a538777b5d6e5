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

// localTry bounds the local-activity try of a relayed message (the fast path): one attempt of at
// most a few seconds, run by the worker that runs the workflow, inside its workflow task. It
// costs one MarkerRecorded event instead of an activity's three events and the workflow task
// that follows them. When it does not get through (the provider is slow or failing, the worker's
// share of the provider's rate is used up, the worker has no client for the provider), the
// delivery goes on as a regular activity on the provider's rate-limited task queue, with the
// bounded retry policy, so a long outage never holds a workflow task.
var localTry = workflow.LocalActivityOptions{
	ScheduleToCloseTimeout: 4 * time.Second,
	RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
}

// ErrFastPathBusy is the error type of a local-activity try refused because the worker's share
// of the provider's rate is used up (worker.FastPathLimits); the delivery goes on as a regular
// activity at once.
const ErrFastPathBusy = "FastPathBusy"

// deliveryResult is what a delivered delivery produced that the workflow may need.
type deliveryResult struct {
	ChannelID  string   // DM channel of a direct message
	MessageIDs []string // Discord messages created
	FlexIndex  int      // index of the message in the Flex conversation
	HasIndex   bool
	// FileIndexes are the indexes of the media messages that followed it (its files).
	FileIndexes []int
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
	// local tries direct messages to the member and posts to Flex as a local activity first
	// (localTry), and batches those queued for one destination (pump): conversations of
	// behaviourLocalDelivery.
	local bool
	// holdLocal keeps deliveries off the local path while the run may end (see
	// conversation.settleLocalTries): they go as regular activities.
	holdLocal bool
	// lastLocalAt is the workflow time of the task in which a local try last finished.
	lastLocalAt time.Time
}

// localInThisTask reports whether a local try finished in the current workflow task. Its result
// is kept only once the task completes; the server refuses a task that ends the run (continue-as-
// new, complete) when a signal came in meanwhile, and the try would then run again on replay. So
// a run does not end in a task that finished a local try (see conversation.settleLocalTries).
func (o *outbox) localInThisTask(ctx workflow.Context) bool {
	return !o.lastLocalAt.IsZero() && o.lastLocalAt.Equal(workflow.Now(ctx))
}

// tryLocal reports whether d's next try is the local-activity fast path: the first try of a
// member DM or a Flex post. One with files is not: moving files takes longer than a local try
// may.
func (o *outbox) tryLocal(d Delivery) bool {
	return o.local && !o.holdLocal && !d.LocalTried && d.EditOf == nil && d.Attempts == 1 &&
		(d.Dest.Kind == DestMember || d.Dest.Kind == DestFlex) && len(d.Message.Files) == 0
}

func (o *outbox) ready(dest Destination) bool {
	if dest.Kind == DestFlex {
		_, ok := o.flexLink(dest.ID)
		return ok
	}
	return true
}

// maxBatch bounds the deliveries one activity carries (batching: see pump).
const maxBatch = 10

// pump starts every delivery that may start now. With batching (the local-delivery behaviour),
// the DMs or Flex posts queued for one destination behind the first, at the same stage of their
// tries, go out with it in one activity, in order, each with its own idempotency key.
func (o *outbox) pump(ctx workflow.Context, sel workflow.Selector) {
	if o.paused {
		return
	}
	for _, seq := range o.ledger.Ready(o.ready) {
		seqs := []int64{seq}
		if first, _ := o.ledger.Get(seq); o.local && batchable(*first) {
			seqs = o.ledger.Following(seq, maxBatch, func(d Delivery) bool {
				return batchable(d) && d.Attempts == first.Attempts && d.LocalTried == first.LocalTried &&
					(len(d.Message.Files) > 0) == (len(first.Message.Files) > 0) // files never go local
			})
		}
		batch := make([]Delivery, 0, len(seqs))
		for _, s := range seqs {
			o.ledger.Start(s, workflow.Now(ctx))
			d, _ := o.ledger.Get(s)
			batch = append(batch, *d)
		}
		d := batch[0]
		o.inFlight++
		if o.tryLocal(d) {
			f := o.startLocal(ctx, batch)
			sel.AddFuture(f, func(f workflow.Future) {
				o.inFlight--
				o.settleLocal(ctx, seqs, f)
			})
			continue
		}
		// The first regular try of a Flex post is short (fastTry) unless a local try came first.
		firstRegular := 1
		if d.LocalTried {
			firstRegular = 2
		}
		fast := o.fastFirst && d.Dest.Kind == DestFlex && d.EditOf == nil && d.Attempts == firstRegular
		f := o.start(ctx, batch, fast)
		sel.AddFuture(f, func(f workflow.Future) {
			o.inFlight--
			o.settle(ctx, seqs, f, fast)
		})
	}
}

// batchable reports whether d may go out in one activity with others to its destination: a new
// DM or Flex post (not an edit).
func batchable(d Delivery) bool {
	return d.EditOf == nil && (d.Dest.Kind == DestMember || d.Dest.Kind == DestFlex)
}

// settleLocal records the outcome of a local-activity try, for each delivery it carried:
// delivered, failed for good (a non-retryable error, such as a member who closed their DMs, or a
// destination that went away meanwhile), or back to pending for a regular activity.
func (o *outbox) settleLocal(ctx workflow.Context, seqs []int64, f workflow.Future) {
	o.lastLocalAt = workflow.Now(ctx)
	results, err := o.results(ctx, seqs, f)
	var appErr *temporal.ApplicationError
	for i, seq := range seqs {
		d, ok := o.ledger.Get(seq)
		if !ok {
			continue // dropped while in flight
		}
		if err == nil || (errors.As(err, &appErr) && appErr.NonRetryable()) || !o.ready(d.Dest) {
			o.finish(ctx, seq, results[i], err, false)
			continue
		}
		d.Status, d.LocalTried = DeliveryPending, true
		if errors.As(err, &appErr) {
			d.ErrorType, d.Error = appErr.Type(), truncate(rootMessage(err), 500)
		} else {
			d.ErrorType, d.Error = "LocalTry", truncate(rootMessage(err), 500)
		}
	}
}

// settle records the outcome of a delivery activity, for each delivery it carried.
func (o *outbox) settle(ctx workflow.Context, seqs []int64, f workflow.Future, fast bool) {
	results, err := o.results(ctx, seqs, f)
	for i, seq := range seqs {
		o.finish(ctx, seq, results[i], err, fast)
	}
}

// results reads what an activity that carried the deliveries seqs produced, one result per
// delivery (zero results for the deliveries after a failure).
func (o *outbox) results(ctx workflow.Context, seqs []int64, f workflow.Future) ([]deliveryResult, error) {
	out := make([]deliveryResult, len(seqs))
	d, ok := o.ledger.Get(seqs[0])
	if !ok {
		return out, f.Get(ctx, nil) // dropped while in flight
	}
	var err error
	switch {
	case d.EditOf != nil:
		err = f.Get(ctx, nil)
	case d.Dest.Kind == DestMember:
		var r activities.SendDirectMessageResult
		err = f.Get(ctx, &r)
		all := append([]activities.SendDirectMessageResult{r}, r.More...)
		for i := range min(len(all), len(out)) {
			out[i].ChannelID, out[i].MessageIDs = all[i].ChannelID, all[i].MessageIDs
		}
	case d.Dest.Kind == DestFlex:
		var r activities.PostFlexMessageResult
		err = f.Get(ctx, &r)
		all := append([]activities.PostFlexMessageResult{r}, r.More...)
		for i := range min(len(all), len(out)) {
			out[i].FlexIndex, out[i].HasIndex, out[i].FileIndexes = all[i].Index, all[i].MessageSID != "", all[i].FileIndexes
		}
	case d.Dest.Kind == DestAnnouncement:
		var r activities.PostAnnouncementResult
		err = f.Get(ctx, &r)
		if r.MessageID != "" {
			out[0].MessageIDs = []string{r.MessageID}
		}
	default:
		err = f.Get(ctx, nil)
	}
	return out, err
}

// finish records the outcome of one delivery's try: res when err is nil.
func (o *outbox) finish(ctx workflow.Context, seq int64, res deliveryResult, err error, fast bool) {
	d, ok := o.ledger.Get(seq)
	if !ok {
		return // dropped while in flight
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
	// A delivery whose destination went away while it was tried (the chat with the agent ended)
	// is not tried again: it fails, and onFailed decides what becomes of it (local-delivery
	// behaviour; before it, such a delivery waited for a destination that never came back).
	if fast && !nonRetryable && (!o.local || o.ready(d.Dest)) {
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

// start starts the regular activity of a delivery, with the deliveries batched behind it (the
// rest of ds) when there are any.
func (o *outbox) start(ctx workflow.Context, ds []Delivery, fast bool) workflow.Future {
	d := ds[0]
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
		return workflow.ExecuteActivity(ctx, discordActs.SendDirectMessage, dmInput(ds, true))
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
		return workflow.ExecuteActivity(ctx, flexActs.PostFlexMessage, flexInput(link, ds, true))
	}
	// Unknown kinds cannot come from this package; fail the delivery visibly rather than panic.
	f, set := workflow.NewFuture(ctx)
	set.SetError(temporal.NewNonRetryableApplicationError("unknown destination "+d.Dest.String(), "UnknownDestination", nil))
	return f
}

// startLocal starts the local-activity try of member DMs or Flex posts (see localTry). The
// activities are the same as the regular ones, with the same idempotency keys, so a try that
// timed out after it took effect is not repeated by the regular activity after it.
//
// A local try is recorded only when its workflow task completes. If the worker dies in between,
// the task runs again on another worker, at least half a workflow task timeout later, and the
// try with it. Discord drops a repeated DM by its nonce; Twilio has no such key, so a Flex post
// whose member message was written that long ago first looks for its delivery key in the
// conversation (as a retry does).
func (o *outbox) startLocal(ctx workflow.Context, ds []Delivery) workflow.Future {
	ctx = workflow.WithLocalActivityOptions(ctx, localTry)
	if ds[0].Dest.Kind == DestFlex {
		link, _ := o.flexLink(ds[0].Dest.ID)
		in := flexInput(link, ds, false)
		late := workflow.Now(ctx).Add(-workflow.GetInfo(ctx).WorkflowTaskTimeout / 2)
		if !ds[0].WrittenAt.IsZero() && ds[0].WrittenAt.Before(late) {
			in.PriorAttempts = 1
		}
		for i, d := range ds[1:] {
			if !d.WrittenAt.IsZero() && d.WrittenAt.Before(late) {
				in.More[i].PriorAttempts = 1
			}
		}
		return workflow.ExecuteLocalActivity(ctx, flexActs.PostFlexMessage, in)
	}
	return workflow.ExecuteLocalActivity(ctx, discordActs.SendDirectMessage, dmInput(ds, false))
}

// dmInput is the input of SendDirectMessage for ds, DMs to one member in order. withPrior passes
// how many activities tried each before (a local try passes none: it is always a first try).
func dmInput(ds []Delivery, withPrior bool) activities.SendDirectMessageInput {
	prior := func(d Delivery) int {
		if !withPrior {
			return 0
		}
		return max(d.Attempts-1, 0)
	}
	in := activities.SendDirectMessageInput{UserID: ds[0].Dest.ID, Nonce: ds[0].Key, Message: ds[0].Message,
		PriorAttempts: prior(ds[0]), FirstTriedAt: ds[0].FirstTriedAt}
	for _, d := range ds[1:] {
		in.More = append(in.More, activities.DirectMessage{Nonce: d.Key, Message: d.Message, PriorAttempts: prior(d), FirstTriedAt: d.FirstTriedAt})
	}
	return in
}

// flexInput is the input of PostFlexMessage for ds, posts to one Flex conversation in order.
func flexInput(link activities.FlexInteraction, ds []Delivery, withPrior bool) activities.PostFlexMessageInput {
	prior := func(d Delivery) int {
		if !withPrior {
			return 0
		}
		return max(d.Attempts-1, 0)
	}
	in := activities.PostFlexMessageInput{ConversationSID: link.ConversationSID, Identity: link.Identity,
		Body: ds[0].Message.Content, Files: ds[0].Message.Files, DeliveryKey: ds[0].Key, PriorAttempts: prior(ds[0])}
	for _, d := range ds[1:] {
		in.More = append(in.More, activities.FlexMessage{Body: d.Message.Content, Files: d.Message.Files, DeliveryKey: d.Key, PriorAttempts: prior(d)})
	}
	return in
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

// snowflakeTime is the time a Discord id (a snowflake) was made, zero when id is not one.
func snowflakeTime(id string) time.Time {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n>>22 == 0 {
		return time.Time{}
	}
	const discordEpochMillis = 1420070400000
	return time.UnixMilli(int64(n>>22) + discordEpochMillis).UTC()
}
