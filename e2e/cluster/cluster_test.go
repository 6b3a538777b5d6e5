package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/workflows"
)

// TestCluster runs flexcord as operators do and checks that nothing is lost when processes die.
//
//   - PostgreSQL from the machine's packages (scripts/ensure-postgres.sh installs it), in a new
//     directory on a free port;
//   - a Temporal server built from the pinned go.temporal.io/server (cmd/server), persistence and
//     SQL visibility on PostgreSQL, the schema applied by the server's temporal-sql-tool;
//   - `flexcord sandbox` (development build): the Discord and Twilio emulators;
//   - two `flexcord worker`, one `flexcord ingress` and one `flexcord gateway` (production
//     build), each a process of its own.
//
// It drives FLEXCORD_CLUSTER_CONVERSATIONS conversations (default 24) through the whole journey
// at once: /helpme, a question, the article answer, Talk to a human, the case, the agent
// accepting, FLEXCORD_CLUSTER_MESSAGES messages each way (default 10, 0.5 to 1.5 s apart), wrap-up, the rating. When
// 40% of the members' messages have been sent it kills worker-1 and the gateway with SIGKILL;
// the gateway comes back after three seconds (as a supervisor restarts it), worker-1 stays dead.
// Every message must arrive exactly once and in order, every conversation must complete and
// every case must be resolved with its rating. It prints the figures as CLUSTER lines.
//
//	make test-cluster
func TestCluster(t *testing.T) {
	if os.Getenv("FLEXCORD_CLUSTER") == "" {
		t.Skip("set FLEXCORD_CLUSTER=1 (make test-cluster) to run the cluster test")
	}
	convs := envInt("FLEXCORD_CLUSTER_CONVERSATIONS", 24)
	perSide := envInt("FLEXCORD_CLUSTER_MESSAGES", 10)
	root := repoRoot(t)
	dir := t.TempDir()
	if keep := os.Getenv("FLEXCORD_CLUSTER_KEEP"); keep != "" {
		dir = keep
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := &cluster{t: t, dir: dir}
	t.Cleanup(c.stopAll)
	started := time.Now()

	// Binaries: Temporal's server and SQL tool from the pinned module, flexcord's production
	// build for the roles and its development build for the sandbox.
	bin := t.TempDir()
	serverBin := goBuild(t, root, bin, "temporal-server", "go.temporal.io/server/cmd/server")
	sqlTool := goBuild(t, root, bin, "temporal-sql-tool", "go.temporal.io/server/cmd/tools/sql")
	// The production binary is built as deploy/Dockerfile builds it.
	prod := goBuild(t, root, bin, "flexcord", "./cmd/flexcord", "-trimpath", "-ldflags=-s -w")
	dev := goBuild(t, root, bin, "flexcord-dev", "./cmd/flexcord", "-tags", "dev")
	built := time.Now()
	prodSize := fileSize(t, prod)
	if prodSize >= 50<<20 {
		t.Errorf("the production binary is %.1f MiB; it should stay under 50 MiB", float64(prodSize)/(1<<20))
	}

	pgPort := startPostgres(t, c)
	ts := startTemporal(t, c, root, serverBin, sqlTool, pgPort)

	ingressAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sandboxAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sandboxURL := "http://" + sandboxAddr
	common := []string{
		"TEMPORAL_ADDRESS=" + ts.address, "TEMPORAL_NAMESPACE=" + ts.namespace,
		"FLEXCORD_SANDBOX_URL=" + sandboxURL, "FLEXCORD_LOG_FORMAT=text",
	}
	sb := c.add(&proc{name: "sandbox", bin: dev, args: []string{"sandbox"}, health: sandboxURL + "/healthz",
		env: []string{"FLEXCORD_HTTP_ADDR=" + sandboxAddr, "FLEXCORD_INGRESS_URL=http://" + ingressAddr, "FLEXCORD_TEMPORAL_UI_URL="}})
	role := func(name, cmd string) *proc {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		if name == "ingress" {
			addr = ingressAddr
		}
		return c.add(&proc{name: name, bin: prod, args: []string{cmd}, health: "http://" + addr + "/readyz",
			env: append(slices.Clone(common), "FLEXCORD_HTTP_ADDR="+addr)})
	}
	worker1, worker2 := role("worker-1", "worker"), role("worker-2", "worker")
	ingress, gateway := role("ingress", "ingress"), role("gateway", "gateway")
	ctx := context.Background()
	for _, p := range []*proc{sb, worker1, worker2, ingress, gateway} {
		p.start()
	}
	for _, p := range []*proc{sb, worker1, worker2, ingress, gateway} {
		p.waitReady(ctx, 2*time.Minute)
	}
	ready := time.Now()
	busyAtReady, _ := machineBusy()
	tc, err := client.Dial(client.Options{HostPort: ts.address, Namespace: ts.namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()

	s := &sandbox{base: sandboxURL, hc: &http.Client{Timeout: 30 * time.Second}}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	arr := &arrivals{seen: map[string]time.Time{}}
	s.watch(watchCtx, arr)

	// The kill: when 40% of the members' messages are out, worker-1 and the gateway die.
	var memberSent atomic.Int64
	halfway := make(chan struct{})
	var halfOnce sync.Once
	threshold := int64(convs * perSide * 4 / 10)
	var outage struct {
		sync.Mutex
		killed, gatewayBack time.Time
	}
	killDone := make(chan struct{})
	go func() {
		defer close(killDone)
		select {
		case <-halfway:
		case <-time.After(10 * time.Minute):
			t.Error("the conversations never reached 40% of their messages; nothing was killed")
			return
		}
		outage.Lock()
		outage.killed = time.Now()
		outage.Unlock()
		worker1.kill()
		gateway.kill()
		// The gateway is away for three seconds, as long as a supervisor takes to restart it:
		// the members' DMs of that time reach no connection and must be backfilled.
		time.Sleep(3 * time.Second)
		gateway.start()
		gateway.waitReady(ctx, 2*time.Minute)
		outage.Lock()
		outage.gatewayBack = time.Now()
		outage.Unlock()
	}()

	results := make([]*journey, convs)
	var wg sync.WaitGroup
	for i := range convs {
		j := &journey{
			s: s, i: i, perSide: perSide,
			member: discordemu.Member{ID: strconv.Itoa(1400000000000000000 + i), Username: fmt.Sprintf("cluster%d", i),
				GlobalName: fmt.Sprintf("Member %d", i), Locale: "en-US"},
			rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
			onMemberSent: func() {
				if memberSent.Add(1) >= threshold {
					halfOnce.Do(func() { close(halfway) })
				}
			},
		}
		results[i] = j
		wg.Go(func() { j.err = j.run(ctx) })
	}
	wg.Wait()
	<-killDone
	finished := time.Now()
	busyAtEnd, cpuOK := machineBusy()

	// Every conversation ends and every case is resolved with its rating.
	var failed []string
	for _, j := range results {
		if j.err != nil {
			failed = append(failed, fmt.Sprintf("conversation %d (%s): %v", j.i, j.member.ID, j.err))
		}
	}
	completed, historyEvents := 0, 0
	for _, j := range results {
		if j.err != nil {
			continue
		}
		id := workflows.ConversationWorkflowID(j.member.ID)
		status, err := waitClosed(ctx, tc, id, time.Minute)
		if err != nil || status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			failed = append(failed, fmt.Sprintf("conversation %d: workflow %s is %v (%v)", j.i, id, status, err))
			continue
		}
		completed++
		historyEvents += countEvents(ctx, tc, id)
		var view workflows.CaseView
		v, err := tc.QueryWorkflow(ctx, workflows.CaseWorkflowID(j.caseID), "", workflows.QueryStatus)
		if err == nil {
			err = v.Get(&view)
		}
		if err != nil || view.Status != workflows.CaseResolved || view.Rating != 5 || view.Assignee != "Ana" {
			failed = append(failed, fmt.Sprintf("conversation %d: case %s is %s, rating %d, assignee %q (%v)", j.i, j.caseID, view.Status, view.Rating, view.Assignee, err))
		}
	}

	// Every message arrived exactly once and in order, both ways.
	var toAgent, toMember tally
	for _, j := range results {
		if j.taskSID == "" {
			continue
		}
		msgs, err := s.conversationMessages(ctx, j.convSID)
		if err != nil {
			failed = append(failed, fmt.Sprintf("conversation %d: %v", j.i, err))
			continue
		}
		var bodies []string
		for _, m := range msgs {
			bodies = append(bodies, m.Body)
		}
		toAgent.add(j.i, perSide, "member", bodies)
		recs, err := s.userMessages(ctx, j.member.ID)
		if err != nil {
			failed = append(failed, fmt.Sprintf("conversation %d: %v", j.i, err))
			continue
		}
		bodies = bodies[:0]
		for _, r := range recs {
			if r.FromBot && !r.Deleted {
				bodies = append(bodies, r.Message.Content)
			}
		}
		toMember.add(j.i, perSide, "agent", bodies)
	}
	for _, emu := range []string{"discord", "twilio"} {
		v, err := s.violations(ctx, emu)
		if err != nil || len(v) > 0 {
			failed = append(failed, fmt.Sprintf("%s contract violations: %q %v", emu, v, err))
		}
	}

	// Two histories, for a look in the Temporal UI's JSON format when the run is kept.
	for _, j := range results[:min(2, len(results))] {
		writeHistory(ctx, tc, workflows.ConversationWorkflowID(j.member.ID), filepath.Join(dir, fmt.Sprintf("history-%d.json", j.i)))
	}

	// Stop everything, for the CPU time each process used.
	c.stopAll()
	var cpu []string
	for _, p := range c.procs {
		cpu = append(cpu, fmt.Sprintf("%s %.1f s", p.name, p.cpuTime().Seconds()))
	}

	// Figures.
	outage.Lock()
	killed, back := outage.killed, outage.gatewayBack
	outage.Unlock()
	var lat [2]latencies
	for _, j := range results {
		for d, sent := range [2][]sentMsg{j.toAgent, j.toMember} {
			for _, m := range sent {
				at, ok := arr.at(m.token)
				if !ok {
					continue
				}
				phase := phaseBefore
				switch {
				case killed.IsZero() || m.at.Before(killed):
				case m.at.Before(back):
					phase = phaseOutage
				default:
					phase = phaseAfter
				}
				lat[d].add(phase, m.at, at)
			}
		}
	}
	pf := func(format string, args ...any) { fmt.Printf("CLUSTER "+format+"\n", args...) }
	pf("setup: built in %v (production binary %.1f MiB, development binary %.1f MiB), PostgreSQL + Temporal + 5 flexcord processes ready in %v",
		built.Sub(started).Round(time.Second), float64(prodSize)/(1<<20), float64(fileSize(t, dev))/(1<<20), ready.Sub(built).Round(time.Second))
	pf("run: %d conversations, %d messages each way each, whole journey in %v; %d of %d conversation workflows completed, %.0f history events each on average; %d interactions answered \"busy, try again\" and tried again",
		convs, perSide, finished.Sub(ready).Round(100*time.Millisecond), completed, convs, float64(historyEvents)/float64(max(completed, 1)), s.busy.Load())
	if !killed.IsZero() {
		pf("kill: worker-1 and gateway SIGKILLed after %d member messages; gateway ready again %v later (3 s down + start); worker-1 stayed down",
			threshold, back.Sub(killed).Round(100*time.Millisecond))
		if l := lat[0].last[phaseOutage]; !l.IsZero() {
			pf("recovery: the last member message sent while the gateway was down reached the agent %v after the kill", l.Sub(killed).Round(100*time.Millisecond))
		}
	}
	if cpuOK {
		run := finished.Sub(ready)
		pf("CPU: the machine's %d cores were %.0f%% busy during the run (%.0f core-seconds in %v, every process of the machine)",
			runtime.NumCPU(), 100*(busyAtEnd-busyAtReady).Seconds()/(run.Seconds()*float64(runtime.NumCPU())),
			(busyAtEnd - busyAtReady).Seconds(), run.Round(time.Second))
	}
	pf("CPU per process, start to stop: %s (PostgreSQL's server processes are not counted)", strings.Join(cpu, ", "))
	for d, name := range []string{"member → agent", "agent → member"} {
		tl := []tally{toAgent, toMember}[d]
		pf("%s: %d sent, %d delivered once, %d lost, %d duplicated, %d out of order", name, tl.sent, tl.once, tl.lost, tl.dup, tl.reordered)
		pf("%s latency: %s", name, lat[d].summary())
	}
	for _, f := range failed {
		t.Error(f)
	}
	if toAgent.lost+toAgent.dup+toAgent.reordered+toMember.lost+toMember.dup+toMember.reordered > 0 {
		t.Errorf("messages lost, duplicated or reordered: member → agent %+v, agent → member %+v", toAgent, toMember)
		for _, d := range append(toAgent.details, toMember.details...) {
			t.Log(d)
		}
	}
}

// sentMsg is one relayed message: its token and when it was sent.
type sentMsg struct {
	token string
	at    time.Time
}

// journey is one member's conversation, from /helpme to the rating.
type journey struct {
	s            *sandbox
	i, perSide   int
	member       discordemu.Member
	rng          *rand.Rand
	onMemberSent func()

	caseID, taskSID, convSID string
	toAgent, toMember        []sentMsg
	err                      error
}

// token is the text that identifies relayed message k of conversation i: "member c07 m03",
// "agent c07 m03". The member's DM shows the agent's line after the agent's name.
func token(who string, i, k int) string { return fmt.Sprintf("%s c%02d m%02d", who, i, k) }

var tokenRE = regexp.MustCompile(`(member|agent) c(\d+) m(\d+)`)

func (j *journey) run(ctx context.Context) error {
	s, id := j.s, j.member.ID
	if err := s.putMember(ctx, j.member); err != nil {
		return err
	}
	if err := s.command(ctx, id, discordemu.CommandInput{Name: "helpme", GuildID: discordemu.DefaultGuildID, ChannelID: discordemu.DefaultChannelID, Locale: "en-US"}); err != nil {
		return err
	}
	human := workflows.ButtonCustomID(workflows.ActionTalkToHuman, 0)
	if _, err := j.waitBot(ctx, "the greeting", func(r discordemu.Record) bool { return slices.Contains(customIDs(r), human) }); err != nil {
		return err
	}
	if err := s.sendDM(ctx, id, "I forgot my password and can't log in"); err != nil {
		return err
	}
	answer, err := j.waitBot(ctx, "the article answer", func(r discordemu.Record) bool {
		return strings.Contains(r.Message.Content, "Here's what I found") && slices.Contains(customIDs(r), human)
	})
	if err != nil {
		return err
	}
	if err := s.click(ctx, id, discordemu.ButtonInput{MessageID: answer.Message.ID, CustomID: human}); err != nil {
		return err
	}
	if _, err := j.waitBot(ctx, "the case announcement", contains("created. Transferring you")); err != nil {
		return err
	}
	var task twilioemu.TaskView
	if err := poll(ctx, 2*time.Minute, "the Flex task", func() (bool, error) {
		tasks, err := s.tasks(ctx, twilioemu.TaskWaiting)
		for _, tk := range tasks {
			if tk.Attributes["discord_user_id"] == id {
				task = tk
				return true, nil
			}
		}
		return false, err
	}); err != nil {
		return err
	}
	j.taskSID, j.convSID = task.SID, task.ConversationSID
	j.caseID, _ = task.Attributes["case_id"].(string)
	if err := s.taskAction(ctx, task.SID, "accept", map[string]string{"agent": "Ana"}); err != nil {
		return err
	}
	if _, err := j.waitBot(ctx, "Ana joined", contains("Ana joined")); err != nil {
		return err
	}

	// The chat: both sides write in turn, 0.5 to 1.5 s apart: 24 conversations make about 24
	// Discord messages a second, under the 40 a second the Discord task queue allows (plus the
	// members' lines to Twilio).
	for k := 1; k <= j.perSide; k++ {
		tok := token("member", j.i, k)
		j.toAgent = append(j.toAgent, sentMsg{tok, time.Now()})
		if err := s.sendDM(ctx, id, tok); err != nil {
			return err
		}
		j.onMemberSent()
		tok = token("agent", j.i, k)
		j.toMember = append(j.toMember, sentMsg{tok, time.Now()})
		if err := s.taskAction(ctx, task.SID, "messages", map[string]string{"body": tok}); err != nil {
			return err
		}
		time.Sleep(time.Duration(500+j.rng.IntN(1000)) * time.Millisecond) // think time
	}
	last := [2]string{token("member", j.i, j.perSide), token("agent", j.i, j.perSide)}
	if err := poll(ctx, 5*time.Minute, "the last message each way", func() (bool, error) {
		msgs, err := s.conversationMessages(ctx, j.convSID)
		if err != nil {
			return false, err
		}
		if !slices.ContainsFunc(msgs, func(m twilioemu.MessageView) bool { return strings.Contains(m.Body, last[0]) }) {
			return false, nil
		}
		recs, err := s.userMessages(ctx, id)
		return slices.ContainsFunc(recs, func(r discordemu.Record) bool { return r.FromBot && strings.Contains(r.Message.Content, last[1]) }), err
	}); err != nil {
		return err
	}

	// Wrap-up, the rating, and the agent completing the task.
	if err := s.taskAction(ctx, task.SID, "wrapup", nil); err != nil {
		return err
	}
	rate, err := j.waitBot(ctx, "the rating request", contains("has been resolved"))
	if err != nil {
		return err
	}
	five := ""
	for _, cid := range customIDs(rate) {
		if strings.HasPrefix(cid, "flexcord:rate:5:") {
			five = cid
		}
	}
	if five == "" {
		return fmt.Errorf("rating request without a 5 button: %q", customIDs(rate))
	}
	if err := s.click(ctx, id, discordemu.ButtonInput{MessageID: rate.Message.ID, CustomID: five}); err != nil {
		return err
	}
	if _, err := j.waitBot(ctx, "the thanks", contains("Thanks for rating us 5/5")); err != nil {
		return err
	}
	return s.taskAction(ctx, task.SID, "complete", nil)
}

func contains(s string) func(discordemu.Record) bool {
	return func(r discordemu.Record) bool { return strings.Contains(r.Message.Content, s) }
}

// waitBot waits for a bot message to the member that match accepts.
func (j *journey) waitBot(ctx context.Context, what string, match func(discordemu.Record) bool) (discordemu.Record, error) {
	var found discordemu.Record
	err := poll(ctx, 2*time.Minute, what, func() (bool, error) {
		recs, err := j.s.userMessages(ctx, j.member.ID)
		for i := len(recs) - 1; i >= 0; i-- {
			if recs[i].FromBot && !recs[i].Deleted && match(recs[i]) {
				found = recs[i]
				return true, nil
			}
		}
		return false, err
	})
	return found, err
}

// poll calls cond every 100 ms until it holds, an error that is not transient, or within ends.
func poll(ctx context.Context, within time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s within %v (last error: %v)", what, within, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling interval
		}
	}
}

