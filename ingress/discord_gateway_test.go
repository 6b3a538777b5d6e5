package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/workflows"
)

const openConversationsQuery = "WorkflowType = 'Conversation' AND ExecutionStatus = 'Running'"

// noOpenConversations lets the backfill that follows READY find nothing to do.
func noOpenConversations(tc *mocks.Client) {
	tc.On("ListWorkflow", mock.Anything, mock.Anything).Return(&workflowservice.ListWorkflowExecutionsResponse{}, nil).Maybe()
}

// collector answers the UserMessage signal-with-starts of the member and records those that were
// taken, in order. fail decides, per signal and attempt (from 1), the error to answer with.
type collector struct {
	mu       sync.Mutex
	attempts map[string]int
	ch       chan workflows.UserMessageSignal
}

func newCollector(tc *mocks.Client, fail func(sig workflows.UserMessageSignal, attempt int) error) *collector {
	c := &collector{attempts: map[string]int{}, ch: make(chan workflows.UserMessageSignal, 50)}
	tc.On("SignalWithStartWorkflow", mock.Anything, "conversation:"+userID, workflows.SignalUserMessage, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(func(_ context.Context, _, _ string, arg any, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
			sig := arg.(workflows.UserMessageSignal)
			c.mu.Lock()
			c.attempts[sig.EventID]++
			n := c.attempts[sig.EventID]
			c.mu.Unlock()
			if fail != nil {
				if err := fail(sig, n); err != nil {
					return nil, err
				}
			}
			c.ch <- sig
			return &mocks.WorkflowRun{}, nil
		})
	return c
}

func (c *collector) attemptsOf(eventID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts[eventID]
}

// next waits for the next signal that was taken.
func (c *collector) next(t *testing.T, what string) workflows.UserMessageSignal {
	t.Helper()
	select {
	case s := <-c.ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatalf("no UserMessage signal for %s", what)
		return workflows.UserMessageSignal{}
	}
}

func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Fatalf("%s\n got %s\nwant %s", what, a, b)
	}
}

func member(t *testing.T, emu *discordemu.Server) string {
	t.Helper()
	dm, err := emu.DMChannel(userID)
	if err != nil {
		t.Fatal(err)
	}
	return dm
}

func sendDM(t *testing.T, emu *discordemu.Server, text string) discordemu.Record {
	t.Helper()
	rec, err := emu.SendDM(userID, text)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestGatewayDMRetriedUntilTaken: a DM whose signal keeps failing is retried for as long as it
// takes (well past the old fixed number of attempts), and the member's later DMs wait behind it,
// so nothing is dropped and the order holds.
func TestGatewayDMRetriedUntilTaken(t *testing.T) {
	t.Cleanup(ingress.SetGatewayTiming(time.Millisecond, 5*time.Millisecond, time.Hour))
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{{ID: userID, Username: "alice", GlobalName: "Alice"}}})
	tc := &mocks.Client{}
	noOpenConversations(tc)
	const failures = 25
	c := newCollector(tc, func(sig workflows.UserMessageSignal, attempt int) error {
		if sig.Text == "first" && attempt <= failures {
			if attempt%2 == 0 {
				return serviceerror.NewResourceExhausted(0, "too many requests")
			}
			return serviceerror.NewUnavailable("connection refused")
		}
		return nil
	})
	startGateway(t, emu, tc)
	dm := member(t, emu)
	first := sendDM(t, emu, "first")
	second := sendDM(t, emu, "second")
	sameJSON(t, "first signal", c.next(t, "the first DM"), workflows.UserMessageSignal{EventID: first.Message.ID, Member: alice, ChannelID: dm, Text: "first"})
	sameJSON(t, "second signal", c.next(t, "the second DM"), workflows.UserMessageSignal{EventID: second.Message.ID, Member: alice, ChannelID: dm, Text: "second"})
	if n := c.attemptsOf(first.Message.ID); n != failures+1 {
		t.Errorf("first DM signalled %d times, want %d", n, failures+1)
	}
	for _, r := range emu.Messages(dm) {
		if r.FromBot {
			t.Errorf("the member was told %q although every DM was taken", r.Message.Content)
		}
	}
}

