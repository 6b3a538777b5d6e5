package worker

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/time/rate"

	"github.com/flexcord/flexcord/workflows"
)

// Default rates of one worker's fast path (local-activity tries of relayed messages).
const (
	// DefaultDiscordFastPerSecond: with the queue's 30/s, two workers' fast paths keep all of
	// flexcord's Discord calls at 40/s, under Discord's 50/s per bot with room for ingress.
	DefaultDiscordFastPerSecond = 5
	// DefaultTwilioFastPerSecond: Twilio's limits are per conversation; this bounds one worker.
	DefaultTwilioFastPerSecond = 25
)

// fastPathActivities maps the activities tried locally to the provider whose rate they use.
var fastPathActivities = map[string]string{"SendDirectMessage": "discord", "PostFlexMessage": "twilio"}

// FastPathLimits is a worker interceptor that holds the local-activity tries of relayed messages
// (workflows' fast path) to this worker's share of each provider's rate. Local activities run in
// the worker that runs the workflow, outside the provider task queues whose
// TaskQueueActivitiesPerSecond keeps all workers together under the provider's limit; so each
// worker gives its fast path a rate of its own, and a try over it is refused at once with
// workflows.ErrFastPathBusy, which sends the delivery to the rate-limited queue instead. Regular
// activities pass untouched. Rates of zero or less turn the fast path of that provider off.
func FastPathLimits(discordPerSecond, twilioPerSecond float64) interceptor.WorkerInterceptor {
	limiter := func(r float64) *rate.Limiter {
		if r <= 0 {
			return rate.NewLimiter(0, 0)
		}
		return rate.NewLimiter(rate.Limit(r), max(1, int(r)))
	}
	return &fastPath{limiters: map[string]*rate.Limiter{
		"discord": limiter(discordPerSecond), "twilio": limiter(twilioPerSecond),
	}}
}

type fastPath struct {
	interceptor.WorkerInterceptorBase
	limiters map[string]*rate.Limiter
}

func (f *fastPath) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &fastPathInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, f: f}
}

type fastPathInbound struct {
	interceptor.ActivityInboundInterceptorBase
	f *fastPath
}

func (i *fastPathInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	if provider, ok := fastPathActivities[info.ActivityType.Name]; ok && info.IsLocalActivity {
		if !i.f.limiters[provider].Allow() {
			return nil, temporal.NewApplicationError(
				fmt.Sprintf("this worker's fast-path share of the %s rate is used up; the delivery goes through the %s task queue", provider, provider),
				workflows.ErrFastPathBusy)
		}
	}
	return i.Next.ExecuteActivity(ctx, in)
}
