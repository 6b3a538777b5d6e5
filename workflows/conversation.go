package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
)

// ConversationOptions tune a Conversation. Zero values mean the defaults.
type ConversationOptions struct {
	// InactivityTimeout closes a conversation still with the bot after this long without a word
	// from the member (default 30 minutes).
	InactivityTimeout time.Duration `json:"inactivity_timeout,omitempty"`
	// RatingTimeout is how long a resolved conversation waits for the member's rating (default 24 hours).
	RatingTimeout time.Duration `json:"rating_timeout,omitempty"`
	// QueueTimeout is how long a member waits in the queue before hearing that no agent is free
	// (default 10 minutes).
	QueueTimeout time.Duration `json:"queue_timeout,omitempty"`
	// ChoiceTimeout is how long the member has to choose between keep waiting and leave a message;
	// no choice leaves a message (default 30 minutes).
	ChoiceTimeout time.Duration `json:"choice_timeout,omitempty"`
	// LiveCheckAfter is how long a live chat may be silent both ways before the workflow checks
	// that Flex still has it (default 1 hour).
	LiveCheckAfter time.Duration `json:"live_check_after,omitempty"`
	// LiveMaxSilence resolves a live chat with no message either way for this long, even if
	// Flex still shows it open (default 24 hours, Flex's own closed timer).
	LiveMaxSilence time.Duration `json:"live_max_silence,omitempty"`
	// LiveCheckFailures is how many checks in a row may fail (Twilio unreachable) before the chat
	// is resolved anyway (default 3).
	LiveCheckFailures int `json:"live_check_failures,omitempty"`
	// MaxHandovers bounds how often one case is handed to Flex (default 5).
	MaxHandovers int `json:"max_handovers,omitempty"`
	// FailedRetention is how long a closed conversation with failed deliveries stays open for an
	// operator's RetryDeliveries (default 72 hours).
	FailedRetention time.Duration `json:"failed_retention,omitempty"`
	// ContinueAsNewAfter is the number of signals after which a run continues as new (default 2,000).
	ContinueAsNewAfter int `json:"continue_as_new_after,omitempty"`
	// TranscriptTail is how many transcript lines the state keeps (default 40).
	TranscriptTail int `json:"transcript_tail,omitempty"`
	// Delivery bounds the retries of each delivery.
	Delivery DeliveryPolicy `json:"delivery,omitempty"`
	// Transfer bounds the retries of handing the conversation to Flex.
	Transfer DeliveryPolicy `json:"transfer,omitempty"`
	// Attachments says which files are passed on, either way.
	Attachments AttachmentPolicy `json:"attachments,omitempty"`
}

func (o ConversationOptions) withDefaults() ConversationOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.InactivityTimeout, 30*time.Minute)
	def(&o.RatingTimeout, 24*time.Hour)
	def(&o.QueueTimeout, 10*time.Minute)
	def(&o.ChoiceTimeout, 30*time.Minute)
	def(&o.LiveCheckAfter, time.Hour)
	def(&o.LiveMaxSilence, 24*time.Hour)
	def(&o.FailedRetention, 72*time.Hour)
	if o.LiveCheckFailures <= 0 {
		o.LiveCheckFailures = 3
	}
	if o.MaxHandovers <= 0 {
		o.MaxHandovers = 5
	}
	if o.ContinueAsNewAfter <= 0 {
		o.ContinueAsNewAfter = 2000
	}
	if o.TranscriptTail <= 0 {
		o.TranscriptTail = 40
	}
	o.Delivery = o.Delivery.withDefaults()
	if o.Transfer.MaxAttempts <= 0 {
		o.Transfer.MaxAttempts = 10
	}
	o.Transfer = o.Transfer.withDefaults()
	o.Attachments = o.Attachments.withDefaults()
	return o
}

// ConversationInput starts a Conversation. State is set only by continue-as-new.
type ConversationInput struct {
	Member    Member              `json:"member"`
	GuildID   string              `json:"guild_id,omitempty"`
	GuildName string              `json:"guild_name,omitempty"`
	Locale    string              `json:"locale,omitempty"`
	Options   ConversationOptions `json:"options,omitempty"`
	State     *ConversationState  `json:"state,omitempty"`
}

// TransferState tracks handing the conversation to Flex.
type TransferState struct {
	// Pending: the member asked for a human and the transfer has not started yet.
	Pending bool `json:"pending,omitempty"`
	// Running: CreateFlexInteraction is under way.
	Running bool `json:"running,omitempty"`
	// Abandon: the hand-over under way is no longer wanted (operator close, no agent); the
	// interaction it creates is closed at once.
	Abandon bool   `json:"abandon,omitempty"`
	Error   string `json:"error,omitempty"`
}

