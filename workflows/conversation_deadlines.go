package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
)

// Every stage has a deadline and a way out. This file is the whole table: when each stage's
// deadline falls (deadline) and what happens then (onDeadline).
//
//	stage     deadline                                   then
//	bot       InactivityTimeout after the last word      "closing", closed (inactive)
//	queued    QueueTimeout after joining the queue       no agent: keep waiting or leave a message
//	no_agent  ChoiceTimeout after the offer              leave a message, closed
//	live      LiveCheckAfter of silence both ways        ask Flex; gone, closed or silent for
//	                                                     LiveMaxSilence: resolved
//	resolved  RatingTimeout after the wrap-up            closed (no rating)
//	closed    FailedRetention, if deliveries failed      the workflow ends
func (c *conversation) deadline() (time.Time, string) {
	switch c.s.Stage {
	case StageBot:
		return c.s.LastActivity.Add(c.opts.InactivityTimeout), "Close after inactivity"
	case StageQueued:
		if c.v2() && !c.s.QueuedAt.IsZero() {
			return c.s.QueuedAt.Add(c.opts.QueueTimeout), "Tell the member no agent is free"
		}
	case StageNoAgent:
		return c.s.NoAgentAt.Add(c.opts.ChoiceTimeout), "Leave a message for the member"
	case StageLive:
		if c.v2() && !c.s.Ops.Checking {
			return c.s.LastFlexActivity.Add(c.opts.LiveCheckAfter), "Check that Flex still has the chat"
		}
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
	case StageQueued:
		c.noAgent(ctx, "nobody accepted within "+c.opts.QueueTimeout.String())
	case StageNoAgent:
		c.leaveMessage(ctx)
	case StageLive:
		c.startCheck(ctx)
	case StageResolved:
		c.disableButtons(ctx, "rating")
		c.close(ctx, ReasonNoRating)
	case StageClosed:
		// Retention of failed deliveries is over; finished() now lets the workflow end.
		c.s.Ledger.Queue = nil
	}
}
