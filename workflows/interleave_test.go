package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
)

// The randomized interleaving test: for each seed, a generated script of member, agent, Flex and
// operator events at random times, against providers whose calls take random time and fail at
// random (before or after they took effect), with continue-as-new every few signals. After every
// script the invariants of "every path ends, nothing lost" are checked. A failing seed prints its
// script and the command that runs it alone.
//
//	go test ./workflows -run TestConversationInterleavings -interleave.seeds=5000
//	go test ./workflows -run TestConversationInterleavings -interleave.seed=1234 -v

var (
	interleaveSeeds = flag.Int("interleave.seeds", envInt("FLEXCORD_INTERLEAVE_SEEDS", 500), "seeds TestConversationInterleavings runs")
	interleaveSeed  = flag.Uint64("interleave.seed", 0, "run only this seed of TestConversationInterleavings")
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func TestConversationInterleavings(t *testing.T) {
	first, n := uint64(1), uint64(*interleaveSeeds)
	if *interleaveSeed != 0 {
		first, n = *interleaveSeed, 1
	} else if testing.Short() {
		n = min(n, 50)
	}
	for seed := first; seed < first+n; seed++ {
		h := newHarness(t, seed)
		problems := h.run()
		if len(problems) > 0 {
			t.Fatalf("seed %d broke %d invariant(s):\n  %s\n\nscript:\n%s\nrun it alone: go test ./workflows -run TestConversationInterleavings -interleave.seed=%d -v",
				seed, len(problems), strings.Join(problems, "\n  "), h.describe(), seed)
		}
		if *interleaveSeed != 0 {
			t.Logf("seed %d passed:\n%s", seed, h.describe())
		}
	}
}

// --- the providers -------------------------------------------------------------------------

// world plays Discord and Twilio Flex for one seed: it keeps what each call did and decides, from
// the seed and the call's number, how long each call takes and whether it fails before or after
// taking effect. Calls of one activity type never overlap (the ledger sends one at a time per
// destination), so the numbering, and thus every outcome, is the same on every run of a seed.
type world struct {
	mu    sync.Mutex
	seed  uint64
	calls map[string]int
	now   func() time.Time

	dmsClosedUntil time.Time
	dms            []dmRecord
	dmAttempts     []string // content of every DM tried, whatever happened
	creates        []activities.CreateFlexInteractionInput
	convs          map[string]*flexConv
	convOrder      []string
	kbQueries      []string
	caseInputs     []CaseInput
	caseEvents     map[string][]CaseEventSignal
	agentSeq       int
	// records are the transcripts written to the blob store.
	records fakeRecords
}

type dmRecord struct {
	nonce, content string
	at             time.Time
}

type flexConv struct {
	sid, caseID, taskSID string
	handover             int
	open, gone           bool
	msgs                 []flexMsg
}

type flexMsg struct {
	sid, key, body string
	index          int
	agent          bool
	// file is the name of the file the message carries (a media message).
	file string
}

func newWorld(seed uint64) *world {
	w := &world{seed: seed, calls: map[string]int{}, convs: map[string]*flexConv{}, caseEvents: map[string][]CaseEventSignal{}}
	// The blob store of transcripts fails one write in ten.
	w.records.fail = func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.roll("record") < 0.1
	}
	return w
}

// roll returns the fate of the next call of an activity type, in [0, 1). The caller holds mu.
func (w *world) roll(name string) float64 {
	w.calls[name]++
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%d|%s|%d", w.seed, name, w.calls[name])
	return float64(h.Sum64()%10000) / 10000
}

// rollFor is roll for one try of one delivery: it depends on the delivery's key and which try
// it is, not on the order calls arrive in. Local-activity tries run beside the workflow on
// goroutines of their own, so the order of calls to one provider is not the same from run to
// run; this keeps a seed's outcome the same.
func (w *world) rollFor(ctx context.Context, name, key string, prior int) float64 {
	info := activity.GetInfo(ctx)
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%d|%s|%s|%d|%d|%v", w.seed, name, key, prior, info.Attempt, info.IsLocalActivity)
	return float64(h.Sum64()%10000) / 10000
}

// delay is how long the next call of an activity type takes, on the workflow clock.
func (w *world) delay(name string) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.roll("delay:" + name)
	switch {
	case r < 0.3:
		return 0
	case r < 0.9:
		return time.Duration(r*20) * time.Second
	default:
		return time.Duration(r*90) * time.Second
	}
}

var (
	errUnavailable = func(what string) error { return temporal.NewApplicationError(what+": 503", "Unavailable") }
	errGone        = temporal.NewNonRetryableApplicationError("twilio 20404: not found", activities.ErrFlexConversationGone, nil)
	errClosed      = temporal.NewNonRetryableApplicationError("twilio 50377: closed", activities.ErrFlexConversationClosed, nil)
)

func (w *world) SendDirectMessage(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	return activities.SendEach(in, func(one activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
		return w.sendOneDM(ctx, one)
	})
}

func (w *world) sendOneDM(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now, r := w.now(), w.rollFor(ctx, "dm", in.Nonce, in.PriorAttempts)
	tried := in.Message.Content
	for _, f := range in.Message.Files {
		tried += " [file:" + f.Name + "]"
	}
	w.dmAttempts = append(w.dmAttempts, tried)
	if now.Before(w.dmsClosedUntil) {
		return activities.SendDirectMessageResult{}, temporal.NewNonRetryableApplicationError("discord 50007: cannot send messages to this user", activities.ErrCannotMessageUser, nil)
	}
	// Discord's enforce_nonce returns the first message for a few minutes; after that only the
	// activity's own look-up, made on a retry, finds it.
	for _, d := range w.dms {
		if d.nonce != in.Nonce {
			continue
		}
		retry := activity.GetInfo(ctx).Attempt > 1 || in.PriorAttempts > 0
		if now.Sub(d.at) < 2*time.Minute || (retry && !in.FirstTriedAt.IsZero()) {
			return activities.SendDirectMessageResult{ChannelID: "dm", MessageIDs: []string{"existing"}}, nil
		}
	}
	if r < 0.08 {
		return activities.SendDirectMessageResult{}, errUnavailable("discord")
	}
	w.dms = append(w.dms, dmRecord{nonce: in.Nonce, content: in.Message.Content, at: now})
	if r > 0.96 {
		return activities.SendDirectMessageResult{}, errUnavailable("discord (after sending)")
	}
	return activities.SendDirectMessageResult{ChannelID: "dm", MessageIDs: []string{strconv.Itoa(len(w.dms))}}, nil
}

func (w *world) EditDirectMessage(ctx context.Context, in activities.EditDirectMessageInput) error {
	return nil
}

