// Package feedadmin manages the sources of #announcements on a Temporal cluster: for each source a
// Feed workflow (id feed:<name>), which remembers what was posted, and a Schedule (id feed:<name>)
// that starts an Announcements run every interval. The feeds command and the worker (for the
// sources declared in FLEXCORD_FEEDS_FILE) use it.
package feedadmin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/workflows"
)

// Applied says what Apply did.
type Applied struct {
	// CreatedSchedule: the source had no Schedule; UpdatedSchedule: its Schedule changed.
	CreatedSchedule bool
	UpdatedSchedule bool
	Status          workflows.FeedStatus
}

// Apply creates the source's Feed and Schedule, or brings them to cfg. Applying the same
// configuration twice changes nothing. A paused Schedule stays paused.
func Apply(ctx context.Context, c client.Client, cfg workflows.FeedConfig) (Applied, error) {
	var out Applied
	if cfg.Every == 0 {
		cfg.Every = workflows.DefaultFeedEvery
	}
	st, err := configureFeed(ctx, c, cfg)
	if err != nil {
		return out, err
	}
	out.Status = st
	if cfg.URL == "" {
		// A push-only source has nothing to poll.
		return out, nil
	}
	created, updated, err := applySchedule(ctx, c, cfg)
	out.CreatedSchedule, out.UpdatedSchedule = created, updated
	return out, err
}

// configureFeed sends the configuration to the source's Feed, starting it if it is not running.
func configureFeed(ctx context.Context, c client.Client, cfg workflows.FeedConfig) (workflows.FeedStatus, error) {
	var st workflows.FeedStatus
	name := cfg.Name
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.FeedWorkflowID(name),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchAttrFeed.ValueSet(name)),
		StaticSummary:            "Feed · " + name,
		StaticDetails:            "The memory of #announcements source **" + name + "**: what it posted, its last fetch, failed posts.",
	}, "Feed", workflows.FeedInput{Config: cfg})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName: workflows.UpdateConfigureFeed, Args: []any{cfg}, WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return st, fmt.Errorf("configure source %q: %w", name, err)
	}
	if err := h.Get(ctx, &st); err != nil {
		return st, fmt.Errorf("configure source %q: %w", name, err)
	}
	return st, nil
}

// jitter spreads the runs of many sources: a tenth of the interval, at most a minute.
func jitter(every time.Duration) time.Duration { return min(every/10, time.Minute) }

func scheduleSpec(cfg workflows.FeedConfig) client.ScheduleSpec {
	every := cfg.EveryOrDefault()
	return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}, Jitter: jitter(every)}
}

func scheduleAction(cfg workflows.FeedConfig) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:                    workflows.AnnouncementsWorkflowID(cfg.Name),
		Workflow:              "Announcements",
		Args:                  []any{workflows.AnnouncementsInput{Source: cfg.Name, Reason: "schedule"}},
		TaskQueue:             workflows.TaskQueue,
		WorkflowRunTimeout:    30 * time.Minute,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchAttrFeed.ValueSet(cfg.Name)),
		StaticSummary:         "Announcements · " + cfg.Name,
	}
}

// catchupWindow: after an outage shorter than one interval, the missed run still happens (once:
// overlapping runs are skipped); longer outages resume with the next run.
func catchupWindow(cfg workflows.FeedConfig) time.Duration {
	return max(cfg.EveryOrDefault(), time.Minute)
}

