package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/temporalclient"
	"github.com/flexcord/flexcord/workflows"
)

func init() {
	register("members", membersCommand)
}

// membersStdin is where members erase reads the operator's answer; tests replace it.
var membersStdin io.Reader = os.Stdin

const membersUsage = `Usage:
  flexcord members erase DISCORD_USER_ID [--yes] [--wait DURATION]

erase removes what flexcord keeps about one Discord member, for a request to be forgotten:
  - it closes the member's open conversation (the member is told, a Flex chat under way is
    closed) and open cases (a resolved or declined case is closed as an operator would; an open
    one has no graceful close and is terminated);
  - it deletes every conversation and case of the member from Temporal, every run, open or closed;
  - it deletes the member's transcripts and attachments from the blob store (members/<id>/).
It lists what it will do and asks first (--yes does not ask). Afterwards it prints what it
removed, and what it cannot remove: messages already in Discord (the member's DMs with the bot,
case confirmations in channels) and in Twilio Flex (conversations and tasks, by SID), for the
operator to handle there. It exits non-zero if anything failed, after doing what it could.

Temporal deletes a run that closed in the last half minute or so only after a delay; erase waits
for the deletions to show (--wait), which can take that long.
`

// Erase limits.
const (
	// erasePoll is how often erase looks again while it waits for Temporal to catch up.
	erasePoll = 200 * time.Millisecond
	// eraseCloseGrace bounds the wait for closed runs to finish (their last messages, the Flex
	// chat's close); --wait bounds it too.
	eraseCloseGrace = 30 * time.Second
	// eraseActor names erase in case timelines and termination reasons.
	eraseActor = "flexcord members erase"
	// eraseReason is what the member is told and the record says.
	eraseReason = "erased at the member's request"
)

func membersCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, membersUsage)
		return errors.New("want: members erase")
	case args[0] == "erase":
		return membersEraseCommand(ctx, args[1:], stdout, stderr)
	case strings.HasPrefix(args[0], "-"):
		return membersEraseCommand(ctx, args, stdout, stderr) // -h shows erase's flags
	default:
		fmt.Fprint(stderr, membersUsage)
		return fmt.Errorf("unknown members command %q", args[0])
	}
}

func membersEraseCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("members erase", stderr)
	setIntro(fs, membersUsage)
	b := config.NewBinder(fs)
	var address, namespace string
	var yes bool
	var wait time.Duration
	bindTemporal(b, &address, &namespace)
	openStore := bindBlobStore(b)
	fs.BoolVar(&yes, "yes", false, "erase without asking")
	fs.DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for closes and deletions to take effect in Temporal")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := b.Err(); err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("members erase takes one Discord user id")
	}
	userID := strings.TrimPrefix(pos[0], "conversation:")
	if !snowflakeRE.MatchString(userID) {
		return fmt.Errorf("%q is not a Discord user id", pos[0])
	}
	if wait <= 0 {
		return errors.New("--wait must be positive")
	}
	store, storeDesc, err := openStore()
	if err != nil {
		return err
	}
	co, err := temporalclient.ClientOptions(temporalclient.Options{HostPort: address, Namespace: namespace})
	if err != nil {
		return err
	}
	tc, err := dialOps(address, namespace)
	if err != nil {
		return err
	}
	defer tc.Close()

	e := &eraser{tc: tc, namespace: co.Namespace, store: store, storeDesc: storeDesc, userID: userID, wait: wait, out: stdout}
	if err := e.survey(ctx); err != nil {
		return err
	}
	e.printPlan()
	if len(e.execs) == 0 && len(e.blobs) == 0 {
		fmt.Fprintln(stdout, "Nothing to erase.")
		return nil
	}
	if !yes {
		fmt.Fprintf(stdout, "Erase member %s? This cannot be undone. [y/N] ", userID)
		answer, _ := bufio.NewReader(membersStdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout)
			return errors.New("erase cancelled: nothing was changed")
		}
	}
	return e.run(ctx)
}

// execKey names one run of a workflow.
type execKey struct{ workflowID, runID string }

