package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/internal/temporalclient"
	"github.com/flexcord/flexcord/workflows"
)

func init() {
	register("deliveries", deliveriesCommand)
	register("cases", casesCommand)
	register("conversations", conversationsCommand)
}

// dialOps is how operator commands reach Temporal; tests replace it.
var dialOps = opsClient

// opsClient connects to the cluster the environment names (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE…).
func opsClient(address, namespace string) (client.Client, error) {
	tc, _, err := temporalclient.Dial(temporalclient.Options{HostPort: address, Namespace: namespace, Logger: discardLogger()})
	return tc, err
}

const deliveriesUsage = `Usage:
  flexcord deliveries retry <conversation-id | case-id | discord-user-id>
  flexcord deliveries retry --all

Re-queues the failed deliveries of one conversation or case, or of every running workflow with
FailedDeliveries > 0, and prints what was re-queued.
`

func deliveriesCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "retry" {
		fmt.Fprint(stderr, deliveriesUsage)
		return errors.New("want: deliveries retry")
	}
	fs := newFlagSet("deliveries retry", stderr)
	b := config.NewBinder(fs)
	var all bool
	var address, namespace string
	fs.BoolVar(&all, "all", false, "retry every running conversation and case with failed deliveries")
	bindTemporal(b, &address, &namespace)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := b.Err(); err != nil {
		return err
	}
	var ids []string
	switch {
	case all && fs.NArg() == 0:
	case !all && fs.NArg() == 1:
		ids = []string{workflowIDFor(fs.Arg(0))}
	default:
		fmt.Fprint(stderr, deliveriesUsage)
		return errors.New("give one conversation or case id, or --all")
	}
	tc, err := dialOps(address, namespace)
	if err != nil {
		return err
	}
	defer tc.Close()
	if all {
		ids, err = listIDs(ctx, tc, "FailedDeliveries > 0 AND ExecutionStatus = 'Running'")
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			fmt.Fprintln(stdout, "No running conversation or case has failed deliveries.")
			return nil
		}
	}
	var failures []string
	for _, id := range ids {
		var res workflows.RetryDeliveriesResult
		if err := update(ctx, tc, id, workflows.UpdateRetryDeliveries, workflows.RetryDeliveriesRequest{Operator: "flexcord CLI"}, &res); err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		fmt.Fprintf(stdout, "%s: re-queued %d\n", id, len(res.Requeued))
		for _, d := range res.Requeued {
			fmt.Fprintf(stdout, "  #%d to %s (%s) %q: was %s\n", d.Seq, d.Destination, d.Label, d.Preview, orDash(d.ErrorType))
		}
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	return nil
}

const casesUsage = `Usage:
  flexcord cases list [--status S] [--type T] [--limit N]
  flexcord cases show C-XXXXXX
  flexcord cases set-status C-XXXXXX STATUS [--note TEXT]
  flexcord cases transcript C-XXXXXX [--format md|html|json]

Statuses: open, in_progress, resolved, declined, closed. Types: support, bug, feature.
`

func casesCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, casesUsage)
		return errors.New("want: cases list | show | set-status | transcript")
	}
	if args[0] == "transcript" {
		return casesTranscriptCommand(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("cases "+args[0], stderr)
	b := config.NewBinder(fs)
	var address, namespace, status, typ, note string
	var limit int
	bindTemporal(b, &address, &namespace)
	switch args[0] {
	case "list":
		fs.StringVar(&status, "status", "", "only cases with this status")
		fs.StringVar(&typ, "type", "", "only cases of this type")
		fs.IntVar(&limit, "limit", 50, "at most this many cases, newest first")
	case "set-status":
		fs.StringVar(&note, "note", "", "a note for the reporter and the timeline")
	case "show":
	default:
		fmt.Fprint(stderr, casesUsage)
		return fmt.Errorf("unknown cases command %q", args[0])
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if err := b.Err(); err != nil {
		return err
	}
	tc, err := dialOps(address, namespace)
	if err != nil {
		return err
	}
	defer tc.Close()

	switch args[0] {
	case "list":
		if len(pos) != 0 {
			return errors.New("cases list takes no arguments")
		}
		return listCases(ctx, tc, stdout, status, typ, limit)
	case "show":
		if len(pos) != 1 {
			return errors.New("cases show takes one case id")
		}
		var v workflows.CaseView
		val, err := tc.QueryWorkflow(ctx, workflows.CaseWorkflowID(pos[0]), "", workflows.QueryStatus)
		if err != nil {
			return fmt.Errorf("case %s: %w", pos[0], err)
		}
		if err := val.Get(&v); err != nil {
			return fmt.Errorf("case %s: cannot read its status: %w", pos[0], payloadcodec.Explain(err))
		}
		printCase(stdout, v)
		return nil
	default: // set-status
		if len(pos) != 2 {
			return errors.New("cases set-status takes a case id and a status")
		}
		req := workflows.SetCaseStatusRequest{Status: workflows.CaseStatus(pos[1]), Note: note, Actor: "flexcord CLI"}
		var v workflows.CaseView
		if err := update(ctx, tc, workflows.CaseWorkflowID(pos[0]), workflows.UpdateSetCaseStatus, req, &v); err != nil {
			return fmt.Errorf("case %s: %w", pos[0], err)
		}
		fmt.Fprintf(stdout, "%s is now %s; the reporter will be told.\n", v.CaseID, v.Status)
		return nil
	}
}

// parseInterleaved parses args with fs, flags before or after the positional arguments, and
// returns the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func listCases(ctx context.Context, tc client.Client, w io.Writer, status, typ string, limit int) error {
	q := []string{"WorkflowType = 'Case'"}
	if status != "" {
		if !workflows.CaseStatus(status).Valid() {
			return fmt.Errorf("unknown status %q", status)
		}
		q = append(q, fmt.Sprintf("FlexcordCaseStatus = '%s'", status))
	}
	if typ != "" {
		if !workflows.CaseType(typ).Valid() {
			return fmt.Errorf("unknown type %q", typ)
		}
		q = append(q, fmt.Sprintf("FlexcordCaseType = '%s'", typ))
	}
	resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: strings.Join(q, " AND "), PageSize: int32(limit)})
	if err != nil {
		return fmt.Errorf("list cases: %w", err)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tTYPE\tSTATUS\tREPORTER\tOPENED")
	for i, e := range resp.Executions {
		if i >= limit {
			break
		}
		sa := e.GetSearchAttributes().GetIndexedFields()
		str := func(name string) string {
			if p, ok := sa[name]; ok {
				return strings.Trim(string(p.GetData()), `"`)
			}
			return "-"
		}
		id, _ := workflows.CaseIDFromWorkflowID(e.GetExecution().GetWorkflowId())
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, str("FlexcordCaseType"), str("FlexcordCaseStatus"),
			str("DiscordUserID"), e.GetStartTime().AsTime().Local().Format(time.DateTime))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(resp.Executions) == 0 {
		fmt.Fprintln(w, "(no cases)")
	}
	return nil
}

func printCase(w io.Writer, v workflows.CaseView) {
	fmt.Fprintf(w, "%s  %s  %s\n%s\n\n", v.CaseID, v.Type, v.Status, v.Title)
	fmt.Fprintf(w, "Reporter:  %s (%s)\n", v.Reporter.Name(), v.Reporter.UserID)
	if v.Assignee != "" {
		fmt.Fprintf(w, "Assignee:  %s\n", v.Assignee)
	}
	if v.Rating > 0 {
		fmt.Fprintf(w, "Rating:    %d/5\n", v.Rating)
	}
	if v.Flex != nil {
		fmt.Fprintf(w, "Flex:      conversation %s, interaction %s\n", v.Flex.ConversationSID, v.Flex.InteractionSID)
	}
	if v.Description != "" {
		fmt.Fprintf(w, "\n%s\n", v.Description)
	}
	for _, f := range v.Details {
		fmt.Fprintf(w, "%s: %s\n", f.Name, f.Value)
	}
	fmt.Fprintln(w, "\nTimeline:")
	for _, e := range v.Timeline {
		fmt.Fprintf(w, "  %s  %-11s %-14s %s\n", e.At.Local().Format(time.DateTime), orDash(string(e.Status)), e.Actor, e.Note)
	}
	if len(v.Failed) > 0 {
		fmt.Fprintf(w, "\n%d failed notification(s): run `flexcord deliveries retry %s`\n", len(v.Failed), v.CaseID)
	}
}

// workflowIDFor accepts a workflow id, a case id or a Discord user id.
func workflowIDFor(s string) string {
	switch {
	case strings.Contains(s, ":"):
		return s
	case workflows.ValidCaseID(s):
		return workflows.CaseWorkflowID(s)
	default:
		return workflows.ConversationWorkflowID(s)
	}
}

func listIDs(ctx context.Context, tc client.Client, query string) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list workflows (%s): %w", query, err)
		}
		for _, e := range resp.Executions {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return ids, nil
		}
	}
}