func applySchedule(ctx context.Context, c client.Client, cfg workflows.FeedConfig) (created, updated bool, err error) {
	id := workflows.FeedScheduleID(cfg.Name)
	h := c.ScheduleClient().GetHandle(ctx, id)
	desc, err := h.Describe(ctx)
	if _, missing := errors.AsType[*serviceerror.NotFound](err); missing {
		_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID:                    id,
			Spec:                  scheduleSpec(cfg),
			Action:                scheduleAction(cfg),
			Overlap:               enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow:         catchupWindow(cfg),
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchAttrFeed.ValueSet(cfg.Name)),
			Note:                  "polls #announcements source " + cfg.Name,
		})
		if err != nil {
			return false, false, fmt.Errorf("create schedule %s: %w", id, err)
		}
		return true, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("describe schedule %s: %w", id, err)
	}
	if scheduleMatches(desc, cfg) {
		return false, false, nil
	}
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		spec := scheduleSpec(cfg)
		s.Spec = &spec
		s.Action = scheduleAction(cfg)
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
		s.Policy.CatchupWindow = catchupWindow(cfg)
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return false, false, fmt.Errorf("update schedule %s: %w", id, err)
	}
	return false, true, nil
}

// scheduleMatches reports whether a Schedule already runs cfg's source at cfg's interval.
func scheduleMatches(desc *client.ScheduleDescription, cfg workflows.FeedConfig) bool {
	s := desc.Schedule
	if s.Spec == nil || len(s.Spec.Intervals) != 1 || s.Spec.Intervals[0].Every != cfg.EveryOrDefault() ||
		s.Spec.Jitter != jitter(cfg.EveryOrDefault()) {
		return false
	}
	if s.Policy == nil || s.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || s.Policy.CatchupWindow != catchupWindow(cfg) {
		return false
	}
	a, ok := s.Action.(*client.ScheduleWorkflowAction)
	return ok && a.Workflow == "Announcements" && a.TaskQueue == workflows.TaskQueue && a.ID == workflows.AnnouncementsWorkflowID(cfg.Name)
}

// Info is what List and Get report of a source.
type Info struct {
	Name string
	// Status is the Feed's; nil when it could not be read (StatusError says why).
	Status      *workflows.FeedStatus
	StatusError string
	// HasSchedule is false for a push-only source (or a Schedule lost).
	HasSchedule bool
	Paused      bool
	PauseNote   string
	NextRun     time.Time
	// LastRun is the start of the newest Announcements run the Schedule made.
	LastRun time.Time
}

// List returns every source: those with a Schedule and those with a running Feed.
func List(ctx context.Context, c client.Client) ([]Info, error) {
	names := map[string]bool{}
	var order []string
	add := func(name string) {
		if name != "" && !names[name] {
			names[name] = true
			order = append(order, name)
		}
	}
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if name, ok := workflows.FeedNameFromWorkflowID(e.ID); ok {
			add(name)
		}
	}
	ids, err := listRunningFeeds(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		name, _ := workflows.FeedNameFromWorkflowID(id)
		add(name)
	}
	out := make([]Info, 0, len(order))
	for _, name := range order {
		out = append(out, Get(ctx, c, name))
	}
	return out, nil
}

func listRunningFeeds(ctx context.Context, c client.Client) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         "WorkflowType = 'Feed' AND ExecutionStatus = 'Running'",
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list Feed workflows: %w", err)
		}
		for _, e := range resp.Executions {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return ids, nil
		}
	}
}

// Get reports on one source; what it cannot read is said in the Info rather than failing.
func Get(ctx context.Context, c client.Client, name string) Info {
	info := Info{Name: name}
	if st, err := Status(ctx, c, name); err != nil {
		info.StatusError = err.Error()
	} else {
		info.Status = &st
	}
	desc, err := c.ScheduleClient().GetHandle(ctx, workflows.FeedScheduleID(name)).Describe(ctx)
	if err == nil {
		info.HasSchedule = true
		info.Paused, info.PauseNote = desc.Schedule.State.Paused, desc.Schedule.State.Note
		if len(desc.Info.NextActionTimes) > 0 {
			info.NextRun = desc.Info.NextActionTimes[0]
		}
		for _, a := range desc.Info.RecentActions {
			if a.ActualTime.After(info.LastRun) {
				info.LastRun = a.ActualTime
			}
		}
	}
	return info
}

