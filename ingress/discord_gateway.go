package ingress

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
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
	// laneHoldLimit bounds the DMs a lane keeps back for a backfill (it goes on taking DMs in
	// meanwhile); past it, the members held longest go, so memory stays bounded.
	laneHoldLimit = 4 * gatewayLaneBuffer
	// laneRecentIDs is how many of the DMs it delivered last a lane remembers, so as not to
	// signal again those a backfill reads again: more than a backfill reads back on a lane.
	laneRecentIDs = 4096
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
	g := newGateway(h, sess, cfg.ShardCount <= 1 || cfg.ShardID == 0)
	lanesCtx, stopLanes := context.WithCancel(ctx)
	g.startLanes(lanesCtx)
	g.wg.Go(func() { g.runChanges(lanesCtx) })
	if g.backfills {
		g.wg.Go(func() { g.runBackfills(lanesCtx) })
	}
	removeMsg := sess.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) { g.onMessage(lanesCtx, m) })
	removeInt := sess.AddHandler(func(_ *discordgo.Session, i *discordgo.InteractionCreate) { g.onInteraction(lanesCtx, i) })
	removeUpdate := sess.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageUpdate) { g.onChange(lanesCtx, m.Message, false) })
	removeDelete := sess.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageDelete) { g.onChange(lanesCtx, m.Message, true) })
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
		removeUpdate()
		removeDelete()
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
	// gen is the hold generation current when the DM was queued (see holds); heldAt is when its
	// lane first kept it back for a backfill, zero while it has not been.
	gen    uint64
	heldAt time.Time
}

// gateway dispatches gateway events.
type gateway struct {
	h     *discordHandler
	sess  *discordgo.Session
	lanes [gatewayLanes]chan dm
	wg    sync.WaitGroup
	// backfills is set on the shard that receives DMs; kick asks it for a backfill pass, and
	// holds keeps live DMs back until the pass has queued the older ones a gap hid. Other shards
	// hold nothing.
	backfills bool
	kick      chan struct{}
	holds     holds
	// changes are members' edits and deletions of DMs, passed on one at a time in the order
	// the gateway dispatched them.
	changes chan change

	// Seams for tests: deliver signals a DM (deliverDM), now and after are the clock, and
	// observe, when set, is told how many DMs a lane keeps back each time it goes idle.
	deliver func(context.Context, dm)
	now     func() time.Time
	after   func(time.Duration) (<-chan time.Time, func() bool)
	observe func(lane, waiting int)
}

func newGateway(h *discordHandler, sess *discordgo.Session, backfills bool) *gateway {
	g := &gateway{h: h, sess: sess, backfills: backfills, kick: make(chan struct{}, 1), now: time.Now,
		changes: make(chan change, gatewayLaneBuffer)}
	g.holds.log = h.log
	g.deliver = g.deliverDM
	g.after = func(d time.Duration) (<-chan time.Time, func() bool) {
		t := time.NewTimer(d)
		return t.C, t.Stop
	}
	return g
}

func (g *gateway) startLanes(ctx context.Context) {
	for n := range g.lanes {
		ch := make(chan dm, gatewayLaneBuffer)
		g.lanes[n] = ch
		g.wg.Go(func() { g.runLane(ctx, n, ch) })
	}
}

