package ingress

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"go.temporal.io/api/serviceerror"

	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/workflows"
)

// Gateway delivery tuning.
const (
	// gatewayLanes is how many DMs are signalled at once. DMs of one member always share a lane,
	// so they reach their Conversation in the order the member sent them.
	gatewayLanes = 16
	// gatewayLaneBuffer is how many DMs a lane holds before the gateway reader waits for it: a
	// lane that cannot deliver holds the reader back rather than dropping anything, so memory
	// stays bounded.
	gatewayLaneBuffer = 256
	// backfillConcurrency bounds the conversations read at once after a (re)connect, and
	// backfillPageSize is the most messages Discord returns per page.
	backfillConcurrency = 4
	backfillPageSize    = 100
	// backfillRetries is how many more passes a backfill makes, 2 s, 4 s, … up to
	// backfillRetryDelay apart, over the conversations it could not read (no worker answered
	// the query, Discord failed).
	backfillRetries = 5
)

// Retry timing; variables so that tests can shorten them.
var (
	// dmBackoff and dmMaxBackoff space the retries of a DM signal that failed (busy, Temporal
	// unreachable). The gateway does not send an event twice, so a DM is retried until it is
	// taken or cannot be taken at all.
	dmBackoff          = 250 * time.Millisecond
	dmMaxBackoff       = 30 * time.Second
	backfillRetryDelay = 30 * time.Second
)

// RunDiscordGateway connects cfg.Session to the Discord gateway and turns direct messages from
// members into UserMessage signals, and interactions (when no interactions endpoint URL is
// configured, Discord sends them here) into the same signals and workflow starts as the HTTP
// endpoint. On every READY and RESUMED it backfills the DM channels of open conversations: the
// messages a member sent after the newest one their conversation took, which the gateway may
// not have delivered. It returns when ctx is done, after closing the session.
func RunDiscordGateway(ctx context.Context, s *Server, cfg DiscordConfig) error {
	sess := cfg.Session
	if sess == nil {
		return errors.New("discord gateway: no session (DISCORD_TOKEN is not set)")
	}
	if cfg.ShardCount > 1 {
		if cfg.ShardID < 0 || cfg.ShardID >= cfg.ShardCount {
			return fmt.Errorf("discord gateway: shard id %d is not in [0, %d)", cfg.ShardID, cfg.ShardCount)
		}
		sess.ShardID, sess.ShardCount = cfg.ShardID, cfg.ShardCount
	}
	// Guild events and DMs only: no privileged intent is needed, since DM content arrives
	// without MESSAGE_CONTENT.
	sess.Identify.Intents = discordgo.IntentsGuilds | discordgo.IntentsDirectMessages
	// Events are handed over in the order they arrive; the lanes below do the concurrency.
	sess.SyncEvents = true

	h := newDiscordHandler(s, cfg)
	// Discord sends every DM to shard 0, so its DM channels are shard 0's to backfill.
	g := &gateway{h: h, sess: sess, backfills: cfg.ShardCount <= 1 || cfg.ShardID == 0, kick: make(chan struct{}, 1)}
	lanesCtx, stopLanes := context.WithCancel(ctx)
	g.startLanes(lanesCtx)
	if g.backfills {
		g.wg.Go(func() { g.runBackfills(lanesCtx) })
	}
	removeMsg := sess.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) { g.onMessage(lanesCtx, m) })
	removeInt := sess.AddHandler(func(_ *discordgo.Session, i *discordgo.InteractionCreate) { g.onInteraction(lanesCtx, i) })
	// lastHeard is when the gateway last dispatched an event: after a gap, DMs from then on may
	// be missing, even where a live DM that came after the gap has moved a conversation's newest
	// message past them.
	var lastHeard atomic.Int64
	gapStart := func() time.Time {
		if at := lastHeard.Load(); at != 0 {
			return time.Unix(0, at)
		}
		return time.Time{}
	}
	removeReady := sess.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) {
		h.log.Info("discord gateway ready", "bot_user_id", r.User.ID, "shard_id", cfg.ShardID, "shard_count", max(cfg.ShardCount, 1))
		g.requestBackfill(gapStart())
	})
	removeResumed := sess.AddHandler(func(_ *discordgo.Session, _ *discordgo.Resumed) {
		h.log.Info("discord gateway resumed", "shard_id", cfg.ShardID)
		g.requestBackfill(gapStart())
	})
	removeDisconnect := sess.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) {
		// Events a resume replays come before RESUMED: from now on, live DMs wait for the
		// backfill that follows the reconnect.
		g.holdLive()
	})
	removeHeard := sess.AddHandler(func(_ *discordgo.Session, e *discordgo.Event) {
		if e.Type != "READY" && e.Type != "RESUMED" {
			lastHeard.Store(time.Now().UnixNano())
		}
	})
	defer func() {
		removeMsg()
		removeInt()
		removeReady()
		removeResumed()
		removeHeard()
		removeDisconnect()
		stopLanes()
		g.wg.Wait()
	}()

	if err := sess.Open(); err != nil {
		return fmt.Errorf("discord gateway: open: %w", err)
	}
	<-ctx.Done()
	if err := sess.Close(); err != nil {
		h.log.Warn("discord gateway: close", "error", err)
	}
	return nil
}

