package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/feedadmin"
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
	var feedsFile string
	c.bind(b)
	k.bind(b)
	b.String(&feedsFile, "feeds-file", "FLEXCORD_FEEDS_FILE", "", "YAML or JSON file of #announcements sources, applied at start (see README, Announcements)")
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
	var sources []feedadmin.Source
	if feedsFile != "" {
		var err error
		if sources, err = feedadmin.LoadFile(feedsFile); err != nil {
			return fmt.Errorf("FLEXCORD_FEEDS_FILE: %w", err)
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
	w := worker.New(tc, acts, sdkworker.Options{})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue flexcord: %w", err)
	}
	defer w.Stop()
	log.Info("worker started", "task_queue", "flexcord", "namespace", ns, "version", Version())
	if len(sources) > 0 {
		// Applied once the worker runs: configuring a Feed waits for a worker to answer.
		go applyFeeds(ctx, tc, sources, log)
	}
	<-ctx.Done()
	return nil
}

// applyFeeds applies the sources of the feeds file, retrying each with back-off until it is
// applied or ctx ends: a Temporal cluster still starting must not lose the file.
func applyFeeds(ctx context.Context, tc client.Client, sources []feedadmin.Source, log *slog.Logger) {
	for _, src := range sources {
		backoff := time.Second
		for {
			actx, cancel := context.WithTimeout(ctx, time.Minute)
			res, err := feedadmin.Apply(actx, tc, src.Config())
			cancel()
			if err == nil {
				log.Info("feeds file: source applied", "source", src.Name, "schedule_created", res.CreatedSchedule, "schedule_updated", res.UpdatedSchedule)
				break
			}
			log.Warn("feeds file: source not applied yet", "source", src.Name, "retry_in", backoff, "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
		}
	}
}

// buildActivities creates the activity structs of the configured providers and the knowledge base.
func buildActivities(ctx context.Context, log *slog.Logger, provs []provider, store *kb.Store) (worker.Activities, error) {
	acts := worker.Activities{Knowledge: activities.NewKnowledge(store), Feeds: activities.NewFeeds(nil, log.With("component", "feeds"))}
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
