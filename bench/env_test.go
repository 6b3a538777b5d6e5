package bench

import (
	"context"
	"fmt"
	"github.com/flexcord/flexcord/worker"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/workflows"
)

// chat is one live chat between a member and an agent.
type chat struct {
	member    discordemu.Member
	taskSID   string
	convSID   string // the Flex conversation
	dmChannel string // the member's DM channel with the bot
	caseID    string
}

// path is one way of relaying (flexcord, or the direct relay) with its emulators and chats.
type path struct {
	name  string
	dc    *discordemu.Server
	tw    *twilioemu.Server
	chats []chat
	// hooks sees every answer to a Conversations webhook (ingress's, or the direct relay's).
	hooks *hookObserver
	// workflowIDs lists, per chat, the workflows whose histories count (flexcord only).
	workflowIDs func(c chat) []string
	// discordMark is the Discord emulator's last record seen by a reconciliation.
	discordMark int64
}

// env is the stack, the direct relay and the load generator's bookkeeping.
type env struct {
	st      *devstack.Stack
	direct  *directRelay
	tr      *tracker
	flex    *path
	dir     *path
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	logf    func(string, ...any)
	stopped bool
}

// benchLimits lifts the provider queues' rates: the emulators have no bot-wide limit, and the
// direct relay has none either, so flexcord is measured for its own cost. In production
// Discord's 50 requests/s per bot bound the messages to members whatever the design
// (FLEXCORD_DISCORD_RATE, README).
var benchLimits = worker.Limits{DiscordPerSecond: 100000, TwilioPerSecond: 100000, DiscordFastPerSecond: 100000, TwilioFastPerSecond: 100000}

// startEnv starts the flexcord stack and the direct relay, and subscribes to the four emulators.
func startEnv(ctx context.Context, logf func(string, ...any)) (*env, error) {
	e := &env{tr: newTracker(), logf: logf}
	hooks := &hookObserver{byToken: map[string]*hookStat{}}
	start := time.Now()
	st, err := devstack.Start(ctx, devstack.Options{ServerLogLevel: "fatal", IngressMiddleware: hooks.wrap, Limits: benchLimits,
		MaxBacklogAge: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("start the flexcord stack: %w", err)
	}
	e.st = st
	logf("flexcord stack up in %v (Temporal %s)", time.Since(start).Round(time.Millisecond), st.TemporalAddr)
	if e.direct, err = startDirect(ctx); err != nil {
		_ = st.Stop()
		return nil, err
	}
	e.flex = &path{name: "flexcord", dc: st.Discord, tw: st.Twilio, hooks: hooks,
		workflowIDs: func(c chat) []string {
			return []string{workflows.ConversationWorkflowID(c.member.ID), workflows.CaseWorkflowID(c.caseID)}
		}}
	e.dir = &path{name: "direct", dc: e.direct.dc, tw: e.direct.tw, hooks: e.direct.hooks}
	sctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	for _, p := range []*path{e.flex, e.dir} {
		e.watchDiscord(sctx, p.dc)
		e.watchTwilio(sctx, p.tw)
	}
	return e, nil
}

// Close stops everything.
func (e *env) Close() error {
	if e.stopped {
		return nil
	}
	e.stopped = true
	e.cancel()
	e.direct.Close()
	err := e.st.Stop()
	e.wg.Wait()
	return err
}

// watchDiscord records the arrival of every agent message relayed to a member's DM.
func (e *env) watchDiscord(ctx context.Context, dc *discordemu.Server) {
	events, stop := dc.Subscribe()
	e.wg.Go(func() {
		defer stop()
		var prev int64
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				e.tr.seqGap(prev, ev.Seq)
				prev = ev.Seq
				if ev.Type != discordemu.EventMessageCreate || ev.Record == nil || !ev.Record.FromBot {
					continue
				}
				if k, ok := parseTag(ev.Record.Message.Content); ok && k.dir == toMember {
					e.tr.arrive(k, ev.Time)
				}
			}
		}
	})
}

// watchTwilio records the arrival of every member message relayed to a Flex conversation.
func (e *env) watchTwilio(ctx context.Context, tw *twilioemu.Server) {
	events, stop := tw.Subscribe()
	e.wg.Go(func() {
		defer stop()
		var prev int64
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				e.tr.seqGap(prev, ev.Seq)
				prev = ev.Seq
				if ev.Type != twilioemu.EventMessageAdded || ev.Message == nil {
					continue
				}
				if k, ok := parseTag(ev.Message.Body); ok && k.dir == toAgent {
					e.tr.arrive(k, ev.Time)
				}
			}
		}
	})
}

