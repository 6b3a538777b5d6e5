package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
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
	"github.com/flexcord/flexcord/workflows"
)

const workerIntro = `Usage: flexcord worker [flags]

Runs the Conversation, Case and Feed workflows and the activities on task queue "flexcord",
against the Temporal cluster TEMPORAL_* names. Run as many as you need. It starts and serves
/healthz even while Temporal cannot be reached, retrying with back-off; /readyz says what is
missing. A provider without credentials is left out: the worker registers the other activities
and says which ones it cannot run (with FLEXCORD_SANDBOX_URL, the sandbox's emulators stand in).
`

func workerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", stderr)
	setIntro(fs, workerIntro)
	b := config.NewBinder(fs)
	var c common
	var k kbSettings
	var sb sandboxSettings
	var feedsFile, httpAddr string
	c.bind(b)
	k.bind(b)
	b.String(&feedsFile, "feeds-file", "FLEXCORD_FEEDS_FILE", "", "YAML or JSON file of #announcements sources, applied at start (see README, Announcements)")
	b.String(&httpAddr, "http-addr", "FLEXCORD_HTTP_ADDR", ":8082", "address of the worker's health and metrics server (/healthz, /readyz, /metrics)")
	var discordRate, twilioRate, providerConcurrency int
	b.Int(&discordRate, "discord-rate", "FLEXCORD_DISCORD_RATE", worker.DefaultDiscordPerSecond, "Discord activities started per second across all workers (give every worker the same value; Discord allows 50 requests/s per bot)")
	b.Int(&twilioRate, "twilio-rate", "FLEXCORD_TWILIO_RATE", worker.DefaultTwilioPerSecond, "Twilio activities started per second across all workers (give every worker the same value)")
	var discordFast, twilioFast int
	b.Int(&discordFast, "discord-fast-rate", "FLEXCORD_DISCORD_FAST_RATE", worker.DefaultDiscordFastPerSecond, "this worker's fast path to Discord: direct messages tried at once from the workflow (local activities), per second; beyond it they go through the Discord queue; negative: off. Keep FLEXCORD_DISCORD_RATE + workers × this under 50")
	b.Int(&twilioFast, "twilio-fast-rate", "FLEXCORD_TWILIO_FAST_RATE", worker.DefaultTwilioFastPerSecond, "this worker's fast path to Twilio: Flex posts tried at once from the workflow (local activities), per second; beyond it they go through the Twilio queue; negative: off")
	b.Int(&providerConcurrency, "provider-concurrency", "FLEXCORD_PROVIDER_CONCURRENCY", worker.DefaultConcurrency, "Discord or Twilio activities one worker runs at once, per provider")
	var deploymentName, buildID string
	b.String(&deploymentName, "deployment-name", "FLEXCORD_DEPLOYMENT_NAME", "", "Worker Versioning: the Temporal Worker Deployment this worker belongs to (e.g. flexcord); with FLEXCORD_BUILD_ID set too, the worker polls as that deployment's version and runs only the tasks routed to it (see README, Rolling upgrades)")
	b.String(&buildID, "build-id", "FLEXCORD_BUILD_ID", "", "Worker Versioning: this build's id within FLEXCORD_DEPLOYMENT_NAME (e.g. the image tag or git commit); Worker Versioning is on only when both are set")
	provs := newProviders()
	for _, p := range provs {
		p.bind(b)
	}
	c.bindAttachments(b)
	openBlobs := bindBlobStore(b)
	sb.bind(b)
	describeTemporal(b)
	describeTelemetry(b)
	if err := parse(fs, b, args); err != nil {
		return err
	}
	if err := sb.validate(); err != nil {
		return err
	}
	if (deploymentName == "") != (buildID == "") {
		return fmt.Errorf("FLEXCORD_DEPLOYMENT_NAME and FLEXCORD_BUILD_ID: set both for Worker Versioning, or neither")
	}
	for _, p := range provs {
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
	routeDiscordgoLogs(log)
	ln, err := listen(httpAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	tel, err := telemetry.Setup(ctx, "flexcord-worker", Version())
	if err != nil {
		return err
	}
	defer shutdownWithin(tel.Shutdown, 5*time.Second)
	// A lazy client: the worker starts, and answers /healthz, while Temporal is unreachable.
	tc, co, err := temporalclient.Dial(temporalclient.Options{Logger: log, Telemetry: tel, Lazy: true})
	if err != nil {
		return err
	}
	defer tc.Close()
	ready := &readiness{}
	ready.add("temporal", temporalCheck(tc))
	srv := newRoleServer(ready, tel)
	srv.setHandler(http.NotFoundHandler()) // health and metrics only
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- srv.serve(serveCtx, ln, log) }()
	defer func() {
		stopServing()
		<-served
	}()
	log.Info("worker listening", "addr", ln.Addr().String(), "version", Version())

	if needsSandbox(sb.url, provs, log) {
		state := newComponentState("not fetched yet")
		ready.add("sandbox", state.check)
		cfg, err := fetchSandboxConfig(ctx, sb.url, state, log)
		if err != nil {
			return nil // stopped while waiting
		}
		discordWasSet := discordOf(provs).configured()
		if err := applySandbox(cfg, sb.url, provs, log); err != nil {
			return err
		}
		state.set(nil)
		if !discordWasSet {
			// The sample blog posts in the sandbox's #announcements.
			sources = append(sources, cfg.Feeds...)
		}
	}
	store, err := k.open(log)
	if err != nil {
		return err
	}
	defer store.Close()
	reloadOnHangup(ctx, store, log)
	blobs, blobsDesc, err := openBlobs()
	if err != nil {
		return err
	}
	log.Info("transcripts and attachments kept in " + blobsDesc)
	acts, err := buildActivities(ctx, log, provs, store, &activities.Files{Store: blobs, MaxBytes: c.attachmentBytes()})
	if err != nil {
		return err
	}
	if discordRate <= 0 || twilioRate <= 0 || providerConcurrency <= 0 {
		return fmt.Errorf("FLEXCORD_DISCORD_RATE, FLEXCORD_TWILIO_RATE and FLEXCORD_PROVIDER_CONCURRENCY must be at least 1")
	}
	acts.Limits = worker.Limits{DiscordPerSecond: float64(discordRate), TwilioPerSecond: float64(twilioRate), Concurrency: providerConcurrency,
		DiscordFastPerSecond: float64(discordFast), TwilioFastPerSecond: float64(twilioFast)}
	for _, p := range provs {
		if p.configured() {
			continue
		}
		reason := fmt.Errorf("not configured (set %s): this worker cannot run %s", p.missing(), strings.Join(p.activityNames(), ", "))
		log.Warn(p.name()+" is not configured; its activities are not registered here, and wait for a worker that has them",
			"set", p.missing(), "activities", p.activityNames())
		ready.add(strings.ToLower(p.name()), func(context.Context) error { return reason })
	}
	state := newComponentState("not started yet")
	ready.add("worker", state.check)
	deployment := worker.DeploymentOptions(deploymentName, buildID)
	if deployment.UseVersioning {
		log.Info("Worker Versioning on: this worker runs only the tasks routed to its deployment version",
			"deployment", deploymentName, "build_id", buildID, "default_behavior", "auto-upgrade")
	}
	runWorker(ctx, tc, co.Namespace, acts, deployment, state, log, func() {
		if len(sources) > 0 {
			// Applied once the worker runs: configuring a Feed waits for a worker to answer.
			go applyFeeds(ctx, tc, sources, log)
		}
	})
	return nil
}

