// Package worker runs flexcord's workflows and activities on the task queue "flexcord".
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/workflows"
)

// Activities are the activity implementations the worker registers. A nil field registers
// nothing for that provider, so its activities fail (and are retried) until a worker that has it
// picks them up.
type Activities struct {
	Discord   *activities.Discord
	Flex      *activities.Flex
	Knowledge *activities.Knowledge
	Feeds     *activities.Feeds
	// Records writes transcripts to the blob store and sends members theirs.
	Records *activities.Records
	// Files moves attachments between the providers and the blob store; New gives it to the
	// Discord and Flex activities.
	Files *activities.Files
	// Limits bound the provider task queues; zero values mean the defaults.
	Limits Limits
}

// Limits are the rates of the provider task queues. The Temporal server enforces each queue's
// rate across all the workers polling it (every worker should set the same value), so adding
// workers never raises the rate at which flexcord calls a provider.
type Limits struct {
	// DiscordPerSecond bounds the Discord activities started per second on the Discord queue,
	// across all workers (default 30: Discord allows 50 requests/s per bot in total, and the
	// workers' fast paths, ingress and the gateway make calls too).
	DiscordPerSecond float64
	// TwilioPerSecond bounds the Twilio activities started per second (default 50).
	TwilioPerSecond float64
	// Concurrency bounds the activities one worker runs at once on each provider queue (default
	// 100).
	Concurrency int
	// DiscordFastPerSecond and TwilioFastPerSecond bound this worker's fast path: relayed
	// messages tried as local activities, which do not go through the queues above (default 5
	// and 25; negative turns it off). See FastPathLimits.
	DiscordFastPerSecond, TwilioFastPerSecond float64
}

// Default provider rates. All workers' Discord calls together stay at 40/s by default (the
// queue's 30/s and two workers' fast paths of 5/s), under Discord's 50 requests/s per bot, with
// room for ingress and the gateway.
const (
	DefaultDiscordPerSecond = 30
	DefaultTwilioPerSecond  = 50
	DefaultConcurrency      = 100
)

func (l Limits) withDefaults() Limits {
	if l.DiscordPerSecond <= 0 {
		l.DiscordPerSecond = DefaultDiscordPerSecond
	}
	if l.TwilioPerSecond <= 0 {
		l.TwilioPerSecond = DefaultTwilioPerSecond
	}
	if l.Concurrency <= 0 {
		l.Concurrency = DefaultConcurrency
	}
	if l.DiscordFastPerSecond == 0 {
		l.DiscordFastPerSecond = DefaultDiscordFastPerSecond
	}
	if l.TwilioFastPerSecond == 0 {
		l.TwilioFastPerSecond = DefaultTwilioFastPerSecond
	}
	return l
}

// New creates the workers of one process: one on workflows.TaskQueue with every workflow and the
// given activities, and one per configured provider on its rate-limited queue
// (workflows.DiscordTaskQueue, workflows.TwilioTaskQueue). The result starts and stops them
// together; registering on it registers on the main worker. Every worker counts its deliveries
// (DeliveryMetrics) and shares opts.DeploymentOptions (see DeploymentOptions).
func New(c client.Client, acts Activities, opts sdkworker.Options) sdkworker.Worker {
	limits := acts.Limits.withDefaults()
	if acts.Files != nil {
		if acts.Discord != nil {
			acts.Discord.Files = acts.Files
		}
		if acts.Flex != nil {
			acts.Flex.Files = acts.Files
		}
	}
	opts.Interceptors = append(slices.Clip(opts.Interceptors), DeliveryMetrics(),
		FastPathLimits(limits.DiscordFastPerSecond, limits.TwilioFastPerSecond))
	w := sdkworker.New(c, workflows.TaskQueue, opts)
	Register(w, acts)
	set := &Set{Worker: w}
	provider := func(queue string, perSecond float64, impl any) {
		po := opts
		po.DisableWorkflowWorker = true
		po.TaskQueueActivitiesPerSecond = perSecond
		po.MaxConcurrentActivityExecutionSize = limits.Concurrency
		pw := sdkworker.New(c, queue, po)
		pw.RegisterActivity(impl)
		set.providers = append(set.providers, pw)
	}
	if acts.Discord != nil {
		provider(workflows.DiscordTaskQueue, limits.DiscordPerSecond, acts.Discord)
	}
	if acts.Flex != nil {
		provider(workflows.TwilioTaskQueue, limits.TwilioPerSecond, acts.Flex)
	}
	return set
}