func (w *world) SendInteractionFollowUp(ctx context.Context, in activities.SendInteractionFollowUpInput) (activities.SendInteractionFollowUpResult, error) {
	return activities.SendInteractionFollowUpResult{MessageID: "f"}, nil
}

func (w *world) PostChannelMessage(ctx context.Context, in activities.PostChannelMessageInput) (activities.PostChannelMessageResult, error) {
	return activities.PostChannelMessageResult{}, nil
}

func (w *world) CreateFlexInteraction(ctx context.Context, in activities.CreateFlexInteractionInput) (activities.FlexInteraction, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.roll("create")
	w.creates = append(w.creates, in)
	if r < 0.1 {
		return activities.FlexInteraction{}, errUnavailable("twilio")
	}
	sid := fmt.Sprintf("CH%s-%d", in.CaseID, in.Handover)
	conv := w.convs[sid]
	if conv == nil { // the unique name makes a retried hand-over find the first conversation
		conv = &flexConv{sid: sid, caseID: in.CaseID, taskSID: "WT" + sid[2:], handover: in.Handover, open: true}
		w.convs[sid] = conv
		w.convOrder = append(w.convOrder, sid)
	}
	if r > 0.95 {
		return activities.FlexInteraction{}, errUnavailable("twilio (after creating)")
	}
	return activities.FlexInteraction{ConversationSID: sid, InteractionSID: "KD" + sid[2:], ChannelSID: "UO" + sid[2:],
		TaskSID: conv.taskSID, Identity: "discord:" + in.DiscordUserID, Handover: in.Handover}, nil
}

func (w *world) PostFlexMessage(ctx context.Context, in activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
	return activities.PostEach(in, func(one activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
		return w.postOneFlex(ctx, one)
	})
}

func (w *world) postOneFlex(ctx context.Context, in activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rollFor(ctx, "post", in.DeliveryKey, in.PriorAttempts)
	conv := w.convs[in.ConversationSID]
	switch {
	case conv == nil || conv.gone:
		return activities.PostFlexMessageResult{}, errGone
	case !conv.open:
		return activities.PostFlexMessageResult{}, errClosed
	}
	// Twilio has no idempotency: only the activity's marker look-up, made on any attempt that
	// follows another, keeps a retried post single.
	if activity.GetInfo(ctx).Attempt > 1 || in.PriorAttempts > 0 {
		for _, m := range conv.msgs {
			if m.key == in.DeliveryKey {
				return activities.PostFlexMessageResult{MessageSID: m.sid, Index: m.index, AlreadyPosted: true}, nil
			}
		}
	}
	if r < 0.1 {
		return activities.PostFlexMessageResult{}, errUnavailable("twilio")
	}
	var res activities.PostFlexMessageResult
	if in.Body != "" {
		m := flexMsg{sid: fmt.Sprintf("IMm%d", len(conv.msgs)), key: in.DeliveryKey, body: in.Body, index: len(conv.msgs)}
		conv.msgs = append(conv.msgs, m)
		if r > 0.94 {
			return activities.PostFlexMessageResult{}, errUnavailable("twilio (after posting)")
		}
		res = activities.PostFlexMessageResult{MessageSID: m.sid, Index: m.index}
	}
	// Each file is a media message of its own after the text, under a key of its own, as the
	// real activity posts them; a retry looks for each.
	for i, f := range in.Files {
		key := fmt.Sprintf("%s.f%d", in.DeliveryKey, i+1)
		var found *flexMsg
		for j := range conv.msgs {
			if conv.msgs[j].key == key && (activity.GetInfo(ctx).Attempt > 1 || in.PriorAttempts > 0) {
				found = &conv.msgs[j]
			}
		}
		if found == nil {
			if w.rollFor(ctx, "file", key, in.PriorAttempts) < 0.1 {
				return res, errUnavailable("twilio media")
			}
			conv.msgs = append(conv.msgs, flexMsg{sid: fmt.Sprintf("IMm%d", len(conv.msgs)), key: key, body: "[file]", file: f.Name, index: len(conv.msgs)})
			found = &conv.msgs[len(conv.msgs)-1]
		}
		if res.MessageSID == "" {
			res.MessageSID, res.Index = found.sid, found.index
		} else {
			res.FileIndexes = append(res.FileIndexes, found.index)
		}
	}
	return res, nil
}

func (w *world) CloseFlexInteraction(ctx context.Context, in activities.CloseFlexInteractionInput) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if conv := w.convs[in.Interaction.ConversationSID]; conv != nil {
		conv.open = false
	}
	return nil
}

func (w *world) CheckFlexInteraction(ctx context.Context, in activities.CheckFlexInteractionInput) (activities.CheckFlexInteractionResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.roll("check") < 0.05 {
		return activities.CheckFlexInteractionResult{}, errUnavailable("twilio")
	}
	conv := w.convs[in.Interaction.ConversationSID]
	switch {
	case conv == nil || conv.gone:
		return activities.CheckFlexInteractionResult{LastIndex: -1}, nil
	case !conv.open:
		return activities.CheckFlexInteractionResult{ConversationState: "closed", ChannelStatus: "closed", LastIndex: len(conv.msgs) - 1}, nil
	}
	return activities.CheckFlexInteractionResult{Open: true, ConversationState: "active", ChannelStatus: "active", LastIndex: len(conv.msgs) - 1}, nil
}

func (w *world) FetchAgentMessages(ctx context.Context, in activities.FetchAgentMessagesInput) (activities.FetchAgentMessagesResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	conv := w.convs[in.ConversationSID]
	if conv == nil || conv.gone {
		return activities.FetchAgentMessagesResult{}, errGone
	}
	res := activities.FetchAgentMessagesResult{LastIndex: in.AfterIndex}
	for _, m := range conv.msgs {
		if m.index > in.AfterIndex {
			res.LastIndex = m.index
			if m.agent {
				am := activities.AgentMessage{SID: m.sid, Index: m.index, Body: m.body}
				if m.file != "" {
					am.Files = []activities.File{{Name: m.file, ContentType: "application/pdf", Size: 2048, MediaSID: "ME" + m.sid, ServiceSID: "IS1"}}
				}
				res.Messages = append(res.Messages, am)
			}
		}
	}
	return res, nil
}

func (w *world) SearchKnowledgeBase(ctx context.Context, in activities.SearchKnowledgeBaseInput) (activities.SearchKnowledgeBaseResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kbQueries = append(w.kbQueries, in.Query)
	if strings.Contains(in.Query, "article") {
		return activities.SearchKnowledgeBaseResult{Articles: []activities.Article{{ID: "a1", Title: "An article"}}}, nil
	}
	return activities.SearchKnowledgeBaseResult{}, nil
}

