package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/temporalclient"
	"github.com/flexcord/flexcord/kb"
	"github.com/flexcord/flexcord/worker"
)

func workerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", stderr)
	b := config.NewBinder(fs)
	var c common
	var k kbSettings
	c.bind(b)
	k.bind(b)
	provs := newProviders()
	for _, p := range provs {
		p.bind(b)
	}
	if err := parse(fs, b, args); err != nil {
		return err
	}
	for _, p := range provs {
		if !p.configured() {
			return fmt.Errorf("%s is not configured: a worker needs every provider's credentials (flexcord worker -h lists the variables; see README, Configuration)", p.name())
		}
		if err := p.validate(); err != nil {
			return err
		}
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
	store, err := k.open(log)
	if err != nil {
		return err
	}
	defer store.Close()
	reloadOnHangup(ctx, store, log)
	acts, err := buildActivities(ctx, log, provs, store)
	if err != nil {
		return err
	}
	log.Info("worker started", "task_queue", "flexcord", "namespace", ns, "version", Version())
	return worker.Run(ctx, tc, acts, sdkworker.Options{})
}

// buildActivities creates the activity structs of the configured providers and the knowledge base.
func buildActivities(ctx context.Context, log *slog.Logger, provs []provider, store *kb.Store) (worker.Activities, error) {
	acts := worker.Activities{Knowledge: activities.NewKnowledge(store)}
	for _, p := range provs {
		if !p.configured() {
			continue
		}
		if err := p.addActivities(ctx, log, &acts); err != nil {
			return acts, fmt.Errorf("%s activities: %w", p.name(), err)
		}
	}
	return acts, nil
}
