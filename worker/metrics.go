package worker

import (
	"context"
	"errors"
	"slices"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/workflows"
)

// MetricDeliveries counts the attempts of the delivery activities, tagged outcome (delivered,
// retried, failed, deferred); the SDK's activity metrics handler adds activity_type, task_queue and
// workflow_type. internal/telemetry describes it.
const MetricDeliveries = "flexcord_deliveries"

// DeliveryActivities are the activities that deliver a message to Discord or Flex, by their
// registered names (the method names of activities.Discord and activities.Flex).
var DeliveryActivities = []string{
	"SendDirectMessage", "EditDirectMessage", "PostChannelMessage", "SendInteractionFollowUp",
	"PostAnnouncement", "PostFlexMessage",
}

// Delivery outcomes, the values of MetricDeliveries' outcome tag.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetried   = "retried"
	OutcomeFailed    = "failed"
	// OutcomeDeferred: a local-activity try (the fast path) that this worker's fast-path rate
	// refused before calling the provider; the delivery goes through the provider's queue.
	OutcomeDeferred = "deferred"
)

// DeliveryMetrics is a worker interceptor that counts every attempt of a delivery activity by
// outcome, without touching the activities themselves. An attempt that fails counts as retried
// while Temporal will try again (by the attempt's retry policy), and as failed when it will not:
// a non-retryable error, or the last attempt. Attempts that time out on the server side are not
// seen by the worker; the workflows' flexcord_deliveries_failed counts every delivery that ends
// failed in a ledger, whatever the cause.
func DeliveryMetrics() interceptor.WorkerInterceptor { return &deliveryMetrics{} }

type deliveryMetrics struct {
	interceptor.WorkerInterceptorBase
}

func (*deliveryMetrics) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &deliveryInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}}
}

type deliveryInbound struct {
	interceptor.ActivityInboundInterceptorBase
}

func (d *deliveryInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := d.Next.ExecuteActivity(ctx, in)
	info := activity.GetInfo(ctx)
	if slices.Contains(DeliveryActivities, info.ActivityType.Name) && !errors.Is(err, activity.ErrResultPending) {
		tags := map[string]string{"outcome": deliveryOutcome(info, err)}
		if info.IsLocalActivity {
			// The SDK's handler of a local activity tags none of these.
			tags["activity_type"], tags["task_queue"] = info.ActivityType.Name, info.TaskQueue
			if info.WorkflowType != nil {
				tags["workflow_type"] = info.WorkflowType.Name
			}
		}
		activity.GetMetricsHandler(ctx).WithTags(tags).Counter(MetricDeliveries).Inc(1)
	}
	return res, err
}

// deliveryOutcome classifies one attempt of a delivery activity.
func deliveryOutcome(info activity.Info, err error) string {
	if err == nil {
		return OutcomeDelivered
	}
	var appErr *temporal.ApplicationError
	isApp := errors.As(err, &appErr)
	if isApp && info.IsLocalActivity && appErr.Type() == workflows.ErrFastPathBusy {
		return OutcomeDeferred
	}
	if isApp {
		if appErr.NonRetryable() {
			return OutcomeFailed
		}
		if p := info.RetryPolicy; p != nil && slices.Contains(p.NonRetryableErrorTypes, appErr.Type()) {
			return OutcomeFailed
		}
	}
	if info.IsLocalActivity {
		// A local try is tried once; the workflow goes on with a regular activity.
		return OutcomeRetried
	}
	if p := info.RetryPolicy; p != nil && p.MaximumAttempts > 0 && info.Attempt >= p.MaximumAttempts {
		return OutcomeFailed
	}
	return OutcomeRetried
}
