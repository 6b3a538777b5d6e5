package workflows

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/i18n"
)

// ConversationOptions tune a Conversation. Zero values mean the defaults.
type ConversationOptions struct {
	// InactivityTimeout closes a conversation still with the bot after this long without a word
	// from the member (default 30 minutes).
	InactivityTimeout time.Duration `json:"inactivity_timeout,omitempty"`
	// RatingTimeout is how long a resolved conversation waits for the member's rating (default 24 hours).
	RatingTimeout time.Duration `json:"rating_timeout,omitempty"`
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
}

func (o ConversationOptions) withDefaults() ConversationOptions {
	if o.InactivityTimeout <= 0 {
		o.InactivityTimeout = 30 * time.Minute
	}
	if o.RatingTimeout <= 0 {
		o.RatingTimeout = 24 * time.Hour
	}
	if o.FailedRetention <= 0 {
		o.FailedRetention = 72 * time.Hour
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
	Running bool   `json:"running,omitempty"`
	Error   string `json:"error,omitempty"`
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
	Seen       SeenSet                     `json:"seen"`
	Ledger     Ledger                      `json:"ledger"`
	// Runs counts continue-as-new hand-overs.
	Runs int `json:"runs,omitempty"`
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
	ReasonSolved      = "solved"
	ReasonInactive    = "inactive"
	ReasonRated       = "rated"
	ReasonNoRating    = "rating_timeout"
	ReasonByOperator  = "closed_by_operator"
	ReasonNewQuestion = "new_conversation"
)

// Conversation is the workflow of one member being helped: the FAQ bot, the transfer to a live
// Flex agent, the live chat, the resolution and the rating. It is driven by signals from ingress
// and delivers everything it says through its ledger.
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
	closeFlex   bool // CloseFlexInteraction is due
	pendingOps  int  // transfers and closes under way
	lastDetails string
	lastSA      struct {
		stage  Stage
		caseID string
		agent  string
		failed int
	}
	channels []signalChannel
}

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
	} else {
		now := workflow.Now(ctx)
		c.s = ConversationState{
			Member: in.Member, GuildID: in.GuildID, GuildName: in.GuildName, Locale: in.Locale,
			Stage: StageBot, StartedAt: now, LastActivity: now,
			Ledger: Ledger{KeyPrefix: keyPrefix(workflow.GetInfo(ctx).WorkflowExecution.RunID)},
			Seen:   SeenSet{Max: DefaultSeenSetSize},
		}
	}
	c.out = outbox{
		ledger: &c.s.Ledger,
		policy: c.opts.Delivery,
		flexLink: func(caseID string) (activities.FlexInteraction, bool) {
			if c.s.Flex == nil || caseID != c.s.CaseID {
				return activities.FlexInteraction{}, false
			}
			return *c.s.Flex, true
		},
		summary:       c.deliverySummary,
		onFailed:      c.deliveryFailed,
		onDelivered:   c.deliveryDone,
		failedChanged: func(ctx workflow.Context) { c.publish(ctx) },
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

func (c *conversation) run(ctx workflow.Context) (ConversationResult, error) {
	c.channels = []signalChannel{
		{SignalHelpRequested, workflow.GetSignalChannel(ctx, SignalHelpRequested), receive(c.onHelpRequested)},
		{SignalUserMessage, workflow.GetSignalChannel(ctx, SignalUserMessage), receive(c.onUserMessage)},
		{SignalUserAction, workflow.GetSignalChannel(ctx, SignalUserAction), receive(c.onUserAction)},
		{SignalAgentJoined, workflow.GetSignalChannel(ctx, SignalAgentJoined), receive(c.onAgentJoined)},
		{SignalAgentMessage, workflow.GetSignalChannel(ctx, SignalAgentMessage), receive(c.onAgentMessage)},
		{SignalAgentWrappedUp, workflow.GetSignalChannel(ctx, SignalAgentWrappedUp), receive(c.onAgentWrappedUp)},
	}
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
		if c.finished(ctx) {
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

// step does whatever the state calls for before waiting again: transfers, closes, deliveries,
// deadlines, and the Temporal UI's view of the state.
func (c *conversation) step(ctx workflow.Context) {
	for {
		if c.s.Transfer.Pending && !c.out.paused {
			c.startTransfer(ctx)
		}
		if c.closeFlex && c.s.Flex != nil && !c.out.paused {
			c.startCloseFlex(ctx)
		}
		c.out.pump(ctx, c.sel)
		at, label := c.deadline()
		c.timer.arm(ctx, c.sel, at, label)
		if !c.timer.due(ctx) {
			break
		}
		c.onDeadline(ctx)
	}
	c.publish(ctx)
}

func (c *conversation) deadline() (time.Time, string) {
	switch c.s.Stage {
	case StageBot:
		return c.s.LastActivity.Add(c.opts.InactivityTimeout), "Close after inactivity"
	case StageResolved:
		return c.s.ResolvedAt.Add(c.opts.RatingTimeout), "Wait for the member's rating"
	case StageClosed:
		if c.s.Ledger.Count(DeliveryFailed) > 0 {
			return c.s.ClosedAt.Add(c.opts.FailedRetention), "Keep failed deliveries for a retry"
		}
	}
	return time.Time{}, ""
}

func (c *conversation) onDeadline(ctx workflow.Context) {
	switch c.s.Stage {
	case StageBot:
		c.sayToMember(ctx, "inactivity notice", activities.Message{Content: c.t("bot.inactive_closed")})
		c.close(ctx, ReasonInactive)
	case StageResolved:
		c.close(ctx, ReasonNoRating)
	case StageClosed:
		// Retention of failed deliveries is over; finished() now lets the workflow end.
		c.s.Ledger.Queue = nil
	}
}

func (c *conversation) finished(ctx workflow.Context) bool {
	return c.s.Stage == StageClosed && c.pendingOps == 0 && c.out.inFlight == 0 &&
		c.s.Ledger.Count(DeliveryPending) == 0 && c.s.Ledger.Count(DeliveryFailed) == 0 &&
		!c.s.Transfer.Pending && !c.closeFlex
}

func (c *conversation) shouldContinueAsNew(ctx workflow.Context) bool {
	return c.signals >= c.opts.ContinueAsNewAfter || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// continueAsNew hands the whole state to a new run. It first lets every activity of this run
// finish (their results are state), then drains every signal already buffered, so that nothing
// received is lost, and waits for update handlers to finish.
func (c *conversation) continueAsNew(ctx workflow.Context) error {
	c.out.paused = true
	for {
		for c.out.inFlight > 0 || c.pendingOps > 0 {
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
		if c.out.inFlight == 0 && c.pendingOps == 0 && !c.anyBuffered() {
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

func (c *conversation) fresh(eventID string) bool {
	return c.s.Seen.Add(eventID)
}

// ourCase reports whether an agent event belongs to the conversation's current case; events
// without a case id are taken as the current case's.
func (c *conversation) ourCase(caseID string) bool {
	return caseID == "" || caseID == c.s.CaseID
}

// --- member events -------------------------------------------------------------------------

func (c *conversation) onHelpRequested(ctx workflow.Context, sig HelpRequestedSignal) {
	if !c.fresh(sig.EventID) {
		return
	}
	c.learnMember(sig.Member, sig.Locale)
	if sig.GuildID != "" {
		c.s.GuildID, c.s.GuildName = sig.GuildID, orDefault(sig.GuildName, c.s.GuildName)
	}
	if c.s.Stage == StageResolved || c.s.Stage == StageClosed {
		c.restart(ctx)
	}
	c.s.LastActivity = workflow.Now(ctx)
	if sig.Interaction != nil {
		// The follow-up waits for the greeting: "check your DMs" once it is delivered, "I can't
		// DM you" if Discord refuses it.
		c.s.Interaction, c.s.InteractionAt, c.s.InteractionEventID = sig.Interaction, workflow.Now(ctx), sig.EventID
	}
	switch c.s.Stage {
	case StageBot:
		c.sayToMember(ctx, "greeting", activities.Message{
			Content: c.t("greeting", "name", c.s.Member.Name()),
			Buttons: []activities.Button{c.humanButton()},
		})
	case StageQueued, StageLive:
		c.sayToMember(ctx, "reminder", activities.Message{Content: c.t("helpme.already", "case", c.s.CaseID)})
	}
}

func (c *conversation) onUserMessage(ctx workflow.Context, sig UserMessageSignal) {
	if !c.fresh(sig.EventID) {
		return
	}
	c.learnMember(sig.Member, "")
	text := strings.TrimSpace(sig.Text)
	for _, a := range sig.Attachments {
		text = strings.TrimSpace(text + "\n" + a)
	}
	if text == "" {
		return
	}
	if c.s.Stage == StageResolved || c.s.Stage == StageClosed {
		c.restart(ctx)
	}
	c.s.LastActivity = workflow.Now(ctx)
	c.transcript(ctx, "member", c.s.Member.Name(), text)
	switch c.s.Stage {
	case StageBot:
		if c.s.Subject == "" {
			c.s.Subject = truncate(text, 120)
		}
		if i18n.WantsHuman(text) {
			c.requestTransfer(ctx)
			return
		}
		c.answerFromKnowledgeBase(ctx, text)
	case StageQueued, StageLive:
		c.enqueue(ctx, Destination{DestFlex, c.s.CaseID}, "member message", activities.Message{Content: text}, nil)
	}
}

func (c *conversation) onUserAction(ctx workflow.Context, sig UserActionSignal) {
	if !c.fresh(sig.EventID) {
		return
	}
	c.learnMember(sig.Member, sig.Locale)
	switch sig.Action {
	case ActionTalkToHuman:
		switch c.s.Stage {
		case StageBot:
			c.s.LastActivity = workflow.Now(ctx)
			c.transcript(ctx, "member", c.s.Member.Name(), "[Talk to a human]")
			c.requestTransfer(ctx)
		case StageQueued, StageLive:
			c.sayToMember(ctx, "reminder", activities.Message{Content: c.t("transfer.already", "case", c.s.CaseID)})
		}
	case ActionSolved:
		if c.s.Stage == StageBot {
			c.transcript(ctx, "member", c.s.Member.Name(), "[This solved it]")
			c.sayToMember(ctx, "solved", activities.Message{Content: c.t("bot.solved_thanks")})
			c.close(ctx, ReasonSolved)
		}
	case ActionRate:
		if c.s.Stage == StageResolved && sig.Rating >= 1 && sig.Rating <= 5 {
			c.s.Rating = sig.Rating
			c.transcript(ctx, "member", c.s.Member.Name(), fmt.Sprintf("[Rated %d/5]", sig.Rating))
			c.tellCase(ctx, CaseEventSignal{EventID: "rating:" + sig.EventID, Rating: sig.Rating, Note: "rated by the member"})
			workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"rating": strconv.Itoa(sig.Rating)}).
				Counter("flexcord_case_ratings").Inc(1)
			c.sayToMember(ctx, "rating thanks", activities.Message{Content: c.t("rating.thanks", "rating", strconv.Itoa(sig.Rating))})
			c.close(ctx, ReasonRated)
		}
	}
}

// --- agent events --------------------------------------------------------------------------

func (c *conversation) onAgentJoined(ctx workflow.Context, sig AgentJoinedSignal) {
	if !c.fresh(sig.EventID) || !c.ourCase(sig.CaseID) {
		return
	}
	if c.s.Stage != StageQueued && c.s.Stage != StageLive {
		return
	}
	name := orDefault(sig.AgentName, c.t("agent.default_name"))
	if c.s.Stage == StageLive && name == c.s.Agent {
		return
	}
	c.s.Agent = name
	c.setStage(ctx, StageLive)
	c.transcript(ctx, "system", "", name+" joined")
	c.sayToMember(ctx, "agent joined", activities.Message{Content: c.t("agent.joined", "agent", name)})
	c.tellCase(ctx, CaseEventSignal{EventID: "joined:" + sig.EventID, Status: CaseInProgress, Assignee: name, Note: name + " accepted the chat"})
}

func (c *conversation) onAgentMessage(ctx workflow.Context, sig AgentMessageSignal) {
	if !c.fresh(sig.EventID) || !c.ourCase(sig.CaseID) {
		return
	}
	if c.s.Stage != StageQueued && c.s.Stage != StageLive {
		return
	}
	text := strings.TrimSpace(sig.Text)
	if text == "" {
		return
	}
	name := orDefault(sig.AgentName, orDefault(c.s.Agent, c.t("agent.default_name")))
	c.transcript(ctx, "agent", name, text)
	c.sayToMember(ctx, "agent reply", activities.Message{Content: c.t("agent.message", "agent", name, "text", text)})
}

func (c *conversation) onAgentWrappedUp(ctx workflow.Context, sig AgentWrappedUpSignal) {
	if !c.fresh(sig.EventID) || !c.ourCase(sig.CaseID) {
		return
	}
	if c.s.Stage != StageQueued && c.s.Stage != StageLive {
		return
	}
	c.s.ResolvedAt = workflow.Now(ctx)
	c.setStage(ctx, StageResolved)
	c.transcript(ctx, "system", "", "The agent wrapped up")
	// Messages still waiting for the agent can no longer be answered; the transcript keeps them.
	c.s.Ledger.Drop(Destination{DestFlex, c.s.CaseID})
	c.tellCase(ctx, CaseEventSignal{EventID: "wrapup:" + sig.EventID, Status: CaseResolved, Note: orDefault(sig.Reason, "the agent wrapped up")})
	buttons := make([]activities.Button, 0, 5)
	for r := 1; r <= 5; r++ {
		buttons = append(buttons, activities.Button{CustomID: ButtonCustomID(ActionRate, r), Label: strconv.Itoa(r), Style: activities.ButtonSecondary})
	}
	c.sayToMember(ctx, "rating request", activities.Message{Content: c.t("resolved.rate", "case", c.s.CaseID), Buttons: buttons})
}

// --- operator actions ----------------------------------------------------------------------

func (c *conversation) closeByOperator(ctx workflow.Context, req CloseRequest) {
	if c.s.Stage == StageQueued || c.s.Stage == StageLive {
		c.closeFlex = c.s.Flex != nil
		c.s.Transfer.Pending = false
		c.s.Ledger.Drop(Destination{DestFlex, c.s.CaseID})
	}
	c.transcript(ctx, "system", "", "Closed by "+orDefault(req.Operator, "an operator")+": "+req.Reason)
	c.sayToMember(ctx, "closed notice", activities.Message{Content: c.t("closed.by_support", "case", orDefault(c.s.CaseID, "-"))})
	c.close(ctx, ReasonByOperator)
}

// --- the bot stage -------------------------------------------------------------------------

func (c *conversation) answerFromKnowledgeBase(ctx workflow.Context, question string) {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: 10 * time.Second,
		Summary:                "Search the knowledge base",
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var res activities.SearchKnowledgeBaseResult
	err := workflow.ExecuteLocalActivity(lctx, knowledgeActs.SearchKnowledgeBase, activities.SearchKnowledgeBaseInput{
		Query: question, Locale: c.s.Locale, Limit: 3,
	}).Get(ctx, &res)
	if err != nil {
		// A knowledge-base hiccup must not end the conversation: offer a human instead.
		workflow.GetLogger(ctx).Warn("knowledge base search failed", "error", err)
		res.Articles = nil
	}
	buttons := []activities.Button{c.humanButton()}
	if len(res.Articles) == 0 {
		c.transcript(ctx, "bot", "", c.t("bot.no_results"))
		c.sayToMember(ctx, "no articles", activities.Message{Content: c.t("bot.no_results"), Buttons: buttons})
		return
	}
	c.s.Articles = appendArticles(c.s.Articles, res.Articles)
	embeds := make([]activities.Embed, 0, len(res.Articles))
	titles := make([]string, 0, len(res.Articles))
	for _, a := range res.Articles {
		embeds = append(embeds, activities.Embed{Title: a.Title, URL: a.URL, Description: a.Snippet})
		titles = append(titles, a.Title)
	}
	buttons = append([]activities.Button{{CustomID: ButtonCustomID(ActionSolved, 0), Label: c.t("button.solved"), Style: activities.ButtonSuccess}}, buttons...)
	c.transcript(ctx, "bot", "", "Suggested: "+strings.Join(titles, "; "))
	c.sayToMember(ctx, "articles", activities.Message{Content: c.t("bot.articles_intro"), Embeds: embeds, Buttons: buttons})
}

// appendArticles keeps every article suggested so far, once, most recent last, at most ten.
func appendArticles(have, add []activities.Article) []activities.Article {
	for _, a := range add {
		for i := range have {
			if have[i].ID == a.ID {
				have = append(have[:i], have[i+1:]...)
				break
			}
		}
		have = append(have, a)
	}
	if len(have) > 10 {
		have = have[len(have)-10:]
	}
	return have
}

// --- the transfer --------------------------------------------------------------------------

func (c *conversation) requestTransfer(ctx workflow.Context) {
	if c.s.Stage != StageBot || c.s.Transfer.Pending || c.s.Transfer.Running {
		return
	}
	c.s.Transfer = TransferState{Pending: true}
}

// startTransfer opens the support case (a child Case workflow that outlives the conversation),
// tells the member, and starts handing the conversation to Flex.
func (c *conversation) startTransfer(ctx workflow.Context) {
	c.s.Transfer.Pending = false
	if c.s.CaseID == "" {
		caseID, err := c.openCase(ctx)
		if err != nil {
			workflow.GetLogger(ctx).Error("open support case", "error", err)
			c.s.Transfer.Error = rootMessage(err)
			c.sayToMember(ctx, "transfer failed", activities.Message{Content: c.t("transfer.failed", "case", "-"), Buttons: []activities.Button{c.humanButton()}})
			return
		}
		c.s.CaseID = caseID
		c.transcript(ctx, "system", "", "Case "+caseID+" created")
		c.sayToMember(ctx, "case created", activities.Message{Content: c.t("transfer.created", "case", caseID)})
	}
	c.setStage(ctx, StageQueued)
	c.s.Transfer.Running = true
	c.pendingOps++
	actx := workflow.WithActivityOptions(ctx, c.opts.Transfer.activityOptions("Hand case "+c.s.CaseID+" to Flex"))
	f := workflow.ExecuteActivity(actx, flexActs.CreateFlexInteraction, activities.CreateFlexInteractionInput{
		CaseID: c.s.CaseID, DiscordUserID: c.s.Member.UserID, Username: c.s.Member.Name(),
		GuildID: c.s.GuildID, GuildName: c.s.GuildName, Locale: c.s.Locale,
		Transcript: c.s.Transcript, Articles: c.s.Articles,
	})
	caseID := c.s.CaseID
	c.sel.AddFuture(f, func(f workflow.Future) {
		c.pendingOps--
		c.s.Transfer.Running = false
		var fi activities.FlexInteraction
		if err := f.Get(ctx, &fi); err != nil {
			workflow.GetLogger(ctx).Error("hand case to Flex", "case", caseID, "error", err)
			c.s.Transfer.Error = rootMessage(err)
			if c.s.Stage != StageQueued {
				return
			}
			// Back to the bot; the member's messages stay in the transcript the next transfer carries.
			c.s.Ledger.Drop(Destination{DestFlex, caseID})
			c.setStage(ctx, StageBot)
			c.s.LastActivity = workflow.Now(ctx)
			c.sayToMember(ctx, "transfer failed", activities.Message{Content: c.t("transfer.failed", "case", caseID), Buttons: []activities.Button{c.humanButton()}})
			return
		}
		c.s.Transfer.Error = ""
		c.s.Flex = &fi
		c.tellCase(ctx, CaseEventSignal{EventID: "flex:" + fi.InteractionSID, Flex: &fi, Note: "handed to Flex"})
		if c.s.Stage == StageClosed {
			c.closeFlex = true
		}
	})
}

// openCase starts the member's support case as a child workflow and returns its id. Case ids are
// derived from this run's id, so replay gives the same id; a collision with an existing case
// moves on to the next candidate.
func (c *conversation) openCase(ctx workflow.Context) (string, error) {
	runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
	for attempt := 0; attempt < 5; attempt++ {
		h := fnv.New64a()
		_, _ = h.Write([]byte(fmt.Sprintf("%s|%s|%d|%d", runID, c.s.Member.UserID, c.s.CasesOpened, attempt)))
		caseID := FormatCaseID(h.Sum64())
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            CaseWorkflowID(caseID),
			TaskQueue:             TaskQueue,
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			StaticSummary:         fmt.Sprintf("Support case · %s · %s", c.s.Member.Name(), orDefault(c.s.GuildName, c.s.GuildID)),
			TypedSearchAttributes: temporal.NewSearchAttributes(
				SearchAttrCaseID.ValueSet(caseID), SearchAttrCaseType.ValueSet(string(CaseSupport)),
				SearchAttrCaseStatus.ValueSet(string(CaseOpen)), SearchAttrDiscordUserID.ValueSet(c.s.Member.UserID),
			),
		})
		child := workflow.ExecuteChildWorkflow(cctx, Case, CaseInput{
			CaseID: caseID, Type: CaseSupport, Reporter: c.s.Member, GuildID: c.s.GuildID, Locale: c.s.Locale,
			Title:          orDefault(c.s.Subject, "Support request from "+c.s.Member.Name()),
			Description:    memberLines(c.s.Transcript),
			ConversationID: ConversationWorkflowID(c.s.Member.UserID),
			Articles:       c.s.Articles,
		})
		var exec workflow.Execution
		err := child.GetChildWorkflowExecution().Get(ctx, &exec)
		if err == nil {
			c.s.CasesOpened++
			return caseID, nil
		}
		if !errors.As(err, new(*temporal.ChildWorkflowExecutionAlreadyStartedError)) {
			return "", fmt.Errorf("start case %s: %w", caseID, err)
		}
	}
	return "", errors.New("no free case id after 5 attempts")
}

func memberLines(t []activities.TranscriptLine) string {
	var b strings.Builder
	for _, l := range t {
		if l.From == "member" {
			b.WriteString(l.Text)
			b.WriteString("\n")
		}
	}
	return strings.TrimSpace(b.String())
}

func (c *conversation) startCloseFlex(ctx workflow.Context) {
	c.closeFlex = false
	fi := *c.s.Flex
	c.pendingOps++
	actx := workflow.WithActivityOptions(ctx, c.opts.Delivery.activityOptions("Close the Flex interaction of case "+c.s.CaseID))
	f := workflow.ExecuteActivity(actx, flexActs.CloseFlexInteraction, activities.CloseFlexInteractionInput{Interaction: fi})
	c.sel.AddFuture(f, func(f workflow.Future) {
		c.pendingOps--
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("close Flex interaction", "case", c.s.CaseID, "error", err)
			c.transcript(ctx, "system", "", "Closing the Flex interaction failed: "+rootMessage(err))
		}
	})
}

// tellCase signals the conversation's case. A case that is gone (closed by an operator) is noted
// and otherwise ignored: the conversation goes on.
func (c *conversation) tellCase(ctx workflow.Context, ev CaseEventSignal) {
	if c.s.CaseID == "" {
		return
	}
	err := workflow.SignalExternalWorkflow(ctx, CaseWorkflowID(c.s.CaseID), "", SignalCaseEvent, ev).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("signal case", "case", c.s.CaseID, "error", err)
	}
}

// --- helpers -------------------------------------------------------------------------------

func (c *conversation) restart(ctx workflow.Context) {
	now := workflow.Now(ctx)
	prev := c.s
	c.s = ConversationState{
		Member: prev.Member, GuildID: prev.GuildID, GuildName: prev.GuildName, Locale: prev.Locale,
		Stage: StageBot, StartedAt: now, LastActivity: now, CasesOpened: prev.CasesOpened,
		Seen: prev.Seen, Ledger: prev.Ledger, Runs: prev.Runs,
	}
	c.closeFlex = false
	c.note(ctx, "a new conversation started ("+ReasonNewQuestion+")")
	c.setStage(ctx, StageBot)
}

func (c *conversation) close(ctx workflow.Context, reason string) {
	c.s.ClosedReason = reason
	c.s.ClosedAt = workflow.Now(ctx)
	c.s.Transfer.Pending = false
	c.setStage(ctx, StageClosed)
}

func (c *conversation) setStage(ctx workflow.Context, s Stage) {
	if c.s.Stage == s {
		return
	}
	c.s.Stage = s
	c.publish(ctx)
}

func (c *conversation) learnMember(m Member, locale string) {
	if m.Username != "" {
		c.s.Member.Username = m.Username
	}
	if m.DisplayName != "" {
		c.s.Member.DisplayName = m.DisplayName
	}
	if locale != "" {
		c.s.Locale = locale
	}
}

func (c *conversation) t(key string, args ...string) string { return i18n.T(c.s.Locale, key, args...) }

func (c *conversation) humanButton() activities.Button {
	return activities.Button{CustomID: ButtonCustomID(ActionTalkToHuman, 0), Label: c.t("button.human"), Style: activities.ButtonPrimary}
}

func (c *conversation) sayToMember(ctx workflow.Context, label string, msg activities.Message) {
	if label != "agent reply" && msg.Content != "" {
		c.transcript(ctx, "bot", "", msg.Content)
	}
	c.enqueue(ctx, Destination{DestMember, c.s.Member.UserID}, label, msg, nil)
}

func (c *conversation) enqueue(ctx workflow.Context, dest Destination, label string, msg activities.Message, in *Interaction) {
	seq := c.s.Ledger.Enqueue(workflow.Now(ctx), dest, label, msg)
	if in != nil {
		d, _ := c.s.Ledger.Get(seq)
		d.Interaction = in
	}
}

func (c *conversation) transcript(ctx workflow.Context, from, name, text string) {
	c.s.Transcript = append(c.s.Transcript, activities.TranscriptLine{At: workflow.Now(ctx), From: from, Name: name, Text: truncate(text, 1000)})
	if n := len(c.s.Transcript) - c.opts.TranscriptTail; n > 0 {
		c.s.Transcript = append(c.s.Transcript[:0:0], c.s.Transcript[n:]...)
	}
}

func (c *conversation) note(ctx workflow.Context, text string) {
	workflow.GetLogger(ctx).Info(text)
}

func (c *conversation) deliverySummary(d Delivery) string {
	switch d.Dest.Kind {
	case DestMember:
		return "DM " + c.s.Member.Name() + ": " + d.Label
	case DestFlex:
		return "Post to Flex (case " + d.Dest.ID + "): " + d.Label
	case DestInteraction:
		return "Follow up /helpme: " + d.Label
	default:
		return "Post to " + d.Dest.String() + ": " + d.Label
	}
}

// deliveryFailed tells the other side about a delivery that failed for good.
func (c *conversation) deliveryFailed(ctx workflow.Context, d Delivery) {
	workflow.GetLogger(ctx).Warn("delivery failed", "destination", d.Dest.String(), "seq", d.Seq, "error_type", d.ErrorType, "error", d.Error)
	switch d.Dest.Kind {
	case DestMember:
		if (c.s.Stage == StageQueued || c.s.Stage == StageLive) && c.s.CaseID != "" {
			c.enqueue(ctx, Destination{DestFlex, c.s.CaseID}, "delivery failure notice",
				activities.Message{Content: "[flexcord] A message could not be delivered to the member on Discord (" + d.ErrorType + "): " + truncate(d.Error, 200)}, nil)
		}
		c.followUpHelp(ctx, "DMs closed notice", "helpme.dm_failed")
	case DestFlex:
		c.sayToMember(ctx, "agent unreachable notice", activities.Message{Content: c.t("agent.unreachable")})
	}
}

// deliveryDone reacts to a delivery that arrived.
func (c *conversation) deliveryDone(ctx workflow.Context, d Delivery) {
	if d.Dest.Kind == DestMember {
		c.followUpHelp(ctx, "/helpme follow-up", "helpme.ack")
	}
}

// followUpHelp answers the pending /helpme interaction, once, while its token is still valid.
func (c *conversation) followUpHelp(ctx workflow.Context, label, key string) {
	if c.s.Interaction == nil {
		return
	}
	in := c.s.Interaction
	c.s.Interaction = nil
	if workflow.Now(ctx).Sub(c.s.InteractionAt) >= 14*time.Minute {
		return // Discord invalidates interaction tokens after 15 minutes.
	}
	c.enqueue(ctx, Destination{DestInteraction, c.s.InteractionEventID}, label,
		activities.Message{Content: c.t(key), Ephemeral: true}, in)
}

// publish refreshes what the Temporal UI shows: search attributes and current details.
func (c *conversation) publish(ctx workflow.Context) {
	failed := c.s.Ledger.Count(DeliveryFailed)
	var upd []temporal.SearchAttributeUpdate
	if c.lastSA.stage != c.s.Stage {
		upd = append(upd, SearchAttrStage.ValueSet(string(c.s.Stage)))
	}
	if c.lastSA.caseID != c.s.CaseID && c.s.CaseID != "" {
		upd = append(upd, SearchAttrCaseID.ValueSet(c.s.CaseID))
	}
	if c.lastSA.agent != c.s.Agent && c.s.Agent != "" {
		upd = append(upd, SearchAttrAgent.ValueSet(c.s.Agent))
	}
	if c.lastSA.failed != failed || c.lastSA.stage == "" {
		upd = append(upd, SearchAttrFailedDeliveries.ValueSet(int64(failed)))
	}
	if len(upd) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, upd...); err != nil {
			workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
		}
		c.lastSA.stage, c.lastSA.caseID, c.lastSA.agent, c.lastSA.failed = c.s.Stage, c.s.CaseID, c.s.Agent, failed
	}
	if d := c.details(); d != c.lastDetails {
		workflow.SetCurrentDetails(ctx, d)
		c.lastDetails = d
	}
}