// dm is a member's direct message waiting in its lane.
type dm struct {
	msg *discordgo.Message
	// backfill: fetched after a (re)connect rather than received live.
	backfill bool
}

// gateway dispatches gateway events.
type gateway struct {
	h     *discordHandler
	sess  *discordgo.Session
	lanes [gatewayLanes]chan dm
	wg    sync.WaitGroup
	// backfills is set on the shard that receives DMs; kick asks it for a backfill pass.
	backfills bool
	kick      chan struct{}
	// since, when set, is the oldest gap start a pending pass must read from (see backfillFrom);
	// gate is open (non-nil) from a (re)connect until the pass has queued what it found.
	sinceMu sync.Mutex
	since   time.Time
	gate    chan struct{}
}

func (g *gateway) startLanes(ctx context.Context) {
	for n := range g.lanes {
		ch := make(chan dm, gatewayLaneBuffer)
		g.lanes[n] = ch
		g.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-ch:
					for _, m := range g.inOrder(ctx, m, ch) {
						g.deliverDM(ctx, m)
					}
				}
			}
		})
	}
}

// inOrder returns m and, while a backfill pass runs, the DMs queued behind it once the pass has
// queued what it found, sorted by id: a live DM that came after a gap waits for the older ones
// the backfill fetches, so a member's messages reach their conversation in the order written.
// The wait is bounded by backfillHold.
func (g *gateway) inOrder(ctx context.Context, m dm, ch chan dm) []dm {
	gate := g.backfillGate()
	if gate == nil || m.backfill {
		return []dm{m}
	}
	t := time.NewTimer(backfillHold)
	defer t.Stop()
	select {
	case <-gate:
	case <-t.C:
	case <-ctx.Done():
	}
	batch := []dm{m}
	for {
		select {
		case more := <-ch:
			batch = append(batch, more)
			continue
		default:
		}
		break
	}
	slices.SortStableFunc(batch, func(a, b dm) int { return compareSnowflakes(a.msg.ID, b.msg.ID) })
	return batch
}

// backfillGate is closed when the running backfill pass has queued what it found; nil when no
// pass runs.
func (g *gateway) backfillGate() chan struct{} {
	g.sinceMu.Lock()
	defer g.sinceMu.Unlock()
	return g.gate
}

// onMessage queues a member's DM on the member's lane.
func (g *gateway) onMessage(ctx context.Context, m *discordgo.MessageCreate) {
	if m.Message != nil {
		g.enqueue(ctx, m.Message, false)
	}
}

// enqueue puts a member's DM on the member's lane, waiting while the lane is full, and reports
// whether it did. Messages in guilds, from bots and from the bot itself, system messages and
// empty ones are ignored.
func (g *gateway) enqueue(ctx context.Context, m *discordgo.Message, backfill bool) bool {
	if m == nil || m.Author == nil || m.Author.Bot || m.GuildID != "" {
		return false
	}
	if m.Author.ID == g.botUserID() {
		return false
	}
	if m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply {
		return false
	}
	if m.Content == "" && len(m.Attachments) == 0 {
		return false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(m.Author.ID))
	select {
	case g.lanes[h.Sum32()%gatewayLanes] <- dm{msg: m, backfill: backfill}:
		return true
	case <-ctx.Done():
		return false
	}
}

