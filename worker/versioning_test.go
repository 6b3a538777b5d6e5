package worker_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/telemetry/telemetrytest"
	"github.com/flexcord/flexcord/internal/temporalclient"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

// flakyDMs fails the first direct message once, the way a Discord 5xx does, so that a delivery
// is retried.
type flakyDMs struct {
	*recorder
	mu     sync.Mutex
	failed bool
}

func (f *flakyDMs) SendDirectMessage(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	return activities.SendEach(in, func(one activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
		return f.sendOneDM(ctx, one)
	})
}

func (f *flakyDMs) sendOneDM(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	f.mu.Lock()
	first := !f.failed
	f.failed = true
	f.mu.Unlock()
	if first {
		return activities.SendDirectMessageResult{}, errors.New("discord 502: bad gateway")
	}
	return f.recorder.SendDirectMessage(ctx, in)
}

func (f *flakyDMs) register(w sdkworker.Worker) {
	f.recorder.register(registryExcept{w, "SendDirectMessage"})
	w.RegisterActivityWithOptions(f.SendDirectMessage, activity.RegisterOptions{Name: "SendDirectMessage"})
}

// registryExcept registers everything but the activity named skip.
type registryExcept struct {
	sdkworker.Worker
	skip string
}

func (r registryExcept) RegisterActivityWithOptions(a any, o activity.RegisterOptions) {
	if o.Name != r.skip {
		r.Worker.RegisterActivityWithOptions(a, o)
	}
}