// updateTimeout bounds an operator's update; it needs a worker to answer.
const updateTimeout = 30 * time.Second

func update(ctx context.Context, tc client.Client, workflowID, name string, arg, result any) error {
	ctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	h, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return h.Get(ctx, result)
}

func bindTemporal(b *config.Binder, address, namespace *string) {
	b.String(address, "address", "", "", "Temporal frontend host:port (default TEMPORAL_ADDRESS, else localhost:7233)")
	b.String(namespace, "namespace", "", "", "Temporal namespace (default TEMPORAL_NAMESPACE, else default)")
	describeTemporal(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

const conversationsUsage = `Usage:
  flexcord conversations list [--stage S] [--limit N]
  flexcord conversations show ID
  flexcord conversations close ID [--reason TEXT]

ID is conversation:<discord-user-id> or the Discord user id alone. list shows running
conversations (with --stage closed, finished ones). Stages: bot, queued, no_agent, live,
resolved, closed. close ends a conversation for good: the member is told, and a Flex chat under
way is closed.
`

// conversationStages are the stages --stage accepts.
var conversationStages = []workflows.Stage{
	workflows.StageBot, workflows.StageQueued, workflows.StageNoAgent, workflows.StageLive, workflows.StageResolved, workflows.StageClosed,
}

// Conversation command limits.
const (
	// conversationQueryTimeout bounds each status query; a query needs a worker to answer.
	conversationQueryTimeout = 5 * time.Second
	// conversationQueries is how many status queries list runs at once.
	conversationQueries = 8
	// transcriptTail is how many transcript lines show prints.
	transcriptTail = 10
)

func conversationsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, conversationsUsage)
		return errors.New("want: conversations list | show | close")
	}
	fs := newFlagSet("conversations "+args[0], stderr)
	b := config.NewBinder(fs)
	var address, namespace, stage, reason string
	var limit int
	bindTemporal(b, &address, &namespace)
	switch args[0] {
	case "list":
		fs.StringVar(&stage, "stage", "", "only conversations in this stage")
		fs.IntVar(&limit, "limit", 50, "at most this many conversations, newest first")
	case "close":
		fs.StringVar(&reason, "reason", "", "why, for the record")
	case "show":
	default:
		fmt.Fprint(stderr, conversationsUsage)
		return fmt.Errorf("unknown conversations command %q", args[0])
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if err := b.Err(); err != nil {
		return err
	}
	var id string
	switch {
	case args[0] == "list" && len(pos) != 0:
		return errors.New("conversations list takes no arguments")
	case args[0] == "list" && stage != "" && !slices.Contains(conversationStages, workflows.Stage(stage)):
		return fmt.Errorf("unknown stage %q (want one of bot, queued, no_agent, live, resolved, closed)", stage)
	case args[0] == "list" && limit <= 0:
		return errors.New("--limit must be at least 1")
	case args[0] != "list" && len(pos) != 1:
		return fmt.Errorf("conversations %s takes one conversation id", args[0])
	case args[0] != "list":
		if id, err = conversationWorkflowID(pos[0]); err != nil {
			return err
		}
	}
	tc, err := dialOps(address, namespace)
	if err != nil {
		return err
	}
	defer tc.Close()

	switch args[0] {
	case "list":
		return listConversations(ctx, tc, stdout, workflows.Stage(stage), limit)
	case "show":
		st, err := queryConversation(ctx, tc, id)
		if err != nil {
			return err
		}
		printConversation(stdout, id, st, time.Now())
		return nil
	default: // close
		return closeConversation(ctx, tc, stdout, id, reason)
	}
}

// conversationWorkflowID accepts conversation:<discord-user-id> or the user id alone.
func conversationWorkflowID(s string) (string, error) {
	userID := strings.TrimPrefix(s, "conversation:")
	if !snowflakeRE.MatchString(userID) {
		return "", fmt.Errorf("%q is not a conversation id: want conversation:<discord-user-id> or the Discord user id", s)
	}
	return workflows.ConversationWorkflowID(userID), nil
}

