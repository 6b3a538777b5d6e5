package ingress

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/workflows"
)

// Gateway delivery tuning.
const (
	// gatewayLanes is how many DMs are signalled at once. DMs of one member always share a lane,
	// so they reach their Conversation in the order the member sent them.
	gatewayLanes = 16
	// gatewayLaneBuffer is how many DMs a lane holds before the gateway reader waits for it.
	gatewayLaneBuffer = 256
	// dmAttempts and dmBackoff bound the retries of a DM signal that failed (busy, Temporal
	// unreachable): the gateway does not re-send events, so ingress retries before giving up.
	dmAttempts   = 6
	dmBackoff    = 250 * time.Millisecond
	dmMaxBackoff = 4 * time.Second
)

// RunDiscordGateway connects cfg.Session to the Discord gateway and turns direct messages from
// members into UserMessage signals, and interactions (when no interactions endpoint URL is
// configured, Discord sends them here) into the same signals and workflow starts as the HTTP
// endpoint. It returns when ctx is done, after closing the session.
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
	g := &gateway{h: h, sess: sess}
	lanesCtx, stopLanes := context.WithCancel(ctx)
	g.startLanes(lanesCtx)
	removeMsg := sess.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) { g.onMessage(lanesCtx, m) })
	removeInt := sess.AddHandler(func(_ *discordgo.Session, i *discordgo.InteractionCreate) { g.onInteraction(lanesCtx, i) })
	removeReady := sess.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) {
		h.log.Info("discord gateway ready", "bot_user_id", r.User.ID, "shard_id", cfg.ShardID, "shard_count", max(cfg.ShardCount, 1))
	})
	defer func() {
		removeMsg()
		removeInt()
		removeReady()
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

// gateway dispatches gateway events.
type gateway struct {
	h     *discordHandler
	sess  *discordgo.Session
	lanes [gatewayLanes]chan *discordgo.MessageCreate
	wg    sync.WaitGroup
}

func (g *gateway) startLanes(ctx context.Context) {
	for n := range g.lanes {
		ch := make(chan *discordgo.MessageCreate, gatewayLaneBuffer)
		g.lanes[n] = ch
		g.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-ch:
					g.deliverDM(ctx, m)
				}
			}
		})
	}
}

// onMessage queues a member's DM on the member's lane. Messages in guilds, from bots and from
// the bot itself are ignored.
func (g *gateway) onMessage(ctx context.Context, m *discordgo.MessageCreate) {
	if m.Message == nil || m.Author == nil || m.Author.Bot || m.GuildID != "" {
		return
	}
	if m.Author.ID == g.botUserID() {
		return
	}
	if m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply {
		return
	}
	if m.Content == "" && len(m.Attachments) == 0 {
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(m.Author.ID))
	select {
	case g.lanes[h.Sum32()%gatewayLanes] <- m:
	case <-ctx.Done():
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

// deliverDM signals a DM to the member's Conversation, retrying with backoff for a while: the
// gateway will not deliver the event again.
func (g *gateway) deliverDM(ctx context.Context, m *discordgo.MessageCreate) {
	member := workflows.Member{UserID: m.Author.ID, Username: m.Author.Username, DisplayName: m.Author.GlobalName}
	sig := workflows.UserMessageSignal{EventID: m.ID, Member: member, ChannelID: m.ChannelID, Text: m.Content}
	for _, a := range m.Attachments {
		if a != nil && a.URL != "" {
			sig.Attachments = append(sig.Attachments, a.URL)
		}
	}
	backoff := dmBackoff
	for attempt := 1; ; attempt++ {
		err := g.h.s.StartConversation(ctx, member, "", "", "", workflows.SignalUserMessage, sig)
		if err == nil {
			return
		}
		if attempt == dmAttempts || ctx.Err() != nil {
			g.h.log.Error("DM not delivered to its conversation", "message_id", m.ID, "member", member.UserID, "attempts", attempt, "error", err)
			return
		}
		g.h.log.Warn("DM signal failed, retrying", "message_id", m.ID, "member", member.UserID, "attempt", attempt, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			g.h.log.Error("DM not delivered to its conversation: shutting down", "message_id", m.ID, "member", member.UserID)
			return
		case <-t.C:
		}
		backoff = min(2*backoff, dmMaxBackoff)
	}
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