func (c *conversation) details() string {
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**Stage:** %s\n\n", c.s.Stage))
	b.WriteString(fmt.Sprintf("**Member:** %s (`%s`)\n\n", c.s.Member.Name(), c.s.Member.UserID))
	if c.s.CaseID != "" {
		b.WriteString(fmt.Sprintf("**Case:** %s\n\n", c.s.CaseID))
	}
	if c.s.Agent != "" {
		b.WriteString(fmt.Sprintf("**Agent:** %s\n\n", c.s.Agent))
	}
	if c.s.Transfer.Error != "" {
		b.WriteString(fmt.Sprintf("**Transfer error:** %s\n\n", c.s.Transfer.Error))
	}
	if n := c.s.Ledger.Count(DeliveryFailed); n > 0 {
		b.WriteString(fmt.Sprintf("**Failed deliveries:** %d (run the RetryDeliveries update once fixed)\n\n", n))
		for _, v := range c.s.Ledger.Views(DeliveryFailed) {
			b.WriteString(fmt.Sprintf("- #%d to %s: %s — %s\n", v.Seq, v.Destination, v.Label, v.Error))
		}
		b.WriteString("\n")
	}
	if n := len(c.s.Transcript); n > 0 {
		b.WriteString("**Last messages:**\n\n")
		for _, l := range c.s.Transcript[max(0, n-5):] {
			who := l.From
			if l.Name != "" {
				who = l.Name
			}
			b.WriteString(fmt.Sprintf("- %s: %s\n", who, truncate(strings.ReplaceAll(l.Text, "\n", " "), 120)))
		}
	}
	return b.String()
}

func (c *conversation) status() ConversationStatus {
	return ConversationStatus{
		Member: c.s.Member, Stage: c.s.Stage, Locale: c.s.Locale, CaseID: c.s.CaseID, Agent: c.s.Agent,
		Flex: c.s.Flex, Transfer: c.s.Transfer, Articles: c.s.Articles, Rating: c.s.Rating,
		Transcript: c.s.Transcript,
		Pending:    c.s.Ledger.Views(DeliveryPending), InFlight: c.s.Ledger.Views(DeliveryInFlight),
		Failed: c.s.Ledger.Views(DeliveryFailed), Delivered: c.s.Ledger.Delivered, Runs: c.s.Runs,
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
