package ingress

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"

	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/workflows"
)

func TestBackfillReadsFromTheGapStart(t *testing.T) {
	gap := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	atGap := snowflakeAt(gap.Add(-backfillGapMargin))
	beforeGap := snowflakeAt(gap.Add(-time.Hour))
	afterGap := snowflakeAt(gap.Add(time.Minute)) // a live DM that came after the gap
	for _, tt := range []struct {
		name, last string
		gap        time.Time
		want       string
	}{
		{"no gap known: the newest message taken", afterGap, time.Time{}, afterGap},
		{"a live DM moved past the gap: read from the gap", afterGap, gap, atGap},
		{"the newest message taken is older than the gap", beforeGap, gap, beforeGap},
	} {
		if got := backfillFrom(tt.last, tt.gap); got != tt.want {
			t.Errorf("%s: backfillFrom = %s, want %s", tt.name, got, tt.want)
		}
	}
	if compareSnowflakes(snowflakeAt(gap), snowflakeAt(gap.Add(time.Millisecond))) >= 0 {
		t.Error("snowflakes do not follow time")
	}
}

// laneTest runs the lanes of a backfilling gateway with delivery recorded, on a clock the test
// moves, and lets the test wait until a lane is idle.
type laneTest struct {
	t         *testing.T
	g         *gateway
	clock     *fakeClock
	delivered chan dm

	mu      sync.Mutex
	seq     int         // idle observations so far
	idle    map[int]int // lane → DMs it held when it last went idle
	idleSeq map[int]int // lane → seq of that observation
	wake    chan struct{}
}

func newLaneTest(t *testing.T) *laneTest {
	lt := &laneTest{
		t: t, clock: &fakeClock{now: time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)},
		delivered: make(chan dm, 4*gatewayLaneBuffer),
		idle:      map[int]int{}, idleSeq: map[int]int{}, wake: make(chan struct{}, 1),
	}
	g := newGateway(&discordHandler{log: slog.New(slog.DiscardHandler)}, &discordgo.Session{}, true)
	g.now, g.after = lt.clock.Now, lt.clock.After
	g.deliver = func(_ context.Context, d dm) { lt.delivered <- d }
	g.observe = func(lane, waiting int) {
		lt.mu.Lock()
		lt.seq++
		lt.idle[lane], lt.idleSeq[lane] = waiting, lt.seq
		lt.mu.Unlock()
		select {
		case lt.wake <- struct{}{}:
		default:
		}
	}
	lt.g = g
	ctx, cancel := context.WithCancel(context.Background())
	g.startLanes(ctx)
	t.Cleanup(func() {
		cancel()
		g.wg.Wait()
	})
	return lt
}

// mark is taken before an action whose effect settle then waits for.
func (lt *laneTest) mark() int {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.seq
}

// settle waits until lane has gone idle after mark holding waiting DMs, and returns the ids
// delivered since the last settle, in order.
func (lt *laneTest) settle(mark, lane, waiting int) []string {
	lt.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		lt.mu.Lock()
		done := lt.idleSeq[lane] > mark && lt.idle[lane] == waiting
		got := lt.idle[lane]
		lt.mu.Unlock()
		if done {
			break
		}
		select {
		case <-lt.wake:
		case <-timeout:
			ids := lt.drain()
			if len(ids) > 10 {
				ids = append(ids[:10], "…")
			}
			lt.t.Fatalf("lane %d did not go idle holding %d DMs (it holds %d); delivered: %v", lane, waiting, got, ids)
		}
	}
	return lt.drain()
}

func (lt *laneTest) drain() []string {
	var ids []string
	for {
		select {
		case d := <-lt.delivered:
			ids = append(ids, d.msg.ID)
		default:
			return ids
		}
	}
}

func (lt *laneTest) expect(what string, got []string, want ...string) {
	lt.t.Helper()
	if !slices.Equal(got, want) {
		lt.t.Fatalf("%s: delivered %v, want %v", what, got, want)
	}
}

// live and backfilled queue a DM as the gateway and the backfill do.
func (lt *laneTest) live(member, id string) {
	lt.t.Helper()
	if !lt.g.enqueue(context.Background(), testDM(member, id), false) {
		lt.t.Fatalf("DM %s not queued", id)
	}
}

func (lt *laneTest) backfilled(member, id string) {
	lt.t.Helper()
	if !lt.g.enqueue(context.Background(), testDM(member, id), true) {
		lt.t.Fatalf("DM %s not queued", id)
	}
}

// poke wakes the lanes holding DMs without changing what is held.
func (lt *laneTest) poke() {
	lt.g.holds.mu.Lock()
	lt.g.holds.notifyLocked()
	lt.g.holds.mu.Unlock()
}

func testDM(member, id string) *discordgo.Message {
	return &discordgo.Message{ID: id, ChannelID: "dm-" + member, Content: "message " + id, Author: &discordgo.User{ID: member}}
}

