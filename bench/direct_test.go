package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	twclient "github.com/twilio/twilio-go/client"
	conversations "github.com/twilio/twilio-go/rest/conversations/v1"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

// directLanes is how many member DMs the direct relay posts at once; like ingress's gateway
// lanes, one member's DMs always share a lane, so they stay in order.
const directLanes = 16

// directAgentName is the name the direct relay shows before an agent's text, as flexcord shows
// the name the agent joined with.
const directAgentName = "Ana"

// directRelay is the baseline: the relay with no Temporal in between. A member's DM arrives over
// its own discordgo session on its own Discord emulator's gateway, is filtered as ingress
// filters DMs, and is posted to the member's Flex conversation with twilio-go (the call
// activities.Flex.PostFlexMessage makes). An agent's message arrives as a signed Conversations
// webhook, is verified with twilio-go's RequestValidator and filtered as ingress filters
// webhooks, and is sent to the member's DM with discordgo before the webhook is answered.
type directRelay struct {
	dc  *discordemu.Server
	tw  *twilioemu.Server
	url string // where the webhook handler listens

	rc        *twilioclient.RestClient
	flex      *activities.Flex // only to set conversations up, as flexcord does
	sess      *discordgo.Session
	validator twclient.RequestValidator
	srv       *http.Server
	hooks     *hookObserver
	lanes     [directLanes]chan *discordgo.Message
	wg        sync.WaitGroup
	ctx       context.Context
	cancel    context.CancelFunc
	botID     atomic.Value // string

	mu         sync.RWMutex
	convByUser map[string]string // member → Flex conversation SID
	dmByUser   map[string]string // member → DM channel id

	// postErrors and dmErrors count failed calls (each retried); badSignatures counts webhooks
	// refused for their signature.
	postErrors, dmErrors, badSignatures atomic.Int64
}

