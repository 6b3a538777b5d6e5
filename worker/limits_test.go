package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

// burstDMs starts n direct messages at once on the Discord task queue, as n conversations
// delivering at the same moment would, and waits for them.
func burstDMs(ctx workflow.Context, userID string, n int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: workflows.DiscordTaskQueue, StartToCloseTimeout: time.Minute,
	})
	var futures []workflow.Future
	for i := range n {
		futures = append(futures, workflow.ExecuteActivity(ctx, "SendDirectMessage", activities.SendDirectMessageInput{
			UserID: userID, Nonce: fmt.Sprintf("burst-%d", i), Message: activities.Message{Content: fmt.Sprint("message ", i)},
		}))
	}
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// TestDiscordCallsStayUnderTheQueueRateWithTwoWorkers runs two worker processes' worth of
// workers against one Discord: a burst of 16 direct messages goes out no faster than the Discord
// queue's rate allows, for both together, however many workers poll it.
func TestDiscordCallsStayUnderTheQueueRateWithTwoWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the embedded server")
	}
	// The embedded server alone: the stack's recorder would poll the Discord queue too.
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer scancel()
	srv, err := devserver.Start(sctx, devserver.Options{LogLevel: "fatal", SearchAttributes: worker.SearchAttributeTypes()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	tc, err := client.Dial(client.Options{HostPort: srv.FrontendAddr, Namespace: srv.Namespace, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	const user = "2000000000000000201"
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{{ID: user, Username: "ana"}}})
	const perSecond, n = 2, 16
	for range 2 {
		sess, err := discordsession.New(emu.Token(), emu.Transport())
		if err != nil {
			t.Fatal(err)
		}
		// A worker set of its own (another process, in production) with the same limit.
		c, err := client.NewClientFromExisting(tc, client.Options{Logger: quiet{}})
		if err != nil {
			t.Fatal(err)
		}
		set := worker.New(c, worker.Activities{
			Discord: activities.NewDiscord(sess, slog.New(slog.DiscardHandler)),
			Limits:  worker.Limits{DiscordPerSecond: perSecond},
		}, sdkworker.Options{})
		if err := set.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(set.Stop)
	}
	w := sdkworker.New(tc, "burst", sdkworker.Options{})
	w.RegisterWorkflow(burstDMs)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "burst"}, burstDMs, user, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var sent []time.Time
	for _, r := range emu.BotMessages() {
		if r.FromBot {
			at, err := time.Parse(time.RFC3339Nano, r.Message.Timestamp)
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, at)
		}
	}
	if len(sent) != n {
		t.Fatalf("%d messages sent, want %d", len(sent), n)
	}
	first, last := sent[0], sent[0]
	for _, at := range sent {
		if at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	// n messages at perSecond take at least (n-burst)/perSecond: the server's limiter lets a
	// short burst of about one second's worth through at first.
	if took, least := last.Sub(first), time.Duration(n-2*perSecond)*time.Second/perSecond; took < least {
		t.Fatalf("%d messages went out in %v: faster than %d/s across both workers (at least %v)", n, took, perSecond, least)
	}
	t.Logf("%d messages through two workers at a queue rate of %d/s took %v", n, perSecond, last.Sub(first))
}
