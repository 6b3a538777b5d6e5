// Package worker runs flexcord's workflows and activities on the task queue "flexcord".
package worker

import (
	"context"
	"fmt"
	"log/slog"

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
}

// New creates a worker on workflows.TaskQueue with every workflow and the given activities.
func New(c client.Client, acts Activities, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, workflows.TaskQueue, opts)
	Register(w, acts)
	return w
}

// Register registers the workflows and the non-nil activity structs on r.
func Register(r sdkworker.Registry, acts Activities) {
	r.RegisterWorkflowWithOptions(workflows.Conversation, workflow.RegisterOptions{Name: "Conversation"})
	r.RegisterWorkflowWithOptions(workflows.Case, workflow.RegisterOptions{Name: "Case"})
	r.RegisterWorkflowWithOptions(workflows.Feed, workflow.RegisterOptions{Name: "Feed"})
	r.RegisterWorkflowWithOptions(workflows.Announcements, workflow.RegisterOptions{Name: "Announcements"})
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