// sameLane returns n member ids whose DMs share a lane, and the lane.
func sameLane(n int) ([]string, int) {
	byLane := map[int][]string{}
	for i := 1; ; i++ {
		id := strconv.Itoa(3000000000000000000 + i)
		l := laneOf(id)
		if byLane[l] = append(byLane[l], id); len(byLane[l]) == n {
			return byLane[l], l
		}
	}
}

// fakeClock is a clock whose time moves only when the test says so.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
	} else {
		c.timers = append(c.timers, t)
	}
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		t.stopped = true
		return true
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.stopped {
			return true
		}
		if !t.at.After(c.now) {
			t.c <- c.now
			return true
		}
		return false
	})
}

// TestLiveDMsReleasedPerMember: after a gap, each member's live DMs wait for the backfill of
// that member's conversation only: they go, after the older DMs the backfill found, as soon as
// it has queued them, or at once for a member without an open conversation, while the pass
// goes on over the others and other members of the same lane stay held. A new gap during the
// pass holds again the members it had released; a member whose conversation cannot be read
// waits backfillHold at most.
func TestLiveDMsReleasedPerMember(t *testing.T) {
	lt := newLaneTest(t)
	members, lane := sameLane(3)
	alice, bob, carol := members[0], members[1], members[2] // carol has no open conversation

	// A gap: from now on, live DMs wait for the backfill.
	lt.g.requestBackfill(time.Time{})
	gen, _ := lt.g.holds.beginPass()
	mark := lt.mark()
	lt.live(bob, "201")
	lt.live(alice, "202")
	lt.live(carol, "203")
	lt.live(alice, "204")
	lt.expect("while nothing is read", lt.settle(mark, lane, 4))

	// The pass has listed the open conversations: carol has none, so nothing to wait for.
	mark = lt.mark()
	lt.g.holds.listed(gen, []string{alice, bob})
	lt.expect("once the list is known", lt.settle(mark, lane, 3), "203")

	// The pass has read alice's conversation and queued the DM the gap hid: alice's DMs go, in
	// the order she wrote them, while bob, on the same lane, is still held and the pass goes on.
	mark = lt.mark()
	lt.backfilled(alice, "200")
	lt.g.holds.release(gen, alice)
	lt.expect("once alice's backfill is queued", lt.settle(mark, lane, 1), "200", "202", "204")

	// Another gap while the pass runs: alice, released by it, waits again (the gap may have hid
	// newer DMs of hers), and so does carol (the next pass lists again). A read of bob's that
	// began before the gap does not release him.
	lt.g.requestBackfill(time.Time{})
	lt.g.holds.release(gen, bob)
	mark = lt.mark()
	lt.live(alice, "205")
	lt.live(carol, "206")
	lt.expect("after a new gap", lt.settle(mark, lane, 3))

	// The first pass ends: the DM that came before the second gap goes (the pass read every
	// conversation after it came); those after the gap wait for the next pass.
	mark = lt.mark()
	lt.g.holds.finish(gen)
	lt.expect("when the first pass ends", lt.settle(mark, lane, 2), "201")
	next, _ := lt.g.holds.beginPass()
	mark = lt.mark()
	lt.g.holds.listed(next, []string{alice, bob})
	lt.expect("once the next pass has listed", lt.settle(mark, lane, 1), "206")
	mark = lt.mark()
	lt.g.holds.release(next, alice)
	lt.expect("once the next pass has read alice's", lt.settle(mark, lane, 0), "205")

	// Bob's conversation cannot be read: his DM waits backfillHold, and then goes.
	mark = lt.mark()
	lt.live(bob, "207")
	lt.expect("bob's while it cannot be read", lt.settle(mark, lane, 1))
	lt.clock.Advance(backfillHold - time.Millisecond)
	mark = lt.mark()
	lt.poke()
	lt.expect("bob's just before the deadline", lt.settle(mark, lane, 1))
	mark = lt.mark()
	lt.clock.Advance(time.Millisecond)
	lt.expect("bob's at the deadline", lt.settle(mark, lane, 0), "207")

	// The pass ends: DMs go at once again.
	lt.g.holds.finish(next)
	mark = lt.mark()
	lt.live(bob, "208")
	lt.expect("after the pass", lt.settle(mark, lane, 0), "208")

	// A DM read again by a backfill is not signalled again.
	lt.backfilled(bob, "207")
	lt.backfilled(bob, "208")
	lt.backfilled(bob, "209")
	select {
	case d := <-lt.delivered:
		if d.msg.ID != "209" {
			t.Fatalf("delivered %s again", d.msg.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new backfilled DM was not delivered")
	}
}

// TestBackfillNotBlockedByHeldLane: the backfill queues more DMs than a lane's buffer on a lane
// that holds a live DM; the lane takes them in (and delivers those older than the held DM)
// rather than leaving the backfill waiting until the hold times out.
func TestBackfillNotBlockedByHeldLane(t *testing.T) {
	lt := newLaneTest(t)
	members, lane := sameLane(2)
	alice, bob := members[0], members[1]
	lt.g.requestBackfill(time.Time{})
	gen, _ := lt.g.holds.beginPass()
	lt.g.holds.listed(gen, members)
	mark := lt.mark()
	lt.live(alice, "9000")
	lt.live(bob, "9001")
	lt.expect("before the backfill", lt.settle(mark, lane, 2))

	queued := make(chan struct{})
	var want []string
	for n := range 3 * gatewayLaneBuffer {
		want = append(want, strconv.Itoa(5000+n))
	}
	go func() {
		defer close(queued)
		for _, id := range want {
			lt.g.enqueue(context.Background(), testDM(alice, id), true)
		}
	}()
	select {
	case <-queued:
	case <-time.After(10 * time.Second):
		t.Fatal("the backfill is stuck behind the held lane")
	}
	mark = lt.mark()
	lt.g.holds.release(gen, alice)
	lt.expect("alice's", lt.settle(mark, lane, 1), append(want, "9000")...)
}

// TestBackfillReadsHeldMembersFirst: the pass reads the conversations of members whose live DMs
// are held before the others.
func TestBackfillReadsHeldMembersFirst(t *testing.T) {
	lt := newLaneTest(t)
	lt.g.requestBackfill(time.Time{})
	mark := lt.mark()
	lt.live("3000000000000000077", "100")
	lt.settle(mark, laneOf("3000000000000000077"), 1)
	ids := []string{"3000000000000000001", "3000000000000000002", "3000000000000000077", "3000000000000000003"}
	gen, _ := lt.g.holds.beginPass()
	lt.g.holds.listed(gen, ids)
	q := newPassQueue(ids)
	var order []string
	for {
		id, ok := q.take(func() (string, bool) {
			m, more := lt.g.holds.nextWanted(q.has)
			return m.id, more == nil
		})
		if !ok {
			break
		}
		order = append(order, id)
	}
	if want := []string{"3000000000000000077", "3000000000000000001", "3000000000000000002", "3000000000000000003"}; !slices.Equal(order, want) {
		t.Errorf("read in the order %v, want %v", order, want)
	}
}

// passTest runs the real backfill pass of a gateway, reading from the Discord emulator, over
// the open conversations of alice and bob. Alice's conversation answers its status query; bob's
// query hangs until bobAnswers is closed.
type passTest struct {
	t                    *testing.T
	emu                  *discordemu.Server
	g                    *gateway
	delivered            chan dm
	bobAsked, bobAnswers chan struct{}
}

const passAlice, passBob = "2000000000000000011", "2000000000000000012"

func newPassTest(t *testing.T) (pt *passTest, takenA, takenB *discordgo.Message) {
	pt = &passTest{t: t, delivered: make(chan dm, 20), bobAsked: make(chan struct{}), bobAnswers: make(chan struct{})}
	pt.emu = discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{{ID: passAlice, Username: "alice"}, {ID: passBob, Username: "bob"}}})
	takenA, takenB = pt.send(passAlice, "taken"), pt.send(passBob, "taken")

	tc := &mocks.Client{}
	tc.On("ListWorkflow", mock.Anything, mock.Anything).Return(&workflowservice.ListWorkflowExecutionsResponse{
		Executions: []*workflowpb.WorkflowExecutionInfo{
			{Execution: &commonpb.WorkflowExecution{WorkflowId: workflows.ConversationWorkflowID(passBob)}},
			{Execution: &commonpb.WorkflowExecution{WorkflowId: workflows.ConversationWorkflowID(passAlice)}},
		},
	}, nil)
	status := func(member, last string) converter.EncodedValue {
		return testStatus{workflows.ConversationStatus{Stage: workflows.StageLive, DMChannelID: pt.dmOf(member), LastMessageID: last}}
	}
	tc.On("QueryWorkflow", mock.Anything, workflows.ConversationWorkflowID(passAlice), "", workflows.QueryStatus).Return(status(passAlice, takenA.ID), nil)
	tc.On("QueryWorkflow", mock.Anything, workflows.ConversationWorkflowID(passBob), "", workflows.QueryStatus).
		Run(func(args mock.Arguments) {
			close(pt.bobAsked)
			select {
			case <-pt.bobAnswers:
			case <-args.Get(0).(context.Context).Done():
			}
		}).Return(status(passBob, takenB.ID), nil)

	sess, err := discordsession.New(pt.emu.Token(), pt.emu.Transport())
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Temporal: tc, Log: slog.New(slog.DiscardHandler)})
	pt.g = newGateway(newDiscordHandler(srv, DiscordConfig{Session: sess}), sess, true)
	pt.g.deliver = func(_ context.Context, d dm) { pt.delivered <- d }
	ctx, cancel := context.WithCancel(context.Background())
	pt.g.startLanes(ctx)
	t.Cleanup(func() {
		cancel()
		pt.g.wg.Wait()
	})
	return pt, takenA, takenB
}

