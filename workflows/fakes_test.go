package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/transcript"
)

// fakeProviders stands in for Discord, Flex and the knowledge base in workflow tests. It records
// what was delivered, in order, and fails on demand.
type fakeProviders struct {
	mu sync.Mutex

	dms      []activities.SendDirectMessageInput
	posts    []activities.PostChannelMessageInput
	followUp []activities.SendInteractionFollowUpInput
	flex     []activities.PostFlexMessageInput
	created  []activities.CreateFlexInteractionInput
	closed   []activities.CloseFlexInteractionInput
	searches []activities.SearchKnowledgeBaseInput
	edits    []activities.EditDirectMessageInput
	checks   []activities.CheckFlexInteractionInput

	// gone lists the Flex conversations Flex has lost: posts to them fail with
	// FlexConversationGone and checks find nothing.
	gone map[string]bool
	// createFails makes every hand-over fail for good; flexFailures makes that many posts to
	// Flex fail with a retryable error first.
	createFails  bool
	flexFailures int
	// agentLog holds agent messages written in Flex conversations, by conversation SID, for
	// FetchAgentMessages.
	agentLog map[string][]activities.AgentMessage

	// dmsClosed makes direct messages fail the way Discord does for a member with DMs closed.
	dmsClosed bool
	// inFlight counts concurrent deliveries per destination; maxInFlight is the worst seen.
	inFlight    map[string]int
	maxInFlight int
	// busyLocal refuses every local-activity try as a worker out of its fast-path rate does;
	// tries counts the tries of each activity, local and regular.
	busyLocal bool
	tries     map[string]*[2]int
	// batches records, per activity, how many deliveries each call carried (1 + len(More)).
	batches map[string][]int
	// flexFailAfter makes the next post to Flex that many messages into a call fail once with a
	// retryable error, after the messages before it were posted (a batch cut short).
	flexFailAfter int
	// flexBrokenAfter, when set, makes every post to Flex fail with a retryable error once Flex
	// holds that many messages.
	flexBrokenAfter int
	// records are the transcripts written.
	records fakeRecords
}

// batch records a call of activity name carrying n deliveries.
func (f *fakeProviders) batch(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.batches == nil {
		f.batches = map[string][]int{}
	}
	f.batches[name] = append(f.batches[name], n)
}

// batchesOf returns how many deliveries each call of activity name carried.
func (f *fakeProviders) batchesOf(name string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.batches[name]...)
}

// try counts a try of activity name (refuseLocal counted those refused).
func (f *fakeProviders) try(ctx context.Context, name string) {
	local := activity.GetInfo(ctx).IsLocalActivity
	if f.tries == nil {
		f.tries = map[string]*[2]int{}
	}
	if f.tries[name] == nil {
		f.tries[name] = &[2]int{}
	}
	if local {
		f.tries[name][0]++
	} else {
		f.tries[name][1]++
	}
}