// OpsState is what the workflow has under way or due besides deliveries. It is carried through
// continue-as-new, so a run never forgets a close it owes Flex.
type OpsState struct {
	// CloseFlex lists the Flex interactions to close (an operator close, no agent, a hand-over
	// that finished after it was abandoned), oldest first; ClosingFlex: the first is being closed.
	CloseFlex   []activities.FlexInteraction `json:"close_flex,omitempty"`
	ClosingFlex bool                         `json:"closing_flex,omitempty"`
	// OpeningCase: the Case child workflow is being started.
	OpeningCase bool `json:"opening_case,omitempty"`
	// Checking: CheckFlexInteraction is under way.
	Checking bool `json:"checking,omitempty"`
	// FetchDue / Fetching: agent messages missing after a gap are to be / being fetched.
	FetchDue bool `json:"fetch_due,omitempty"`
	Fetching bool `json:"fetching,omitempty"`
	// Sweep is a Flex conversation left behind (closed under a member's message) whose agent
	// messages after SweepAfter are still to be fetched and relayed.
	Sweep      *activities.FlexInteraction `json:"sweep,omitempty"`
	SweepAfter int                         `json:"sweep_after,omitempty"`
	// Signalling counts signals to cases not yet acknowledged.
	Signalling int `json:"signalling,omitempty"`
}

// ButtonMessage is a delivered message with buttons that may stop applying.
type ButtonMessage struct {
	Kind    string             `json:"kind"` // "bot", "no_agent", "rating"
	Ref     MessageRef         `json:"ref"`
	Message activities.Message `json:"message"`
}

// PendingRating is a rating the member may still give for an earlier case after moving on to a
// new question.
type PendingRating struct {
	CaseID string    `json:"case_id"`
	Until  time.Time `json:"until"`
}

// ConversationState is the whole state of a Conversation, carried through continue-as-new.
type ConversationState struct {
	Member      Member `json:"member"`
	GuildID     string `json:"guild_id,omitempty"`
	GuildName   string `json:"guild_name,omitempty"`
	Locale      string `json:"locale,omitempty"`
	Stage       Stage  `json:"stage"`
	Subject     string `json:"subject,omitempty"` // the member's first question
	CaseID      string `json:"case_id,omitempty"`
	CasesOpened int    `json:"cases_opened,omitempty"`

	Flex     *activities.FlexInteraction `json:"flex,omitempty"`
	Transfer TransferState               `json:"transfer,omitempty"`
	Agent    string                      `json:"agent,omitempty"`
	Articles []activities.Article        `json:"articles,omitempty"`
	Rating   int                         `json:"rating,omitempty"`

	StartedAt    time.Time `json:"started_at"`
	LastActivity time.Time `json:"last_activity"`
	ResolvedAt   time.Time `json:"resolved_at,omitempty"`
	ClosedAt     time.Time `json:"closed_at,omitempty"`
	ClosedReason string    `json:"closed_reason,omitempty"`
	// Interaction is the latest /helpme interaction and when it came, for follow-ups.
	Interaction        *Interaction `json:"interaction,omitempty"`
	InteractionAt      time.Time    `json:"interaction_at,omitempty"`
	InteractionEventID string       `json:"interaction_event_id,omitempty"`

	Transcript []activities.TranscriptLine `json:"transcript,omitempty"`
	// Record is the durable transcript of the case not written to the blob store yet.
	Record RecordState `json:"record,omitempty"`
	// BotFiles are files the member attached before the hand-over; the agent gets them when the
	// case is handed over.
	BotFiles []activities.File `json:"bot_files,omitempty"`
	Seen     SeenSet           `json:"seen"`
	Ledger   Ledger            `json:"ledger"`
	// Runs counts continue-as-new hand-overs.
	Runs int `json:"runs,omitempty"`

	// Behaviour is the workflow behaviour version this conversation runs (see versioning.go).
	Behaviour int `json:"behaviour,omitempty"`
	// Episode counts the conversations this workflow has held for the member: a new question
	// after the end starts the next one. Work started in one episode never acts on another.
	Episode int `json:"episode,omitempty"`
	// QueuedAt is when the member joined the queue; NoAgentAt when they heard no agent is free.
	QueuedAt  time.Time `json:"queued_at,omitempty"`
	NoAgentAt time.Time `json:"no_agent_at,omitempty"`
	// LastFlexActivity is the last message either way while live (or the last check);
	// LastChatAt the last message either way.
	LastFlexActivity time.Time `json:"last_flex_activity,omitempty"`
	LastChatAt       time.Time `json:"last_chat_at,omitempty"`
	CheckFailures    int       `json:"check_failures,omitempty"`
	// Handovers counts the hand-overs of the current case to Flex.
	Handovers int `json:"handovers,omitempty"`
	// FlexIndex is the index up to which every message of the current Flex conversation is
	// known (relayed, posted by us, or fetched); FlexAhead holds the known indexes past it. An
	// agent message past FlexIndex+1 means one before it is missing.
	FlexIndex      int   `json:"flex_index,omitempty"`
	FlexIndexKnown bool  `json:"flex_index_known,omitempty"`
	FlexAhead      []int `json:"flex_ahead,omitempty"`
	// FlexClosed: the current Flex conversation is closed; no agent message can follow.
	FlexClosed bool `json:"flex_closed,omitempty"`
	// FlexDelayed: the member was told a message to the agent is delayed.
	FlexDelayed bool `json:"flex_delayed,omitempty"`
	// HeldAgentMessages wait for the messages missing before them to be fetched.
	HeldAgentMessages []AgentMessageSignal `json:"held_agent_messages,omitempty"`
	// CaseReported is the case whose end this conversation has reported.
	CaseReported  string          `json:"case_reported,omitempty"`
	PendingRating *PendingRating  `json:"pending_rating,omitempty"`
	Buttons       []ButtonMessage `json:"buttons,omitempty"`
	Ops           OpsState        `json:"ops,omitempty"`
	// DMChannelID and LastMessageID let ingress backfill DMs the gateway missed.
	DMChannelID   string `json:"dm_channel_id,omitempty"`
	LastMessageID string `json:"last_message_id,omitempty"`
}