// recorder records, as the conversation issues them, the cases it starts and what it tells them.
type recorder struct {
	interceptor.WorkerInterceptorBase
	w *world
}

func (r *recorder) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	in := &recordingInbound{w: r.w}
	in.Next = next
	return in
}

type recordingInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	w *world
}

func (i *recordingInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	out := &recordingOutbound{w: i.w}
	out.Next = outbound
	return i.Next.Init(out)
}

type recordingOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	w *world
}

func (o *recordingOutbound) ExecuteChildWorkflow(ctx workflow.Context, childWorkflowType string, args ...any) workflow.ChildWorkflowFuture {
	if len(args) == 1 {
		if in, ok := args[0].(CaseInput); ok {
			o.w.mu.Lock()
			o.w.caseInputs = append(o.w.caseInputs, in)
			o.w.mu.Unlock()
		}
	}
	return o.Next.ExecuteChildWorkflow(ctx, childWorkflowType, args...)
}

func (o *recordingOutbound) SignalExternalWorkflow(ctx workflow.Context, workflowID, runID, signalName string, arg any) workflow.Future {
	if ev, ok := arg.(CaseEventSignal); ok {
		caseID, _ := CaseIDFromWorkflowID(workflowID)
		o.w.recordCaseEvent(caseID, ev)
	}
	return o.Next.SignalExternalWorkflow(ctx, workflowID, runID, signalName, arg)
}

func (w *world) recordCaseEvent(caseID string, ev CaseEventSignal) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.caseEvents[caseID] = append(w.caseEvents[caseID], ev)
}

// latestTask is the task of the newest Flex conversation of a case, "" if none.
func (w *world) latestTask(caseID string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	task, handover := "", 0
	for _, sid := range w.convOrder {
		if c := w.convs[sid]; c.caseID == caseID && c.handover > handover && c.open && !c.gone {
			task, handover = c.taskSID, c.handover
		}
	}
	return task
}

// writeAgent has the agent write in a Flex conversation; it returns the message.
func (w *world) writeAgent(sid string) (flexMsg, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	conv := w.convs[sid]
	if conv == nil || conv.gone || !conv.open {
		return flexMsg{}, false
	}
	w.agentSeq++
	m := flexMsg{sid: fmt.Sprintf("IMa%03d", w.agentSeq), body: fmt.Sprintf("a%03d from the agent", w.agentSeq), index: len(conv.msgs), agent: true}
	if w.roll("agent file") < 0.2 {
		m.file = fmt.Sprintf("g%03d.pdf", w.agentSeq)
	}
	conv.msgs = append(conv.msgs, m)
	return m, true
}

// --- the harness ---------------------------------------------------------------------------

type harness struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	w     *world
	opts  ConversationOptions
	env   *testsuite.TestWorkflowEnvironment
	start time.Time

	steps []*step
	lines []string // what happened, for the failure report

	memberSeq    int
	sentDMs      []UserMessageSignal
	runStartDMs  int                   // DMs sent before the current conversation started
	accepted     map[string]bool       // member tokens signalled (first time)
	memberFiles  map[string]memberFile // member token → the file its message carried
	changes      []caseChange          // edits and deletions made while a case was open
	agentSignals []AgentMessageSignal
	statusLog    []statusAt
	opClosed     [][2]int // runs and episodes an operator closed
	runNo        int
	operatorSaw  []string // transcript lines operators' closes returned
	// dmsClosedEver: the member closed their DMs at some point.
	dmsClosedEver bool
	lost          map[string]bool
	convClosedAt  map[string]statusAt // conversations the agent closed, with the status then
	agentWritten  map[string][]agentWrite
	problems      []string
	cans          int
	// signalled is every signal sent to the current run, with when.
	signalled []sentSignal
}

// sentSignal is a signal the harness sent to a run.
type sentSignal struct {
	at   time.Duration
	name string
	arg  any
}

type step struct {
	at    time.Duration
	name  string
	do    func(h *harness)
	fired bool
	// starts: ingress signals-with-start this event (a DM, /helpme, Talk to a human), so it
	// starts a conversation when none is running; other events find none and are dropped.
	starts bool
}

type statusAt struct {
	at  time.Duration
	run int // which conversation workflow (a new one starts after one ends)
	st  ConversationStatus
}

// caseChange is an edit or deletion of a DM made while the conversation had case caseID.
type caseChange struct {
	caseID string
	sig    UserMessageChangedSignal
}

// memberFile is a file a member attached to a message; refused ones are over the size cap.
type memberFile struct {
	name    string
	refused bool
}

type agentWrite struct {
	token   string
	at      time.Duration
	episode int
	file    string // the file the message carries, if any
}

func newHarness(t *testing.T, seed uint64) *harness {
	h := &harness{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), w: newWorld(seed),
		start:    time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC),
		accepted: map[string]bool{}, memberFiles: map[string]memberFile{}, lost: map[string]bool{}, convClosedAt: map[string]statusAt{},
		agentWritten: map[string][]agentWrite{},
	}
	h.opts = ConversationOptions{
		InactivityTimeout: 30 * time.Minute, QueueTimeout: 10 * time.Minute, ChoiceTimeout: 20 * time.Minute,
		LiveCheckAfter: time.Hour, RatingTimeout: 24 * time.Hour, FailedRetention: 72 * time.Hour,
		TranscriptTail: 400, MaxHandovers: 4,
		Delivery: DeliveryPolicy{MaxAttempts: 4, InitialInterval: time.Second, Timeout: 30 * time.Second},
		Transfer: DeliveryPolicy{MaxAttempts: 3, InitialInterval: time.Second, Timeout: 30 * time.Second},
	}
	if h.rng.IntN(10) < 7 {
		h.opts.ContinueAsNewAfter = 3 + h.rng.IntN(10)
	}
	h.generate()
	return h
}

