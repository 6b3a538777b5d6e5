package worker

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/workflows"
)

// TestFastPathLimits: local tries of a relayed message beyond the worker's share are refused at
// once with FastPathBusy (the workflow then uses the rate-limited queue); regular activities and
// other activities are never held back.
func TestFastPathLimits(t *testing.T) {
	calls := 0
	dm := func(ctx context.Context) (string, error) { calls++; return "sent", nil }
	post := func(ctx context.Context) (string, error) { calls++; return "posted", nil }
	edit := func(ctx context.Context) (string, error) { calls++; return "edited", nil }
	newEnv := func() *testsuite.TestActivityEnvironment {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{FastPathLimits(1, 0)}})
		env.RegisterActivityWithOptions(dm, activity.RegisterOptions{Name: "SendDirectMessage"})
		env.RegisterActivityWithOptions(post, activity.RegisterOptions{Name: "PostFlexMessage"})
		env.RegisterActivityWithOptions(edit, activity.RegisterOptions{Name: "EditDirectMessage"})
		return env
	}
	env := newEnv()
	if _, err := env.ExecuteLocalActivity(dm); err != nil {
		t.Fatalf("first local try: %v", err)
	}
	_, err := env.ExecuteLocalActivity(dm)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrFastPathBusy || appErr.NonRetryable() {
		t.Fatalf("second local try within the second: %v, want a retryable %s", err, workflows.ErrFastPathBusy)
	}
	if _, err := env.ExecuteLocalActivity(post); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrFastPathBusy {
		t.Fatalf("Twilio fast path with rate 0: %v, want %s", err, workflows.ErrFastPathBusy)
	}
	for range 3 {
		if _, err := env.ExecuteActivity(dm); err != nil {
			t.Fatalf("regular activity held back: %v", err)
		}
		if _, err := env.ExecuteLocalActivity(edit); err != nil {
			t.Fatalf("local activity without a fast path held back: %v", err)
		}
	}
	if calls != 7 {
		t.Errorf("%d calls reached the provider, want 7 (1 local, 3 regular, 3 other)", calls)
	}
}
