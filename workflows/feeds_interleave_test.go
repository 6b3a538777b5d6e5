package workflows

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
)

// The randomized interleaving test of the Feed: for each seed, a script of items published,
// edited and removed at the source, polls (as Schedules and operators make them, overlapping),
// pushes, Discord outages, operator retries and reconfigurations at random times, against a feed
// server and a Discord whose calls take random time and fail at random (before or after they took
// effect), with continue-as-new every few events. The invariants: no item is posted twice; every
// item that appeared after the source was added is posted; posts from fetches keep publication
// order; a new source posts only its newest items; every poll is answered once; a failing source
// is recorded and recovers; the state stays bounded.
//
//	go test ./workflows -run TestFeedInterleavings -interleave.seeds=5000
//	go test ./workflows -run TestFeedInterleavings -interleave.seed=1234 -v

func TestFeedInterleavings(t *testing.T) {
	first, n := uint64(1), uint64(*interleaveSeeds)
	if *interleaveSeed != 0 {
		first, n = *interleaveSeed, 1
	} else if testing.Short() {
		n = min(n, 50)
	}
	for seed := first; seed < first+n; seed++ {
		h := newFeedHarness(t, seed)
		problems := h.run()
		if len(problems) > 0 {
			t.Fatalf("seed %d broke %d invariant(s):\n  %s\n\nscript:\n%s\nrun it alone: go test ./workflows -run TestFeedInterleavings -interleave.seed=%d -v",
				seed, len(problems), strings.Join(problems, "\n  "), h.describe(), seed)
		}
		if *interleaveSeed != 0 {
			t.Logf("seed %d passed:\n%s", seed, h.describe())
		}
	}
}

// feedItem is an item at the fake source.
type feedItem struct {
	key       string
	title     string
	published time.Time
	removed   bool
}

// feedWorld plays the feed server and Discord for one seed.
type feedWorld struct {
	mu    sync.Mutex
	seed  uint64
	calls map[string]int
	now   func() time.Time

	items   []*feedItem
	version int // the document's version: its ETag
	down    bool
	// snapshots are the documents the Feed got from successful fetches, in order.
	snapshots [][]string

	discordDownUntil time.Time
	posts            []postRecord
}

type postRecord struct {
	key   string // from the item's URL
	nonce string
	at    time.Time
}

func (w *feedWorld) roll(name string) float64 {
	w.calls[name]++
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%d|%s|%d", w.seed, name, w.calls[name])
	return float64(h.Sum64()%10000) / 10000
}

func (w *feedWorld) delay(name string) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.roll("delay:" + name)
	switch {
	case r < 0.4:
		return 0
	case r < 0.9:
		return time.Duration(r*10) * time.Second
	default:
		return time.Duration(r*60) * time.Second
	}
}

func (w *feedWorld) FetchFeed(ctx context.Context, in activities.FetchFeedInput) (activities.FetchFeedResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.roll("fetch")
	if w.down {
		return activities.FetchFeedResult{}, temporal.NewNonRetryableApplicationError("feed answered 404 Not Found", "FeedRejected", nil)
	}
	if r < 0.1 {
		return activities.FetchFeedResult{}, temporal.NewApplicationError("feed answered 503", "FeedUnavailable")
	}
	etag := fmt.Sprintf(`"v%d"`, w.version)
	if in.ETag == etag {
		w.snapshots = append(w.snapshots, w.visibleKeys())
		return activities.FetchFeedResult{NotModified: true, ETag: etag, Status: 304}, nil
	}
	res := activities.FetchFeedResult{ETag: etag, Title: "Blog", Status: 200}
	for _, it := range w.items {
		if it.removed {
			continue
		}
		res.Items = append(res.Items, activities.FeedItem{
			Key: it.key, Title: it.title, URL: "https://blog.example/" + it.key, Summary: "text of " + it.key, Published: it.published,
		})
	}
	w.snapshots = append(w.snapshots, w.visibleKeys())
	return res, nil
}