// memberExec is one run of a member's workflow and what erase learnt about it.
type memberExec struct {
	execKey
	typ     string
	status  enumspb.WorkflowExecutionStatus
	started time.Time
	detail  string // stage or case status, from visibility
	// conv or kase is the run's status answer, when a worker gave one.
	conv     *workflows.ConversationStatus
	kase     *workflows.CaseView
	queryErr error
}

func (x *memberExec) running() bool { return x.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING }

func (x *memberExec) isConversation() bool {
	_, ok := workflows.DiscordUserIDFromWorkflowID(x.workflowID)
	return ok
}

func (x *memberExec) isCase() bool {
	_, ok := workflows.CaseIDFromWorkflowID(x.workflowID)
	return ok
}

// eraser erases one member.
type eraser struct {
	tc        client.Client
	namespace string
	store     blobstore.Store
	storeDesc string
	userID    string
	wait      time.Duration
	out       io.Writer

	execs    []*memberExec // sorted by workflow id, then start
	blobs    []blobstore.ObjectInfo
	noWorker bool
	problems []string
}

func (e *eraser) problem(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	e.problems = append(e.problems, p)
	fmt.Fprintln(e.out, "  problem: "+p)
}

// queries are the visibility queries that find a member's workflows: every one that carries the
// member's search attribute, and their conversation by id (in case a run has not set it yet).
func (e *eraser) queries() []string {
	return []string{
		fmt.Sprintf("%s = '%s'", workflows.SearchAttrDiscordUserID.GetName(), e.userID),
		fmt.Sprintf("WorkflowId = '%s'", workflows.ConversationWorkflowID(e.userID)),
	}
}

// list returns every run visibility lists for the member, open and closed.
func (e *eraser) list(ctx context.Context) (map[execKey]*workflowpb.WorkflowExecutionInfo, error) {
	found := map[execKey]*workflowpb.WorkflowExecutionInfo{}
	for _, q := range e.queries() {
		var token []byte
		for {
			resp, err := e.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token})
			if err != nil {
				return nil, fmt.Errorf("list the member's workflows (%s): %w", q, err)
			}
			for _, info := range resp.GetExecutions() {
				found[execKey{info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()}] = info
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
	}
	return found, nil
}

// survey finds the member's runs and blobs, and asks each run for its status (for the Flex SIDs
// and Discord channels that erase cannot delete).
func (e *eraser) survey(ctx context.Context) error {
	found, err := e.list(ctx)
	if err != nil {
		return err
	}
	for k, info := range found {
		e.execs = append(e.execs, newMemberExec(k, info))
	}
	slices.SortFunc(e.execs, func(a, b *memberExec) int {
		if c := strings.Compare(a.workflowID, b.workflowID); c != 0 {
			return c
		}
		return a.started.Compare(b.started)
	})
	if e.blobs, err = blobstore.ListInfo(ctx, e.store, blobstore.MemberPrefix(e.userID)); err != nil {
		return fmt.Errorf("list the member's blobs (%s): %w", e.storeDesc, err)
	}
	e.queryAll(ctx)
	return nil
}

func newMemberExec(k execKey, info *workflowpb.WorkflowExecutionInfo) *memberExec {
	x := &memberExec{execKey: k, typ: info.GetType().GetName(), status: info.GetStatus(), started: info.GetStartTime().AsTime()}
	sa := info.GetSearchAttributes().GetIndexedFields()
	x.detail = searchAttrString(sa, workflows.SearchAttrStage.GetName())
	if x.isCase() {
		x.detail = searchAttrString(sa, workflows.SearchAttrCaseStatus.GetName())
	}
	return x
}