func listConversations(ctx context.Context, tc client.Client, w io.Writer, stage workflows.Stage, limit int) error {
	q := []string{"WorkflowType = 'Conversation'"}
	if stage != workflows.StageClosed {
		q = append(q, "ExecutionStatus = 'Running'")
	}
	if stage != "" {
		q = append(q, fmt.Sprintf("FlexcordStage = '%s'", stage))
	}
	resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: strings.Join(q, " AND "), PageSize: int32(limit)})
	if err != nil {
		return fmt.Errorf("list conversations: %w", err)
	}
	execs := resp.GetExecutions()
	if len(execs) > limit {
		execs = execs[:limit]
	}
	// The deadline and the member's name are in the workflow's state, not in visibility: ask
	// each running conversation, a few at a time. Without a worker nothing answers, and the
	// columns stay empty.
	statuses := make([]*workflows.ConversationStatus, len(execs))
	var noWorker atomic.Bool
	var wg sync.WaitGroup
	sem := make(chan struct{}, conversationQueries)
	for i, e := range execs {
		if e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if noWorker.Load() {
				return
			}
			st, err := queryConversation(ctx, tc, e.GetExecution().GetWorkflowId())
			if errors.Is(err, context.DeadlineExceeded) {
				noWorker.Store(true)
			}
			if err == nil {
				statuses[i] = &st
			}
		})
	}
	wg.Wait()

	now := time.Now()
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONVERSATION\tMEMBER\tSTAGE\tCASE\tAGENT\tFAILED\tDEADLINE\tSTARTED")
	for i, e := range execs {
		sa := e.GetSearchAttributes().GetIndexedFields()
		member, deadline := "-", "-"
		if st := statuses[i]; st != nil {
			member = st.Member.Name()
			deadline = formatDeadline(st.Deadline, st.DeadlineLabel, now)
		}
		failed := "0"
		if n := searchAttrInt(sa, workflows.SearchAttrFailedDeliveries.GetName()); n > 0 {
			failed = strconv.FormatInt(n, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.GetExecution().GetWorkflowId(), member,
			orDash(searchAttrString(sa, workflows.SearchAttrStage.GetName())),
			orDash(searchAttrString(sa, workflows.SearchAttrCaseID.GetName())),
			orDash(searchAttrString(sa, workflows.SearchAttrAgent.GetName())),
			failed, deadline, e.GetStartTime().AsTime().Local().Format(time.DateTime))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(execs) == 0 {
		fmt.Fprintln(w, "(no conversations)")
	}
	if noWorker.Load() {
		fmt.Fprintln(w, "(no worker answered: member names and deadlines are missing; is `flexcord worker` running?)")
	}
	return nil
}

func searchAttrString(sa map[string]*commonpb.Payload, name string) string {
	var s string
	if p := sa[name]; p == nil || converter.GetDefaultDataConverter().FromPayload(p, &s) != nil {
		return ""
	}
	return s
}

func searchAttrInt(sa map[string]*commonpb.Payload, name string) int64 {
	var n int64
	if p := sa[name]; p == nil || converter.GetDefaultDataConverter().FromPayload(p, &n) != nil {
		return 0
	}
	return n
}

// formatDeadline reads a stage deadline relative to now: "in 4m12s: <label>".
func formatDeadline(at time.Time, label string, now time.Time) string {
	if at.IsZero() {
		return "-"
	}
	d := at.Sub(now).Round(time.Second)
	s := "in " + d.String()
	if d < 0 {
		s = (-d).String() + " ago"
	}
	if label != "" {
		s += ": " + label
	}
	return s
}

// queryConversation asks a conversation for its status, with errors an operator can act on.
func queryConversation(ctx context.Context, tc client.Client, id string) (workflows.ConversationStatus, error) {
	var st workflows.ConversationStatus
	qctx, cancel := context.WithTimeout(ctx, conversationQueryTimeout)
	defer cancel()
	v, err := tc.QueryWorkflow(qctx, id, "", workflows.QueryStatus)
	if err != nil {
		return st, conversationError(ctx, tc, id, err, conversationQueryTimeout)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("%s: cannot read its status: %w", id, payloadcodec.Explain(err))
	}
	return st, nil
}

// closeConversation runs the Close update and prints the conversation's state after it.
func closeConversation(ctx context.Context, tc client.Client, w io.Writer, id, reason string) error {
	var st workflows.ConversationStatus
	req := workflows.CloseRequest{Reason: reason, Operator: "flexcord CLI"}
	if err := update(ctx, tc, id, workflows.UpdateClose, req, &st); err != nil {
		return conversationError(ctx, tc, id, err, updateTimeout)
	}
	state := "closing (the member is being told, and the Flex chat closed)"
	if st.Stage == workflows.StageClosed {
		state = "closed"
	}
	fmt.Fprintf(w, "%s is %s.\n", id, state)
	if st.CaseID != "" {
		fmt.Fprintf(w, "Case %s stays on record.\n", st.CaseID)
	}
	if reason != "" {
		fmt.Fprintf(w, "Reason: %s\n", reason)
	}
	if len(st.Pending)+len(st.InFlight) > 0 {
		fmt.Fprintf(w, "%d message(s) still being delivered.\n", len(st.Pending)+len(st.InFlight))
	}
	return nil
}

// conversationError turns what Temporal answered about conversation id into a one-line error.
func conversationError(ctx context.Context, tc client.Client, id string, err error, timeout time.Duration) error {
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr):
		// A handler or validator refused, e.g. "conversation is already closed".
		return fmt.Errorf("%s: %s", id, appErr.Message())
	case errors.As(err, new(*serviceerror.NotFound)):
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		desc, derr := tc.DescribeWorkflowExecution(dctx, id, "")
		if derr == nil && desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			info := desc.GetWorkflowExecutionInfo()
			return fmt.Errorf("%s is already closed (%s at %s)", id,
				strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")),
				info.GetCloseTime().AsTime().Local().Format(time.DateTime))
		}
		return fmt.Errorf("no conversation %s", id)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: no worker answered within %v; is `flexcord worker` running?", id, timeout)
	default:
		return fmt.Errorf("%s: %w", id, err)
	}
}