func (w *feedWorld) visibleKeys() []string {
	var keys []string
	for _, it := range w.items {
		if !it.removed {
			keys = append(keys, it.key)
		}
	}
	return keys
}

func (w *feedWorld) PostAnnouncement(ctx context.Context, in activities.PostAnnouncementInput) (activities.PostAnnouncementResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now, r := w.now(), w.roll("post")
	// Discord's enforce_nonce returns the first message for a few minutes; after that only the
	// activity's own look-up, made on a retry, finds it.
	for i, p := range w.posts {
		if p.nonce != in.Nonce {
			continue
		}
		retry := activity.GetInfo(ctx).Attempt > 1 || in.PriorAttempts > 0
		if now.Sub(p.at) < 2*time.Minute || (retry && !in.FirstTriedAt.IsZero()) {
			return activities.PostAnnouncementResult{MessageID: fmt.Sprint(i + 1), Recovered: true}, nil
		}
	}
	if now.Before(w.discordDownUntil) || r < 0.08 {
		return activities.PostAnnouncementResult{}, temporal.NewApplicationError("discord answered 503", "DiscordUnavailable")
	}
	w.posts = append(w.posts, postRecord{key: strings.TrimPrefix(in.URL, "https://blog.example/"), nonce: in.Nonce, at: now})
	if r > 0.95 {
		return activities.PostAnnouncementResult{}, temporal.NewApplicationError("discord: connection reset after sending", "DiscordUnavailable")
	}
	return activities.PostAnnouncementResult{MessageID: fmt.Sprint(len(w.posts))}, nil
}

type feedStep struct {
	at    time.Duration
	name  string
	do    func(h *feedHarness)
	fired bool
}

type feedHarness struct {
	// mu guards lines, polls and problems: answers are signalled from other goroutines.
	mu    sync.Mutex
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	w     *feedWorld
	env   *testsuite.TestWorkflowEnvironment
	start time.Time
	steps []*feedStep
	lines []string
	cfg   FeedConfig
	can   int

	nextItem  int
	polls     map[string]int // request id → answers
	pushed    map[string]bool
	removed   bool
	problems  []string
	lastState *FeedState
	status    FeedStatus
	before    FeedStatus
	// signalled is every signal sent to the current run, with when (see harness.lateSignals).
	signalled []sentSignal
}

func newFeedHarness(t *testing.T, seed uint64) *feedHarness {
	h := &feedHarness{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0xfeed)),
		w:     &feedWorld{seed: seed, calls: map[string]int{}},
		start: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		polls: map[string]int{}, pushed: map[string]bool{},
	}
	backfill := h.rng.IntN(3)
	h.cfg = FeedConfig{Name: "blog", URL: "https://blog.example/feed.xml", ChannelID: "1100000000000000014", Backfill: &backfill, MaxPerRun: 100}
	if h.rng.IntN(10) < 7 {
		h.can = 3 + h.rng.IntN(8)
	}
	// The archive the source has when it is added.
	for range h.rng.IntN(6) {
		h.publish()
	}
	h.generate()
	return h
}