// queryAll asks every run for its status, a few at a time; once one finds no worker, the rest
// are not asked.
func (e *eraser) queryAll(ctx context.Context) {
	var noWorker atomic.Bool
	var wg sync.WaitGroup
	sem := make(chan struct{}, conversationQueries)
	for _, x := range e.execs {
		if !x.isConversation() && !x.isCase() {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if noWorker.Load() {
				x.queryErr = errors.New("no worker answered")
				return
			}
			qctx, cancel := context.WithTimeout(ctx, conversationQueryTimeout)
			defer cancel()
			val, err := e.tc.QueryWorkflow(qctx, x.workflowID, x.runID, workflows.QueryStatus)
			if err == nil && x.isConversation() {
				var st workflows.ConversationStatus
				if err = val.Get(&st); err == nil {
					x.conv = &st
				}
			} else if err == nil {
				var v workflows.CaseView
				if err = val.Get(&v); err == nil {
					x.kase = &v
				}
			}
			if errors.Is(err, context.DeadlineExceeded) {
				noWorker.Store(true)
				err = errors.New("no worker answered")
			}
			x.queryErr = err
		})
	}
	wg.Wait()
	e.noWorker = noWorker.Load()
}

func (e *eraser) printPlan() {
	w := e.out
	fmt.Fprintf(w, "Member %s\n\n", e.userID)
	if len(e.execs) == 0 {
		fmt.Fprintf(w, "Temporal (namespace %s): no conversation or case.\n", e.namespace)
	} else {
		fmt.Fprintf(w, "Temporal (namespace %s): %d run(s) to delete\n", e.namespace, len(e.execs))
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, x := range e.execs {
			fmt.Fprintf(tw, "  %s\trun %s\t%s\t%s\t%s\n", x.workflowID, x.runID, x.typ, statusWord(x.status), orDash(x.detail))
		}
		_ = tw.Flush()
	}
	var size int64
	for _, o := range e.blobs {
		size += o.Size
	}
	fmt.Fprintf(w, "Blob store (%s): %d blob(s), %s, under %s\n", e.storeDesc, len(e.blobs), bytesWord(size), blobstore.MemberPrefix(e.userID))
	if open := e.countRunning(); open > 0 {
		fmt.Fprintf(w, "\n%d of the runs are open: they are closed first (the member is told).\n", open)
	}
	if e.noWorker {
		fmt.Fprintln(w, "\nNo worker answered: open runs will be terminated rather than closed, and the Flex SIDs and")
		fmt.Fprintln(w, "Discord channels to handle elsewhere cannot be listed. Is `flexcord worker` running?")
	}
	fmt.Fprintln(w)
}

func (e *eraser) countRunning() int {
	n := 0
	for _, x := range e.execs {
		if x.running() {
			n++
		}
	}
	return n
}

// run erases: closes what is open, deletes the runs, then the blobs, and reports.
func (e *eraser) run(ctx context.Context) error {
	w := e.out
	e.closeOpen(ctx)
	deleted := e.deleteExecutions(ctx)
	if len(deleted) == 0 {
		fmt.Fprintln(w, "\nDeleted no run from Temporal.")
	} else {
		fmt.Fprintf(w, "\nDeleted %d run(s) from Temporal:\n", len(deleted))
	}
	for _, k := range deleted {
		fmt.Fprintf(w, "  %s  run %s\n", k.workflowID, k.runID)
	}
	// The blobs last: no workflow of the member is left to write a transcript chunk meanwhile.
	n, size := e.deleteBlobs(ctx)
	fmt.Fprintf(w, "Deleted %d blob(s), %s, under %s (%s).\n", n, bytesWord(size), blobstore.MemberPrefix(e.userID), e.storeDesc)
	e.printLeftovers()
	if len(e.problems) > 0 {
		return fmt.Errorf("erase of member %s is incomplete (%d problem(s)): %s", e.userID, len(e.problems), strings.Join(e.problems, "; "))
	}
	fmt.Fprintf(w, "\nMember %s is erased from flexcord.\n", e.userID)
	return nil
}