// generate writes the script: 15 to 45 events at random times.
func (h *harness) generate() {
	type kind struct {
		name   string
		weight int
		do     func(h *harness)
	}
	kinds := []kind{
		{"member DM", 22, (*harness).memberDM},
		{"member DM again (redelivery)", 3, (*harness).memberDMAgain},
		{"member edits or deletes a DM", 3, (*harness).memberChanges},
		{"/helpme", 5, (*harness).helpMe},
		{"click Talk to a human", 6, (*harness).talkToHuman},
		{"click This solved it", 3, func(h *harness) { h.click(ActionSolved, 0, "") }},
		{"click a rating", 5, (*harness).rate},
		{"click Keep waiting", 3, func(h *harness) { h.click(ActionKeepWaiting, 0, h.current().CaseID) }},
		{"click Leave a message", 2, func(h *harness) { h.click(ActionLeaveMessage, 0, h.current().CaseID) }},
		{"agent accepts", 8, (*harness).agentJoins},
		{"agent writes", 16, (*harness).agentWrites},
		{"agent webhook again (redelivery)", 2, (*harness).agentAgain},
		{"agent wraps up the task", 4, (*harness).wrapUp},
		{"agent closes the Flex conversation", 3, (*harness).closeConversation},
		{"task canceled / timed out", 3, (*harness).noAgent},
		{"stale event of another task", 1, (*harness).staleEvent},
		{"Flex loses the conversation", 2, (*harness).loseConversation},
		{"operator closes", 2, (*harness).operatorClose},
		{"operator retries deliveries", 2, (*harness).operatorRetry},
		{"member closes their DMs for a while", 1, (*harness).dmsOff},
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	at := time.Duration(0)
	for i, n := 0, 15+h.rng.IntN(31); i < n; i++ {
		switch r := h.rng.IntN(100); {
		case r < 65:
			at += time.Duration(1+h.rng.IntN(20)) * time.Second
		case r < 88:
			at += time.Duration(1+h.rng.IntN(5)) * time.Minute
		case r < 97:
			at += time.Duration(10+h.rng.IntN(60)) * time.Minute
		default:
			at += time.Duration(2+h.rng.IntN(25)) * time.Hour
		}
		pick := h.rng.IntN(total)
		for _, k := range kinds {
			if pick < k.weight {
				starts := k.name == "member DM" || k.name == "/helpme" || k.name == "click Talk to a human"
				h.steps = append(h.steps, &step{at: at, name: k.name, do: k.do, starts: starts})
				break
			}
			pick -= k.weight
		}
	}
}

func (h *harness) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  options: continue-as-new after %d signals (0: default)\n", h.opts.ContinueAsNewAfter)
	for _, l := range h.lines {
		b.WriteString("  " + l + "\n")
	}
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	for _, in := range h.w.caseInputs {
		var evs []string
		for _, ev := range h.w.caseEvents[in.CaseID] {
			evs = append(evs, ev.EventID)
		}
		fmt.Fprintf(&b, "  case %s heard: %s\n", in.CaseID, strings.Join(evs, ", "))
	}
	fmt.Fprintf(&b, "  DMs: %q\n", h.w.dmAttempts)
	sids := make([]string, 0, len(h.w.convs))
	for sid := range h.w.convs {
		sids = append(sids, sid)
	}
	sort.Strings(sids)
	for _, sid := range sids {
		var bodies []string
		for _, m := range h.w.convs[sid].msgs {
			bodies = append(bodies, m.body)
		}
		fmt.Fprintf(&b, "  Flex %s (gone %v): %q\n", sid, h.w.convs[sid].gone, bodies)
	}
	for _, in := range h.w.creates {
		var lines []string
		for _, l := range in.Transcript {
			lines = append(lines, l.Text)
		}
		fmt.Fprintf(&b, "  hand-over %s transcript: %q\n", in.CaseID, lines)
	}
	return b.String()
}

func (h *harness) now() time.Duration { return h.env.Now().Sub(h.start) }

func (h *harness) logf(format string, args ...any) {
	h.lines = append(h.lines, fmt.Sprintf("%9s  ", h.now().Round(time.Second))+fmt.Sprintf(format, args...))
}

// current queries the conversation and records its status for the invariants.
func (h *harness) current() ConversationStatus {
	v, err := h.env.QueryWorkflow(QueryStatus)
	if err != nil {
		return ConversationStatus{}
	}
	var st ConversationStatus
	_ = v.Get(&st)
	h.statusLog = append(h.statusLog, statusAt{h.now(), h.runNo, st})
	return st
}

func (h *harness) signal(name string, arg any) {
	h.signalled = append(h.signalled, sentSignal{h.now(), name, arg})
	h.env.SignalWorkflow(name, arg)
}

// lateSignals returns the signals sent at the instant the run continued as new. The test
// environment may hand such a signal to the run after it decided to continue as new, and drop
// it; a server refuses the continue-as-new while a signal is unhandled, or delivers the signal
// to the next run. So the next run gets them again: one the old run did take is a duplicate,
// which the conversation ignores by its event id.
func (h *harness) lateSignals() []sentSignal {
	var late []sentSignal
	for _, sg := range h.signalled {
		if sg.at == h.now() {
			late = append(late, sg)
		}
	}
	return late
}

func (h *harness) memberDM() {
	h.memberSeq++
	token := fmt.Sprintf("m%03d", h.memberSeq)
	text := token + " hello"
	sig := UserMessageSignal{EventID: strconv.Itoa(100000 + h.memberSeq), Member: testMember, ChannelID: "dm"}
	switch r := h.rng.IntN(100); {
	case r < 15:
		text, sig.WantsHuman = token+" I want a human", true
	case r < 30:
		text = token + " is there an article about this?"
	case r < 40:
		text = token + " thanks"
	}
	sig.Text = text
	if r := h.rng.IntN(100); r < 15 {
		// A screenshot with the message; one in five is over the size cap.
		f := memberFile{name: "f" + token[1:] + ".png", refused: r < 3}
		size := int64(2048)
		if f.refused {
			size = 30 << 20
		}
		sig.Files = []Attachment{{ID: "F" + token, Name: f.name, ContentType: "image/png", Size: size, URL: "https://cdn.discordapp.com/attachments/1/" + f.name}}
		h.memberFiles[token] = f
		text += " + " + f.name
	}
	h.sentDMs = append(h.sentDMs, sig)
	h.accepted[token] = true
	h.logf("member DM %q (wants human %v)", text, sig.WantsHuman)
	h.signal(SignalUserMessage, sig)
}

// memberDMAgain delivers a DM of this conversation again (a gateway redelivery, a backfill that
// overlaps). Redeliveries after the conversation ended, into a new one, are not played: its
// seen-set is new, and ingress's backfill starts after the newest message a conversation took.
func (h *harness) memberDMAgain() {
	if len(h.sentDMs) == h.runStartDMs {
		return
	}
	sig := h.sentDMs[h.runStartDMs+h.rng.IntN(len(h.sentDMs)-h.runStartDMs)]
	h.logf("member DM %s delivered again", sig.EventID)
	h.signal(SignalUserMessage, sig)
}