// Status queries a source's Feed.
func Status(ctx context.Context, c client.Client, name string) (workflows.FeedStatus, error) {
	var st workflows.FeedStatus
	v, err := c.QueryWorkflow(ctx, workflows.FeedWorkflowID(name), "", workflows.QueryStatus)
	if err != nil {
		if _, missing := errors.AsType[*serviceerror.NotFound](err); missing {
			return st, fmt.Errorf("no source named %q", name)
		}
		return st, fmt.Errorf("query source %q: %w", name, err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("read the status of source %q: %w", name, err)
	}
	return st, nil
}

// ErrNoSchedule is returned by Pause and Resume for a source without a Schedule.
var ErrNoSchedule = errors.New("the source has no schedule (it only takes pushed items, or it does not exist)")

// Pause stops a source's Schedule; its Feed keeps what it knows and still takes pushes.
func Pause(ctx context.Context, c client.Client, name, note string) error {
	return scheduleCall(ctx, c, name, func(h client.ScheduleHandle) error {
		return h.Pause(ctx, client.SchedulePauseOptions{Note: orDefault(note, "paused with flexcord feeds pause")})
	})
}

// Resume restarts a paused Schedule.
func Resume(ctx context.Context, c client.Client, name, note string) error {
	return scheduleCall(ctx, c, name, func(h client.ScheduleHandle) error {
		return h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: orDefault(note, "resumed with flexcord feeds resume")})
	})
}

func scheduleCall(ctx context.Context, c client.Client, name string, call func(client.ScheduleHandle) error) error {
	err := call(c.ScheduleClient().GetHandle(ctx, workflows.FeedScheduleID(name)))
	if _, missing := errors.AsType[*serviceerror.NotFound](err); missing {
		return fmt.Errorf("source %q: %w", name, ErrNoSchedule)
	}
	if err != nil {
		return fmt.Errorf("source %q: %w", name, err)
	}
	return nil
}

// Remove deletes a source's Schedule and ends its Feed; queued posts are dropped. It reports
// whether there was anything to remove.
func Remove(ctx context.Context, c client.Client, name, operator string) (bool, error) {
	found := false
	err := c.ScheduleClient().GetHandle(ctx, workflows.FeedScheduleID(name)).Delete(ctx)
	switch _, missing := errors.AsType[*serviceerror.NotFound](err); {
	case err == nil:
		found = true
	case !missing:
		return false, fmt.Errorf("delete the schedule of source %q: %w", name, err)
	}
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.FeedWorkflowID(name), UpdateName: workflows.UpdateRemoveFeed,
		Args: []any{workflows.RemoveFeedRequest{Operator: operator}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	switch _, missing := errors.AsType[*serviceerror.NotFound](err); {
	case err == nil:
		found = true
	case !missing:
		return found, fmt.Errorf("end the Feed of source %q: %w", name, err)
	}
	return found, nil
}

// Run fetches a source now, outside its Schedule, and waits for what the run did. The Feed
// serializes fetches, so a run beside a scheduled one cannot post anything twice.
func Run(ctx context.Context, c client.Client, name, reason string, wait time.Duration) (workflows.FeedRunResult, error) {
	var r workflows.FeedRunResult
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	id := fmt.Sprintf("%s-run-%s", workflows.AnnouncementsWorkflowID(name), time.Now().UTC().Format("20060102T150405.000000000Z"))
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue, WorkflowRunTimeout: wait + time.Minute,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchAttrFeed.ValueSet(name)),
		StaticSummary:         "Announcements · " + name + " (run now)",
	}, "Announcements", workflows.AnnouncementsInput{Source: name, Reason: orDefault(reason, "operator"), Wait: wait})
	if err != nil {
		return r, fmt.Errorf("start a run of source %q: %w", name, err)
	}
	err = run.Get(ctx, &r)
	if err == nil {
		return r, nil
	}
	if appErr, ok := errors.AsType[*temporal.ApplicationError](err); ok {
		if appErr.HasDetails() {
			_ = appErr.Details(&r)
		}
		return r, errors.New(appErr.Error())
	}
	return r, err
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