func (h *feedHarness) generate() {
	kinds := []struct {
		name   string
		weight int
		do     func(h *feedHarness)
	}{
		{"publish an item", 20, (*feedHarness).publish},
		{"publish two items at once", 4, func(h *feedHarness) { h.publish(); h.publish() }},
		{"edit an item", 5, (*feedHarness).edit},
		{"remove an item", 3, (*feedHarness).remove},
		{"poll (schedule)", 25, func(h *feedHarness) { h.poll("schedule") }},
		{"two polls at once (overlap)", 5, func(h *feedHarness) { h.poll("schedule"); h.poll("operator") }},
		{"push the newest item", 5, (*feedHarness).pushNewest},
		{"push a new item", 3, (*feedHarness).pushNew},
		{"the source fails for a while", 3, (*feedHarness).sourceDown},
		{"Discord is down for a while", 3, (*feedHarness).discordDown},
		{"operator retries failed posts", 4, (*feedHarness).retry},
		{"operator reconfigures", 2, (*feedHarness).reconfigure},
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	at := time.Duration(0)
	for i, n := 0, 15+h.rng.IntN(30); i < n; i++ {
		switch r := h.rng.IntN(100); {
		case r < 60:
			at += time.Duration(1+h.rng.IntN(30)) * time.Second
		case r < 90:
			at += time.Duration(1+h.rng.IntN(10)) * time.Minute
		default:
			at += time.Duration(1+h.rng.IntN(5)) * time.Hour
		}
		pick := h.rng.IntN(total)
		for _, k := range kinds {
			if pick < k.weight {
				h.steps = append(h.steps, &feedStep{at: at, name: k.name, do: k.do})
				break
			}
			pick -= k.weight
		}
	}
	// The end: every outage is over, failed posts are retried, a last poll sees everything.
	end := at + 2*time.Hour
	h.steps = append(h.steps,
		&feedStep{at: end, name: "the source and Discord are back", do: func(h *feedHarness) {
			h.w.mu.Lock()
			h.w.down, h.w.discordDownUntil = false, time.Time{}
			h.w.mu.Unlock()
		}},
		&feedStep{at: end + time.Minute, name: "operator retries failed posts", do: (*feedHarness).retry},
		&feedStep{at: end + 2*time.Minute, name: "last poll", do: func(h *feedHarness) { h.poll("schedule") }},
		&feedStep{at: end + 3*time.Hour, name: "operator retries failed posts", do: (*feedHarness).retry},
		&feedStep{at: end + 4*time.Hour, name: "last poll again", do: func(h *feedHarness) { h.poll("schedule") }},
		&feedStep{at: end + 7*time.Hour, name: "operator reads the status", do: (*feedHarness).readStatus},
		&feedStep{at: end + 8*time.Hour, name: "operator removes the source", do: (*feedHarness).removeSource},
	)
}

func (h *feedHarness) now() time.Duration { return h.env.Now().Sub(h.start) }

func (h *feedHarness) logf(format string, args ...any) {
	at := time.Duration(0)
	if h.env != nil {
		at = h.now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, fmt.Sprintf("  %9s  %s", at.Round(time.Second), fmt.Sprintf(format, args...)))
}

// lineNo numbers script events.
func (h *feedHarness) lineNo() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines)
}

func (h *feedHarness) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  options: backfill %d, continue-as-new after %d events (0: default)\n", *h.cfg.Backfill, h.can)
	for _, l := range h.lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

func (h *feedHarness) publish() {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.nextItem++
	// Publication times only grow: the newest item is the last published.
	at := h.start.Add(-24 * time.Hour).Add(time.Duration(h.nextItem) * time.Minute)
	if h.env != nil {
		at = h.env.Now()
	}
	it := &feedItem{key: fmt.Sprintf("item%d", h.nextItem), title: fmt.Sprintf("Post %d", h.nextItem), published: at}
	h.w.items = append(h.w.items, it)
	h.w.version++
	if h.env != nil {
		h.logf("the source publishes %s", it.key)
	} else {
		h.lines = append(h.lines, fmt.Sprintf("  %9s  the archive has %s", "-", it.key))
	}
}

func (h *feedHarness) edit() {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if len(h.w.items) == 0 {
		return
	}
	it := h.w.items[h.rng.IntN(len(h.w.items))]
	it.title += " (edited)"
	h.w.version++
	h.logf("the source edits %s", it.key)
}

func (h *feedHarness) remove() {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if len(h.w.items) == 0 {
		return
	}
	it := h.w.items[h.rng.IntN(len(h.w.items))]
	it.removed = true
	h.w.version++
	h.logf("the source removes %s", it.key)
}

func (h *feedHarness) poll(reason string) {
	id := fmt.Sprintf("poll%d", h.lineNo())
	h.mu.Lock()
	h.polls[id] = 0
	h.mu.Unlock()
	h.logf("%s asks for a fetch (%s)", reason, id)
	h.signal(SignalFeedPoll, FeedPollSignal{RequestID: id, ReplyTo: "announcements:blog-" + id, Reason: reason})
}