// ConversationStatus is the answer of QueryStatus on a Conversation.
type ConversationStatus struct {
	Member     Member                      `json:"member"`
	Stage      Stage                       `json:"stage"`
	Locale     string                      `json:"locale,omitempty"`
	CaseID     string                      `json:"case_id,omitempty"`
	Agent      string                      `json:"agent,omitempty"`
	Flex       *activities.FlexInteraction `json:"flex,omitempty"`
	Transfer   TransferState               `json:"transfer,omitempty"`
	Articles   []activities.Article        `json:"articles,omitempty"`
	Rating     int                         `json:"rating,omitempty"`
	Transcript []activities.TranscriptLine `json:"transcript,omitempty"`
	Pending    []DeliveryView              `json:"pending,omitempty"`
	InFlight   []DeliveryView              `json:"in_flight,omitempty"`
	Failed     []DeliveryView              `json:"failed,omitempty"`
	Delivered  int64                       `json:"delivered"`
	Runs       int                         `json:"runs,omitempty"`
	// DMChannelID is the member's DM channel with the bot, and LastMessageID the newest member
	// message the conversation has taken: ingress backfills the DMs after it when the gateway
	// reconnects.
	DMChannelID   string `json:"dm_channel_id,omitempty"`
	LastMessageID string `json:"last_message_id,omitempty"`
	// Deadline is when the current stage's deadline falls, and DeadlineLabel what happens then.
	Deadline      time.Time `json:"deadline,omitempty"`
	DeadlineLabel string    `json:"deadline_label,omitempty"`
	// ClosedReason says why a closed conversation closed.
	ClosedReason string `json:"closed_reason,omitempty"`
	Episode      int    `json:"episode,omitempty"`
	Handovers    int    `json:"handovers,omitempty"`
	// TranscriptUnsaved counts the transcript lines of the case not yet written to the blob
	// store; TranscriptError is why the last write failed; TranscriptLost counts lines given up
	// after the store kept failing at the end. The case's transcript id is its case id.
	TranscriptUnsaved int    `json:"transcript_unsaved,omitempty"`
	TranscriptError   string `json:"transcript_error,omitempty"`
	TranscriptLost    int    `json:"transcript_lost,omitempty"`
}

// ConversationResult is what a finished Conversation returns.
type ConversationResult struct {
	Stage        Stage  `json:"stage"`
	CaseID       string `json:"case_id,omitempty"`
	Rating       int    `json:"rating,omitempty"`
	ClosedReason string `json:"closed_reason,omitempty"`
	Undelivered  int    `json:"undelivered,omitempty"`
}