// runLane delivers the DMs queued on one lane. A live DM that came after a gateway gap may have
// older ones the gap hid, which the backfill that follows fetches; so while its member is held
// (see holds) the lane keeps it aside, goes on taking DMs in, and delivers each member's DMs,
// in id order, as soon as that member is released. One held member does not hold back the
// other members of the lane, nor the backfill queueing their older DMs on it.
func (g *gateway) runLane(ctx context.Context, lane int, ch chan dm) {
	var waiting []dm
	delivered := newRecentIDs(laneRecentIDs)
	for {
		ready, rest, changed, deadline := g.holds.sortOut(waiting, ch, g.now())
		waiting = rest
		if len(ready) > 0 {
			for _, d := range ready {
				// A backfill reads again DMs that came live (and the other way round): the
				// conversation would drop them as seen, but each is a signal to Temporal, and
				// after a gap, when a pass reads many channels at once, Temporal is often busy.
				if delivered.has(d.msg.ID) {
					continue
				}
				g.deliver(ctx, d)
				if ctx.Err() == nil {
					delivered.add(d.msg.ID)
				}
			}
			continue // more may have come in, or been released, meanwhile
		}
		if len(waiting) == 0 {
			changed = nil // a release concerns this lane only while it holds DMs
		}
		if g.observe != nil {
			g.observe(lane, len(waiting))
		}
		var timeout <-chan time.Time
		stop := func() bool { return false }
		if !deadline.IsZero() {
			timeout, stop = g.after(deadline.Sub(g.now()))
		}
		select {
		case <-ctx.Done():
			stop()
			if len(waiting) > 0 {
				g.h.log.Warn("DMs held for a backfill not delivered: shutting down", "lane", lane, "dms", len(waiting))
			}
			return
		case d := <-ch:
			waiting = append(waiting, d)
		case <-changed:
		case <-timeout:
		}
		stop()
	}
}

// recentIDs remembers the last ids added to it, up to a number.
type recentIDs struct {
	ids  []string
	next int
	set  map[string]bool
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{ids: make([]string, n), set: make(map[string]bool, n)}
}

func (r *recentIDs) has(id string) bool { return r.set[id] }

func (r *recentIDs) add(id string) {
	if r.set[id] {
		return
	}
	delete(r.set, r.ids[r.next])
	r.ids[r.next] = id
	r.set[id] = true
	r.next = (r.next + 1) % len(r.ids)
}