// botUserID is the bot's own user id, known once the gateway is READY.
func (g *gateway) botUserID() string {
	st := g.sess.State
	if st == nil {
		return ""
	}
	st.RLock()
	defer st.RUnlock()
	if st.User == nil {
		return ""
	}
	return st.User.ID
}

// deliverDM signals a DM to the member's Conversation. The gateway will not deliver the event
// again, so a failure that may pass (busy, Temporal unreachable, a timeout) is retried with
// backoff for as long as it takes, holding the member's lane so their later messages wait
// behind it. Only a DM that can never be taken (Temporal refuses it as invalid) is given up, and
// the member is asked by DM to send it again.
func (g *gateway) deliverDM(ctx context.Context, d dm) {
	m := d.msg
	member := workflows.Member{UserID: m.Author.ID, Username: m.Author.Username, DisplayName: m.Author.GlobalName}
	sig := workflows.UserMessageSignal{
		EventID: m.ID, Member: member, ChannelID: m.ChannelID, Text: m.Content,
		WantsHuman: i18n.WantsHuman(m.Content), Backfill: d.backfill,
	}
	for _, a := range m.Attachments {
		if a != nil && a.URL != "" {
			sig.Attachments = append(sig.Attachments, a.URL)
		}
	}
	log := g.h.log.With("message_id", m.ID, "member", member.UserID, "backfill", d.backfill)
	backoff := dmBackoff
	for attempt := 1; ; attempt++ {
		err := g.h.s.StartConversation(ctx, member, "", "", "", workflows.SignalUserMessage, sig)
		switch {
		case err == nil:
			if attempt > 1 {
				log.Info("DM delivered to its conversation after retries", "attempts", attempt)
			}
			return
		case ctx.Err() != nil:
			// Shutting down. The DM is recovered by the backfill after the next start if the
			// member's conversation is open.
			log.Error("DM not delivered to its conversation: shutting down", "attempts", attempt, "error", err)
			return
		case !retryableSignalError(err):
			log.Error("DM cannot be delivered to its conversation; asking the member to send it again", "attempts", attempt, "error", err)
			g.tellNotTaken(ctx, m)
			return
		}
		log.Warn("DM signal failed, retrying", "attempt", attempt, "retry_in", backoff, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			log.Error("DM not delivered to its conversation: shutting down", "attempts", attempt)
			return
		case <-t.C:
		}
		backoff = min(2*backoff, dmMaxBackoff)
	}
}

// retryableSignalError reports whether a signal that failed with err may succeed later. Temporal
// refusing the request as invalid (for example a payload over its size limit) is final;
// everything else (busy, unreachable, rate-limited, timed out) passes.
func retryableSignalError(err error) bool {
	_, invalid := errors.AsType[*serviceerror.InvalidArgument](err)
	return !invalid
}

// tellNotTaken answers a DM that could not be taken, in reply to it, asking the member to send
// it again. The member's locale is not known here, so the default language is used.
func (g *gateway) tellNotTaken(ctx context.Context, m *discordgo.Message) {
	failIfGone := false
	_, err := g.sess.ChannelMessageSendComplex(m.ChannelID, &discordgo.MessageSend{
		Content:         i18n.T(i18n.Fallback, "ingress.dm_not_taken"),
		Reference:       &discordgo.MessageReference{MessageID: m.ID, ChannelID: m.ChannelID, FailIfNotExists: &failIfGone},
		AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}},
	}, discordgo.WithContext(ctx))
	if err != nil {
		g.h.log.Error("could not tell the member their DM was not taken", "message_id", m.ID, "member", m.Author.ID, "error", restErrorSummary(err))
	}
}