// memberFor is the i-th benchmark member of a path.
func memberFor(base, i int) discordemu.Member {
	return discordemu.Member{
		ID: strconv.Itoa(base + i), Username: fmt.Sprintf("bench%d", i),
		GlobalName: fmt.Sprintf("Bench %d", i), Locale: "en-US",
	}
}

// growFlexcord brings flexcord's live chats up to n: each new member asks for a human in a DM,
// which opens a case and a Flex task, and an agent accepts it.
func (e *env) growFlexcord(ctx context.Context, n int) error {
	p := e.flex
	have := len(p.chats)
	if n <= have {
		return nil
	}
	start := time.Now()
	dc, tw := e.st.Discord, e.st.Twilio
	want := map[string]discordemu.Member{}
	for i := have; i < n; i++ {
		m := memberFor(1400000000000000000, i)
		dc.PutMember(m)
		want[m.ID] = m
		if _, err := dc.SendDM(m.ID, "I want to talk to a human"); err != nil {
			return err
		}
	}
	// Each member's waiting task, accepted as it appears.
	got := map[string]chat{}
	deadline := time.Now().Add(5*time.Minute + time.Duration(n)*200*time.Millisecond)
	for len(got) < len(want) {
		for _, task := range tw.Tasks(twilioemu.TaskWaiting) {
			id, _ := task.Attributes["discord_user_id"].(string)
			m, ok := want[id]
			if !ok {
				continue
			}
			if _, done := got[id]; done {
				continue
			}
			if _, err := tw.AcceptTask(task.SID, directAgentName); err != nil {
				return fmt.Errorf("accept the task of %s: %w", id, err)
			}
			caseID, _ := task.Attributes["case_id"].(string)
			dm, err := dc.DMChannel(id)
			if err != nil {
				return err
			}
			got[id] = chat{member: m, taskSID: task.SID, convSID: task.ConversationSID, dmChannel: dm, caseID: caseID}
		}
		if len(got) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d members got a Flex task", len(got), len(want))
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	// The chats are live once each member was told the agent joined.
	for {
		joined := map[string]bool{}
		for _, r := range dc.BotMessages() {
			if strings.Contains(r.Message.Content, directAgentName+" joined") {
				joined[r.Message.ChannelID] = true
			}
		}
		missing := 0
		for _, c := range got {
			if !joined[c.dmChannel] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d members were never told the agent joined", missing, len(got))
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
	for i := have; i < n; i++ {
		p.chats = append(p.chats, got[memberFor(1400000000000000000, i).ID])
	}
	e.logf("flexcord: %d live chats (+%d in %v)", n, n-have, time.Since(start).Round(time.Millisecond))
	return nil
}

// growDirect brings the direct relay's live chats up to n.
func (e *env) growDirect(ctx context.Context, n int) error {
	p := e.dir
	have := len(p.chats)
	if n <= have {
		return nil
	}
	start := time.Now()
	chats := make([]chat, n-have)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range chats {
		g.Go(func() error {
			c, err := e.direct.addChat(gctx, memberFor(1500000000000000000, have+i), fmt.Sprintf("C-D%05d", have+i))
			chats[i] = c
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	p.chats = append(p.chats, chats...)
	e.logf("direct: %d live chats (+%d in %v)", n, n-have, time.Since(start).Round(time.Millisecond))
	return nil
}

// hookObserver records ingress's answers to Conversations webhooks, by the webhook's
// idempotency token (the same on every attempt).
type hookObserver struct {
	mu      sync.Mutex
	byToken map[string]*hookStat
}

// hookStat is what ingress answered to the attempts of one webhook.
type hookStat struct {
	attempts int
	// refused counts 429 and 503 answers, noRetryAfter those of them without Retry-After.
	refused, noRetryAfter int
	other                 int // any other non-2xx answer
}

func (h *hookObserver) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/twilio/conversations" {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		token := r.Header.Get("I-Twilio-Idempotency-Token")
		h.mu.Lock()
		defer h.mu.Unlock()
		s := h.byToken[token]
		if s == nil {
			s = &hookStat{}
			h.byToken[token] = s
		}
		s.attempts++
		switch status := sw.code(); {
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			s.refused++
			if sw.retryAfter == "" {
				s.noRetryAfter++
			}
		case status < 200 || status > 299:
			s.other++
		}
	})
}

// stat returns a copy of what ingress answered to the webhook with this token.
func (h *hookObserver) stat(token string) hookStat {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.byToken[token]; s != nil {
		return *s
	}
	return hookStat{}
}

// statusWriter remembers the status and the Retry-After header of an answer.
type statusWriter struct {
	http.ResponseWriter
	status     int
	retryAfter string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.retryAfter = w.Header().Get("Retry-After")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