// closeOpen closes the open conversations (as `conversations close` does), waits for them to end,
// then closes the open cases: a resolved or declined case as `cases set-status closed` does; an
// open one has no graceful close and is terminated with a reason.
func (e *eraser) closeOpen(ctx context.Context) {
	if e.countRunning() == 0 {
		return
	}
	fmt.Fprintln(e.out, "Closing:")
	var convs []*memberExec
	closing := map[string]bool{}
	for _, x := range e.execs {
		if x.running() && x.isConversation() {
			convs = append(convs, x)
			closing[x.workflowID] = e.closeConversation(ctx, x)
		}
	}
	// The closes get one grace period in all; deleting a run still running terminates it.
	grace := time.Now().Add(min(e.wait, eraseCloseGrace))
	e.waitClosed(ctx, convs, grace)
	// A conversation's close closes the support case it opened: give those the time to end.
	var followers []*memberExec
	for _, x := range e.execs {
		if x.running() && x.kase != nil && x.kase.Type == workflows.CaseSupport && closing[x.kase.ConversationID] && !x.kase.ConversationEnded {
			followers = append(followers, x)
		}
	}
	e.waitClosed(ctx, followers, grace)
	for _, x := range followers {
		if !x.running() {
			fmt.Fprintf(e.out, "  %s: closed with its conversation.\n", x.workflowID)
		}
	}
	for _, x := range e.execs {
		if x.running() && !x.isConversation() {
			e.closeCase(ctx, x)
		}
	}
	e.waitClosed(ctx, e.execs, grace)
	for _, x := range e.execs {
		if x.running() {
			fmt.Fprintf(e.out, "  %s is still running; deleting it terminates it.\n", x.workflowID)
		}
	}
}

// closeConversation closes x as `conversations close` does, and reports whether it is closing.
func (e *eraser) closeConversation(ctx context.Context, x *memberExec) bool {
	var st workflows.ConversationStatus
	err := update(ctx, e.tc, x.workflowID, workflows.UpdateClose, workflows.CloseRequest{Reason: eraseReason, Operator: eraseActor}, &st)
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		fmt.Fprintf(e.out, "  %s: closed (the member is told; a Flex chat under way is closed).\n", x.workflowID)
		return true
	case errors.As(err, &appErr):
		fmt.Fprintf(e.out, "  %s: %s.\n", x.workflowID, appErr.Message()) // already closing
		return true
	default:
		e.terminate(ctx, x, fmt.Sprintf("the close was not answered (%v)", oneLine(err.Error(), 120)))
		return false
	}
}

func (e *eraser) closeCase(ctx context.Context, x *memberExec) {
	if !x.isCase() {
		e.terminate(ctx, x, "not a conversation or a case")
		return
	}
	qctx, cancel := context.WithTimeout(ctx, conversationQueryTimeout)
	defer cancel()
	var v workflows.CaseView
	val, err := e.tc.QueryWorkflow(qctx, x.workflowID, x.runID, workflows.QueryStatus)
	if err == nil {
		err = val.Get(&v)
	}
	if err != nil {
		if isNotRunning(err) {
			return
		}
		e.terminate(ctx, x, "its status was not answered")
		return
	}
	switch v.Status {
	case workflows.CaseClosed:
		// Closed by its conversation's close, or finishing its last notifications.
		fmt.Fprintf(e.out, "  %s: closed.\n", x.workflowID)
	case workflows.CaseResolved, workflows.CaseDeclined:
		from := v.Status
		req := workflows.SetCaseStatusRequest{Status: workflows.CaseClosed, Note: eraseReason, Actor: eraseActor}
		if err := update(ctx, e.tc, x.workflowID, workflows.UpdateSetCaseStatus, req, &v); err != nil {
			e.terminate(ctx, x, fmt.Sprintf("closing it failed (%s)", oneLine(err.Error(), 120)))
			return
		}
		fmt.Fprintf(e.out, "  %s: %s → closed (the reporter is told).\n", x.workflowID, from)
	default:
		e.terminate(ctx, x, fmt.Sprintf("a case that is %s has no graceful close", v.Status))
	}
}

func (e *eraser) terminate(ctx context.Context, x *memberExec, why string) {
	tctx, cancel := context.WithTimeout(ctx, caseDescribeTimeout)
	defer cancel()
	err := e.tc.TerminateWorkflow(tctx, x.workflowID, x.runID, eraseReason+" ("+eraseActor+")")
	switch {
	case err == nil:
		fmt.Fprintf(e.out, "  %s: terminated: %s.\n", x.workflowID, why)
	case isNotRunning(err):
		fmt.Fprintf(e.out, "  %s: already finished.\n", x.workflowID)
	default:
		// Deleting it terminates it all the same; not a problem yet.
		fmt.Fprintf(e.out, "  %s: could not terminate it (%s); deleting it will.\n", x.workflowID, oneLine(err.Error(), 120))
	}
}

