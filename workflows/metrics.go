package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// Metrics the workflows emit. They go through workflow.GetMetricsHandler, which records nothing
// while a workflow replays its history and adds no command to it, so emitting them needs no
// workflow.GetVersion. internal/telemetry gives each its help text and buckets (its Metrics list
// must name every one of these).
const (
	// MetricCaseRating is a histogram of the ratings (1–5) members give their support case.
	MetricCaseRating = "flexcord_case_rating"
	// MetricHandovers counts hand-overs to Flex, tagged handover=first|again.
	MetricHandovers = "flexcord_handovers"
	// MetricQueueWait is a histogram of the seconds from a hand-over until an agent joined.
	MetricQueueWait = "flexcord_queue_wait_seconds"
	// MetricDeliveriesFailed counts deliveries recorded as failed in a ledger, tagged
	// destination (member, flex, channel, interaction, announcement) and error_type.
	MetricDeliveriesFailed = "flexcord_deliveries_failed"
)

// MetricNames are the names of the metrics the workflows emit.
func MetricNames() []string {
	return []string{MetricCaseRating, MetricHandovers, MetricQueueWait, MetricDeliveriesFailed}
}

// countMetric adds one to the counter name, tagged with tags (key, value, key, value …).
func countMetric(ctx workflow.Context, name string, tags ...string) {
	h := workflow.GetMetricsHandler(ctx)
	if len(tags) > 0 {
		m := make(map[string]string, len(tags)/2)
		for i := 0; i+1 < len(tags); i += 2 {
			m[tags[i]] = tags[i+1]
		}
		h = h.WithTags(m)
	}
	h.Counter(name).Inc(1)
}

// recordDuration records d in the histogram name (exported in seconds).
func recordDuration(ctx workflow.Context, name string, d time.Duration) {
	workflow.GetMetricsHandler(ctx).Timer(name).Record(d)
}

// recordRating records a case rating in the MetricCaseRating histogram. The SDK's metrics
// handler has counters, gauges and timers only; its timer is the histogram, so the rating is
// recorded as a timer of N seconds for N stars, which internal/telemetry exports as the plain
// number N with buckets 1 to 5.
func recordRating(ctx workflow.Context, rating int) {
	recordDuration(ctx, MetricCaseRating, time.Duration(rating)*time.Second)
}