// memberChanges edits or deletes one of the member's DMs; an edit that lands while the
// conversation has a case must be in that case's transcript.
func (h *harness) memberChanges() {
	if len(h.sentDMs) == 0 {
		return
	}
	st := h.current()
	sig := h.sentDMs[h.rng.IntN(len(h.sentDMs))]
	ch := UserMessageChangedSignal{MessageID: sig.EventID, Member: testMember}
	if h.rng.IntN(10) < 7 {
		ch.EventID, ch.Text = fmt.Sprintf("edit:%s:%d", sig.EventID, len(h.lines)), fmt.Sprintf("x%03d edited", len(h.lines))
		h.logf("member edits DM %s to %q", sig.EventID, ch.Text)
	} else {
		ch.EventID, ch.Deleted = "delete:"+sig.EventID, true
		h.logf("member deletes DM %s", sig.EventID)
	}
	if st.CaseID != "" && st.Stage != StageClosed {
		h.changes = append(h.changes, caseChange{caseID: st.CaseID, sig: ch})
	}
	h.signal(SignalUserMessageChanged, ch)
}

func (h *harness) helpMe() {
	id := fmt.Sprintf("help%d", len(h.lines))
	h.logf("/helpme")
	h.signal(SignalHelpRequested, HelpRequestedSignal{EventID: id, Member: testMember, Locale: "en-US",
		Interaction: &Interaction{ApplicationID: "app", Token: "tok"}})
}

func (h *harness) click(a UserAction, rating int, caseID string) {
	h.logf("click %s %d %s", a, rating, caseID)
	h.signal(SignalUserAction, UserActionSignal{EventID: fmt.Sprintf("click%d", len(h.lines)), Member: testMember, Action: a, Rating: rating, CaseID: caseID})
}

func (h *harness) talkToHuman() { h.click(ActionTalkToHuman, 0, "") }

func (h *harness) rate() {
	st := h.current()
	caseID := st.CaseID
	switch r := h.rng.IntN(100); {
	case r < 15:
		caseID = ""
	case r < 25:
		caseID = "C-OLD234"
	}
	h.click(ActionRate, 1+h.rng.IntN(5), caseID)
}

func (h *harness) agentJoins() {
	st := h.current()
	taskSID := ""
	if st.Flex != nil {
		taskSID = st.Flex.TaskSID
	} else if st.Stage == StageQueued {
		// Flex routed the task before flexcord heard back from creating it.
		taskSID = h.w.latestTask(st.CaseID)
	}
	if taskSID == "" {
		return
	}
	h.logf("agent accepts task %s", taskSID)
	h.signal(SignalAgentJoined, AgentJoinedSignal{EventID: fmt.Sprintf("join%d", len(h.lines)), CaseID: st.CaseID, AgentName: "Ana", TaskSID: taskSID})
}

func (h *harness) agentWrites() {
	st := h.current()
	if st.Flex == nil || st.Stage != StageLive {
		return
	}
	m, ok := h.w.writeAgent(st.Flex.ConversationSID)
	if !ok {
		return
	}
	sid := st.Flex.ConversationSID
	h.agentWritten[sid] = append(h.agentWritten[sid], agentWrite{token: m.body[:4], at: h.now(), episode: st.Episode, file: m.file})
	sig := AgentMessageSignal{EventID: m.sid, CaseID: st.CaseID, Text: m.body, ConversationSID: sid, Index: m.index, HasIndex: true}
	if m.file != "" {
		sig.Files = []Attachment{{ID: "ME" + m.sid, Name: m.file, ContentType: "application/pdf", Size: 2048, MediaSID: "ME" + m.sid, ServiceSID: "IS1"}}
	}
	h.agentSignals = append(h.agentSignals, sig)
	switch r := h.rng.IntN(100); {
	case r < 12:
		h.logf("agent writes %q in %s; its webhook is lost", m.body[:4], sid)
	case r < 24:
		late := time.Duration(1+h.rng.IntN(90)) * time.Second
		h.logf("agent writes %q in %s; its webhook comes %v late", m.body[:4], sid, late)
		h.later(late, "late agent webhook "+m.sid, func(h *harness) { h.signal(SignalAgentMessage, sig) })
	default:
		h.logf("agent writes %q in %s", m.body[:4], sid)
		h.signal(SignalAgentMessage, sig)
	}
}

func (h *harness) agentAgain() {
	if len(h.agentSignals) == 0 {
		return
	}
	sig := h.agentSignals[h.rng.IntN(len(h.agentSignals))]
	h.logf("agent webhook %s delivered again", sig.EventID)
	h.signal(SignalAgentMessage, sig)
}

func (h *harness) wrapUp() {
	st := h.current()
	if st.Flex == nil {
		return
	}
	h.logf("agent wraps up task %s", st.Flex.TaskSID)
	h.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: fmt.Sprintf("wrap%d", len(h.lines)), CaseID: st.CaseID, TaskSID: st.Flex.TaskSID, Reason: "wrapped up"})
}

func (h *harness) closeConversation() {
	st := h.current()
	if st.Flex == nil {
		return
	}
	sid := st.Flex.ConversationSID
	h.w.mu.Lock()
	conv := h.w.convs[sid]
	closable := conv != nil && conv.open && !conv.gone
	if closable {
		conv.open = false
	}
	h.w.mu.Unlock()
	if !closable {
		return
	}
	h.convClosedAt[sid] = statusAt{h.now(), h.runNo, st}
	if h.rng.IntN(100) < 20 {
		h.logf("agent closes %s; the webhook is lost", sid)
		return
	}
	h.logf("agent closes %s", sid)
	h.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "closed:" + sid, CaseID: st.CaseID, ConversationSID: sid, ConversationClosed: true, Reason: "conversation closed"})
}

func (h *harness) noAgent() {
	st := h.current()
	if st.Flex == nil {
		return
	}
	h.logf("task %s canceled", st.Flex.TaskSID)
	h.signal(SignalNoAgent, NoAgentSignal{EventID: fmt.Sprintf("cancel%d", len(h.lines)), CaseID: st.CaseID, TaskSID: st.Flex.TaskSID, Reason: "task.canceled"})
}

func (h *harness) staleEvent() {
	h.logf("events of an older task arrive")
	h.signal(SignalNoAgent, NoAgentSignal{EventID: fmt.Sprintf("stale%d", len(h.lines)), TaskSID: "WTolder", Reason: "task.canceled"})
	h.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: fmt.Sprintf("stalew%d", len(h.lines)), TaskSID: "WTolder"})
}

func (h *harness) loseConversation() {
	st := h.current()
	if st.Flex == nil {
		return
	}
	h.w.mu.Lock()
	if conv := h.w.convs[st.Flex.ConversationSID]; conv != nil {
		conv.gone = true
	}
	h.w.mu.Unlock()
	h.lost[st.Flex.ConversationSID] = true
	h.logf("Flex loses %s (no webhook)", st.Flex.ConversationSID)
}