// Closing reasons.
const (
	ReasonSolved       = "solved"
	ReasonInactive     = "inactive"
	ReasonRated        = "rated"
	ReasonNoRating     = "rating_timeout"
	ReasonByOperator   = "closed_by_operator"
	ReasonNewQuestion  = "new_conversation"
	ReasonLeftMessage  = "left_message"
	ReasonFlexGone     = "flex_gone"
	ReasonHandoverFail = "handover_failed"
)

// Conversation is the workflow of one member being helped: the FAQ bot, the transfer to a live
// Flex agent, the live chat, the resolution and the rating. It is driven by signals from ingress
// and delivers everything it says through its ledger. Every stage has a deadline and a way out
// (deadlines.go), and every end is reported to the member's case.
func Conversation(ctx workflow.Context, in ConversationInput) (ConversationResult, error) {
	c, err := newConversation(ctx, in)
	if err != nil {
		return ConversationResult{}, err
	}
	return c.run(ctx)
}

type conversation struct {
	s    ConversationState
	opts ConversationOptions
	out  outbox
	sel  workflow.Selector

	wake        waker
	signals     int // signals handled in this run
	timer       deadlineTimer
	lastDetails string
	lastSA      struct {
		stage  Stage
		caseID string
		agent  string
		failed int
	}
	channels []signalChannel
	// settle receives the signal the conversation sends itself before it ends a run in which a
	// local try just finished (settleLocalTries).
	settle workflow.ReceiveChannel
}

// signalSettle is the signal a conversation sends itself in settleLocalTries.
const signalSettle = "flexcord.settle"

type signalChannel struct {
	name   string
	ch     workflow.ReceiveChannel
	handle func(ctx workflow.Context, ch workflow.ReceiveChannel, more bool)
}

func newConversation(ctx workflow.Context, in ConversationInput) (*conversation, error) {
	if in.Member.UserID == "" && (in.State == nil || in.State.Member.UserID == "") {
		return nil, temporal.NewNonRetryableApplicationError("conversation input has no member user id", "InvalidInput", nil)
	}
	c := &conversation{opts: in.Options.withDefaults(), sel: workflow.NewSelector(ctx)}
	c.wake = newWaker(ctx, c.sel)
	if in.State != nil {
		c.s = *in.State
		c.s.Runs++
		c.s.Ledger.resetInFlight()
		c.recoverOps()
	} else {
		now := workflow.Now(ctx)
		behaviour := behaviourOf(ctx)
		seed := workflow.GetInfo(ctx).WorkflowExecution.RunID
		if behaviour >= behaviourEveryPathEnds {
			// The start time joins the run id, so keys differ even where run ids repeat
			// (the test environment gives every run the same one).
			seed += "|" + workflow.GetInfo(ctx).WorkflowStartTime.UTC().Format(time.RFC3339Nano)
		}
		c.s = ConversationState{
			Member: in.Member, GuildID: in.GuildID, GuildName: in.GuildName, Locale: in.Locale,
			Stage: StageBot, StartedAt: now, LastActivity: now,
			Ledger:    Ledger{KeyPrefix: keyPrefix(seed)},
			Seen:      SeenSet{Max: DefaultSeenSetSize},
			Behaviour: behaviour,
		}
	}
	c.timer.lazy = c.fastRelay()
	c.out = outbox{
		ledger:    &c.s.Ledger,
		policy:    c.opts.Delivery,
		fastFirst: c.v2(),
		flexLink: func(caseID string) (activities.FlexInteraction, bool) {
			if c.s.Flex == nil || caseID != c.s.CaseID {
				return activities.FlexInteraction{}, false
			}
			return *c.s.Flex, true
		},
		summary:       c.deliverySummary,
		onFailed:      c.deliveryFailed,
		onDelayed:     c.deliveryDelayed,
		onDelivered:   c.deliveryDone,
		failedChanged: func(ctx workflow.Context) { c.publish(ctx) },
		local:         c.localDelivery(),
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (ConversationStatus, error) {
		return c.status(), nil
	}); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateRetryDeliveries,
		func(ctx workflow.Context, req RetryDeliveriesRequest) (RetryDeliveriesResult, error) {
			requeued := c.out.retry(ctx)
			c.wake.wake()
			c.note(ctx, fmt.Sprintf("%d failed deliveries re-queued by %s", len(requeued), orDefault(req.Operator, "an operator")))
			return RetryDeliveriesResult{Requeued: requeued}, nil
		}); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateClose,
		func(ctx workflow.Context, req CloseRequest) (ConversationStatus, error) {
			c.closeByOperator(ctx, req)
			c.wake.wake()
			return c.status(), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req CloseRequest) error {
			if c.s.Stage == StageClosed {
				return errors.New("conversation is already closed")
			}
			return nil
		}}); err != nil {
		return nil, err
	}
	return c, nil
}