// refuseLocal refuses a local try of a batch of n deliveries when busyLocal is set, as the
// worker's fast-path limit refuses the whole activity: each of the n had its local try.
func (f *fakeProviders) refuseLocal(ctx context.Context, name string, n int) error {
	if !activity.GetInfo(ctx).IsLocalActivity {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.busyLocal {
		return nil
	}
	if f.tries == nil {
		f.tries = map[string]*[2]int{}
	}
	if f.tries[name] == nil {
		f.tries[name] = &[2]int{}
	}
	f.tries[name][0] += n
	return temporal.NewApplicationError("the worker's fast-path share is used up", ErrFastPathBusy)
}

// triesOf returns the local and the regular tries of activity name.
func (f *fakeProviders) triesOf(name string) (local, regular int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tries[name]; t != nil {
		return t[0], t[1]
	}
	return 0, 0
}

func newFakeProviders() *fakeProviders {
	return &fakeProviders{inFlight: map[string]int{}, agentLog: map[string][]activities.AgentMessage{}, gone: map[string]bool{}}
}

// register puts the fakes on a worker registry under the activity names the workflows use.
func (f *fakeProviders) register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(f.SendDirectMessage, activity.RegisterOptions{Name: "SendDirectMessage"})
	r.RegisterActivityWithOptions(f.PostChannelMessage, activity.RegisterOptions{Name: "PostChannelMessage"})
	r.RegisterActivityWithOptions(f.SendInteractionFollowUp, activity.RegisterOptions{Name: "SendInteractionFollowUp"})
	r.RegisterActivityWithOptions(f.CreateFlexInteraction, activity.RegisterOptions{Name: "CreateFlexInteraction"})
	r.RegisterActivityWithOptions(f.PostFlexMessage, activity.RegisterOptions{Name: "PostFlexMessage"})
	r.RegisterActivityWithOptions(f.CloseFlexInteraction, activity.RegisterOptions{Name: "CloseFlexInteraction"})
	r.RegisterActivityWithOptions(f.SearchKnowledgeBase, activity.RegisterOptions{Name: "SearchKnowledgeBase"})
	r.RegisterActivityWithOptions(f.EditDirectMessage, activity.RegisterOptions{Name: "EditDirectMessage"})
	r.RegisterActivityWithOptions(f.CheckFlexInteraction, activity.RegisterOptions{Name: "CheckFlexInteraction"})
	r.RegisterActivityWithOptions(f.FetchAgentMessages, activity.RegisterOptions{Name: "FetchAgentMessages"})
	r.RegisterActivityWithOptions(f.records.SaveTranscript, activity.RegisterOptions{Name: "SaveTranscript"})
	r.RegisterActivityWithOptions(f.records.SendTranscript, activity.RegisterOptions{Name: "SendTranscript"})
}

func (f *fakeProviders) enter(dest string) func() {
	f.mu.Lock()
	f.inFlight[dest]++
	if f.inFlight[dest] > f.maxInFlight {
		f.maxInFlight = f.inFlight[dest]
	}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.inFlight[dest]--
		f.mu.Unlock()
	}
}

func (f *fakeProviders) SendDirectMessage(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	f.batch("SendDirectMessage", 1+len(in.More))
	if err := f.refuseLocal(ctx, "SendDirectMessage", 1+len(in.More)); err != nil {
		return activities.SendDirectMessageResult{}, err
	}
	return activities.SendEach(in, func(one activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
		return f.sendOneDM(ctx, one)
	})
}

func (f *fakeProviders) sendOneDM(ctx context.Context, in activities.SendDirectMessageInput) (activities.SendDirectMessageResult, error) {
	defer f.enter("member:" + in.UserID)()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.try(ctx, "SendDirectMessage")
	if f.dmsClosed {
		return activities.SendDirectMessageResult{}, temporal.NewNonRetryableApplicationError(
			"discord: 50007 Cannot send messages to this user", activities.ErrCannotMessageUser, nil)
	}
	for _, d := range f.dms {
		if d.Nonce == in.Nonce {
			return activities.SendDirectMessageResult{ChannelID: "dm-" + in.UserID}, nil
		}
	}
	f.dms = append(f.dms, in)
	return activities.SendDirectMessageResult{ChannelID: "dm-" + in.UserID, MessageIDs: []string{fmt.Sprint(len(f.dms))}}, nil
}

func (f *fakeProviders) PostChannelMessage(ctx context.Context, in activities.PostChannelMessageInput) (activities.PostChannelMessageResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts = append(f.posts, in)
	return activities.PostChannelMessageResult{MessageIDs: []string{fmt.Sprint(len(f.posts))}}, nil
}

func (f *fakeProviders) SendInteractionFollowUp(ctx context.Context, in activities.SendInteractionFollowUpInput) (activities.SendInteractionFollowUpResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.followUp = append(f.followUp, in)
	return activities.SendInteractionFollowUpResult{MessageID: fmt.Sprint(len(f.followUp))}, nil
}

