package worker

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/workflows"
)

func TestDeliveryOutcome(t *testing.T) {
	policy := &temporal.RetryPolicy{MaximumAttempts: 8, NonRetryableErrorTypes: []string{"Forbidden"}}
	retryable := temporal.NewApplicationError("discord 500", "DiscordServerError")
	for _, c := range []struct {
		name    string
		attempt int32
		policy  *temporal.RetryPolicy
		err     error
		want    string
		local   bool
	}{
		{"success", 1, policy, nil, OutcomeDelivered, false},
		{"success after retries", 5, policy, nil, OutcomeDelivered, false},
		{"retryable error", 1, policy, retryable, OutcomeRetried, false},
		{"plain error", 3, policy, errors.New("connection reset"), OutcomeRetried, false},
		{"last attempt", 8, policy, retryable, OutcomeFailed, false},
		{"non-retryable error", 1, policy, temporal.NewNonRetryableApplicationError("50007", "DiscordCannotMessageUser", nil), OutcomeFailed, false},
		{"non-retryable type in the policy", 1, policy, temporal.NewApplicationError("403", "Forbidden"), OutcomeFailed, false},
		{"no retry policy known", 100, nil, retryable, OutcomeRetried, false},
		{"unlimited attempts", 100, &temporal.RetryPolicy{}, retryable, OutcomeRetried, false},
		// A local try has one attempt; the workflow goes on with a regular activity.
		{"local try failed", 1, &temporal.RetryPolicy{MaximumAttempts: 1}, retryable, OutcomeRetried, true},
		{"local try refused for good", 1, &temporal.RetryPolicy{MaximumAttempts: 1},
			temporal.NewNonRetryableApplicationError("50007", "DiscordCannotMessageUser", nil), OutcomeFailed, true},
		{"local try over the fast-path rate", 1, &temporal.RetryPolicy{MaximumAttempts: 1},
			temporal.NewApplicationError("busy", workflows.ErrFastPathBusy), OutcomeDeferred, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			info := activity.Info{Attempt: c.attempt, RetryPolicy: c.policy, IsLocalActivity: c.local}
			if got := deliveryOutcome(info, c.err); got != c.want {
				t.Errorf("deliveryOutcome = %s, want %s", got, c.want)
			}
		})
	}
}

func TestDeploymentOptions(t *testing.T) {
	if got := DeploymentOptions("", ""); got.UseVersioning {
		t.Errorf("unset: %+v, want unversioned", got)
	}
	if got := DeploymentOptions("flexcord", ""); got.UseVersioning {
		t.Errorf("deployment only: %+v, want unversioned", got)
	}
	got := DeploymentOptions("flexcord", "v2")
	if !got.UseVersioning || got.Version.DeploymentName != "flexcord" || got.Version.BuildID != "v2" {
		t.Errorf("both set: %+v", got)
	}
}