// customIDs lists the custom ids of a message's buttons.
func customIDs(r discordemu.Record) []string {
	raw, _ := json.Marshal(r.Message.Components)
	var rows []struct {
		Components []struct {
			CustomID string `json:"custom_id"`
		} `json:"components"`
	}
	_ = json.Unmarshal(raw, &rows)
	var ids []string
	for _, row := range rows {
		for _, c := range row.Components {
			ids = append(ids, c.CustomID)
		}
	}
	return ids
}

// tally counts, for one direction, what was sent, delivered once, lost, duplicated and
// delivered out of order.
type tally struct {
	sent, once, lost, dup, reordered int
	details                          []string
}

// add compares what arrived in one conversation (bodies, in order) with the perSide tokens of
// who that were sent.
func (tl *tally) add(i, perSide int, who string, bodies []string) {
	var got []int
	for _, b := range bodies {
		m := tokenRE.FindStringSubmatch(b)
		if m == nil || m[1] != who {
			continue
		}
		if c, _ := strconv.Atoi(m[2]); c != i {
			tl.details = append(tl.details, fmt.Sprintf("conversation %d received %q, which belongs to conversation %d", i, b, c))
			continue
		}
		k, _ := strconv.Atoi(m[3])
		got = append(got, k)
	}
	tl.sent += perSide
	seen := map[int]int{}
	prev := 0
	for _, k := range got {
		seen[k]++
		if seen[k] > 1 {
			tl.dup++
			continue
		}
		if k < prev {
			tl.reordered++
		}
		prev = k
	}
	for k := 1; k <= perSide; k++ {
		switch seen[k] {
		case 0:
			tl.lost++
		default:
			tl.once++
		}
	}
	if len(got) != perSide || !sort.IntsAreSorted(got) {
		tl.details = append(tl.details, fmt.Sprintf("conversation %d, %s lines received in this order: %v", i, who, got))
	}
}