// recoverOps makes a new run pick up what an earlier run had under way. The earlier run waits for
// its operations before continuing as new, so this only matters for state made by hand or by a
// future change; it keeps the rule that nothing owed is forgotten.
func (c *conversation) recoverOps() {
	if c.s.Transfer.Running {
		c.s.Transfer.Running, c.s.Transfer.Pending = false, true
	}
	if c.s.Ops.OpeningCase {
		c.s.Ops.OpeningCase, c.s.Transfer.Pending = false, true
	}
	if c.s.Ops.Fetching {
		c.s.Ops.Fetching, c.s.Ops.FetchDue = false, true
	}
	c.s.Ops.ClosingFlex, c.s.Ops.Checking, c.s.Ops.Signalling = false, false, 0
}

func (c *conversation) run(ctx workflow.Context) (ConversationResult, error) {
	c.channels = []signalChannel{
		{SignalHelpRequested, workflow.GetSignalChannel(ctx, SignalHelpRequested), receive(c.onHelpRequested)},
		{SignalUserMessage, workflow.GetSignalChannel(ctx, SignalUserMessage), receive(c.onUserMessage)},
		{SignalUserAction, workflow.GetSignalChannel(ctx, SignalUserAction), receive(c.onUserAction)},
		{SignalAgentJoined, workflow.GetSignalChannel(ctx, SignalAgentJoined), receive(c.onAgentJoined)},
		{SignalAgentMessage, workflow.GetSignalChannel(ctx, SignalAgentMessage), receive(c.onAgentMessage)},
		{SignalAgentWrappedUp, workflow.GetSignalChannel(ctx, SignalAgentWrappedUp), receive(c.onAgentWrappedUp)},
	}
	if c.v2() {
		c.channels = append(c.channels, signalChannel{SignalNoAgent, workflow.GetSignalChannel(ctx, SignalNoAgent), receive(c.onNoAgent)})
	}
	if c.record() {
		c.channels = append(c.channels, signalChannel{SignalUserMessageChanged, workflow.GetSignalChannel(ctx, SignalUserMessageChanged), receive(c.onUserMessageChanged)})
	}
	c.settle = workflow.GetSignalChannel(ctx, signalSettle)
	for _, sc := range c.channels {
		sc := sc
		c.sel.AddReceive(sc.ch, func(ch workflow.ReceiveChannel, more bool) {
			c.signals++
			sc.handle(ctx, ch, more)
		})
	}

	if c.s.Runs == 0 {
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchAttrDiscordUserID.ValueSet(c.s.Member.UserID))
	}
	c.publish(ctx)

	for {
		c.step(ctx)
		if c.finished() && !c.signalsWaiting() {
			if c.out.localInThisTask(ctx) {
				c.settleLocalTries(ctx)
				continue
			}
			if c.s.Record.pending() > 0 {
				c.s.Record.giveUp(ctx)
			}
			c.publish(ctx)
			return ConversationResult{
				Stage: c.s.Stage, CaseID: c.s.CaseID, Rating: c.s.Rating, ClosedReason: c.s.ClosedReason,
				Undelivered: len(c.s.Ledger.Queue),
			}, nil
		}
		if c.shouldContinueAsNew(ctx) {
			return ConversationResult{}, c.continueAsNew(ctx)
		}
		c.sel.Select(ctx)
	}
}

// step does whatever the state calls for before waiting again: transfers, closes, checks,
// deliveries, deadlines, and the Temporal UI's view of the state.
func (c *conversation) step(ctx workflow.Context) {
	for {
		if !c.out.paused {
			c.startDueOps(ctx)
			c.saveRecord(ctx)
		}
		// A run does not end in a workflow task that finished a local try (settleLocalTries),
		// so there are none once the conversation is closed or due to continue as new.
		c.out.holdLocal = c.s.Stage == StageClosed || c.shouldContinueAsNew(ctx)
		c.out.pump(ctx, c.sel)
		at, label := c.deadline()
		c.timer.arm(ctx, c.sel, at, label)
		if !c.timer.due(ctx) {
			break
		}
		c.onDeadline(ctx)
		if next, nextLabel := c.deadline(); c.v2() && next.Equal(at) && nextLabel == label {
			// A deadline that does not move after firing would spin; wait for the next event.
			workflow.GetLogger(ctx).Error("a deadline did not move after it fired", "deadline", label, "stage", c.s.Stage)
			break
		}
	}
	c.publish(ctx)
}