func (f *fakeProviders) CreateFlexInteraction(ctx context.Context, in activities.CreateFlexInteractionInput) (activities.FlexInteraction, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, in)
	if f.createFails {
		return activities.FlexInteraction{}, temporal.NewNonRetryableApplicationError("twilio 45361: downstream error", activities.ErrTwilioRejected, nil)
	}
	suffix := in.CaseID
	if in.Handover > 1 {
		suffix += fmt.Sprint("-", in.Handover)
	}
	return activities.FlexInteraction{
		ConversationSID: "CH" + suffix, InteractionSID: "KD" + suffix, ChannelSID: "UO" + suffix,
		TaskSID: "WT" + suffix, Identity: "discord:" + in.DiscordUserID, Handover: in.Handover,
	}, nil
}

func (f *fakeProviders) PostFlexMessage(ctx context.Context, in activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
	f.batch("PostFlexMessage", 1+len(in.More))
	if err := f.refuseLocal(ctx, "PostFlexMessage", 1+len(in.More)); err != nil {
		return activities.PostFlexMessageResult{}, err
	}
	n := 0
	return activities.PostEach(in, func(one activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
		n++
		f.mu.Lock()
		cut := f.flexFailAfter > 0 && n == f.flexFailAfter+1
		if cut {
			f.flexFailAfter = 0
		}
		f.mu.Unlock()
		if cut {
			return activities.PostFlexMessageResult{}, temporal.NewApplicationError("twilio 20503: service unavailable", "TwilioUnavailable")
		}
		return f.postOneFlex(ctx, one)
	})
}

func (f *fakeProviders) postOneFlex(ctx context.Context, in activities.PostFlexMessageInput) (activities.PostFlexMessageResult, error) {
	defer f.enter("flex:" + in.ConversationSID)()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.try(ctx, "PostFlexMessage")
	if f.gone[in.ConversationSID] {
		return activities.PostFlexMessageResult{}, temporal.NewNonRetryableApplicationError(
			"twilio 20404: conversation not found", activities.ErrFlexConversationGone, nil)
	}
	// As the real activity does, a try that follows another looks for its message first.
	if activity.GetInfo(ctx).Attempt > 1 || in.PriorAttempts > 0 {
		for i, m := range f.flex {
			if m.DeliveryKey == in.DeliveryKey && m.ConversationSID == in.ConversationSID {
				return activities.PostFlexMessageResult{MessageSID: fmt.Sprint("IM", i+1), Index: i, AlreadyPosted: true}, nil
			}
		}
	}
	if f.flexBrokenAfter > 0 && len(f.flex) >= f.flexBrokenAfter {
		return activities.PostFlexMessageResult{}, temporal.NewApplicationError("twilio 20503: service unavailable", "TwilioUnavailable")
	}
	if f.flexFailures > 0 {
		f.flexFailures--
		return activities.PostFlexMessageResult{}, temporal.NewApplicationError("twilio 20503: service unavailable", "TwilioUnavailable")
	}
	f.flex = append(f.flex, in)
	return activities.PostFlexMessageResult{MessageSID: fmt.Sprint("IM", len(f.flex)), Index: len(f.flex) - 1}, nil
}

func (f *fakeProviders) EditDirectMessage(ctx context.Context, in activities.EditDirectMessageInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.edits = append(f.edits, in)
	return nil
}

func (f *fakeProviders) CheckFlexInteraction(ctx context.Context, in activities.CheckFlexInteractionInput) (activities.CheckFlexInteractionResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks = append(f.checks, in)
	if f.gone[in.Interaction.ConversationSID] {
		return activities.CheckFlexInteractionResult{LastIndex: -1}, nil
	}
	return activities.CheckFlexInteractionResult{Open: true, ConversationState: "active", ChannelStatus: "active", LastIndex: -1}, nil
}

func (f *fakeProviders) FetchAgentMessages(ctx context.Context, in activities.FetchAgentMessagesInput) (activities.FetchAgentMessagesResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res := activities.FetchAgentMessagesResult{LastIndex: in.AfterIndex}
	for _, m := range f.agentLog[in.ConversationSID] {
		if m.Index > in.AfterIndex {
			res.Messages = append(res.Messages, m)
			res.LastIndex = max(res.LastIndex, m.Index)
		}
	}
	return res, nil
}