func (h *harness) operatorClose() {
	st := h.current()
	h.logf("operator closes the conversation (stage %s)", st.Stage)
	h.env.UpdateWorkflow(UpdateClose, fmt.Sprintf("close%d", len(h.lines)), &testsuite.TestUpdateCallback{
		OnAccept: func() {}, OnReject: func(error) {},
		OnComplete: func(v any, err error) {
			if err == nil {
				st := v.(ConversationStatus)
				h.opClosed = append(h.opClosed, [2]int{h.runNo, st.Episode})
				// The operator who closed it got the transcript back (and sees it in the UI).
				for _, l := range st.Transcript {
					h.operatorSaw = append(h.operatorSaw, l.Text)
				}
			}
		},
	}, CloseRequest{Reason: "test", Operator: "ops"})
}

func (h *harness) operatorRetry() {
	h.logf("operator retries failed deliveries")
	h.env.UpdateWorkflow(UpdateRetryDeliveries, fmt.Sprintf("retry%d", len(h.lines)), &testsuite.TestUpdateCallback{
		OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {},
	}, RetryDeliveriesRequest{Operator: "ops"})
}

func (h *harness) dmsOff() {
	d := time.Duration(10+h.rng.IntN(80)) * time.Minute
	h.w.mu.Lock()
	h.w.dmsClosedUntil = h.env.Now().Add(d)
	h.w.mu.Unlock()
	h.dmsClosedEver = true
	h.logf("member closes their DMs for %v", d)
}

// later adds a step at a time relative to now.
func (h *harness) later(d time.Duration, name string, do func(h *harness)) {
	s := &step{at: h.now() + d, name: name, do: do}
	h.steps = append(h.steps, s)
	h.schedule(s)
}

func (h *harness) schedule(s *step) {
	d := max(s.at-h.now(), time.Millisecond) // after the run has started
	h.env.RegisterDelayedCallback(func() {
		if !s.fired {
			s.fired = true
			h.current() // every step sees, and logs, the state it lands in
			s.do(h)
		}
	}, d)
}

// newEnv is a test environment for one run of the conversation, with the world behind its
// activities and the member's cases stood in for.
func (h *harness) newEnv(at time.Time) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger())
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(at)
	env.SetTestTimeout(10 * time.Second)
	// A run ends when the conversation does; its cases live on, as they do with a server.
	env.SetDetachedChildWait(false)
	env.RegisterWorkflow(Conversation)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ConversationWorkflowID(testUser), TaskQueue: TaskQueue})
	w := h.w
	w.now = env.Now
	acts := []struct {
		name string
		fn   any
	}{
		{"SendDirectMessage", w.SendDirectMessage}, {"EditDirectMessage", w.EditDirectMessage},
		{"SendInteractionFollowUp", w.SendInteractionFollowUp}, {"PostChannelMessage", w.PostChannelMessage},
		{"CreateFlexInteraction", w.CreateFlexInteraction}, {"PostFlexMessage", w.PostFlexMessage},
		{"CloseFlexInteraction", w.CloseFlexInteraction}, {"CheckFlexInteraction", w.CheckFlexInteraction},
		{"FetchAgentMessages", w.FetchAgentMessages}, {"SaveTranscript", w.records.SaveTranscript},
	}
	for _, a := range acts {
		env.RegisterActivityWithOptions(a.fn, activity.RegisterOptions{Name: a.name})
	}
	env.RegisterActivityWithOptions(w.SearchKnowledgeBase, activity.RegisterOptions{Name: "SearchKnowledgeBase"})
	for _, a := range acts {
		name := a.name
		env.OnActivity(name, mock.Anything, mock.Anything).Return(a.fn).AfterFn(func() time.Duration { return w.delay(name) })
	}
	// The member's cases are stand-ins that take signals for as long as a case would; what the
	// conversation sends them is recorded where it is sent (recorder, below), so a run that
	// continues as new before a stand-in took its signal loses nothing of the record.
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in CaseInput) (CaseView, error) {
		events := workflow.GetSignalChannel(ctx, SignalCaseEvent)
		giveUp := workflow.NewTimer(ctx, 400*24*time.Hour)
		for {
			got := false
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(events, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); got = true })
			sel.AddFuture(giveUp, func(workflow.Future) {})
			sel.Select(ctx)
			if !got {
				return CaseView{}, nil
			}
		}
	}, workflow.RegisterOptions{Name: "Case"})
	// Cases of an earlier run are not in this environment; signals to them are taken here.
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(nil)
	env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{&recorder{w: w}}})
	return env
}

// run plays the script through as many runs as continue-as-new makes, then checks the
// invariants. It returns the broken ones.
func (h *harness) run() []string {
	input := ConversationInput{Member: testMember, GuildID: "g1", Locale: "en-US", Options: h.opts}
	at := h.start
	var res ConversationResult
	fresh := false // h.env was made for this run already (it carries late signals)
	for run := 0; ; run++ {
		if run > 200 {
			return []string{"more than 200 continue-as-new runs"}
		}
		if !fresh {
			h.env, h.signalled = h.newEnv(at), nil
		}
		fresh = false
		for _, s := range h.steps {
			if !s.fired {
				h.schedule(s)
			}
		}
		h.env.ExecuteWorkflow(Conversation, input)
		err := h.env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			h.cans++
			var next ConversationInput
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				return []string{"decode continue-as-new input: " + err.Error()}
			}
			h.checkBounded(next.State)
			h.logf("— continued as new (run %d)", run+2)
			late := h.lateSignals()
			input, at = next, h.env.Now()
			h.env, h.signalled = h.newEnv(at), nil
			for _, sg := range late {
				h.env.RegisterDelayedCallback(func() { h.signal(sg.name, sg.arg) }, time.Millisecond)
			}
			fresh = true
			continue
		}
		if err != nil {
			return append(h.problems, "the workflow failed: "+err.Error())
		}
		if !h.env.IsWorkflowCompleted() {
			return append(h.problems, "the workflow did not end")
		}
		if err := h.env.GetWorkflowResult(&res); err != nil {
			return append(h.problems, "result: "+err.Error())
		}
		h.current() // the state it ended in
		if res.Stage != StageClosed {
			h.fail("the conversation ended in stage %s", res.Stage)
		}
		// A member's signal sent at the instant the conversation ended did not reach it (it
		// would have kept it going): ingress's signal-with-start begins the next conversation
		// with it, as a server would.
		var late []sentSignal
		for _, sg := range h.lateSignals() {
			if sg.name == SignalUserMessage || sg.name == SignalHelpRequested || sg.name == SignalUserAction {
				late = append(late, sg)
			}
		}
		if len(late) > 0 {
			h.logf("— ended: %s (%s); %d signal(s) of that instant start the next conversation", res.Stage, res.ClosedReason, len(late))
			input, at = ConversationInput{Member: testMember, GuildID: "g1", Locale: "en-US", Options: h.opts}, h.env.Now()
			h.runStartDMs = len(h.sentDMs)
			h.runNo++
			h.env, h.signalled = h.newEnv(at), nil
			for _, sg := range late {
				h.env.RegisterDelayedCallback(func() { h.signal(sg.name, sg.arg) }, time.Millisecond)
			}
			fresh = true
			continue
		}
		if !h.pending() {
			break
		}
		// The next member event starts a new conversation, as ingress's signal-with-start does;
		// agent and operator events before it find no conversation.
		h.logf("— ended: %s (%s)", res.Stage, res.ClosedReason)
		next := h.nextStarter()
		if next == nil {
			break
		}
		input, at = ConversationInput{Member: testMember, GuildID: "g1", Locale: "en-US", Options: h.opts}, h.start.Add(next.at)
		h.runStartDMs = len(h.sentDMs)
		h.runNo++
	}
	h.logf("— ended: %s (%s)", res.Stage, res.ClosedReason)
	h.checkEnds()
	h.checkNoDoubles()
	h.checkOrder()
	h.checkNothingLost()
	h.checkRecords()
	h.checkMemberFiles()
	h.checkClosedStaysClosed()
	return h.problems
}