func (pt *passTest) dmOf(member string) string {
	ch, err := pt.emu.DMChannel(member)
	if err != nil {
		pt.t.Fatal(err)
	}
	return ch
}

func (pt *passTest) send(member, text string) *discordgo.Message {
	rec, err := pt.emu.SendDM(member, text)
	if err != nil {
		pt.t.Fatal(err)
	}
	return &discordgo.Message{ID: rec.Message.ID, ChannelID: pt.dmOf(member), Content: text, Author: &discordgo.User{ID: member}}
}

// gap requests a backfill for a gap that began at gapStart, then each member writes live; then
// the pass starts.
func (pt *passTest) gap(gapStart time.Time) (liveA, liveB *discordgo.Message) {
	pt.g.requestBackfill(gapStart)
	liveA, liveB = pt.send(passAlice, "after the gap"), pt.send(passBob, "after the gap")
	pt.g.enqueue(context.Background(), liveA, false)
	pt.g.enqueue(context.Background(), liveB, false)
	ctx, cancel := context.WithCancel(context.Background())
	pt.g.wg.Go(func() { pt.g.runBackfills(ctx) })
	pt.t.Cleanup(cancel)
	return liveA, liveB
}

// next returns the next DM delivered.
func (pt *passTest) next(what string) dm {
	pt.t.Helper()
	select {
	case d := <-pt.delivered:
		return d
	case <-time.After(10 * time.Second):
		pt.t.Fatalf("%s not delivered", what)
		return dm{}
	}
}