func isNotRunning(err error) bool {
	return errors.As(err, new(*serviceerror.NotFound))
}

// waitClosed waits until none of xs runs, or deadline passes; it updates their status.
func (e *eraser) waitClosed(ctx context.Context, xs []*memberExec, deadline time.Time) {
	for {
		open := 0
		for _, x := range xs {
			if !x.running() {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, caseDescribeTimeout)
			d, err := e.tc.DescribeWorkflowExecution(dctx, x.workflowID, x.runID)
			cancel()
			switch {
			case isNotRunning(err):
				x.status = enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
			case err == nil:
				x.status = d.GetWorkflowExecutionInfo().GetStatus()
			}
			if x.running() {
				open++
			}
		}
		if open == 0 || time.Now().After(deadline) || !sleepCtx(ctx, erasePoll) {
			return
		}
	}
}

// sleepCtx waits d, or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// deleteExecutions deletes every run of the member (deleting a running one terminates it), and
// waits until visibility lists none and none can be described. Runs that appear meanwhile (a
// conversation that continued as new, a member who wrote again) are deleted too.
func (e *eraser) deleteExecutions(ctx context.Context) []execKey {
	var deleted []execKey
	issued := map[execKey]bool{}
	failed := map[execKey]error{}
	gone := map[execKey]bool{}
	del := func(k execKey) {
		issued[k] = true
		dctx, cancel := context.WithTimeout(ctx, caseDescribeTimeout)
		defer cancel()
		_, err := e.tc.WorkflowService().DeleteWorkflowExecution(dctx, &workflowservice.DeleteWorkflowExecutionRequest{
			Namespace: e.namespace, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: k.workflowID, RunId: k.runID},
		})
		if err != nil && !isNotRunning(err) {
			failed[k] = err
			return
		}
		delete(failed, k)
		deleted = append(deleted, k)
	}
	for _, x := range e.execs {
		del(x.execKey)
	}
	deadline := time.Now().Add(e.wait)
	for {
		found, err := e.list(ctx)
		if err != nil {
			e.problem("%v", err)
			break
		}
		for k := range found {
			switch {
			case !issued[k]:
				fmt.Fprintf(e.out, "  %s run %s appeared meanwhile: deleting it too.\n", k.workflowID, k.runID)
				del(k)
			case failed[k] != nil:
				del(k) // once more
			}
		}
		describable := 0
		for _, k := range deleted {
			if gone[k] {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, caseDescribeTimeout)
			_, err := e.tc.DescribeWorkflowExecution(dctx, k.workflowID, k.runID)
			cancel()
			if isNotRunning(err) {
				gone[k] = true
			} else {
				describable++
			}
		}
		if len(found) == 0 && describable == 0 {
			break
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, erasePoll) {
			var left []string
			for k := range found {
				left = append(left, k.workflowID+" run "+k.runID)
			}
			slices.Sort(left)
			e.problem("after %v Temporal still lists %d run(s) and can describe %d deleted one(s): %s; run erase again later",
				e.wait, len(found), describable, strings.Join(left, ", "))
			break
		}
	}
	for k, err := range failed {
		e.problem("delete %s run %s: %s", k.workflowID, k.runID, oneLine(err.Error(), 200))
	}
	slices.SortFunc(deleted, func(a, b execKey) int {
		return strings.Compare(a.workflowID+"\x00"+a.runID, b.workflowID+"\x00"+b.runID)
	})
	return deleted
}