// startDirect starts the direct relay with an emulator pair of its own.
func startDirect(ctx context.Context) (*directRelay, error) {
	discard := slog.New(slog.DiscardHandler)
	r := &directRelay{convByUser: map[string]string{}, dmByUser: map[string]string{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	var err error
	if r.dc, err = discordemu.New(discordemu.Options{Logger: discard}); err != nil {
		return nil, fmt.Errorf("direct relay's Discord emulator: %w", err)
	}
	if err := r.dc.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	r.tw, err = twilioemu.New(twilioemu.Options{
		AccountSID: devstack.SandboxTwilioAccountSID, AuthToken: devstack.SandboxTwilioAuthToken,
		WorkspaceSID: devstack.SandboxTwilioWorkspaceSID, WorkflowSID: devstack.SandboxTwilioWorkflowSID,
		Logger: discard,
	})
	if err != nil {
		_ = r.dc.Close()
		return nil, fmt.Errorf("direct relay's Twilio emulator: %w", err)
	}
	if err := r.tw.Start("127.0.0.1:0"); err != nil {
		_ = r.dc.Close()
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Close()
		return nil, err
	}
	r.url = "http://" + ln.Addr().String()
	r.validator = twclient.NewRequestValidator(devstack.SandboxTwilioAuthToken)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /twilio/conversations", r.webhook)
	r.hooks = &hookObserver{byToken: map[string]*hookStat{}}
	r.srv = &http.Server{Handler: r.hooks.wrap(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()

	r.rc = twilioclient.New(twilioclient.Credentials{
		AccountSID: devstack.SandboxTwilioAccountSID, AuthToken: devstack.SandboxTwilioAuthToken,
	}, r.tw.Transport())
	ws := r.tw.Workspace()
	r.flex = activities.NewFlex(r.rc, activities.FlexConfig{
		WorkspaceSID: ws.SID, WorkflowSID: ws.WorkflowSID, WebhookURL: r.url + "/twilio/conversations",
	}, discard)

	if r.sess, err = discordsession.New(r.dc.Token(), r.dc.Transport()); err != nil {
		r.Close()
		return nil, err
	}
	// A plain discordgo bot: events in order (the lanes below do the concurrency) and
	// discordgo's own waiting out of rate limits.
	r.sess.SyncEvents = true
	r.sess.ShouldRetryOnRateLimit = true
	for i := range r.lanes {
		ch := make(chan *discordgo.Message, 256)
		r.lanes[i] = ch
		r.wg.Go(func() { r.runLane(ch) })
	}
	ready := make(chan struct{})
	r.sess.AddHandlerOnce(func(_ *discordgo.Session, ev *discordgo.Ready) {
		r.botID.Store(ev.User.ID)
		close(ready)
	})
	r.sess.AddHandler(r.onMessage)
	if err := r.sess.Open(); err != nil {
		r.Close()
		return nil, fmt.Errorf("direct relay's gateway: %w", err)
	}
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		r.Close()
		return nil, errors.New("direct relay: the gateway did not say READY within 30 s")
	case <-ctx.Done():
		r.Close()
		return nil, ctx.Err()
	}
	return r, nil
}

// Close stops the relay and its emulators.
func (r *directRelay) Close() {
	if r.sess != nil {
		_ = r.sess.Close()
	}
	r.cancel()
	r.wg.Wait()
	if r.srv != nil {
		_ = r.srv.Close()
	}
	_ = r.tw.Close()
	_ = r.dc.Close()
}

// addChat sets up a live chat for member: a Flex conversation and interaction made by flexcord's
// own CreateFlexInteraction (so the webhook and its connection overrides are the same), its task
// accepted by an agent.
func (r *directRelay) addChat(ctx context.Context, m discordemu.Member, caseID string) (chat, error) {
	r.dc.PutMember(m)
	fi, err := r.flex.CreateFlexInteraction(ctx, activities.CreateFlexInteractionInput{
		CaseID: caseID, DiscordUserID: m.ID, Username: m.GlobalName, Locale: m.Locale,
	})
	if err != nil {
		return chat{}, fmt.Errorf("direct relay: hand %s to Flex: %w", m.ID, err)
	}
	if _, err := r.tw.AcceptTask(fi.TaskSID, directAgentName); err != nil {
		return chat{}, fmt.Errorf("direct relay: accept the task of %s: %w", m.ID, err)
	}
	dm, err := r.dc.DMChannel(m.ID)
	if err != nil {
		return chat{}, err
	}
	r.mu.Lock()
	r.convByUser[m.ID] = fi.ConversationSID
	r.mu.Unlock()
	return chat{member: m, taskSID: fi.TaskSID, convSID: fi.ConversationSID, dmChannel: dm, caseID: caseID}, nil
}

// onMessage queues a member's DM on the member's lane, with the filters of ingress's gateway:
// no guild messages, no bots, not the bot itself, only plain messages with content.
func (r *directRelay) onMessage(_ *discordgo.Session, ev *discordgo.MessageCreate) {
	m := ev.Message
	if m == nil || m.Author == nil || m.Author.Bot || m.GuildID != "" {
		return
	}
	if id, _ := r.botID.Load().(string); m.Author.ID == id {
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
	case r.lanes[h.Sum32()%directLanes] <- m:
	case <-r.ctx.Done():
	}
}

func (r *directRelay) runLane(ch chan *discordgo.Message) {
	for {
		select {
		case <-r.ctx.Done():
			return
		case m := <-ch:
			r.post(m)
		}
	}
}

// post sends a member's DM to their Flex conversation, as PostFlexMessage does, retrying a
// failed call a few times.
func (r *directRelay) post(m *discordgo.Message) {
	r.mu.RLock()
	conv := r.convByUser[m.Author.ID]
	r.mu.RUnlock()
	if conv == "" {
		return
	}
	attrs, _ := json.Marshal(map[string]string{activities.DeliveryMarker: "direct-" + m.ID, "origin": "discord"})
	params := &conversations.CreateConversationMessageParams{}
	params.SetAuthor(activities.CustomerIdentity(m.Author.ID)).
		SetBody(m.Content).
		SetAttributes(string(attrs)).
		SetXTwilioWebhookEnabled("false")
	for attempt := 1; ; attempt++ {
		if _, err := r.rc.ConversationsV1.CreateConversationMessage(conv, params); err == nil {
			return
		}
		r.postErrors.Add(1)
		if attempt == 5 || !sleepCtx(r.ctx, time.Duration(attempt)*100*time.Millisecond) {
			return
		}
	}
}

// webhook handles a Conversations webhook: the signature is checked as ingress checks it, echoes
// of the member's own messages are dropped, and an agent's message is sent to the member's DM
// before the answer, so that Twilio sends the webhook again when the DM failed.
func (r *directRelay) webhook(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 256<<10))
	if err != nil {
		http.Error(w, "cannot read the request body", http.StatusBadRequest)
		return
	}
	params, err := url.ParseQuery(string(body))
	sig := req.Header.Get("X-Twilio-Signature")
	if err != nil || sig == "" || !r.validator.Validate(r.url+req.URL.RequestURI(), firstValues(params), sig) {
		r.badSignatures.Add(1)
		http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
		return
	}
	if params.Get("EventType") != "onMessageAdded" ||
		strings.HasPrefix(params.Get("Author"), activities.CustomerIdentityPrefix) ||
		strings.Contains(params.Get("Attributes"), activities.DeliveryMarker) {
		w.WriteHeader(http.StatusOK)
		return
	}
	user := req.URL.Query().Get("user")
	if err := r.sendDM(req.Context(), user, "**"+directAgentName+":** "+params.Get("Body")); err != nil {
		r.dmErrors.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "cannot reach Discord; send again later", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// sendDM sends content to the member's DM channel, opening it the first time.
func (r *directRelay) sendDM(ctx context.Context, user, content string) error {
	r.mu.RLock()
	ch := r.dmByUser[user]
	r.mu.RUnlock()
	if ch == "" {
		c, err := r.sess.UserChannelCreate(user, discordgo.WithContext(ctx))
		if err != nil {
			return err
		}
		ch = c.ID
		r.mu.Lock()
		r.dmByUser[user] = ch
		r.mu.Unlock()
	}
	_, err := r.sess.ChannelMessageSendComplex(ch, &discordgo.MessageSend{
		Content:         content,
		AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}},
	}, discordgo.WithContext(ctx))
	return err
}

// firstValues flattens form values the way Twilio's validator expects: one value per name.
func firstValues(v url.Values) map[string]string {
	out := make(map[string]string, len(v))
	for k, vs := range v {
		if len(vs) > 0 {
			out[k] = vs[0]
		}
	}
	return out
}

// sleepCtx sleeps for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