// nothingMore fails if a DM has been delivered.
func (pt *passTest) nothingMore(while string) {
	pt.t.Helper()
	select {
	case d := <-pt.delivered:
		pt.t.Fatalf("%s delivered %s", while, d.msg.ID)
	default:
	}
}

// TestBackfillReleasesEachMemberWhenRead: with the real pass, a member's held live DM goes,
// after the DM the gap hid, as soon as the pass has read that member's conversation, while the
// pass still waits on another member's conversation.
func TestBackfillReleasesEachMemberWhenRead(t *testing.T) {
	pt, _, _ := newPassTest(t)
	hidden := pt.send(passAlice, "lost in the gap")
	liveA, liveB := pt.gap(time.Time{}) // the gap's start is not known: the conversation tells where to read from

	// Alice's conversation is read (the backfill finds the DM the gap hid, and her live one
	// again, which is not signalled twice): her DMs go, in order, while the pass waits on bob's.
	<-pt.bobAsked
	got := []string{}
	for range 2 {
		got = append(got, pt.next("alice's DMs").msg.ID)
	}
	if want := []string{hidden.ID, liveA.ID}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v (the hidden DM, then the live one)", got, want)
	}
	pt.nothingMore("while bob's conversation is being read")
	close(pt.bobAnswers)
	if d := pt.next("bob's DM"); d.msg.ID != liveB.ID {
		t.Fatalf("delivered %s, want bob's %s", d.msg.ID, liveB.ID)
	}
}

// TestBackfillQuickRead: when the gap's start is known, a held member's DM channel is read from
// it without waiting for their conversation: bob's held DM goes, after the one the gap hid,
// while his conversation's status query still hangs.
func TestBackfillQuickRead(t *testing.T) {
	pt, takenA, takenB := newPassTest(t)
	gapStart := time.Now()
	hidden := pt.send(passBob, "lost in the gap")
	liveA, liveB := pt.gap(gapStart)

	// What the reads find from 30 s before the gap is delivered (taken ones again: the
	// conversations drop them), each member's in order: the live DMs after the hidden one.
	got := map[string][]string{}
	for live := 0; live < 2; {
		d := pt.next("the live DMs")
		got[d.msg.Author.ID] = append(got[d.msg.Author.ID], d.msg.ID)
		if !d.backfill {
			live++
		}
	}
	for member, want := range map[string][]string{passAlice: {takenA.ID, liveA.ID}, passBob: {takenB.ID, hidden.ID, liveB.ID}} {
		if !slices.Equal(got[member], want) {
			t.Errorf("member %s: delivered %v, want %v", member, got[member], want)
		}
	}
	close(pt.bobAnswers) // only now: bob's DMs went without it
}

// testStatus is a QueryWorkflow answer.
type testStatus struct{ st workflows.ConversationStatus }

func (v testStatus) HasValue() bool { return true }

func (v testStatus) Get(p any) error {
	b, err := json.Marshal(v.st)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, p)
}