// lose makes Flex lose a conversation.
func (f *fakeProviders) lose(conversationSID string) {
	f.mu.Lock()
	f.gone[conversationSID] = true
	f.mu.Unlock()
}

func (f *fakeProviders) CloseFlexInteraction(ctx context.Context, in activities.CloseFlexInteractionInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, in)
	return nil
}

func (f *fakeProviders) SearchKnowledgeBase(ctx context.Context, in activities.SearchKnowledgeBaseInput) (activities.SearchKnowledgeBaseResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searches = append(f.searches, in)
	if strings.Contains(strings.ToLower(in.Query), "password") {
		return activities.SearchKnowledgeBaseResult{Articles: []activities.Article{
			{ID: "reset-password", Title: "Reset your password", URL: "https://help.example.com/reset"},
			{ID: "2fa", Title: "Two-factor authentication", URL: "https://help.example.com/2fa"},
			{ID: "locked", Title: "Locked out of your account", URL: "https://help.example.com/locked"},
		}}, nil
	}
	return activities.SearchKnowledgeBaseResult{}, nil
}

// dmTexts returns the content of every direct message delivered so far, in order.
func (f *fakeProviders) dmTexts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.dms))
	for i, d := range f.dms {
		out[i] = d.Message.Content
	}
	return out
}

func (f *fakeProviders) flexBodies() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.flex))
	for i, m := range f.flex {
		out[i] = m.Body
	}
	return out
}

func (f *fakeProviders) setDMsClosed(v bool) {
	f.mu.Lock()
	f.dmsClosed = v
	f.mu.Unlock()
}

// flexPosts returns the inputs of the posts Flex holds, in order.
func (f *fakeProviders) flexPosts() []activities.PostFlexMessageInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]activities.PostFlexMessageInput(nil), f.flex...)
}

// fakeRecords stands in for the blob store of transcripts: it keeps every line written, by
// transcript and sequence number. fail, when set, decides whether a write fails (retryable).
type fakeRecords struct {
	mu     sync.Mutex
	lines  map[string]map[int]transcript.Entry // transcript id → seq → line
	users  map[string]string                   // transcript id → member
	writes int
	fail   func() bool
	sent   []activities.SendTranscriptInput
}

func (r *fakeRecords) SaveTranscript(ctx context.Context, in activities.SaveTranscriptInput) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil && r.fail() {
		return temporal.NewApplicationError("blob store unavailable", "BlobStoreUnavailable")
	}
	if r.lines == nil {
		r.lines, r.users = map[string]map[int]transcript.Entry{}, map[string]string{}
	}
	c := in.Chunk
	if r.lines[c.TranscriptID] == nil {
		r.lines[c.TranscriptID] = map[int]transcript.Entry{}
	}
	r.users[c.TranscriptID] = c.DiscordUserID
	for _, e := range c.Entries {
		r.lines[c.TranscriptID][e.Seq] = e
	}
	r.writes++
	return nil
}

// transcript returns the lines written of a transcript, in order.
func (r *fakeRecords) transcript(id string) []transcript.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []transcript.Entry
	for _, e := range r.lines[id] {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b transcript.Entry) int { return a.Seq - b.Seq })
	return out
}

// SendTranscript sends the member their transcript, if one was written for them.
func (r *fakeRecords) SendTranscript(ctx context.Context, in activities.SendTranscriptInput) (activities.SendTranscriptResult, error) {
	lines := r.transcript(in.CaseID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(lines) == 0 || r.users[in.CaseID] != in.UserID {
		return activities.SendTranscriptResult{}, temporal.NewNonRetryableApplicationError("no transcript", activities.ErrTranscriptNotFound, nil)
	}
	r.sent = append(r.sent, in)
	return activities.SendTranscriptResult{ChannelID: "dm-" + in.UserID, MessageID: "1", Lines: len(lines)}, nil
}