// laneOf is the lane of a member's DMs.
func laneOf(userID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(userID))
	return int(h.Sum32() % gatewayLanes)
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
	d := dm{msg: m, backfill: backfill}
	if !backfill {
		d.gen = g.holds.queued(m.Author.ID, m.ChannelID) // the gaps before it are those requested so far
	}
	select {
	case g.lanes[laneOf(m.Author.ID)] <- d:
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
// backoff for as long as it takes (at least the Retry-After of a busy refusal), holding the
// member's lane so their later messages wait behind it. Only a DM that can never be taken
// (Temporal refuses it as invalid) is given up, and the member is asked by DM to send it again.
func (g *gateway) deliverDM(ctx context.Context, d dm) {
	m := d.msg
	member := workflows.Member{UserID: m.Author.ID, Username: m.Author.Username, DisplayName: m.Author.GlobalName}
	sig := workflows.UserMessageSignal{
		EventID: m.ID, Member: member, ChannelID: m.ChannelID, Text: m.Content,
		WantsHuman: i18n.WantsHuman(m.Content), Backfill: d.backfill,
	}
	for _, a := range m.Attachments {
		if a != nil && a.URL != "" {
			// Links for conversations started before files were passed on; files for the rest.
			sig.Attachments = append(sig.Attachments, a.URL)
			sig.Files = append(sig.Files, workflows.Attachment{
				ID: a.ID, Name: a.Filename, ContentType: a.ContentType, Size: int64(a.Size), URL: a.URL,
			})
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
		// A busy refusal says how long the workers need to catch up: retrying sooner would
		// only be refused again.
		wait := max(backoff, RetryAfter(err))
		log.Warn("DM signal failed, retrying", "attempt", attempt, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
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
// unknown), and holds live DMs until it has read their member's conversation. Requests made
// while one is waiting to start are one, reading from the oldest gap.
func (g *gateway) requestBackfill(gapStart time.Time) {
	if !g.backfills {
		return
	}
	g.holds.hold(gapStart)
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// holdLive holds the live DMs that come from now on until the backfill pass that follows the
// reconnect has read their member's conversation (each at most backfillHold).
func (g *gateway) holdLive() {
	if g.backfills {
		g.holds.hold(time.Time{})
	}
}

// runBackfills runs a backfill pass over every open conversation on each request, and passes
// over the conversations a pass could not read, a while later, a bounded number of times.
func (g *gateway) runBackfills(ctx context.Context) {
	var retry *time.Timer
	var retryIDs []string // nil: the whole list
	var retryGen uint64
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
		var gen uint64
		var since time.Time
		if ids != nil {
			// A retry of the conversations a pass could not read: it reads from the gap that
			// pass read from, and ends the hold of that pass's generation. (A request since then
			// has left its gap start for the full pass it kicked.)
			gen, since = retryGen, retrySince
		} else {
			gen, since = g.holds.beginPass()
			if retried {
				since = olderGap(since, retrySince) // the list failed: read from the first gap too
			}
		}
		failed, listFailed := g.backfill(ctx, gen, ids, since)
		retryGen, retrySince = gen, since
		done := ctx.Err() != nil || (!listFailed && len(failed) == 0)
		gaveUp := false
		if !done {
			if rounds++; rounds > backfillRetries {
				g.h.log.Error("DM backfill gave up on conversations it could not read", "conversations", len(failed), "list_failed", listFailed)
				gaveUp = true
			}
		}
		if done || gaveUp {
			// What the passes found is queued: the live DMs held for them may go. (While a
			// conversation cannot be read, its member's live DMs wait, at most backfillHold.)
			g.holds.finish(gen)
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

// backfill signals, for each open conversation (ids, or all of them when ids is nil), the DMs
// its member sent after the newest one it took, and releases the member's held live DMs as soon
// as its conversation is read (see holds; gen is the pass's generation). Members with held DMs
// go first: when the gap's start is known, their DM channels are read from it at once, without
// waiting for their conversation to answer (quickReads); otherwise their conversations are read
// first. It returns the members whose conversation it could not read, or listFailed when it
// could not list the conversations at all.
func (g *gateway) backfill(ctx context.Context, gen uint64, ids []string, since time.Time) (failed []string, listFailed bool) {
	start := time.Now()
	if ids == nil {
		var err error
		if ids, err = g.h.s.ListOpenConversations(ctx); err != nil {
			g.h.log.Warn("DM backfill: cannot list open conversations", "error", err)
			return nil, true
		}
		g.holds.listed(gen, ids)
	}
	var quick quickStats
	queue := newPassQueue(ids)
	wanted := func() (string, bool) {
		m, more := g.holds.nextWanted(queue.has)
		return m.id, more == nil
	}
	if !since.IsZero() {
		// Only members the pass has listed: what a member without an open conversation sent
		// before would start a new one.
		listed := make(map[string]bool, len(ids))
		for _, id := range ids {
			listed[id] = true
		}
		qctx, stopQuick := context.WithCancel(ctx)
		var qwg sync.WaitGroup
		qwg.Go(func() { quick = g.quickReads(qctx, since, func(id string) bool { return listed[id] }) })
		defer func() {
			stopQuick()
			qwg.Wait()
			if quick.read+quick.failed > 0 {
				g.h.log.Info("DM backfill: DM channels of held members read from the gap", "channels", quick.read,
					"messages_signalled", quick.messages, "channels_failed", quick.failed, "hold_generation", gen)
			}
		}()
		wanted = func() (string, bool) { return "", false }
	}
	var (
		mu                         sync.Mutex
		wg                         sync.WaitGroup
		messages, withGap, skipped int
		sem                        = make(chan struct{}, backfillConcurrency)
	)
loop:
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		id, ok := queue.take(wanted)
		if !ok {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			readGen, readSince, quickFrom, skip := g.holds.readStart(id, since)
			if skip {
				mu.Lock()
				skipped++
				mu.Unlock()
				return
			}
			n, err := g.backfillConversation(ctx, id, readSince, quickFrom)
			if err == nil {
				g.holds.release(readGen, id) // what it found is on the member's lane
			}
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
		"messages_signalled", messages, "conversations_failed", len(failed), "already_read", skipped,
		"hold_generation", gen, "duration", time.Since(start).Round(time.Millisecond))
	return failed, false
}

// quickStats counts the quick reads of a pass.
type quickStats struct{ read, failed, messages int }

// quickReads reads, while the pass runs, the DM channel of each member whose live DMs are held
// and whose conversation is listed as open (listed), from the gap's start (since, or an older one
// requested since), and releases the member once what it found is queued. It does not wait for
// the member's conversation, whose status query is slow exactly when the pass is (a worker
// restarting, Temporal busy): the channel is the held DM's. What a member sent before the gap
// came live; what an earlier gap hid, if an earlier pass could not read it, is read by the read
// of their conversation that follows, up to where this one began (see backfillConversation).
func (g *gateway) quickReads(ctx context.Context, since time.Time, listed func(string) bool) (stats quickStats) {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, backfillConcurrency)
	)
	defer wg.Wait()
	for {
		m, more := g.holds.nextWanted(listed)
		if more != nil {
			select {
			case <-ctx.Done():
				return
			case <-more:
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			gen, from, skip := g.holds.quickStart(m.id, since)
			if skip {
				return
			}
			cursor := snowflakeAt(from.Add(-backfillGapMargin))
			n, err := g.readChannel(ctx, m.id, m.channelID, cursor, "")
			if err == nil {
				g.holds.quickRelease(gen, m.id, cursor)
			}
			mu.Lock()
			defer mu.Unlock()
			stats.messages += n
			switch {
			case err == nil:
				stats.read++
			case ctx.Err() == nil: // (not: the pass ended first)
				stats.failed++
				g.h.log.Warn("DM backfill: DM channel not read from the gap", "member", m.id, "error", err)
			}
		})
	}
}

// passQueue hands out the conversations of a pass, each once: first the members whose live DMs
// are held, as they come up, then the rest in list order.
type passQueue struct {
	ids  []string
	next int
	left map[string]bool
}

func newPassQueue(ids []string) *passQueue {
	q := &passQueue{ids: ids, left: make(map[string]bool, len(ids))}
	for _, id := range ids {
		q.left[id] = true
	}
	return q
}

// has reports whether id is still to be read.
func (q *passQueue) has(id string) bool { return q.left[id] }

// take returns the next conversation to read, preferring those wanted names.
func (q *passQueue) take(wanted func() (string, bool)) (string, bool) {
	for {
		id, ok := wanted()
		if !ok {
			break
		}
		if q.left[id] {
			delete(q.left, id)
			return id, true
		}
	}
	for q.next < len(q.ids) {
		id := q.ids[q.next]
		q.next++
		if q.left[id] {
			delete(q.left, id)
			return id, true
		}
	}
	return "", false
}

// holds decides, on the shard that backfills, which live DMs wait for a backfill pass.
//
// Each disconnect, READY and RESUMED starts a new generation. A live DM queued in generation n
// may have older DMs of its member that a gap up to then hid, so it waits until one of:
//   - the member is released in the current generation: the backfill has read their
//     conversation (release), or their DM channel from the gap's start (quickRelease), after
//     the generation began and queued what it found on their lane; or the pass's list of open
//     conversations is known and holds none of theirs (listed);
//   - a pass begun in generation n or later has ended, or given up (finish);
//   - it has waited backfillHold, or its lane holds more than laneHoldLimit.
//
// A new generation forgets the releases of the one before: a gap that began after a member's
// conversation was read may hide newer DMs of theirs, so their DMs from then on wait for the
// next read. A read that starts after the request, even by a pass begun before it, counts: it
// reads from the oldest gap requested so far (readStart).
type holds struct {
	log *slog.Logger

	mu sync.Mutex
	// since is the oldest gap start not yet taken by a full pass (zero: unknown).
	since time.Time
	// gen is the current generation (0 until the first hold); finished is the newest whose
	// pass has ended. While finished < gen a pass is pending or running and DMs are held.
	gen, finished uint64
	// Of the current generation: the members with an open conversation (nil until listed),
	// those whose conversation has been read, those released (read, or their DM channel read
	// from the gap: quick holds where that read began, see quickReads), and those with held DMs
	// not yet handed to the pass (wanted, in the order they were held; noted: ever added).
	open, read, released, noted map[string]bool
	quick                       map[string]string
	wanted                      []heldMember
	// changed is closed, and replaced, whenever held DMs may have been released; moreWanted
	// has a value when members were added to wanted.
	changed    chan struct{}
	moreWanted chan struct{}
	stats      holdStats
}

// heldMember is a member with held DMs, and their DM channel.
type heldMember struct{ id, channelID string }

// holdStats is what happened to held DMs since the last report.
type holdStats struct {
	start         time.Time // when the first of them was held
	held, waiting int       // DMs held since start; DMs held now (whenever they were held)
	// Released, by why, and how long they had waited.
	afterBackfill, noConversation, passEnded, atDeadline, overLimit int
	waited, longest                                                 time.Duration
}

// holdReportEvery is how often a hold that goes on (gaps one after another) is reported.
const holdReportEvery = time.Minute

// hold starts a new generation, merging gapStart (zero: not known) into the gap the next full
// pass reads from.
func (h *holds) hold(gapStart time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.since = olderGap(h.since, gapStart)
	h.gen++
	h.open, h.read, h.released, h.noted, h.quick, h.wanted = nil, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]string{}, nil
	h.notifyLocked() // lanes note their held members again, for the next pass to read first
}

// beginPass returns the generation a full pass serves and the gap it reads from, which it takes.
func (h *holds) beginPass() (gen uint64, since time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	since, h.since = h.since, time.Time{}
	return h.gen, since
}

// listed records the open conversations a pass of generation gen found: members without one
// have nothing to backfill, so they are released.
func (h *holds) listed(gen uint64, ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen || h.finished >= gen {
		return
	}
	h.open = make(map[string]bool, len(ids))
	for _, id := range ids {
		h.open[id] = true
	}
	h.notifyLocked()
}

// readStart is called as a pass starts reading a member's conversation. It returns the
// generation the read counts for, the gap to read from (the pass's, or an older one requested
// since: a pass started before a request also covers that request's gap) and where a quick read
// of this generation began (""), or skip when the conversation has been read in this
// generation already.
func (h *holds) readStart(member string, passSince time.Time) (gen uint64, since time.Time, quick string, skip bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.read[member] {
		return 0, time.Time{}, "", true
	}
	return h.gen, olderGap(passSince, h.since), h.quick[member], false
}

// quickStart is called as a quick read of a member's DM channel starts: like readStart, but it
// skips members released already, and needs a gap start.
func (h *holds) quickStart(member string, passSince time.Time) (gen uint64, since time.Time, skip bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	since = olderGap(passSince, h.since)
	if h.released[member] || h.finished >= h.gen || since.IsZero() {
		return 0, time.Time{}, true
	}
	return h.gen, since, false
}

// release records that a read begun in generation gen queued what it found on the member's
// lane: the member's held DMs may go, unless a new generation has begun since.
func (h *holds) release(gen uint64, member string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen || h.finished >= gen {
		return
	}
	h.read[member], h.released[member] = true, true
	h.notifyLocked()
}

// quickRelease records that a quick read begun in generation gen queued what the member sent
// after cursor: the member's held DMs may go; the read of their conversation that follows needs
// to read up to cursor only.
func (h *holds) quickRelease(gen uint64, member, cursor string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen || h.finished >= gen {
		return
	}
	h.released[member], h.quick[member] = true, cursor
	h.notifyLocked()
}

// finish records that the pass of generation gen has ended: the DMs held in it and before go.
func (h *holds) finish(gen uint64) {
	h.mu.Lock()
	if gen > h.finished {
		h.finished = gen
		h.notifyLocked()
	}
	report := h.takeReportLocked(time.Now())
	h.mu.Unlock()
	if report != nil {
		report.log(h.log)
	}
}

// takeReportLocked returns, and starts afresh, the stats of a hold that is over (no pass
// pending, no DM held) or has gone on for holdReportEvery; nil otherwise, or when it held
// nothing.
func (h *holds) takeReportLocked(now time.Time) *holdStats {
	s := h.stats
	over := s.waiting == 0 && h.finished >= h.gen
	if (s.held == 0 && s.released() == 0) || (!over && now.Sub(s.start) < holdReportEvery) {
		return nil
	}
	h.stats = holdStats{waiting: s.waiting}
	if !over {
		h.stats.start = now
	}
	return &s
}

// nextWanted takes the first member whose DMs are held that a pass accepts (one whose
// conversation it has listed), for it to read first; or, when there is none now, returns a
// channel that has a value once there may be.
func (h *holds) nextWanted(accept func(member string) bool) (heldMember, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, m := range h.wanted {
		if accept(m.id) {
			h.wanted = slices.Delete(h.wanted, i, i+1)
			return m, nil
		}
	}
	return heldMember{}, h.moreWantedLocked()
}

func (h *holds) moreWantedLocked() chan struct{} {
	if h.moreWanted == nil {
		h.moreWanted = make(chan struct{}, 1)
	}
	return h.moreWanted
}

// queued returns the generation of a live DM of member's queued now, and, while a pass is
// pending, notes the member for it to read first (their lane may be busy delivering for a
// while before it looks at the DM).
func (h *holds) queued(member, channelID string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished < h.gen && !h.released[member] && (h.open == nil || h.open[member]) {
		h.wantLocked(member, channelID)
	}
	return h.gen
}

// wantLocked adds a member with held DMs to wanted, once per generation.
func (h *holds) wantLocked(member, channelID string) {
	if h.noted[member] {
		return
	}
	h.noted[member] = true
	h.wanted = append(h.wanted, heldMember{member, channelID})
	select {
	case h.moreWantedLocked() <- struct{}{}:
	default:
	}
}

func (h *holds) notifyLocked() {
	if h.changed != nil {
		close(h.changed)
	}
	h.changed = make(chan struct{})
}

// Why a held DM went.
const (
	releasedAfterBackfill = iota
	releasedNoConversation
	releasedPassEnded
	releasedAtDeadline
	releasedOverLimit
)

// sortOut moves the DMs queued in ch (a lane's channel, which only its lane receives from) to
// waiting and splits waiting into the DMs that may be delivered now, each member's in id
// order, and those that must wait still. It returns a channel that is closed when some may be
// released, and the earliest hold deadline of those that wait (zero: none).
func (h *holds) sortOut(waiting []dm, ch chan dm, now time.Time) (ready, rest []dm, changed <-chan struct{}, deadline time.Time) {
	h.mu.Lock()
	// Under the lock: a release comes after the backfill it releases has been queued, so all
	// that backfill is taken in here, to go with (or before) the live DMs it releases.
	for n := len(ch); n > 0; n-- {
		waiting = append(waiting, <-ch)
	}
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	changed = h.changed
	if len(waiting) == 0 {
		h.mu.Unlock()
		return nil, nil, changed, time.Time{}
	}
	var members []string
	byMember := map[string][]dm{}
	for _, d := range waiting {
		id := d.msg.Author.ID
		if _, ok := byMember[id]; !ok {
			members = append(members, id)
		}
		byMember[id] = append(byMember[id], d)
	}
	type heldGroup struct {
		member string
		dms    []dm // from the first held DM on
		oldest time.Time
	}
	var held []heldGroup
	for _, member := range members {
		dms := byMember[member]
		slices.SortStableFunc(dms, func(a, b dm) int { return compareSnowflakes(a.msg.ID, b.msg.ID) })
		free := h.finished >= h.gen || h.released[member] || (h.open != nil && !h.open[member])
		first := slices.IndexFunc(dms, func(d dm) bool { return !d.backfill && !free && d.gen > h.finished })
		if first < 0 {
			ready = h.releaseLocked(ready, dms, member, -1, now)
			continue
		}
		// The member's older DMs, backfilled or of a generation whose pass has ended, go ahead.
		ready = h.releaseLocked(ready, dms[:first], member, -1, now)
		g := heldGroup{member: member, dms: dms[first:]}
		for i := range g.dms {
			d := &g.dms[i]
			if d.backfill {
				continue
			}
			if d.heldAt.IsZero() {
				d.heldAt = now
				if h.stats.start.IsZero() {
					h.stats.start = now
				}
				h.stats.held++
				h.stats.waiting++
			}
			if g.oldest.IsZero() || d.heldAt.Before(g.oldest) {
				g.oldest = d.heldAt
			}
		}
		if !now.Before(g.oldest.Add(backfillHold)) {
			ready = h.releaseLocked(ready, g.dms, member, releasedAtDeadline, now)
			continue
		}
		held = append(held, g)
	}
	// Too many held: the members held longest go.
	kept := 0
	for _, g := range held {
		kept += len(g.dms)
	}
	if kept > laneHoldLimit {
		slices.SortFunc(held, func(a, b heldGroup) int { return a.oldest.Compare(b.oldest) })
		for kept > laneHoldLimit && len(held) > 0 {
			ready = h.releaseLocked(ready, held[0].dms, held[0].member, releasedOverLimit, now)
			kept -= len(held[0].dms)
			held = held[1:]
		}
	}
	for _, g := range held {
		rest = append(rest, g.dms...)
		if d := g.oldest.Add(backfillHold); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
		if h.finished < h.gen {
			h.wantLocked(g.member, g.dms[0].msg.ChannelID)
		}
	}
	report := h.takeReportLocked(now)
	h.mu.Unlock()
	if report != nil {
		report.log(h.log)
	}
	return ready, rest, changed, deadline
}

// releaseLocked appends dms to ready, counting those that were held as released for why (-1:
// by the state of the hold).
func (h *holds) releaseLocked(ready, dms []dm, member string, why int, now time.Time) []dm {
	for _, d := range dms {
		if !d.heldAt.IsZero() {
			reason := why
			if reason < 0 {
				switch {
				case d.gen <= h.finished:
					reason = releasedPassEnded
				case h.released[member]:
					reason = releasedAfterBackfill
				default:
					reason = releasedNoConversation
				}
			}
			h.stats.count(reason, now.Sub(d.heldAt))
		}
		ready = append(ready, d)
	}
	return ready
}

func (s *holdStats) count(reason int, waited time.Duration) {
	s.waiting--
	s.waited += waited
	s.longest = max(s.longest, waited)
	switch reason {
	case releasedAfterBackfill:
		s.afterBackfill++
	case releasedNoConversation:
		s.noConversation++
	case releasedPassEnded:
		s.passEnded++
	case releasedAtDeadline:
		s.atDeadline++
	case releasedOverLimit:
		s.overLimit++
	}
}

func (s *holdStats) released() int {
	return s.afterBackfill + s.noConversation + s.passEnded + s.atDeadline + s.overLimit
}

// log reports a hold: at Warn when DMs went before their backfill had been queued (they may
// reach their conversation ahead of older ones).
func (s *holdStats) log(log *slog.Logger) {
	released := s.released()
	level := slog.LevelInfo
	if s.atDeadline+s.overLimit > 0 {
		level = slog.LevelWarn
	}
	var mean time.Duration
	if released > 0 {
		mean = s.waited / time.Duration(released)
	}
	log.Log(context.Background(), level, "live DMs held for the DM backfill",
		"held", s.held, "still_held", s.waiting, "released_after_their_backfill", s.afterBackfill,
		"released_no_open_conversation", s.noConversation, "released_at_pass_end", s.passEnded,
		"released_at_deadline", s.atDeadline, "released_over_lane_limit", s.overLimit,
		"mean_wait", mean.Round(time.Millisecond), "longest_wait", s.longest.Round(time.Millisecond))
}

// olderGap is the older of two gap starts, a zero one being unknown.
func olderGap(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// backfillConversation queues, oldest first and with Backfill set, the messages the member sent in
// their DM channel after the newest one their conversation took (or the gap's start, see
// backfillFrom), and returns how many. When a quick read has read the channel after quickFrom,
// it reads up to there only.
func (g *gateway) backfillConversation(ctx context.Context, userID string, since time.Time, quickFrom string) (int, error) {
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
	cursor := backfillFrom(st.LastMessageID, since)
	if quickFrom != "" && compareSnowflakes(cursor, quickFrom) >= 0 {
		return 0, nil // the quick read has read it all
	}
	return g.readChannel(ctx, userID, st.DMChannelID, cursor, quickFrom)
}

// readChannel queues, oldest first and with Backfill set, the messages the member sent in their
// DM channel after cursor (and up to upTo, when set), and returns how many.
func (g *gateway) readChannel(ctx context.Context, userID, channelID, cursor, upTo string) (int, error) {
	n := 0
	for {
		page, err := g.sess.ChannelMessages(channelID, backfillPageSize, "", cursor, "", discordgo.WithContext(ctx))
		if err != nil {
			return n, fmt.Errorf("read DM channel %s: %s", channelID, restErrorSummary(err))
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
			if upTo != "" && compareSnowflakes(m.ID, upTo) > 0 {
				return n, ctx.Err() // read already
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

// backfillHold bounds how long a live DM waits for the backfill to queue older ones of its
// member. Members are released one by one as their conversation is read, and those without an
// open conversation as soon as the pass has listed them, so the bound matters only for a member
// whose conversation cannot be read (no worker answers its status query, Discord fails) or when
// the machine is slow enough that the pass reaches them late: a pass over 120 conversations on a
// loaded machine has taken longer than the 20 s this used to be. While no worker answers, the
// conversation could not act on the DM anyway, and the pass's retries (1, 2, 4, 8, 16 s apart)
// mostly end within a minute; so a minute keeps the order in those cases too, at most a minute
// late for the few it holds, and still holds no one for ever.
const backfillHold = 60 * time.Second

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

// changeAttempts bounds the tries of signalling an edit or a deletion; it is a note in the
// transcript, not a message anyone waits for.
const changeAttempts = 5

// change is an edit or a deletion of a DM on its way to the member's conversation.
type change struct {
	sig       workflows.UserMessageChangedSignal
	channelID string
}

// onChange queues a member's edit or deletion of a DM for their conversation (runChanges).
func (g *gateway) onChange(ctx context.Context, m *discordgo.Message, deleted bool) {
	if m == nil || m.GuildID != "" || m.ID == "" {
		return
	}
	sig := workflows.UserMessageChangedSignal{MessageID: m.ID, Deleted: deleted, EventID: "delete:" + m.ID}
	if !deleted {
		if m.Author == nil || m.Author.Bot || m.Author.ID == g.botUserID() || m.EditedTimestamp == nil {
			return // not a member's edit (an embed unfurled, the bot's own message)
		}
		sig.Member = workflows.Member{UserID: m.Author.ID, Username: m.Author.Username, DisplayName: m.Author.GlobalName}
		sig.Text, sig.EventID = m.Content, "edit:"+m.ID+":"+m.EditedTimestamp.UTC().Format(time.RFC3339Nano)
	}
	select {
	case g.changes <- change{sig: sig, channelID: m.ChannelID}:
	case <-ctx.Done():
	}
}

// runChanges passes edits and deletions on, in order, to the members' conversations, if they
// run. A deletion does not say who wrote the message: the DM channel's recipient did.
func (g *gateway) runChanges(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-g.changes:
			g.passChange(ctx, c)
		}
	}
}

func (g *gateway) passChange(ctx context.Context, c change) {
	sig := c.sig
	if sig.Deleted {
		ch, err := g.sess.Channel(c.channelID, discordgo.WithContext(ctx))
		if err != nil || ch.Type != discordgo.ChannelTypeDM || len(ch.Recipients) == 0 {
			g.h.log.Warn("a deleted DM's channel could not be read; the deletion is not recorded", "message_id", sig.MessageID, "channel_id", c.channelID, "error", err)
			return
		}
		sig.Member = workflows.Member{UserID: ch.Recipients[0].ID}
	}
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		err := g.h.s.SignalConversation(ctx, sig.Member.UserID, workflows.SignalUserMessageChanged, sig)
		if _, gone := errors.AsType[*serviceerror.NotFound](err); err == nil || gone {
			return // recorded, or no conversation runs: nothing to record it in
		}
		if attempt == changeAttempts || ctx.Err() != nil {
			g.h.log.Warn("a member's edit or deletion was not recorded", "message_id", sig.MessageID, "member", sig.Member.UserID, "error", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}