func printConversation(w io.Writer, id string, st workflows.ConversationStatus, now time.Time) {
	fmt.Fprintf(w, "%s  %s\n\n", id, st.Stage)
	member := st.Member.Name()
	if st.Member.Username != "" && st.Member.Username != member {
		member += " (@" + st.Member.Username + ")"
	}
	fmt.Fprintf(w, "Member:      %s, Discord user %s\n", member, st.Member.UserID)
	if st.Locale != "" {
		fmt.Fprintf(w, "Locale:      %s\n", st.Locale)
	}
	fmt.Fprintf(w, "Case:        %s\n", orDash(st.CaseID))
	fmt.Fprintf(w, "Agent:       %s\n", orDash(st.Agent))
	if st.Flex != nil {
		fmt.Fprintf(w, "Flex:        conversation %s, interaction %s, task %s\n", st.Flex.ConversationSID, st.Flex.InteractionSID, orDash(st.Flex.TaskSID))
	}
	switch {
	case st.Transfer.Error != "":
		fmt.Fprintf(w, "Transfer:    failed: %s\n", st.Transfer.Error)
	case st.Transfer.Running:
		fmt.Fprintln(w, "Transfer:    creating the Flex chat")
	case st.Transfer.Pending:
		fmt.Fprintln(w, "Transfer:    asked for, not started yet")
	}
	if !st.Deadline.IsZero() {
		fmt.Fprintf(w, "Deadline:    %s (%s)\n", st.Deadline.Local().Format(time.DateTime), formatDeadline(st.Deadline, st.DeadlineLabel, now))
	}
	if st.Rating > 0 {
		fmt.Fprintf(w, "Rating:      %d/5\n", st.Rating)
	}
	if st.ClosedReason != "" {
		fmt.Fprintf(w, "Closed:      %s\n", st.ClosedReason)
	}
	fmt.Fprintf(w, "Deliveries:  %d delivered, %d pending, %d in flight, %d failed\n", st.Delivered, len(st.Pending), len(st.InFlight), len(st.Failed))
	for _, group := range []struct {
		what string
		ds   []workflows.DeliveryView
	}{{"failed", st.Failed}, {"in flight", st.InFlight}, {"pending", st.Pending}} {
		for _, d := range group.ds {
			line := fmt.Sprintf("  %-9s #%d to %s (%s) %q", group.what, d.Seq, d.Destination, d.Label, d.Preview)
			if d.Error != "" {
				line += ": " + orDash(d.ErrorType) + ": " + d.Error
			}
			fmt.Fprintln(w, line)
		}
	}
	if len(st.Transcript) > 0 {
		lines := st.Transcript[max(0, len(st.Transcript)-transcriptTail):]
		fmt.Fprintf(w, "\nLast messages (%d of %d):\n", len(lines), len(st.Transcript))
		for _, l := range lines {
			who := l.From
			if l.Name != "" {
				who += " " + l.Name
			}
			fmt.Fprintf(w, "  %s  %-16s %s\n", l.At.Local().Format(time.DateTime), who, oneLine(l.Text, 200))
		}
	}
	if len(st.Failed) > 0 {
		fmt.Fprintf(w, "\n%d failed delivery(ies): run `flexcord deliveries retry %s`\n", len(st.Failed), id)
	}
}

// oneLine shows text on one line, cut to at most n runes.
func oneLine(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return text
}