// deleteBlobs deletes everything under the member's prefix and checks that nothing is left.
func (e *eraser) deleteBlobs(ctx context.Context) (n int, size int64) {
	prefix := blobstore.MemberPrefix(e.userID)
	for attempt := 0; attempt < 2; attempt++ {
		infos, err := blobstore.ListInfo(ctx, e.store, prefix)
		if err != nil {
			e.problem("list the member's blobs (%s): %v", e.storeDesc, err)
			return n, size
		}
		if len(infos) == 0 {
			return n, size
		}
		sizes := map[string]int64{}
		for _, o := range infos {
			sizes[o.Key] = o.Size
		}
		deleted, err := blobstore.DeletePrefix(ctx, e.store, prefix)
		for _, k := range deleted {
			n++
			size += sizes[k]
		}
		if err != nil {
			e.problem("delete the member's blobs (%s): %v", e.storeDesc, err)
			return n, size
		}
	}
	if left, err := e.store.List(ctx, prefix); err != nil || len(left) > 0 {
		e.problem("%d blob(s) are still under %s (%s): %v", len(left), prefix, e.storeDesc, err)
	}
	return n, size
}

// printLeftovers tells the operator what is outside flexcord's reach: Discord messages and Flex
// records.
func (e *eraser) printLeftovers() {
	w := e.out
	var dms, channels, flex, unread []string
	seen := map[string]bool{}
	add := func(list *[]string, s string) {
		if !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	// A conversation and its case name the same Flex records: one line each, with both owners.
	flexOwners := map[string][]string{}
	addFlex := func(owner string, f *activities.FlexInteraction) {
		if f == nil || f.ConversationSID == "" && f.TaskSID == "" {
			return
		}
		s := "conversation " + orDash(f.ConversationSID) + ", interaction " + orDash(f.InteractionSID) + ", task " + orDash(f.TaskSID)
		if f.ChannelSID != "" {
			s += ", channel " + f.ChannelSID
		}
		if _, ok := flexOwners[s]; !ok {
			flex = append(flex, s)
		}
		flexOwners[s] = append(flexOwners[s], owner)
	}
	for _, x := range e.execs {
		switch {
		case x.conv != nil:
			if x.conv.DMChannelID != "" {
				add(&dms, "DM channel "+x.conv.DMChannelID)
			}
			addFlex(x.workflowID, x.conv.Flex)
		case x.kase != nil:
			k := x.kase
			if k.ChannelID != "" && k.Type != workflows.CaseSupport {
				what := map[workflows.CaseType]string{workflows.CaseBug: "bug report", workflows.CaseFeature: "feature request"}[k.Type]
				add(&channels, fmt.Sprintf("the confirmation of %s %s in channel %s (guild %s)", orDash(what), k.CaseID, k.ChannelID, orDash(k.GuildID)))
			}
			addFlex("case "+k.CaseID, k.Flex)
		case x.queryErr != nil:
			add(&unread, fmt.Sprintf("%s run %s: %s", x.workflowID, x.runID, oneLine(x.queryErr.Error(), 120)))
		}
	}
	fmt.Fprintln(w, "\nNot erased; handle these outside flexcord:")
	if len(dms) == 0 {
		dms = []string{"DM channel unknown"}
	}
	fmt.Fprintf(w, "  Discord: the member's direct messages with the bot (%s) stay in Discord; the bot can delete only its own messages there.\n", strings.Join(dms, ", "))
	for _, c := range channels {
		fmt.Fprintf(w, "  Discord: %s.\n", c)
	}
	if len(flex) == 0 {
		fmt.Fprintln(w, "  Flex: no conversation or task of the member is known (none reached Flex, or its status could not be read).")
	}
	for _, f := range flex {
		fmt.Fprintf(w, "  Flex: %s (%s): delete it in Twilio (Conversations, TaskRouter) and Flex Insights.\n", f, strings.Join(flexOwners[f], ", "))
	}
	if len(unread) > 0 {
		fmt.Fprintf(w, "  The status of %d run(s) could not be read, so Discord channels and Flex SIDs may be missing above; look for the identity discord:%s in Twilio:\n", len(unread), e.userID)
		for _, u := range unread {
			fmt.Fprintf(w, "    %s\n", u)
		}
	}
}

// statusWord is an execution status in one lower-case word: running, completed, terminated…
func statusWord(s enumspb.WorkflowExecutionStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_"))
}

// bytesWord is a size for people, with the exact count.
func bytesWord(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d bytes", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KB (%d bytes)", float64(n)/1024, n)
	default:
		return fmt.Sprintf("%.1f MB (%d bytes)", float64(n)/(1024*1024), n)
	}
}