// Phases of the run, for the latencies: before the kill, while the gateway was down, after.
const (
	phaseBefore = iota
	phaseOutage
	phaseAfter
)

// latencies collects, per phase, the time from sending a message to its arrival, and when the
// last message sent in each phase arrived.
type latencies struct {
	d    [3][]time.Duration
	last [3]time.Time
}

func (l *latencies) add(phase int, sent, arrived time.Time) {
	l.d[phase] = append(l.d[phase], arrived.Sub(sent))
	if arrived.After(l.last[phase]) {
		l.last[phase] = arrived
	}
}

func (l *latencies) summary() string {
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	var parts []string
	for phase, name := range []string{"before the kill", "sent while the gateway was down", "after"} {
		ds := l.d[phase]
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(float64(len(ds))*p))] }
		parts = append(parts, fmt.Sprintf("%s (%d): p50 %v, p99 %v, max %v", name, len(ds), r(q(.5)), r(q(.99)), r(ds[len(ds)-1])))
	}
	return strings.Join(parts, "; ")
}

// waitClosed waits until the workflow is closed and returns its status.
func waitClosed(ctx context.Context, tc client.Client, id string, within time.Duration) (enumspb.WorkflowExecutionStatus, error) {
	var status enumspb.WorkflowExecutionStatus
	err := poll(ctx, within, "the end of "+id, func() (bool, error) {
		d, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return false, err
		}
		status = d.GetWorkflowExecutionInfo().GetStatus()
		return status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
	})
	return status, err
}

// writeHistory writes the history of the workflow's latest run to path, as JSON.
func writeHistory(ctx context.Context, tc client.Client, id, path string) {
	it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return
		}
		h.Events = append(h.Events, e)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err == nil {
		_ = os.WriteFile(path, b, 0o644)
	}
}

// countEvents returns the number of events in the latest run of a workflow.
func countEvents(ctx context.Context, tc client.Client, id string) int {
	it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		if _, err := it.Next(); err != nil {
			break
		}
		n++
	}
	return n
}

// machineBusy returns the CPU time all cores of the machine spent not idle since boot, from
// /proc/stat (Linux).
func machineBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var busy int64
	for i, v := range f[1:8] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 { // idle and iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100, true // USER_HZ is 100 on Linux
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