func (h *feedHarness) pushItems(items []activities.FeedItem, what string) {
	id := fmt.Sprintf("push%d", h.lineNo())
	for _, it := range items {
		h.pushed[it.Key] = true
	}
	h.logf("a push of %s (%s)", what, id)
	h.signal(SignalFeedPush, FeedPushSignal{EventID: id, Items: items})
	if h.rng.IntN(4) == 0 {
		h.logf("the same push again (%s)", id)
		h.signal(SignalFeedPush, FeedPushSignal{EventID: id, Items: items})
	}
}

func (h *feedHarness) signal(name string, arg any) {
	h.signalled = append(h.signalled, sentSignal{h.now(), name, arg})
	h.env.SignalWorkflow(name, arg)
}

// lateSignals returns the signals sent at the instant the run continued as new: the test
// environment may drop them, a server would not (see harness.lateSignals). The feed ignores
// the ones the old run did take by their request or event id.
func (h *feedHarness) lateSignals() []sentSignal {
	var late []sentSignal
	for _, sg := range h.signalled {
		if sg.at == h.now() {
			late = append(late, sg)
		}
	}
	return late
}

func (h *feedHarness) asFeedItem(it *feedItem) activities.FeedItem {
	return activities.FeedItem{Key: it.key, Title: it.title, URL: "https://blog.example/" + it.key, Published: it.published}
}

func (h *feedHarness) pushNewest() {
	h.w.mu.Lock()
	var items []activities.FeedItem
	// A CMS pushes what it publishes now, not its archive.
	if n := len(h.w.items); n > 0 && !h.w.items[n-1].published.Before(h.start) {
		items = append(items, h.asFeedItem(h.w.items[n-1]))
	}
	h.w.mu.Unlock()
	if len(items) > 0 {
		h.pushItems(items, items[0].Key)
	}
}

func (h *feedHarness) pushNew() {
	// A CMS pushes an item as it publishes it; the feed shows it too.
	h.publish()
	h.pushNewest()
}

func (h *feedHarness) sourceDown() {
	d := time.Duration(1+h.rng.IntN(90)) * time.Minute
	h.w.mu.Lock()
	h.w.down = true
	h.w.mu.Unlock()
	h.logf("the source answers 404 for %v", d)
	h.env.RegisterDelayedCallback(func() {
		h.w.mu.Lock()
		h.w.down = false
		h.w.mu.Unlock()
		h.logf("the source is back")
	}, d)
}

func (h *feedHarness) discordDown() {
	d := time.Duration(1+h.rng.IntN(60)) * time.Minute
	h.w.mu.Lock()
	h.w.discordDownUntil = h.env.Now().Add(d)
	h.w.mu.Unlock()
	h.logf("Discord answers 503 for %v", d)
}

func (h *feedHarness) retry() {
	h.logf("operator retries failed posts")
	h.env.UpdateWorkflow(UpdateRetryDeliveries, fmt.Sprintf("retry%d", h.lineNo()), &testsuite.TestUpdateCallback{
		OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {},
	}, RetryDeliveriesRequest{Operator: "ops"})
}

func (h *feedHarness) reconfigure() {
	cfg := h.cfg
	cfg.Title = fmt.Sprintf("Blog %d", h.lineNo())
	cfg.Every = time.Duration(1+h.rng.IntN(30)) * time.Minute
	h.cfg = cfg
	h.logf("operator reconfigures (every %v)", cfg.Every)
	h.env.UpdateWorkflow(UpdateConfigureFeed, fmt.Sprintf("configure%d", h.lineNo()), &testsuite.TestUpdateCallback{
		OnAccept: func() {}, OnReject: func(err error) { h.fail("a valid configuration was rejected: %v", err) }, OnComplete: func(any, error) {},
	}, cfg)
}

