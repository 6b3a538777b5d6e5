package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/internal/transcript"
)

// Field is one named detail of a case, such as the steps to reproduce a bug.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CaseOptions tune a Case. Zero values mean the defaults.
type CaseOptions struct {
	// CloseAfter closes a resolved or declined case after this long (default 7 days).
	CloseAfter time.Duration `json:"close_after,omitempty"`
	// FollowUpWindow is how long a support case whose conversation ended without an agent (a
	// message left, a failed hand-over) stays open for support to follow up (default 7 days).
	FollowUpWindow time.Duration `json:"follow_up_window,omitempty"`
	// StaleAfter closes a support case that hears nothing at all for this long: its
	// conversation can no longer tell it anything (default 30 days).
	StaleAfter time.Duration `json:"stale_after,omitempty"`
	// FailedRetention is how long a closed case with failed notifications waits for a retry
	// (default 72 hours).
	FailedRetention time.Duration `json:"failed_retention,omitempty"`
	// Delivery bounds the retries of each notification.
	Delivery DeliveryPolicy `json:"delivery,omitempty"`
}

func (o CaseOptions) withDefaults() CaseOptions {
	if o.CloseAfter <= 0 {
		o.CloseAfter = 7 * 24 * time.Hour
	}
	if o.FailedRetention <= 0 {
		o.FailedRetention = 72 * time.Hour
	}
	if o.FollowUpWindow <= 0 {
		o.FollowUpWindow = 7 * 24 * time.Hour
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 30 * 24 * time.Hour
	}
	o.Delivery = o.Delivery.withDefaults()
	return o
}

// CaseInput starts a Case. State is set only by continue-as-new.
type CaseInput struct {
	CaseID   string   `json:"case_id"`
	Type     CaseType `json:"type"`
	Reporter Member   `json:"reporter"`
	GuildID  string   `json:"guild_id,omitempty"`
	// ChannelID is where the case was filed (#bug-report, #feature-request); a confirmation is
	// posted there.
	ChannelID   string  `json:"channel_id,omitempty"`
	Locale      string  `json:"locale,omitempty"`
	Title       string  `json:"title"`
	Description string  `json:"description,omitempty"`
	Details     []Field `json:"details,omitempty"`
	// ConversationID is the workflow id of the Conversation that opened a support case.
	ConversationID string               `json:"conversation_id,omitempty"`
	Articles       []activities.Article `json:"articles,omitempty"`
	// EventID is the id of the interaction that filed the case, if any.
	EventID string      `json:"event_id,omitempty"`
	Options CaseOptions `json:"options,omitempty"`
	State   *CaseState  `json:"state,omitempty"`
}

// CaseEventSignal is the payload of SignalCaseEvent: what a Conversation tells its Case. Empty
// fields change nothing. Status changes it carries are not announced to the reporter, because the
// conversation tells the member itself.
type CaseEventSignal struct {
	EventID  string                      `json:"event_id"`
	Status   CaseStatus                  `json:"status,omitempty"`
	Assignee string                      `json:"assignee,omitempty"`
	Flex     *activities.FlexInteraction `json:"flex,omitempty"`
	Rating   int                         `json:"rating,omitempty"`
	Note     string                      `json:"note,omitempty"`
	// ConversationEnded: the conversation that opened the case has ended; Outcome says how.
	ConversationEnded bool   `json:"conversation_ended,omitempty"`
	Outcome           string `json:"outcome,omitempty"`
	// Force applies Status even where an operator could not move the case (an operator's close
	// of the conversation closes its open case).
	Force bool `json:"force,omitempty"`
}

// Case outcomes: how a support case's conversation ended, or why a case closed by itself.
const (
	OutcomeResolved         = "resolved"           // an agent wrapped up the chat
	OutcomeSolvedByBot      = "solved_by_bot"      // the member found the answer after all
	OutcomeAwaitingFollowUp = "awaiting_follow_up" // no agent was free; the member left a message
	OutcomeHandoverFailed   = "handover_failed"    // Flex could not take the chat; the member left
	OutcomeClosedByOperator = "closed_by_operator" // an operator closed the conversation
	OutcomeNoFollowUp       = "no_follow_up"       // nobody followed up within the window
	OutcomeStale            = "stale"              // nothing was heard of the case for too long
)