// TestWorkerVersioningUpgradesARunningConversation runs workers of two builds of one Worker
// Deployment against the embedded server: a conversation starts on build 1; build 2 is started
// and made current, build 1 is stopped, and the conversation (AutoUpgrade) finishes on build 2.
// It also checks what /metrics reports afterwards, with build 2 having replayed the history
// build 1 wrote: nothing is counted twice.
func TestWorkerVersioningUpgradesARunningConversation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	const deployment = "flexcord-test"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{LogLevel: "fatal", SearchAttributes: worker.SearchAttributeTypes()})
	if err != nil {
		t.Fatalf("start embedded Temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	tel, err := telemetry.Setup(ctx, "flexcord-worker-test", "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr, Namespace: srv.Namespace, Logger: quiet{},
		MetricsHandler: temporalclient.MetricsHandler(tel)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	fake := &flakyDMs{recorder: &recorder{}}

	// startBuild starts the workers of one build: worker.New on the main queue, and the fakes on
	// the provider queues with the same versioning and delivery metrics as worker.New gives its
	// own provider workers.
	startBuild := func(buildID string) (stop func()) {
		opts := sdkworker.Options{DeploymentOptions: worker.DeploymentOptions(deployment, buildID)}
		main := worker.New(c, worker.Activities{}, opts)
		fake.register(main)
		workers := []sdkworker.Worker{main}
		for _, q := range []string{workflows.DiscordTaskQueue, workflows.TwilioTaskQueue} {
			pw := sdkworker.New(c, q, sdkworker.Options{DisableWorkflowWorker: true, DeploymentOptions: opts.DeploymentOptions,
				Interceptors: append(opts.Interceptors, worker.DeliveryMetrics())})
			fake.register(pw)
			workers = append(workers, pw)
		}
		for _, w := range workers {
			if err := w.Start(); err != nil {
				t.Fatalf("start worker of %s: %v", buildID, err)
			}
		}
		var once sync.Once
		stop = func() {
			once.Do(func() {
				for _, w := range workers {
					w.Stop()
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	handle := c.WorkerDeploymentClient().GetHandle(deployment)
	setCurrent := func(buildID string) {
		t.Helper()
		// The server knows a version once its workers have polled; wait until they poll all
		// three queues (making it current earlier would route the provider queues elsewhere).
		var queues []string
		eventually(t, 60*time.Second, "build "+buildID+" polling every queue", func() bool {
			desc, err := handle.DescribeVersion(ctx, client.WorkerDeploymentDescribeVersionOptions{BuildID: buildID})
			if err != nil {
				return false
			}
			queues = queues[:0]
			for _, q := range desc.Info.TaskQueuesInfos {
				queues = append(queues, q.Name)
			}
			return slices.Contains(queues, workflows.TaskQueue) && slices.Contains(queues, workflows.DiscordTaskQueue) &&
				slices.Contains(queues, workflows.TwilioTaskQueue)
		})
		if _, err := handle.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: buildID}); err != nil {
			t.Fatalf("set %s current: %v", buildID, err)
		}
	}
	versioning := func() (behavior enumspb.VersioningBehavior, buildID string) {
		t.Helper()
		resp, err := c.DescribeWorkflowExecution(ctx, workflows.ConversationWorkflowID("42"), "")
		if err != nil {
			t.Fatalf("describe the conversation: %v", err)
		}
		vi := resp.GetWorkflowExecutionInfo().GetVersioningInfo()
		return vi.GetBehavior(), vi.GetDeploymentVersion().GetBuildId()
	}
	status := func() workflows.ConversationStatus {
		var st workflows.ConversationStatus
		v, err := c.QueryWorkflow(ctx, workflows.ConversationWorkflowID("42"), "", workflows.QueryStatus)
		if err == nil {
			_ = v.Get(&st)
		}
		return st
	}

	stop1 := startBuild("build-1")
	setCurrent("build-1")
	in := ingress.New(ingress.Config{Temporal: c, Telemetry: tel})
	member := workflows.Member{UserID: "42", Username: "mika"}
	if err := in.StartConversation(ctx, member, "g1", "Guild", "en-US", workflows.SignalUserMessage,
		workflows.UserMessageSignal{EventID: "m0", Member: member, Text: "I want to talk to a human", WantsHuman: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the hand-over on build-1", func() bool { return status().Flex != nil })
	if behavior, build := versioning(); behavior != enumspb.VERSIONING_BEHAVIOR_AUTO_UPGRADE || build != "build-1" {
		t.Fatalf("conversation runs %s on %q, want AutoUpgrade on build-1", behavior, build)
	}

	// Roll: start build 2, make it current, stop build 1.
	startBuild("build-2")
	setCurrent("build-2")
	stop1()

	for _, s := range []struct {
		name  string
		arg   any
		stage workflows.Stage
	}{
		{workflows.SignalAgentJoined, workflows.AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"}, workflows.StageLive},
		{workflows.SignalAgentWrappedUp, workflows.AgentWrappedUpSignal{EventID: "EV2"}, workflows.StageResolved},
		{workflows.SignalUserAction, workflows.UserActionSignal{EventID: "i9", Member: member, Action: workflows.ActionRate, Rating: 4}, ""},
	} {
		if err := in.SignalConversation(ctx, "42", s.name, s.arg); err != nil {
			t.Fatal(err)
		}
		if s.stage != "" {
			eventually(t, 30*time.Second, "stage "+string(s.stage), func() bool { return status().Stage == s.stage })
		}
	}
	var res workflows.ConversationResult
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := c.GetWorkflow(wctx, workflows.ConversationWorkflowID("42"), "").Get(wctx, &res); err != nil {
		behavior, build := versioning()
		st := status()
		t.Fatalf("conversation: %v (%s on %q, stage %s, agent %q)", err, behavior, build, st.Stage, st.Agent)
	}
	if res.ClosedReason != workflows.ReasonRated || res.Rating != 4 {
		t.Fatalf("result = %+v", res)
	}
	if behavior, build := versioning(); behavior != enumspb.VERSIONING_BEHAVIOR_AUTO_UPGRADE || build != "build-2" {
		t.Errorf("conversation ended %s on %q, want AutoUpgrade on build-2", behavior, build)
	}

	m := telemetrytest.Scrape(t, tel.MetricsHandler)
	checks := []struct {
		name   string
		labels []string
		op     string
		want   float64
	}{
		{"flexcord_deliveries_total", []string{"activity_type", "SendDirectMessage", "outcome", "delivered"}, ">=", 3},
		{"flexcord_deliveries_total", []string{"activity_type", "SendDirectMessage", "outcome", "retried"}, "==", 1},
		{"flexcord_deliveries_total", []string{"outcome", "failed"}, "==", 0},
		{"flexcord_handovers_total", []string{"handover", "first", "workflow_type", "Conversation"}, "==", 1},
		{"flexcord_queue_wait_seconds_count", nil, "==", 1},
		{"flexcord_case_rating_count", []string{"workflow_type", "Conversation"}, "==", 1},
		{"flexcord_case_rating_bucket", []string{"le", "3"}, "==", 0},
		{"flexcord_case_rating_bucket", []string{"le", "4"}, "==", 1},
		{"flexcord_signals_total", []string{"signal", workflows.SignalAgentJoined, "outcome", "ok"}, "==", 1},
		{"flexcord_deliveries_failed_total", nil, "==", 0},
		{"temporal_workflow_task_execution_latency_seconds_bucket", []string{"le", "10"}, ">=", 1},
	}
	for _, c := range checks {
		got, _ := m.Value(c.name, c.labels...)
		if c.op == "==" && got != c.want || c.op == ">=" && got < c.want {
			t.Errorf("%s%v = %v, want %s %v", c.name, c.labels, got, c.op, c.want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", m)
	}
}