func (h *feedHarness) readStatus() {
	v, err := h.env.QueryWorkflow(QueryStatus)
	if err != nil {
		h.fail("status query: %v", err)
		return
	}
	if err := v.Get(&h.before); err != nil {
		h.fail("status: %v", err)
	}
	h.logf("status: %d failures in a row, %d failed posts, %d queued", h.before.Failures, len(h.before.Failed), len(h.before.Pending))
}

func (h *feedHarness) removeSource() {
	h.logf("operator removes the source")
	h.removed = true
	h.env.UpdateWorkflow(UpdateRemoveFeed, "remove", &testsuite.TestUpdateCallback{
		OnAccept: func() {}, OnReject: func(err error) { h.fail("remove was rejected: %v", err) }, OnComplete: func(any, error) {},
	}, RemoveFeedRequest{Operator: "ops"})
}

func (h *feedHarness) fail(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.problems = append(h.problems, fmt.Sprintf(format, args...))
}

func (h *feedHarness) schedule(s *feedStep) {
	d := max(s.at-h.now(), time.Millisecond)
	h.env.RegisterDelayedCallback(func() {
		if !s.fired {
			s.fired = true
			s.do(h)
		}
	}, d)
}

func (h *feedHarness) newEnv(at time.Time) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger())
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(at)
	env.SetTestTimeout(10 * time.Second)
	env.RegisterWorkflow(Feed)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: FeedWorkflowID("blog"), TaskQueue: TaskQueue})
	w := h.w
	w.now = env.Now
	env.RegisterActivityWithOptions(w.FetchFeed, activity.RegisterOptions{Name: "FetchFeed"})
	env.RegisterActivityWithOptions(w.PostAnnouncement, activity.RegisterOptions{Name: "PostAnnouncement"})
	env.OnActivity("FetchFeed", mock.Anything, mock.Anything).Return(w.FetchFeed).AfterFn(func() time.Duration { return w.delay("fetch") })
	env.OnActivity("PostAnnouncement", mock.Anything, mock.Anything).Return(w.PostAnnouncement).AfterFn(func() time.Duration { return w.delay("post") })
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, SignalFeedPollDone, mock.Anything).Return(
		func(namespace, workflowID, runID, signalName string, arg any) error {
			done, ok := arg.(FeedPollDoneSignal)
			if !ok {
				h.fail("answer of the wrong type %T", arg)
				return nil
			}
			h.mu.Lock()
			_, asked := h.polls[done.RequestID]
			h.polls[done.RequestID]++
			h.mu.Unlock()
			if !asked {
				h.fail("an answer to %s, which nobody asked", done.RequestID)
			}
			if want := "announcements:blog-" + done.RequestID; workflowID != want {
				h.fail("the answer to %s went to %s", done.RequestID, workflowID)
			}
			h.logf("answer to %s: %s", done.RequestID, describeRun(done.Result))
			return nil
		})
	return env
}

func (h *feedHarness) run() []string {
	input := FeedInput{Config: h.cfg, ContinueAsNewAfter: h.can,
		Delivery: DeliveryPolicy{MaxAttempts: 4, InitialInterval: time.Second, Timeout: 30 * time.Second}}
	at := h.start
	runs := 0
	for {
		if runs++; runs > 300 {
			return []string{"more than 300 continue-as-new runs"}
		}
		var late []sentSignal
		if h.env != nil {
			late = h.lateSignals()
		}
		h.env, h.signalled = h.newEnv(at), nil
		for _, s := range h.steps {
			if !s.fired {
				h.schedule(s)
			}
		}
		for _, sg := range late {
			h.env.RegisterDelayedCallback(func() { h.signal(sg.name, sg.arg) }, time.Millisecond)
		}
		h.env.ExecuteWorkflow(Feed, input)
		err := h.env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			var next FeedInput
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				return []string{"decode continue-as-new input: " + err.Error()}
			}
			h.checkBounded(next.State)
			h.lastState = next.State
			h.logf("— continued as new (run %d)", runs+1)
			input, at = next, h.env.Now()
			continue
		}
		if err != nil {
			return append(h.problems, "the workflow failed: "+err.Error())
		}
		if !h.env.IsWorkflowCompleted() {
			return append(h.problems, "the workflow did not end")
		}
		if err := h.env.GetWorkflowResult(&h.status); err != nil {
			return append(h.problems, "result: "+err.Error())
		}
		break
	}
	h.logf("— ended")
	h.check()
	return h.problems
}