// TimelineEntry is one change in a case's life.
type TimelineEntry struct {
	At     time.Time  `json:"at"`
	Status CaseStatus `json:"status,omitempty"` // the status after the change
	Actor  string     `json:"actor,omitempty"`
	Note   string     `json:"note,omitempty"`
}

// CaseRecord is what a case is: the fields that its state carries and its view shows.
type CaseRecord struct {
	CaseID         string                      `json:"case_id"`
	Type           CaseType                    `json:"type"`
	Status         CaseStatus                  `json:"status"`
	Reporter       Member                      `json:"reporter"`
	GuildID        string                      `json:"guild_id,omitempty"`
	ChannelID      string                      `json:"channel_id,omitempty"`
	Locale         string                      `json:"locale,omitempty"`
	Title          string                      `json:"title"`
	Description    string                      `json:"description,omitempty"`
	Details        []Field                     `json:"details,omitempty"`
	Assignee       string                      `json:"assignee,omitempty"`
	ConversationID string                      `json:"conversation_id,omitempty"`
	Flex           *activities.FlexInteraction `json:"flex,omitempty"`
	Articles       []activities.Article        `json:"articles,omitempty"`
	Rating         int                         `json:"rating,omitempty"`
	// Outcome says how the case's conversation ended or why the case closed by itself.
	Outcome string `json:"outcome,omitempty"`
	// ConversationEnded: the support conversation behind the case is over.
	ConversationEnded bool            `json:"conversation_ended,omitempty"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	Timeline          []TimelineEntry `json:"timeline"`
}

// CaseState is the whole state of a Case, carried through continue-as-new.
type CaseState struct {
	CaseRecord
	Seen   SeenSet `json:"seen"`
	Ledger Ledger  `json:"ledger"`
	// Behaviour is the workflow behaviour version the case runs (see versioning.go).
	Behaviour int `json:"behaviour,omitempty"`
	// Record is the durable transcript of a bug report or feature request not written to the
	// blob store yet (a support case's is written by its conversation).
	Record RecordState `json:"record,omitempty"`
}

// CaseView is the answer of QueryStatus and UpdateSetCaseStatus on a Case.
type CaseView struct {
	CaseRecord
	Pending   []DeliveryView `json:"pending,omitempty"`
	Failed    []DeliveryView `json:"failed,omitempty"`
	Delivered int64          `json:"delivered"`
}

// Case is the workflow of one support case, bug report or feature request, from open to closed.
// Status changes come from its Conversation (signals) and from operators (the SetCaseStatus
// update); the reporter is told of each operator change by direct message.
func Case(ctx workflow.Context, in CaseInput) (CaseView, error) {
	k, err := newCase(ctx, in)
	if err != nil {
		return CaseView{}, err
	}
	return k.run(ctx)
}

type caseWF struct {
	s         CaseState
	opts      CaseOptions
	out       outbox
	sel       workflow.Selector
	wake      waker
	events    workflow.ReceiveChannel
	timer     deadlineTimer
	published struct {
		status  CaseStatus
		failed  int
		outcome string
	}
}

func newCase(ctx workflow.Context, in CaseInput) (*caseWF, error) {
	k := &caseWF{opts: in.Options.withDefaults(), sel: workflow.NewSelector(ctx)}
	k.wake = newWaker(ctx, k.sel)
	if in.State != nil {
		k.s = *in.State
		k.s.Ledger.resetInFlight()
	} else {
		if !ValidCaseID(in.CaseID) {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("invalid case id %q", in.CaseID), "InvalidInput", nil)
		}
		if !in.Type.Valid() {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("invalid case type %q", in.Type), "InvalidInput", nil)
		}
		now := workflow.Now(ctx)
		k.s = CaseState{
			CaseRecord: CaseRecord{
				CaseID: in.CaseID, Type: in.Type, Status: CaseOpen, Reporter: in.Reporter, GuildID: in.GuildID,
				ChannelID: in.ChannelID, Locale: in.Locale, Title: truncate(strings.TrimSpace(in.Title), 200),
				Description: in.Description, Details: in.Details, ConversationID: in.ConversationID,
				Articles: in.Articles, CreatedAt: now, UpdatedAt: now,
				Timeline: []TimelineEntry{{At: now, Status: CaseOpen, Actor: in.Reporter.Name(), Note: "opened"}},
			},
			Ledger:    Ledger{KeyPrefix: keyPrefix(workflow.GetInfo(ctx).WorkflowExecution.RunID)},
			Seen:      SeenSet{Max: 256},
			Behaviour: behaviourOf(ctx),
		}
		k.s.Seen.Add(in.EventID)
		if k.keepsRecord() {
			k.s.Record.ID = in.CaseID
			form := transcript.Entry{At: now, Kind: transcript.KindForm, Name: in.Reporter.Name(), Text: k.s.Title}
			if k.s.Description != "" {
				form.Fields = append(form.Fields, transcript.Field{Label: "Description", Value: k.s.Description})
			}
			for _, f := range in.Details {
				form.Fields = append(form.Fields, transcript.Field{Label: f.Name, Value: f.Value})
			}
			k.s.Record.add(in.Reporter.UserID, form)
		}
		if in.Type != CaseSupport && in.ChannelID != "" {
			k.s.Ledger.Enqueue(now, Destination{DestChannel, in.ChannelID}, "case confirmation", k.confirmation())
		}
	}
	k.out = outbox{
		ledger: &k.s.Ledger,
		policy: k.opts.Delivery,
		flexLink: func(string) (activities.FlexInteraction, bool) {
			return activities.FlexInteraction{}, false
		},
		summary: func(d Delivery) string {
			if d.Dest.Kind == DestMember {
				return "DM " + k.s.Reporter.Name() + ": " + d.Label
			}
			return "Post to " + d.Dest.String() + ": " + d.Label
		},
		onFailed: func(ctx workflow.Context, d Delivery) {
			workflow.GetLogger(ctx).Warn("case notification failed", "destination", d.Dest.String(), "error", d.Error)
		},
		failedChanged: func(ctx workflow.Context) { k.publish(ctx) },
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (CaseView, error) { return k.view(), nil }); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSetCaseStatus,
		func(ctx workflow.Context, req SetCaseStatusRequest) (CaseView, error) {
			k.setStatus(ctx, req.Status, orDefault(req.Actor, "operator"), req.Note, true)
			k.wake.wake()
			return k.view(), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req SetCaseStatusRequest) error {
			if !req.Status.Valid() {
				return fmt.Errorf("unknown status %q (want open, in_progress, resolved, declined or closed)", req.Status)
			}
			if !k.s.Status.CanMoveTo(req.Status) {
				return fmt.Errorf("case %s cannot move from %s to %s", k.s.CaseID, k.s.Status, req.Status)
			}
			return nil
		}}); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateRetryDeliveries,
		func(ctx workflow.Context, req RetryDeliveriesRequest) (RetryDeliveriesResult, error) {
			requeued := k.out.retry(ctx)
			k.wake.wake()
			return RetryDeliveriesResult{Requeued: requeued}, nil
		}); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *caseWF) run(ctx workflow.Context) (CaseView, error) {
	k.events = workflow.GetSignalChannel(ctx, SignalCaseEvent)
	k.sel.AddReceive(k.events, func(ch workflow.ReceiveChannel, more bool) {
		var ev CaseEventSignal
		ch.Receive(ctx, &ev)
		k.onEvent(ctx, ev)
	})
	k.publish(ctx)
	for {
		for {
			saveRecord(ctx, k.sel, &k.s.Record, true, k.s.Status == CaseClosed, func() {})
			k.out.pump(ctx, k.sel)
			at, label := k.deadline()
			k.timer.arm(ctx, k.sel, at, label)
			if !k.timer.due(ctx) {
				break
			}
			k.onDeadline(ctx)
		}
		k.publish(ctx)
		if k.s.Status == CaseClosed && k.out.inFlight == 0 && len(k.s.Ledger.Queue) == 0 && k.recordSettled() {
			if k.s.Record.pending() > 0 {
				k.s.Record.giveUp(ctx)
			}
			return k.view(), nil
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return CaseView{}, k.continueAsNew(ctx)
		}
		k.sel.Select(ctx)
	}
}

func (k *caseWF) continueAsNew(ctx workflow.Context) error {
	k.out.paused = true
	for k.out.inFlight > 0 || k.s.Record.Saving > 0 {
		k.sel.Select(ctx)
	}
	for k.events.Len() > 0 {
		var ev CaseEventSignal
		k.events.Receive(ctx, &ev)
		k.onEvent(ctx, ev)
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	state := k.s
	return workflow.NewContinueAsNewError(ctx, Case, CaseInput{Options: k.opts, State: &state})
}

// deadline is when the case acts by itself next. Bug and feature cases end only by status; a
// support case follows its conversation, and one left open after its conversation ended waits
// FollowUpWindow for support, then closes; one that hears nothing for StaleAfter closes too.
func (k *caseWF) deadline() (time.Time, string) {
	open := k.s.Status == CaseOpen || k.s.Status == CaseInProgress
	if k.s.Behaviour >= behaviourEveryPathEnds && open && k.s.Type == CaseSupport {
		if k.s.ConversationEnded {
			return k.s.UpdatedAt.Add(k.opts.FollowUpWindow), "Close if nobody follows up"
		}
		return k.s.UpdatedAt.Add(k.opts.StaleAfter), "Close if nothing more is heard"
	}
	switch k.s.Status {
	case CaseResolved, CaseDeclined:
		return k.s.UpdatedAt.Add(k.opts.CloseAfter), "Close the case"
	case CaseClosed:
		if k.s.Ledger.Count(DeliveryFailed) > 0 {
			return k.s.UpdatedAt.Add(k.opts.FailedRetention), "Keep failed notifications for a retry"
		}
	}
	return time.Time{}, ""
}

func (k *caseWF) onDeadline(ctx workflow.Context) {
	switch k.s.Status {
	case CaseOpen, CaseInProgress:
		if k.s.ConversationEnded {
			k.s.Outcome = OutcomeNoFollowUp
			k.setStatus(ctx, CaseClosed, "flexcord", "closed: nobody followed up within "+k.opts.FollowUpWindow.String(), false)
		} else {
			k.s.Outcome = OutcomeStale
			k.setStatus(ctx, CaseClosed, "flexcord", "closed: nothing heard for "+k.opts.StaleAfter.String(), false)
		}
	case CaseResolved, CaseDeclined:
		k.setStatus(ctx, CaseClosed, "flexcord", "closed automatically", false)
	case CaseClosed:
		k.s.Ledger.Queue = nil
	}
}

func (k *caseWF) onEvent(ctx workflow.Context, ev CaseEventSignal) {
	if !k.s.Seen.Add(ev.EventID) {
		return
	}
	now := workflow.Now(ctx)
	if ev.Assignee != "" {
		k.s.Assignee = ev.Assignee
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchAttrAgent.ValueSet(ev.Assignee))
	}
	if ev.Flex != nil {
		k.s.Flex = ev.Flex
	}
	if ev.Rating >= 1 && ev.Rating <= 5 {
		k.s.Rating = ev.Rating
	}
	if ev.ConversationEnded {
		k.s.ConversationEnded = true
	}
	if ev.Outcome != "" && k.s.Status != CaseClosed {
		k.s.Outcome = ev.Outcome
	}
	if ev.Status != "" && ev.Status != k.s.Status && (k.s.Status.CanMoveTo(ev.Status) || (ev.Force && k.s.Status != CaseClosed)) {
		k.setStatus(ctx, ev.Status, "conversation", ev.Note, false)
		return
	}
	if ev.Note != "" {
		k.s.Timeline = append(k.s.Timeline, TimelineEntry{At: now, Actor: "conversation", Note: ev.Note})
		k.trimTimeline()
	}
	k.s.UpdatedAt = now
}

// setStatus moves the case and, when notify is set, tells the reporter by direct message.
func (k *caseWF) setStatus(ctx workflow.Context, to CaseStatus, actor, note string, notify bool) {
	now := workflow.Now(ctx)
	k.s.Status = to
	k.s.UpdatedAt = now
	k.s.Timeline = append(k.s.Timeline, TimelineEntry{At: now, Status: to, Actor: actor, Note: note})
	k.trimTimeline()
	if k.keepsRecord() {
		line := "Status: " + string(to) + " (" + actor + ")"
		if note != "" {
			line += ": " + note
		}
		k.s.Record.add(k.s.Reporter.UserID, transcript.Entry{At: now, Kind: transcript.KindSystem, Text: line})
	}
	if notify && k.s.Reporter.UserID != "" {
		text := i18n.T(k.s.Locale, "case.status_changed",
			"type", i18n.T(k.s.Locale, "case.type."+string(k.s.Type)), "case", k.s.CaseID,
			"title", k.s.Title, "status", i18n.T(k.s.Locale, "case.status."+string(to)))
		if note != "" {
			text += "\n" + i18n.T(k.s.Locale, "case.status_note", "note", note)
		}
		k.s.Ledger.Enqueue(now, Destination{DestMember, k.s.Reporter.UserID}, "status "+string(to), activities.Message{Content: text})
	}
	k.publish(ctx)
}

// keepsRecord reports whether the case writes its own transcript: bug reports and feature
// requests do; a support case's transcript is its conversation's.
func (k *caseWF) keepsRecord() bool {
	return k.s.Behaviour >= behaviourRecord && k.s.Type != CaseSupport
}

// recordSettled reports whether the record is written, or given up after failing at the end.
func (k *caseWF) recordSettled() bool {
	return k.s.Record.Saving == 0 && (k.s.Record.pending() == 0 || k.s.Record.Failures >= recordGiveUp)
}

func (k *caseWF) trimTimeline() {
	// The first entry (opened) is kept; the rest is a bounded tail.
	const limit = 100
	if n := len(k.s.Timeline); n > limit {
		k.s.Timeline = append(k.s.Timeline[:1:1], k.s.Timeline[n-limit+1:]...)
	}
}

func (k *caseWF) confirmation() activities.Message {
	l := k.s.Locale
	typ := i18n.T(l, "case.type."+string(k.s.Type))
	desc := i18n.T(l, "case.filed.body", "user", "<@"+k.s.Reporter.UserID+">")
	if k.s.Description != "" {
		desc = truncate(k.s.Description, 1500) + "\n\n" + desc
	}
	return activities.Message{Embeds: []activities.Embed{{
		Title:       truncate(i18n.T(l, "case.filed.title", "type", capitalize(typ), "case", k.s.CaseID, "title", k.s.Title), 250),
		Description: desc,
		Footer:      k.s.CaseID + " · " + i18n.T(l, "case.status."+string(k.s.Status)),
	}}}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	return strings.ToUpper(string(r[0])) + string(r[1:])
}

func (k *caseWF) publish(ctx workflow.Context) {
	failed := k.s.Ledger.Count(DeliveryFailed)
	if k.published.status == k.s.Status && k.published.failed == failed && k.published.outcome == k.s.Outcome {
		return
	}
	err := workflow.UpsertTypedSearchAttributes(ctx,
		SearchAttrCaseStatus.ValueSet(string(k.s.Status)), SearchAttrFailedDeliveries.ValueSet(int64(failed)))
	if err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
	k.published.status, k.published.failed, k.published.outcome = k.s.Status, failed, k.s.Outcome
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**%s** %s · **%s**\n\n%s\n\n", k.s.CaseID, k.s.Type, k.s.Status, k.s.Title))
	if k.s.Outcome != "" {
		b.WriteString(fmt.Sprintf("**Outcome:** %s\n\n", k.s.Outcome))
	}
	if at, label := k.deadline(); !at.IsZero() && k.s.Behaviour >= behaviourEveryPathEnds {
		b.WriteString(fmt.Sprintf("**Next deadline:** %s — %s\n\n", at.UTC().Format("2006-01-02 15:04:05 MST"), label))
	}
	b.WriteString(fmt.Sprintf("**Reporter:** %s (`%s`)\n\n", k.s.Reporter.Name(), k.s.Reporter.UserID))
	if k.s.Assignee != "" {
		b.WriteString(fmt.Sprintf("**Assignee:** %s\n\n", k.s.Assignee))
	}
	if k.s.Rating > 0 {
		b.WriteString(fmt.Sprintf("**Rating:** %d/5\n\n", k.s.Rating))
	}
	if failed > 0 {
		b.WriteString(fmt.Sprintf("**Failed notifications:** %d\n\n", failed))
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

func (k *caseWF) view() CaseView {
	return CaseView{
		CaseRecord: k.s.CaseRecord,
		Pending:    k.s.Ledger.Views(DeliveryPending), Failed: k.s.Ledger.Views(DeliveryFailed), Delivered: k.s.Ledger.Delivered,
	}
}