// runWorker runs the worker on task queue flexcord until ctx is done. While Temporal cannot be
// reached, it retries with back-off: first the search attributes, then the worker's start (a
// worker that failed to start cannot start again, so each attempt builds a new one). A worker
// that stops on a fatal error is replaced the same way. started runs once, after the first
// start. deployment is the worker's Worker Versioning (zero: unversioned).
func runWorker(ctx context.Context, tc client.Client, namespace string, acts worker.Activities, deployment sdkworker.DeploymentOptions, state *componentState, log *slog.Logger, started func()) {
	var b backoff
	var once sync.Once
	for {
		err := worker.RegisterSearchAttributes(ctx, tc, namespace, log)
		if err == nil {
			fatal := make(chan error, 1)
			w := worker.New(tc, acts, sdkworker.Options{OnFatalError: func(err error) { fatal <- err }, DeploymentOptions: deployment})
			if err = w.Start(); err == nil {
				state.set(nil)
				b = backoff{}
				log.Info("worker started", "task_queue", workflows.TaskQueue, "namespace", namespace, "version", Version(),
					"deployment", deployment.Version.DeploymentName, "build_id", deployment.Version.BuildID)
				once.Do(started)
				select {
				case <-ctx.Done():
					w.Stop()
					return
				case err = <-fatal:
					log.Error("worker stopped on a fatal error; starting a new one", "error", err)
				}
			} else {
				err = fmt.Errorf("start worker on task queue %s: %w", workflows.TaskQueue, err)
				go w.Stop()
			}
		}
		if ctx.Err() != nil {
			return
		}
		state.set(fmt.Errorf("not running (%s)", grpcReason(err)))
		d := b.wait()
		log.Warn("worker not running; retrying", "retry_in", d.String(), "error", err)
		if !sleep(ctx, d) {
			return
		}
	}
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
				log.Info("#announcements source applied", "source", src.Name, "schedule_created", res.CreatedSchedule, "schedule_updated", res.UpdatedSchedule)
				break
			}
			log.Warn("#announcements source not applied yet", "source", src.Name, "retry_in", backoff.String(), "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
		}
	}
}

// buildActivities creates the activity structs of the configured providers and the knowledge
// base; the providers give files the clients it fetches attachments with.
func buildActivities(ctx context.Context, log *slog.Logger, provs []provider, store *kb.Store, files *activities.Files) (worker.Activities, error) {
	acts := worker.Activities{Knowledge: activities.NewKnowledge(store), Feeds: activities.NewFeeds(nil, log.With("component", "feeds")), Files: files}
	for _, p := range provs {
		if !p.configured() {
			continue
		}
		if err := p.addActivities(ctx, log, &acts); err != nil {
			return acts, fmt.Errorf("%s activities: %w", p.name(), err)
		}
	}
	acts.Records = &activities.Records{Store: files.Store, Discord: acts.Discord}
	return acts, nil
}
