package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/temporalclient"
	"github.com/flexcord/flexcord/worker"
)

func workerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", stderr)
	b := config.NewBinder(fs)
	var c common
	c.bind(b)
	if err := parse(fs, b, args); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, "flexcord-worker", Version())
	if err != nil {
		return err
	}
	defer shutdownWithin(tel.Shutdown, 5*time.Second)
	tc, co, err := temporalclient.Dial(temporalclient.Options{Logger: log, Telemetry: tel})
	if err != nil {
		return err
	}
	defer tc.Close()
	ns := co.Namespace
	if err := worker.RegisterSearchAttributes(ctx, tc, ns, log); err != nil {
		return err
	}
	acts, err := buildActivities(ctx, log)
	if err != nil {
		return err
	}
	log.Info("worker started", "task_queue", "flexcord", "namespace", ns, "version", Version())
	return worker.Run(ctx, tc, acts, sdkworker.Options{})
}

// buildActivities creates the activity structs from the environment.
func buildActivities(ctx context.Context, log *slog.Logger) (worker.Activities, error) {
	return worker.Activities{
		Discord:   &activities.Discord{},
		Flex:      &activities.Flex{},
		Knowledge: &activities.Knowledge{},
	}, nil
}
