package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// This file holds what people see of a conversation: the Temporal UI's search attributes and
// current details, and the status query.

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
	if c.v2() {
		if at, label := c.deadline(); !at.IsZero() {
			b.WriteString(fmt.Sprintf("**Next deadline:** %s — %s\n\n", at.UTC().Format("2006-01-02 15:04:05 MST"), label))
		}
		if c.s.Stage == StageClosed && c.s.ClosedReason != "" {
			b.WriteString(fmt.Sprintf("**Closed:** %s\n\n", c.s.ClosedReason))
		}
	}
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
	at, label := c.deadline()
	return ConversationStatus{
		Member: c.s.Member, Stage: c.s.Stage, Locale: c.s.Locale, CaseID: c.s.CaseID, Agent: c.s.Agent,
		Flex: c.s.Flex, Transfer: c.s.Transfer, Articles: c.s.Articles, Rating: c.s.Rating,
		Transcript: c.s.Transcript,
		Pending:    c.s.Ledger.Views(DeliveryPending), InFlight: c.s.Ledger.Views(DeliveryInFlight),
		Failed: c.s.Ledger.Views(DeliveryFailed), Delivered: c.s.Ledger.Delivered, Runs: c.s.Runs,
		DMChannelID: c.s.DMChannelID, LastMessageID: c.s.LastMessageID,
		Deadline: at, DeadlineLabel: label, ClosedReason: c.s.ClosedReason,
		Episode: c.s.Episode, Handovers: c.s.Handovers,
		TranscriptUnsaved: c.s.Record.pending(), TranscriptError: c.s.Record.LastError, TranscriptLost: c.s.Record.Lost,
	}
}