// requestBackfill asks for a backfill pass reading from the gap that began at gapStart (zero:
// unknown); requests made while one is waiting to start are one, reading from the oldest gap.
func (g *gateway) requestBackfill(gapStart time.Time) {
	if !g.backfills {
		return
	}
	g.sinceMu.Lock()
	if !gapStart.IsZero() && (g.since.IsZero() || gapStart.Before(g.since)) {
		g.since = gapStart
	}
	g.sinceMu.Unlock()
	g.holdLive()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// runBackfills runs a backfill pass over every open conversation on each request, and passes
// over the conversations a pass could not read, a while later, a bounded number of times.
func (g *gateway) runBackfills(ctx context.Context) {
	var retry *time.Timer
	var retryIDs []string // nil: the whole list
	var retrySince time.Time
	rounds := 0
	for {
		var retryC <-chan time.Time
		if retry != nil {
			retryC = retry.C
		}
		var ids []string
		retried := false
		select {
		case <-ctx.Done():
			if retry != nil {
				retry.Stop()
			}
			return
		case <-g.kick:
			rounds = 0
		case <-retryC:
			ids, retried = retryIDs, true
		}
		if retry != nil {
			retry.Stop()
			retry = nil
		}
		g.sinceMu.Lock()
		since := g.since
		g.since = time.Time{}
		g.sinceMu.Unlock()
		if retried && !retrySince.IsZero() && (since.IsZero() || retrySince.Before(since)) {
			since = retrySince // a retry reads from the gap its first pass read from
		}
		failed, listFailed := g.backfill(ctx, ids, since)
		retrySince = since
		done := ctx.Err() != nil || (!listFailed && len(failed) == 0)
		gaveUp := false
		if !done {
			if rounds++; rounds > backfillRetries {
				g.h.log.Error("DM backfill gave up on conversations it could not read", "conversations", len(failed), "list_failed", listFailed)
				gaveUp = true
			}
		}
		if done || gaveUp {
			// What the passes found is queued: live DMs held behind them may go. (While a
			// conversation cannot be read, its member's live DMs wait, at most backfillHold.)
			g.openGate()
			continue
		}
		retryIDs = failed
		if listFailed {
			retryIDs = nil
		}
		// Soon at first (a worker restarting), then backfillRetryDelay apart.
		retry = time.NewTimer(min(time.Second<<rounds, backfillRetryDelay))
	}
}

// holdLive makes live DMs wait (at most backfillHold each) until the next backfill pass has
// queued what it found.
func (g *gateway) holdLive() {
	if !g.backfills {
		return
	}
	g.sinceMu.Lock()
	defer g.sinceMu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
	}
}

// openGate lets live DMs held during a backfill go, unless another pass has been asked for.
func (g *gateway) openGate() {
	g.sinceMu.Lock()
	defer g.sinceMu.Unlock()
	if g.gate != nil && len(g.kick) == 0 {
		close(g.gate)
		g.gate = nil
	}
}

// backfill signals, for each open conversation (ids, or all of them when ids is nil), the DMs
// its member sent after the newest one it took. It returns the members whose conversation it
// could not read, or listFailed when it could not list the conversations at all.
func (g *gateway) backfill(ctx context.Context, ids []string, since time.Time) (failed []string, listFailed bool) {
	start := time.Now()
	if ids == nil {
		var err error
		if ids, err = g.h.s.ListOpenConversations(ctx); err != nil {
			g.h.log.Warn("DM backfill: cannot list open conversations", "error", err)
			return nil, true
		}
	}
	var (
		mu                sync.Mutex
		wg                sync.WaitGroup
		messages, withGap int
		sem               = make(chan struct{}, backfillConcurrency)
	)
loop:
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Go(func() {
			defer func() { <-sem }()
			n, err := g.backfillConversation(ctx, id, since)
			mu.Lock()
			defer mu.Unlock()
			messages += n
			if n > 0 {
				withGap++
			}
			if err != nil && ctx.Err() == nil {
				g.h.log.Warn("DM backfill: conversation not read", "member", id, "error", err)
				failed = append(failed, id)
			}
		})
	}
	wg.Wait()
	g.h.log.Info("DM backfill done", "conversations", len(ids), "conversations_with_new_messages", withGap,
		"messages_signalled", messages, "conversations_failed", len(failed), "duration", time.Since(start).Round(time.Millisecond))
	return failed, false
}