// TestGatewayDMNotTaken: a DM Temporal refuses as invalid can never be taken: the member is asked,
// in reply to it, to send it again, and their next DM goes through.
func TestGatewayDMNotTaken(t *testing.T) {
	t.Cleanup(ingress.SetGatewayTiming(time.Millisecond, 5*time.Millisecond, time.Hour))
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{{ID: userID, Username: "alice", GlobalName: "Alice", Locale: "ko"}}})
	tc := &mocks.Client{}
	noOpenConversations(tc)
	c := newCollector(tc, func(sig workflows.UserMessageSignal, _ int) error {
		if sig.Text == "refused" {
			return serviceerror.NewInvalidArgument("Blob data size exceeds limit.")
		}
		return nil
	})
	startGateway(t, emu, tc)
	dm := member(t, emu)
	refused := sendDM(t, emu, "refused")
	next := sendDM(t, emu, "next")
	sameJSON(t, "next signal", c.next(t, "the next DM"), workflows.UserMessageSignal{EventID: next.Message.ID, Member: alice, ChannelID: dm, Text: "next"})
	var notice discordemu.Record
	waitFor(t, "the notice", func() bool {
		for _, r := range emu.Messages(dm) {
			if r.FromBot {
				notice = r
				return true
			}
		}
		return false
	})
	if want := i18n.T(i18n.Fallback, "ingress.dm_not_taken"); notice.Message.Content != want {
		t.Errorf("notice %q, want %q", notice.Message.Content, want)
	}
	if n := c.attemptsOf(refused.Message.ID); n != 1 {
		t.Errorf("refused DM signalled %d times, want 1 (not retried)", n)
	}
}

// statusValue is a QueryWorkflow answer read from a function, so a test can change it.
type statusValue struct {
	get func() workflows.ConversationStatus
}

func (v statusValue) HasValue() bool { return true }

func (v statusValue) Get(p any) error {
	b, err := json.Marshal(v.get())
	if err != nil {
		return err
	}
	return json.Unmarshal(b, p)
}

func listed(token string, ids ...string) *workflowservice.ListWorkflowExecutionsResponse {
	resp := &workflowservice.ListWorkflowExecutionsResponse{NextPageToken: []byte(token)}
	for _, id := range ids {
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id}})
	}
	return resp
}