// pendingOps counts the operations under way whose results the workflow waits for.
func (c *conversation) pendingOps() int {
	n := c.s.Ops.Signalling
	if c.s.Record.Saving > 0 {
		n++
	}
	for _, b := range []bool{c.s.Transfer.Running, c.s.Ops.ClosingFlex, c.s.Ops.OpeningCase, c.s.Ops.Checking, c.s.Ops.Fetching} {
		if b {
			n++
		}
	}
	return n
}

// signalsWaiting reports whether a signal is buffered that the loop has not handled yet
// (local-delivery behaviour): a conversation that is done handles it before it ends, rather than
// leave it to the server to refuse the completion. Local-activity tries finish inside the
// workflow task, so a conversation can be done at the very moment a member writes again.
func (c *conversation) signalsWaiting() bool {
	if !c.localDelivery() {
		return false
	}
	for _, sc := range c.channels {
		if sc.ch.Len() > 0 {
			return true
		}
	}
	return false
}

func (c *conversation) finished() bool {
	return c.s.Stage == StageClosed && c.pendingOps() == 0 && c.out.inFlight == 0 &&
		c.s.Ledger.Count(DeliveryPending) == 0 && c.s.Ledger.Count(DeliveryFailed) == 0 &&
		!c.s.Transfer.Pending && len(c.s.Ops.CloseFlex) == 0 && !c.s.Ops.FetchDue && c.s.Ops.Sweep == nil &&
		(c.s.Record.pending() == 0 || c.s.Record.Failures >= recordGiveUp)
}

func (c *conversation) shouldContinueAsNew(ctx workflow.Context) bool {
	return c.signals >= c.opts.ContinueAsNewAfter || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// continueAsNew hands the whole state to a new run. It first lets every activity of this run
// finish (their results are state), then drains every signal already buffered, so that nothing
// received is lost, and waits for update handlers to finish. What is still due (a Flex close, a
// fetch) is in the state and done by the next run.
func (c *conversation) continueAsNew(ctx workflow.Context) error {
	c.out.paused = true
	for {
		for c.out.inFlight > 0 || c.pendingOps() > 0 {
			c.sel.Select(ctx)
		}
		for _, sc := range c.channels {
			for sc.ch.Len() > 0 {
				c.signals++
				sc.handle(ctx, sc.ch, true)
			}
		}
		if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
			return err
		}
		if c.out.inFlight == 0 && c.pendingOps() == 0 && !c.anyBuffered() {
			if c.out.localInThisTask(ctx) {
				c.settleLocalTries(ctx)
				continue
			}
			break
		}
	}
	if c.timer.cancel != nil {
		c.timer.cancel()
	}
	c.publish(ctx)
	state := c.s
	return workflow.NewContinueAsNewError(ctx, Conversation, ConversationInput{Options: c.opts, State: &state})
}

// settleLocalTries ends the current workflow task before the run ends, so that the results of
// the local tries it finished are kept (see outbox.localInThisTask). The conversation signals
// itself and waits for the signal to be recorded: that needs a new workflow task, and the server
// starts one at once (a short timer would do the same, but the server may fire it only after a
// stream of signals has stopped).
func (c *conversation) settleLocalTries(ctx workflow.Context) {
	self := workflow.GetInfo(ctx).WorkflowExecution.ID
	if err := workflow.SignalExternalWorkflow(ctx, self, "", signalSettle, nil).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("could not signal itself to settle local tries", "error", err)
	}
	for c.settle.ReceiveAsync(nil) {
	}
	// This is a new workflow task, and no local try starts once a run is about to end.
	c.out.lastLocalAt = time.Time{}
}

func (c *conversation) anyBuffered() bool {
	for _, sc := range c.channels {
		if sc.ch.Len() > 0 {
			return true
		}
	}
	return false
}

// receive adapts a typed signal handler to a channel callback.
func receive[T any](h func(ctx workflow.Context, sig T)) func(ctx workflow.Context, ch workflow.ReceiveChannel, more bool) {
	return func(ctx workflow.Context, ch workflow.ReceiveChannel, more bool) {
		var sig T
		ch.Receive(ctx, &sig)
		h(ctx, sig)
	}
}