func (h *feedHarness) checkBounded(s *FeedState) {
	if s == nil {
		h.fail("continue-as-new carried no state")
		return
	}
	if len(s.Known) > feedKnownMax+h.nextItem {
		h.fail("the Feed remembers %d keys", len(s.Known))
	}
	if len(s.Seen.IDs) > 256 {
		h.fail("the seen set holds %d ids", len(s.Seen.IDs))
	}
}

func (h *feedHarness) check() {
	w := h.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if !h.removed {
		h.fail("the script did not remove the source")
	}
	// No item is posted twice.
	count := map[string]int{}
	var order []string
	for _, p := range w.posts {
		count[p.key]++
		if count[p.key] == 2 {
			h.fail("%s was posted twice", p.key)
		}
		if count[p.key] == 1 {
			order = append(order, p.key)
		}
	}
	// The first successful fetch is the source's archive: only its newest Backfill items are
	// posted (unless they were pushed). Every item a later fetch saw for the first time is posted.
	if len(w.snapshots) == 0 {
		h.fail("no fetch ever worked")
		return
	}
	// The archive: what the first fetch saw that was published before the source was added.
	published := map[string]time.Time{}
	for _, it := range w.items {
		published[it.key] = it.published
	}
	archive := map[string]bool{}
	var archiveKeys []string
	for _, k := range w.snapshots[0] {
		if published[k].Before(h.start) {
			archive[k] = true
			archiveKeys = append(archiveKeys, k)
		}
	}
	backfill := *h.cfg.Backfill
	archivePosted := 0
	for _, k := range archiveKeys {
		if count[k] > 0 && !h.pushed[k] {
			archivePosted++
		}
	}
	if archivePosted > backfill {
		h.fail("the first fetch posted %d items of the archive; backfill is %d", archivePosted, backfill)
	}
	newestArchive := archiveKeys
	if len(newestArchive) > backfill {
		newestArchive = newestArchive[len(newestArchive)-backfill:]
	}
	for _, k := range newestArchive {
		if count[k] == 0 {
			h.fail("%s, among the newest %d of the archive, was not posted", k, backfill)
		}
	}
	seenLater := map[string]bool{}
	for _, snap := range w.snapshots {
		for _, k := range snap {
			if !archive[k] {
				seenLater[k] = true
			}
		}
	}
	for k := range seenLater {
		if count[k] == 0 {
			h.fail("%s appeared in the feed after the source was added but was never posted", k)
		}
	}
	for k := range h.pushed {
		if count[k] == 0 {
			h.fail("%s was pushed but never posted", k)
		}
	}
	// Posts that came from fetches keep publication order (pushed items may come first).
	var fetched []string
	for _, k := range order {
		if !h.pushed[k] {
			fetched = append(fetched, k)
		}
	}
	pubIndex := func(k string) int {
		var n int
		_, _ = fmt.Sscanf(k, "item%d", &n)
		return n
	}
	if !slices.IsSortedFunc(fetched, func(a, b string) int { return pubIndex(a) - pubIndex(b) }) {
		h.fail("fetched items were posted out of publication order: %v", fetched)
	}
	// Every poll is answered exactly once.
	for id, n := range h.polls {
		if n != 1 {
			h.fail("poll %s was answered %d times", id, n)
		}
	}
	// A failing source recovers: the last fetch worked, so nothing counts as failing.
	if h.before.Failures != 0 {
		h.fail("the source still counts %d failures after a fetch that worked", h.before.Failures)
	}
	if len(h.before.Failed) != 0 || len(h.before.Pending) != 0 {
		h.fail("%d posts are still failed and %d queued after the retry", len(h.before.Failed), len(h.before.Pending))
	}
	if !h.status.Removed {
		h.fail("the Feed ended without being removed")
	}
}