// TestGatewayBackfill: on READY and on every RESUMED, the member DMs an open conversation has not
// taken (after its LastMessageID) are fetched from the DM channel and signalled oldest first,
// with Backfill set, through the member's lane; the bot's own messages are skipped.
func TestGatewayBackfill(t *testing.T) {
	t.Cleanup(ingress.SetGatewayTiming(time.Millisecond, 5*time.Millisecond, time.Hour))
	const otherUser = "2000000000000000002"
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{
		{ID: userID, Username: "alice", GlobalName: "Alice"}, {ID: otherUser, Username: "bob"},
	}})
	dm := member(t, emu)

	// Before the gateway connects: a DM the conversation took, then a bot reply and two DMs the
	// gateway never delivered.
	taken := sendDM(t, emu, "my order never arrived")
	rest, err := discordsession.New(emu.Token(), emu.Transport())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rest.ChannelMessageSend(dm, "Here are some articles"); err != nil {
		t.Fatal(err)
	}
	missed1 := sendDM(t, emu, "order 1234")
	missed2 := sendDM(t, emu, "can I talk to a human?")

	tc := &mocks.Client{}
	var mu sync.Mutex
	status := workflows.ConversationStatus{Member: alice, Stage: workflows.StageBot, DMChannelID: dm, LastMessageID: taken.Message.ID}
	setLast := func(id string) {
		mu.Lock()
		defer mu.Unlock()
		status.LastMessageID = id
	}
	// Two pages of open conversations; the other member's has no DM channel yet.
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return r.Query == openConversationsQuery && len(r.NextPageToken) == 0
	})).Return(listed("page-2", workflows.ConversationWorkflowID(userID)), nil)
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return r.Query == openConversationsQuery && string(r.NextPageToken) == "page-2"
	})).Return(listed("", workflows.ConversationWorkflowID(otherUser)), nil)
	tc.On("QueryWorkflow", mock.Anything, workflows.ConversationWorkflowID(userID), "", workflows.QueryStatus).
		Return(statusValue{func() workflows.ConversationStatus {
			mu.Lock()
			defer mu.Unlock()
			return status
		}}, nil)
	tc.On("QueryWorkflow", mock.Anything, workflows.ConversationWorkflowID(otherUser), "", workflows.QueryStatus).
		Return(statusValue{func() workflows.ConversationStatus { return workflows.ConversationStatus{Stage: workflows.StageBot} }}, nil)
	c := newCollector(tc, nil)
	startGateway(t, emu, tc)

	sameJSON(t, "first backfilled", c.next(t, "the first missed DM"), workflows.UserMessageSignal{
		EventID: missed1.Message.ID, Member: alice, ChannelID: dm, Text: "order 1234", Backfill: true,
	})
	sameJSON(t, "second backfilled", c.next(t, "the second missed DM"), workflows.UserMessageSignal{
		EventID: missed2.Message.ID, Member: alice, ChannelID: dm, Text: "can I talk to a human?", WantsHuman: true, Backfill: true,
	})
	setLast(missed2.Message.ID)

	// A live DM arrives as usual…
	live := sendDM(t, emu, "it was due Monday")
	sameJSON(t, "live", c.next(t, "the live DM"), workflows.UserMessageSignal{EventID: live.Message.ID, Member: alice, ChannelID: dm, Text: "it was due Monday"})

	setLast(live.Message.ID)

	// The gateway loses a DM (as when a bot is offline longer than its session can be
	// resumed); on the next RESUMED it is fetched from the channel.
	emu.MissDispatches("MESSAGE_CREATE")
	lost := sendDM(t, emu, "are you there?")
	if n := emu.StopMissingDispatches(); n != 1 {
		t.Fatalf("the emulator lost %d dispatches, want 1", n)
	}
	select {
	case extra := <-c.ch:
		t.Fatalf("the lost DM arrived live: %+v", extra)
	case <-time.After(100 * time.Millisecond):
	}
	if emu.ReconnectGateway() == 0 {
		t.Fatal("no gateway connection to reconnect")
	}
	// The backfill reads from the gap's start, so it may signal again DMs the conversation took
	// just before it (the conversation drops them as seen); the lost one comes, once.
	took := map[string]bool{taken.Message.ID: true, missed1.Message.ID: true, missed2.Message.ID: true, live.Message.ID: true}
	for {
		sig := c.next(t, "the lost DM after the resume")
		if sig.EventID == lost.Message.ID {
			sameJSON(t, "backfilled after resume", sig, workflows.UserMessageSignal{
				EventID: lost.Message.ID, Member: alice, ChannelID: dm, Text: "are you there?", Backfill: true,
			})
			break
		}
		if !sig.Backfill || !took[sig.EventID] {
			t.Fatalf("unexpected signal %+v", sig)
		}
	}
	select {
	case extra := <-c.ch:
		t.Fatalf("unexpected signal %+v", extra)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestGatewayBackfillPages: a gap longer than a page of Discord history is read page by page,
// and every message is signalled once, oldest first.
func TestGatewayBackfillPages(t *testing.T) {
	t.Cleanup(ingress.SetGatewayTiming(time.Millisecond, 5*time.Millisecond, time.Hour))
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{{ID: userID, Username: "alice", GlobalName: "Alice"}}})
	dm := member(t, emu)
	taken := sendDM(t, emu, "taken")
	var missed []discordemu.Record
	for n := range 230 {
		missed = append(missed, sendDM(t, emu, "message "+strconv.Itoa(n)))
	}
	tc := &mocks.Client{}
	tc.On("ListWorkflow", mock.Anything, mock.Anything).Return(listed("", workflows.ConversationWorkflowID(userID)), nil)
	tc.On("QueryWorkflow", mock.Anything, workflows.ConversationWorkflowID(userID), "", workflows.QueryStatus).
		Return(statusValue{func() workflows.ConversationStatus {
			return workflows.ConversationStatus{Member: alice, Stage: workflows.StageBot, DMChannelID: dm, LastMessageID: taken.Message.ID}
		}}, nil)
	c := newCollector(tc, nil)
	startGateway(t, emu, tc)
	for n, rec := range missed {
		if got := c.next(t, "message "+strconv.Itoa(n)); got.EventID != rec.Message.ID || !got.Backfill {
			t.Fatalf("signal %d: %+v, want message %s backfilled", n, got, rec.Message.ID)
		}
	}
	select {
	case extra := <-c.ch:
		t.Fatalf("unexpected signal %+v", extra)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestGatewayBackfillOnlyOnShardZero: Discord sends DMs to shard 0 only, so other shards leave
// the DM channels alone.
func TestGatewayBackfillOnlyOnShardZero(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{{ID: userID, Username: "alice"}}})
	tc := &mocks.Client{}
	startGatewayWith(t, emu, tc, func(cfg *ingress.DiscordConfig) { cfg.ShardID, cfg.ShardCount = 1, 2 })
	time.Sleep(200 * time.Millisecond) // READY has been handled; a backfill would have listed by now
	tc.AssertNotCalled(t, "ListWorkflow", mock.Anything, mock.Anything)
}