// backfillConversation queues, oldest first and with Backfill set, the messages the member sent in
// their DM channel after the newest one their conversation took, and returns how many.
func (g *gateway) backfillConversation(ctx context.Context, userID string, since time.Time) (int, error) {
	st, err := g.h.s.ConversationStatus(ctx, userID)
	if err != nil {
		if _, gone := errors.AsType[*serviceerror.NotFound](err); gone {
			return 0, nil // ended since it was listed
		}
		return 0, err
	}
	if st.DMChannelID == "" || st.LastMessageID == "" {
		return 0, nil // the member has not written to the bot in this conversation
	}
	cursor, n := backfillFrom(st.LastMessageID, since), 0
	for {
		page, err := g.sess.ChannelMessages(st.DMChannelID, backfillPageSize, "", cursor, "", discordgo.WithContext(ctx))
		if err != nil {
			return n, fmt.Errorf("read DM channel %s: %s", st.DMChannelID, restErrorSummary(err))
		}
		full := len(page) == backfillPageSize
		// Discord's order within a page is not guaranteed (newest first, in practice): oldest
		// first by id.
		page = slices.DeleteFunc(page, func(m *discordgo.Message) bool { return m == nil })
		slices.SortFunc(page, func(a, b *discordgo.Message) int { return compareSnowflakes(a.ID, b.ID) })
		advanced := false
		for _, m := range page {
			if compareSnowflakes(m.ID, cursor) <= 0 {
				continue
			}
			cursor, advanced = m.ID, true
			if m.Author == nil || m.Author.ID != userID {
				continue // the bot's own messages
			}
			if g.enqueue(ctx, m, true) {
				n++
			}
		}
		if !advanced || !full || ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
}

// backfillHold bounds how long a live DM waits for a backfill pass to queue older ones.
const backfillHold = 20 * time.Second

// backfillGapMargin is read before a gap's start, for clocks that differ and events in flight.
const backfillGapMargin = 30 * time.Second

// backfillFrom is the id a conversation's backfill reads after: the newest message it took, or,
// when the gateway knows when its gap began and that is earlier, that moment less a margin. A
// live DM that arrives after the gap, before the backfill reads the conversation, moves its
// newest message past the ones the gap lost; the gap's start does not move. What is read twice
// is dropped by the conversation's de-duplication.
func backfillFrom(lastMessageID string, gapStart time.Time) string {
	if gapStart.IsZero() {
		return lastMessageID
	}
	gap := snowflakeAt(gapStart.Add(-backfillGapMargin))
	if compareSnowflakes(gap, lastMessageID) < 0 {
		return gap
	}
	return lastMessageID
}

// snowflakeAt is the smallest Discord id of a moment (ids hold milliseconds since 2015).
func snowflakeAt(t time.Time) string {
	const discordEpochMs = 1420070400000
	ms := t.UnixMilli() - discordEpochMs
	if ms < 0 {
		ms = 0
	}
	return strconv.FormatUint(uint64(ms)<<22, 10)
}

// compareSnowflakes orders Discord ids numerically (they are decimal and of varying length).
func compareSnowflakes(a, b string) int {
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

// onInteraction handles an interaction that came over the gateway and answers it through the
// REST callback, within Discord's 3 seconds.
func (g *gateway) onInteraction(ctx context.Context, ic *discordgo.InteractionCreate) {
	if ic.Interaction == nil {
		return
	}
	i := ic.Interaction
	g.wg.Go(func() {
		hctx, cancel := context.WithTimeout(ctx, interactionBudget)
		defer cancel()
		resp, err := g.h.handleInteraction(hctx, i)
		if err != nil {
			g.h.log.Warn("interaction not handled", "interaction_id", i.ID, "type", int(i.Type), "error", err)
			return
		}
		if err := g.sess.InteractionRespond(i, resp, discordgo.WithContext(ctx)); err != nil {
			g.h.log.Error("could not answer interaction", "interaction_id", i.ID, "response_type", int(resp.Type), "error", restErrorSummary(err))
		}
	})
}

// restErrorSummary describes a discordgo error without the request URL, which holds the
// interaction token.
func restErrorSummary(err error) string {
	var re *discordgo.RESTError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.Message != nil {
			return fmt.Sprintf("discord HTTP %d, code %d: %s", status, re.Message.Code, re.Message.Message)
		}
		return fmt.Sprintf("discord HTTP %d", status)
	}
	var rl *discordgo.RateLimitError
	if errors.As(err, &rl) {
		return "discord rate limit"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return "request failed: " + ue.Err.Error()
	}
	return "request failed"
}