func (h *harness) fail(format string, args ...any) {
	h.problems = append(h.problems, fmt.Sprintf(format, args...))
}

// --- the invariants ------------------------------------------------------------------------

func (h *harness) checkBounded(s *ConversationState) {
	if s == nil {
		h.fail("continue-as-new carried no state")
		return
	}
	b, _ := json.Marshal(s)
	switch {
	case len(b) > 256<<10:
		h.fail("carried state is %d bytes", len(b))
	case len(s.Seen.IDs) > s.Seen.Max:
		h.fail("seen-set holds %d ids, over its bound %d", len(s.Seen.IDs), s.Seen.Max)
	case len(s.Transcript) > h.opts.TranscriptTail:
		h.fail("transcript holds %d lines", len(s.Transcript))
	case recordLines(s.Record) > recordUnassigned+100:
		h.fail("carried record holds %d lines", recordLines(s.Record))
	case len(s.Ledger.Queue) > 300 || len(s.Buttons) > 8 || len(s.HeldAgentMessages) > 200 || len(s.Ops.CloseFlex) > 20:
		h.fail("carried state grew: ledger %d buttons %d held %d closes %d", len(s.Ledger.Queue), len(s.Buttons), len(s.HeldAgentMessages), len(s.Ops.CloseFlex))
	}
}

func (h *harness) pending() bool {
	for _, s := range h.steps {
		if !s.fired {
			return true
		}
	}
	return false
}

// nextStarter drops the events that come while no conversation runs, up to the next one that
// starts a conversation, and returns that one (nil: none is left).
func (h *harness) nextStarter() *step {
	sort.SliceStable(h.steps, func(i, j int) bool { return h.steps[i].at < h.steps[j].at })
	for _, s := range h.steps {
		if s.fired {
			continue
		}
		if s.starts {
			return s
		}
		s.fired = true
		h.lines = append(h.lines, fmt.Sprintf("%9s  %s: no conversation, dropped by ingress", s.at.Round(time.Second), s.name))
	}
	return nil
}

// checkEnds: every case the conversation opened heard how it ended.
func (h *harness) checkEnds() {
	for _, in := range h.w.caseInputs {
		ended := false
		for _, ev := range h.w.caseEvents[in.CaseID] {
			ended = ended || ev.ConversationEnded
		}
		if !ended {
			h.fail("case %s never heard that its conversation ended", in.CaseID)
		}
	}
}

var (
	agentToken  = regexp.MustCompile(`\ba(\d{3})\b`)
	memberToken = regexp.MustCompile(`\bm(\d{3})\b`)
)

// checkNoDoubles: no DM and no post to a Flex conversation was made twice, and no agent message
// reached the member twice.
func (h *harness) checkNoDoubles() {
	nonces := map[string]int{}
	agent := map[string]int{}
	for _, d := range h.w.dms {
		if nonces[d.nonce]++; nonces[d.nonce] == 2 {
			h.fail("DM %q delivered twice", truncate(d.content, 60))
		}
		for _, m := range agentToken.FindAllString(d.content, -1) {
			if agent[m]++; agent[m] == 2 {
				h.fail("agent message %s reached the member twice", m)
			}
		}
	}
	for _, sid := range h.w.convOrder {
		keys := map[string]bool{}
		for _, m := range h.w.convs[sid].msgs {
			if m.key != "" && keys[m.key] {
				h.fail("member message %q posted twice in %s", m.body, sid)
			}
			keys[m.key] = true
		}
	}
}

// checkOrder: the member's messages reach Flex, and the agent's reach the member, in the order
// they were written.
func (h *harness) checkOrder() {
	last := 0
	for _, sid := range h.w.convOrder {
		for _, m := range h.w.convs[sid].msgs {
			if m.agent {
				continue
			}
			if t := memberToken.FindStringSubmatch(m.body); t != nil {
				n, _ := strconv.Atoi(t[1])
				if n < last {
					h.fail("member message m%03d reached Flex after m%03d", n, last)
				}
				last = max(last, n)
			}
		}
	}
	last = 0
	for _, d := range h.w.dms {
		for _, t := range agentToken.FindAllStringSubmatch(d.content, -1) {
			n, _ := strconv.Atoi(t[1])
			if n < last {
				h.fail("agent message a%03d reached the member after a%03d", n, last)
			}
			last = max(last, n)
		}
	}
}