// Set is the workers of one process. Registering on it registers on the worker of the main task
// queue.
type Set struct {
	sdkworker.Worker
	providers []sdkworker.Worker
}

// Start starts every worker of the set, or none.
func (s *Set) Start() error {
	if err := s.Worker.Start(); err != nil {
		return err
	}
	for i, p := range s.providers {
		if err := p.Start(); err != nil {
			for _, started := range s.providers[:i] {
				started.Stop()
			}
			s.Worker.Stop()
			return err
		}
	}
	return nil
}

// Run starts the set and blocks until interruptCh delivers (see sdkworker.Worker.Run).
func (s *Set) Run(interruptCh <-chan any) error {
	if err := s.Start(); err != nil {
		return err
	}
	<-interruptCh
	s.Stop()
	return nil
}

// Stop stops every worker of the set.
func (s *Set) Stop() {
	for _, p := range s.providers {
		p.Stop()
	}
	s.Worker.Stop()
}

// Register registers the workflows and the non-nil activity structs on r. Activities scheduled on
// the main queue (by workflows started before the provider queues existed) still run there.
func Register(r sdkworker.Registry, acts Activities) {
	r.RegisterWorkflowWithOptions(workflows.Conversation, workflow.RegisterOptions{Name: "Conversation"})
	r.RegisterWorkflowWithOptions(workflows.Case, workflow.RegisterOptions{Name: "Case"})
	r.RegisterWorkflowWithOptions(workflows.Feed, workflow.RegisterOptions{Name: "Feed"})
	r.RegisterWorkflowWithOptions(workflows.Announcements, workflow.RegisterOptions{Name: "Announcements"})
	r.RegisterWorkflowWithOptions(workflows.SendTranscript, workflow.RegisterOptions{Name: "SendTranscript"})
	if acts.Discord != nil {
		r.RegisterActivity(acts.Discord)
	}
	if acts.Flex != nil {
		r.RegisterActivity(acts.Flex)
	}
	if acts.Knowledge != nil {
		r.RegisterActivity(acts.Knowledge)
	}
	if acts.Feeds != nil {
		r.RegisterActivity(acts.Feeds)
	}
	if acts.Records != nil {
		r.RegisterActivity(acts.Records)
	}
}

// Run runs a worker until ctx is done.
func Run(ctx context.Context, c client.Client, acts Activities, opts sdkworker.Options) error {
	w := New(c, acts, opts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", workflows.TaskQueue, err)
	}
	<-ctx.Done()
	w.Stop()
	return nil
}

// RegisterSearchAttributes adds flexcord's custom search attributes to namespace when they are
// missing. It is idempotent and safe to run from every worker at start-up.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string, log *slog.Logger) error {
	ops := c.OperatorService()
	have, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, key := range workflows.SearchAttributes() {
		if _, ok := have.GetCustomAttributes()[key.GetName()]; !ok {
			missing[key.GetName()] = key.GetValueType()
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	if err != nil {
		return fmt.Errorf("add search attributes to namespace %s: %w", namespace, err)
	}
	for name := range missing {
		log.Info("registered search attribute", "name", name, "namespace", namespace)
	}
	return nil
}

// SearchAttributeTypes returns flexcord's search attributes with their types, for servers that
// take them at namespace creation (the embedded dev server).
func SearchAttributeTypes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, key := range workflows.SearchAttributes() {
		out[key.GetName()] = key.GetValueType()
	}
	return out
}
