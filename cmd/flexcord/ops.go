package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/temporalclient"
	"github.com/flexcord/flexcord/workflows"
)

func init() {
	register("deliveries", deliveriesCommand)
	register("cases", casesCommand)
}

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
	tc, err := opsClient(address, namespace)
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

Statuses: open, in_progress, resolved, declined, closed. Types: support, bug, feature.
`

func casesCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, casesUsage)
		return errors.New("want: cases list | show | set-status")
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
	// Flags may come before or after the positional arguments.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if err := b.Err(); err != nil {
		return err
	}
	tc, err := opsClient(address, namespace)
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
			return err
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

func update(ctx context.Context, tc client.Client, workflowID, name string, arg, result any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
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
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