// checkNothingLost: every member message ended up where support can read it, and every agent
// message of a chat the agent closed normally reached the member.
func (h *harness) checkNothingLost() {
	var sink strings.Builder
	for _, sid := range h.w.convOrder {
		for _, m := range h.w.convs[sid].msgs {
			sink.WriteString(m.body + "\n")
		}
	}
	for _, in := range h.w.creates {
		for _, l := range in.Transcript {
			sink.WriteString(l.Text + "\n")
		}
	}
	for _, q := range h.w.kbQueries {
		sink.WriteString(q + "\n")
	}
	for _, in := range h.w.caseInputs {
		sink.WriteString(in.Description + "\n")
	}
	for _, evs := range h.w.caseEvents {
		for _, ev := range evs {
			sink.WriteString(ev.Note + "\n")
		}
	}
	for _, l := range h.operatorSaw {
		sink.WriteString(l + "\n")
	}
	// A conversation that ended with the bot, without a case (solved, or the member went quiet),
	// owes nobody its words: its transcript, in the Temporal UI and history, is their record.
	for _, s := range h.statusLog {
		if s.st.Stage == StageClosed && s.st.CaseID == "" && (s.st.ClosedReason == ReasonSolved || s.st.ClosedReason == ReasonInactive) {
			for _, l := range s.st.Transcript {
				sink.WriteString(l.Text + "\n")
			}
		}
	}
	all := sink.String()
	tokens := make([]string, 0, len(h.accepted))
	for tok := range h.accepted {
		tokens = append(tokens, tok)
	}
	sort.Strings(tokens)
	for _, tok := range tokens {
		if !strings.Contains(all, tok) {
			h.fail("member message %s was lost: neither Flex, the knowledge base, the case nor an operator has it", tok)
		}
	}

	tried := strings.Join(h.w.dmAttempts, "\n")
	for sid, closed := range h.convClosedAt {
		if h.lost[sid] || len(h.opClosed) > 0 || closed.st.Flex == nil || closed.st.Flex.ConversationSID != sid {
			continue
		}
		// Only a chat that stayed the member's current one until it was closed and swept, with
		// the member's DMs open: messages to a member whose DMs are closed are held, recorded as
		// failed for an operator, until the member comes back.
		if h.episodeChanged(closed.run, closed.st.Episode, closed.at+2*time.Hour) || h.dmsClosedEver {
			continue
		}
		for _, wr := range h.agentWritten[sid] {
			if wr.at <= closed.at && wr.episode == closed.st.Episode && !strings.Contains(tried, wr.token) {
				h.fail("agent message %s in %s never reached the member", wr.token, sid)
			}
			if wr.file != "" && strings.Contains(tried, wr.token) && !strings.Contains(tried, wr.token+" from the agent [file:"+wr.file+"]") {
				h.fail("agent message %s reached the member without its file %s", wr.token, wr.file)
			}
		}
	}
}

// checkRecords: every case has one transcript in the blob store, its lines numbered without a
// gap or a double, and every member message the agent got is in its case's transcript.
func (h *harness) checkRecords() {
	for _, s := range h.statusLog {
		if s.st.TranscriptLost > 0 {
			return // the store failed through the end; the loss is logged and counted
		}
	}
	for _, in := range h.w.caseInputs {
		lines := h.w.records.transcript(in.CaseID)
		if len(lines) == 0 {
			h.fail("case %s has no transcript", in.CaseID)
			continue
		}
		for i := 1; i < len(lines); i++ {
			if lines[i].Seq != lines[i-1].Seq+1 {
				h.fail("transcript of %s jumps from line %d to %d", in.CaseID, lines[i-1].Seq, lines[i].Seq)
				break
			}
		}
		if u := h.w.records.users[in.CaseID]; u != testUser {
			h.fail("transcript of %s is kept for member %q", in.CaseID, u)
		}
	}
	for _, ch := range h.changes {
		found := false
		for _, e := range h.w.records.transcript(ch.caseID) {
			if e.Ref == ch.sig.MessageID && (e.Kind == "delete") == ch.sig.Deleted && e.Text == ch.sig.Text {
				found = true
			}
		}
		if !found {
			h.fail("%s of DM %s is not in the transcript of %s", ch.sig.EventID, ch.sig.MessageID, ch.caseID)
		}
	}
	for _, sid := range h.w.convOrder {
		conv := h.w.convs[sid]
		var text strings.Builder
		for _, e := range h.w.records.transcript(conv.caseID) {
			text.WriteString(e.Text + "\n")
		}
		for _, m := range conv.msgs {
			if tok := memberToken.FindString(m.body); !m.agent && tok != "" && !strings.Contains(text.String(), tok) {
				h.fail("member message %s reached the agent of %s but is not in the case's transcript", tok, conv.caseID)
			}
		}
	}
}

// checkMemberFiles: a member's file reaches Flex at most once, after its message's text, and a
// file over the cap never does; a member whose message went to the agent is told.
func (h *harness) checkMemberFiles() {
	posted := map[string]int{}
	toAgent := map[string]bool{} // member tokens whose text reached Flex
	for _, sid := range h.w.convOrder {
		textAt := map[string]int{}
		for _, m := range h.w.convs[sid].msgs {
			if tok := memberToken.FindString(m.body); !m.agent && tok != "" {
				if _, ok := textAt[tok]; !ok {
					textAt[tok] = m.index
				}
				toAgent[tok] = true
			}
			if m.file == "" || m.agent {
				continue
			}
			posted[m.file]++
			tok := "m" + strings.TrimSuffix(m.file[1:], ".png")
			if at, ok := textAt[tok]; ok && at > m.index {
				h.fail("file %s reached %s before the text of its message", m.file, sid)
			}
		}
	}
	tried := strings.Join(h.w.dmAttempts, "\n")
	for tok, f := range h.memberFiles {
		switch {
		case posted[f.name] > 1:
			h.fail("file %s of %s reached Flex %d times", f.name, tok, posted[f.name])
		case f.refused && posted[f.name] > 0:
			h.fail("file %s is over the cap and reached Flex", f.name)
		case f.refused && toAgent[tok] && !h.dmsClosedEver && !strings.Contains(tried, f.name):
			h.fail("the member was not told that %s was not passed on", f.name)
		}
	}
}

// recordLines counts the lines a record holds.
func recordLines(r RecordState) int {
	n := 0
	for _, ch := range r.Unsaved {
		n += len(ch.Entries)
	}
	return n
}

func (h *harness) episodeChanged(run, episode int, until time.Duration) bool {
	for _, s := range h.statusLog {
		if s.at <= until && (s.run != run || s.st.Episode != episode) && s.st.Stage != "" {
			return true
		}
	}
	return false
}

// checkClosedStaysClosed: an episode an operator closed is never seen open again.
func (h *harness) checkClosedStaysClosed() {
	for _, ep := range h.opClosed {
		closedSeen := false
		for _, s := range h.statusLog {
			if s.run != ep[0] || s.st.Episode != ep[1] {
				continue
			}
			if s.st.Stage == StageClosed {
				closedSeen = true
			} else if closedSeen {
				h.fail("conversation %d episode %d was closed by an operator and later seen in stage %s", ep[0], ep[1], s.st.Stage)
				return
			}
		}
	}
}
