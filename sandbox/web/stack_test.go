package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	twclient "github.com/twilio/twilio-go/client"
	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
	flex "github.com/twilio/twilio-go/rest/flex/v1"

	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/feedemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/sandbox/web"
)

// Fixed identities of the test stack.
const (
	testAccountSID   = "AC0123456789abcdef0123456789abcdef"
	testAuthToken    = "sandboxAuthToken0123"
	testWorkspaceSID = "WS0123456789abcdef0123456789abcdef"
	testWorkflowSID  = "WW0123456789abcdef0123456789abcdef"
	testMemberID     = "200000000000000001"
	testBugChannel   = "1100000000000000012"
	// testAnnouncementsChannel is a plain text channel standing in for
	// #announcements (the page shows any channel's messages).
	testAnnouncementsChannel = "1100000000000000013"
	// testFeedRunPath is where the test stack answers the page's Fetch now.
	testFeedRunPath = "/_test/feeds/run"
	testCaseID      = "C-7K3QX2"
	testBugCaseID   = "C-B4GR3P"
)

// sandbox is the page mounted with both emulators on one server, the way
// `flexcord dev` mounts them, plus a scripted stand-in for flexcord (see
// fakeBot) so that the page can be exercised without workflows.
type sandbox struct {
	URL     string
	discord *discordemu.Server
	twilio  *twilioemu.Server
	bot     *fakeBot
	outage  *outage
	// feeds is the sample blog, under /_emu/feeds/ as in `flexcord dev`.
	feeds *feedemu.Server
	// feedRuns stands in for flexcord's "fetch the sample feed now".
	feedRuns *feedRuns
	// crossposts marks #announcements messages as published (see crossposts).
	crossposts *crossposts
}

// feedRuns records the page's POSTs to Config.FeedRunURL and answers each
// with a set status and body ({"new_items":1} unless told otherwise).
type feedRuns struct {
	mu     sync.Mutex
	calls  []feedRunCall
	status int
	body   string
}

// feedRunCall is one request the page made to the feed-run URL.
type feedRunCall struct {
	Method string
	Body   string
}

func (f *feedRuns) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, feedRunCall{Method: r.Method, Body: string(body)})
	status, answer := f.status, f.body
	f.mu.Unlock()
	if status == 0 {
		status, answer = http.StatusOK, `{"new_items":1}`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

// answer sets what the following calls are answered with.
func (f *feedRuns) answer(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *feedRuns) Calls() []feedRunCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]feedRunCall(nil), f.calls...)
}

// crossposts stands in for Discord's crosspost of an announcement-channel
// message, which sets the message's CROSSPOSTED flag (1<<0): it sets the
// flag on marked messages in what the control API returns for
// testAnnouncementsChannel. (The channel is a plain text channel, in which
// Discord refuses to crosspost.)
type crossposts struct {
	mu     sync.Mutex
	marked map[string]bool
}

func (c *crossposts) mark(messageID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.marked[messageID] = true
}

func (c *crossposts) wrap(next http.Handler) http.Handler {
	path := "/_emu/discord/channels/" + testAnnouncementsChannel + "/messages"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		some := len(c.marked) > 0
		c.mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != path || !some {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var records []map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &records) != nil {
			http.Error(w, "crossposts: unexpected answer from the emulator: "+rec.Body.String(), http.StatusBadGateway)
			return
		}
		c.mu.Lock()
		for _, record := range records {
			msg, _ := record["message"].(map[string]any)
			if id, _ := msg["id"].(string); c.marked[id] {
				flags, _ := msg["flags"].(float64)
				msg["flags"] = int(flags) | 1<<0
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(records)
	})
}

// outage makes the sandbox server unreachable on demand: while it is down,
// every new connection is closed without an answer and the event streams
// in progress end, as when `flexcord dev` stops.
type outage struct {
	down    atomic.Bool
	mu      sync.Mutex
	streams map[int]context.CancelFunc
	next    int
}

func (o *outage) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.down.Load() {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/events") {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		o.mu.Lock()
		o.next++
		id := o.next
		o.streams[id] = cancel
		o.mu.Unlock()
		defer func() {
			o.mu.Lock()
			delete(o.streams, id)
			o.mu.Unlock()
			cancel()
		}()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// set takes the server down (ending the event streams) or brings it back.
func (o *outage) set(down bool) {
	o.down.Store(down)
	if !down {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, cancel := range o.streams {
		cancel()
	}
}

// startSandbox serves, on one httptest server: the page under /sandbox, the
// Discord emulator (REST, gateway and /_emu/discord/), the Twilio emulator
// (the *.twilio.com hosts and /_emu/twilio/) and the fake bot's
// interactions endpoint.
func startSandbox(t *testing.T) *sandbox {
	t.Helper()
	return startSandboxWith(t, nil)
}

// startSandboxWith is startSandbox with the page's configuration changed
// by edit (when not nil). Besides the page and the emulators it serves the
// sample blog under /_emu/feeds/ and a stand-in for flexcord's feed run at
// testFeedRunPath, both named in the page's configuration.
func startSandboxWith(t *testing.T, edit func(*web.Config)) *sandbox {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()

	demu, err := discordemu.New(discordemu.Options{
		BaseURL:         base,
		InteractionsURL: base + "/bot/interactions",
		Guilds: []discordemu.Guild{{
			ID: discordemu.DefaultGuildID, Name: "Sandbox", Locale: "en-US",
			Channels: []string{discordemu.DefaultChannelID, testBugChannel, testAnnouncementsChannel},
		}},
		Members: []discordemu.Member{{ID: testMemberID, Username: "sam", GlobalName: "Sam", Locale: "en-US"}},
		Logger:  log,
	})
	if err != nil {
		t.Fatalf("discordemu.New: %v", err)
	}
	temu, err := twilioemu.New(twilioemu.Options{
		AccountSID: testAccountSID, AuthToken: testAuthToken,
		WorkspaceSID: testWorkspaceSID, WorkflowSID: testWorkflowSID,
		Logger: log,
	})
	if err != nil {
		t.Fatalf("twilioemu.New: %v", err)
	}

	dg, err := discordgo.New("Bot " + demu.Token())
	if err != nil {
		t.Fatalf("discordgo.New: %v", err)
	}
	dg.Client = &http.Client{Transport: demu.Transport(), Timeout: 10 * time.Second}
	tc := &twclient.Client{
		Credentials: twclient.NewCredentials(testAccountSID, testAuthToken),
		HTTPClient:  &http.Client{Transport: twilioemu.NewTransport(base, nil), Timeout: 10 * time.Second},
	}
	tc.SetAccountSid(testAccountSID)
	rc := twilioclient.NewWithClient(tc)
	bot := &fakeBot{t: t, dg: dg, rc: rc}

	cfg := web.Config{
		TemporalUIURL:          "http://temporal.test:8233",
		Namespace:              "default",
		DiscordGuildID:         discordemu.DefaultGuildID,
		DiscordChannelID:       discordemu.DefaultChannelID,
		BugChannelID:           testBugChannel,
		FeatureChannelID:       testBugChannel,
		MemberID:               testMemberID,
		AnnouncementsChannelID: testAnnouncementsChannel,
		SampleFeedURL:          base + feedemu.DefaultPrefix + "/" + feedemu.SampleFeed,
		FeedRunURL:             base + testFeedRunPath,
	}
	if edit != nil {
		edit(&cfg)
	}
	page := web.Handler(cfg)
	feeds := feedemu.New(feedemu.Options{})
	runs := &feedRuns{}
	marks := &crossposts{marked: map[string]bool{}}
	mux := http.NewServeMux()
	mux.Handle(feedemu.DefaultPrefix+"/", feeds)
	mux.Handle("POST "+testFeedRunPath, runs)
	mux.Handle("/sandbox", page)
	mux.Handle("/sandbox/", page)
	mux.Handle("/bot/interactions", bot)
	mux.Handle("/", demu.Handler()) // REST, gateway and /_emu/discord/
	mux.Handle(twilioemu.ControlPrefix, temu)
	down := &outage{streams: map[int]context.CancelFunc{}}
	srv.Config.Handler = down.wrap(marks.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if strings.HasSuffix(host, ".twilio.com") {
			temu.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})))
	srv.Start()
	t.Cleanup(func() {
		// Close the emulators first: it ends their event streams, which the
		// server would otherwise wait for.
		_ = temu.Close()
		_ = demu.Close()
		srv.Close()
	})

	cmds := []*discordgo.ApplicationCommand{
		{Name: "helpme", Description: "Get help"},
		{Name: "bug", Description: "Report a bug"},
		{Name: "new_feature", Description: "Suggest a feature"},
	}
	if _, err := dg.ApplicationCommandBulkOverwrite(demu.ApplicationID(), discordemu.DefaultGuildID, cmds); err != nil {
		t.Fatalf("register commands: %v", err)
	}
	return &sandbox{URL: base, discord: demu, twilio: temu, bot: bot, outage: down, feeds: feeds, feedRuns: runs, crossposts: marks}
}

// fakeBot answers the emulator's signed HTTP interactions with a fixed
// script that looks like flexcord from the outside:
//   - /helpme: an ephemeral reply, then a DM with an article embed and the
//     "Talk to a human" and "This solved it" buttons;
//   - /bug and /new_feature: a modal; its submission: an ephemeral reply
//     naming testBugCaseID and the submitted title;
//   - "Talk to a human": a Flex task for testCaseID (with one customer
//     message in its conversation) and a DM announcing the case.
type fakeBot struct {
	t  *testing.T
	dg *discordgo.Session
	rc *twilioclient.RestClient

	mu    sync.Mutex
	tasks int
}

func (b *fakeBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in discordgo.Interaction
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := b.answer(&in)
	if err != nil {
		b.t.Errorf("fake bot: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (b *fakeBot) answer(in *discordgo.Interaction) (*discordgo.InteractionResponse, error) {
	userID := ""
	if in.Member != nil && in.Member.User != nil {
		userID = in.Member.User.ID
	} else if in.User != nil {
		userID = in.User.ID
	}
	ephemeral := func(text string) *discordgo.InteractionResponse {
		return &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseChannelMessageWithSource,
			Data: &discordgo.InteractionResponseData{Content: text, Flags: discordgo.MessageFlagsEphemeral},
		}
	}
	switch in.Type {
	case discordgo.InteractionApplicationCommand:
		switch name := in.ApplicationCommandData().Name; name {
		case "helpme":
			if err := b.dm(userID, &discordgo.MessageSend{
				Content: "Hi Sam! Tell me what's going on. If you'd rather talk to a person, press **Talk to a human**.",
				Embeds: []*discordgo.MessageEmbed{{
					Title:       "Reset your password",
					URL:         "https://help.example.com/reset-password",
					Description: "Use **Forgot password** on the sign-in page.",
				}},
				Components: []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
					discordgo.Button{Label: "Talk to a human", Style: discordgo.PrimaryButton, CustomID: "flexcord:human"},
					discordgo.Button{Label: "This solved it", Style: discordgo.SuccessButton, CustomID: "flexcord:solved"},
				}}},
			}); err != nil {
				return nil, err
			}
			return ephemeral("I've sent you a direct message."), nil
		case "bug", "new_feature":
			short := func(id, label string, required bool) discordgo.MessageComponent {
				return discordgo.ActionsRow{Components: []discordgo.MessageComponent{discordgo.TextInput{
					CustomID: id, Label: label, Style: discordgo.TextInputShort, Required: required, MaxLength: 100,
				}}}
			}
			return &discordgo.InteractionResponse{
				Type: discordgo.InteractionResponseModal,
				Data: &discordgo.InteractionResponseData{
					CustomID: "flexcord:case:bug",
					Title:    "Report a bug",
					Components: []discordgo.MessageComponent{
						short("title", "Title", true),
						discordgo.ActionsRow{Components: []discordgo.MessageComponent{discordgo.TextInput{
							CustomID: "description", Label: "What happened?", Style: discordgo.TextInputParagraph, Required: true, MaxLength: 2000,
						}}},
						short("platform", "Platform", false),
					},
				},
			}, nil
		default:
			return nil, fmt.Errorf("unexpected command %q", name)
		}
	case discordgo.InteractionModalSubmit:
		values := map[string]string{}
		for _, row := range in.ModalSubmitData().Components {
			if r, ok := row.(*discordgo.ActionsRow); ok {
				for _, c := range r.Components {
					if ti, ok := c.(*discordgo.TextInput); ok {
						values[ti.CustomID] = ti.Value
					}
				}
			}
		}
		return ephemeral(fmt.Sprintf("Thanks! Your bug report was filed as **%s**: %s (%s)", testBugCaseID, values["title"], values["platform"])), nil
	case discordgo.InteractionMessageComponent:
		if id := in.MessageComponentData().CustomID; id != "flexcord:human" {
			return ephemeral("Noted: " + id), nil
		}
		if err := b.handOver(userID); err != nil {
			return nil, err
		}
		if err := b.dm(userID, &discordgo.MessageSend{Content: "Case " + testCaseID + " created. Transferring you to a live agent."}); err != nil {
			return nil, err
		}
		return &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate}, nil
	}
	return nil, fmt.Errorf("unexpected interaction type %d", in.Type)
}

func (b *fakeBot) dm(userID string, m *discordgo.MessageSend) error {
	ch, err := b.dg.UserChannelCreate(userID)
	if err != nil {
		return fmt.Errorf("open DM with %s: %w", userID, err)
	}
	if _, err := b.dg.ChannelMessageSendComplex(ch.ID, m); err != nil {
		return fmt.Errorf("DM %s: %w", userID, err)
	}
	return nil
}

// handOver creates a Flex task for testCaseID the way flexcord does: a
// conversation with the member as participant, one message from them, and
// an interaction whose task carries the case.
func (b *fakeBot) handOver(userID string) error {
	b.mu.Lock()
	b.tasks++
	n := b.tasks
	b.mu.Unlock()
	cv := b.rc.ConversationsV1
	conv, err := cv.CreateConversation((&conversations.CreateConversationParams{}).SetUniqueName(fmt.Sprintf("%s-%d", testCaseID, n)))
	if err != nil {
		return fmt.Errorf("create conversation: %w", err)
	}
	identity := "discord_" + userID
	if _, err := cv.CreateConversationParticipant(*conv.Sid, (&conversations.CreateConversationParticipantParams{}).SetIdentity(identity)); err != nil {
		return fmt.Errorf("add participant: %w", err)
	}
	if _, err := cv.CreateConversationMessage(*conv.Sid, (&conversations.CreateConversationMessageParams{}).SetAuthor(identity).SetBody("I forgot my password")); err != nil {
		return fmt.Errorf("post customer message: %w", err)
	}
	p := &flex.CreateInteractionParams{}
	p.SetChannel(map[string]any{
		"type": "chat", "initiated_by": "customer",
		"properties": map[string]any{"media_channel_sid": *conv.Sid},
	})
	p.SetRouting(map[string]any{"properties": map[string]any{
		"workspace_sid": testWorkspaceSID, "workflow_sid": testWorkflowSID, "task_channel_unique_name": "chat",
		"attributes": map[string]any{
			"case_id": testCaseID, "discord_user_id": userID, "discord_username": "sam", "locale": "en-US",
			"guild_name": "Sandbox", "transcript": "[10:00] member sam: I forgot my password",
			"articles": []map[string]string{{"title": "Reset your password", "url": "https://help.example.com/reset-password"}},
		},
	}})
	if _, err := b.rc.FlexV1.CreateInteraction(p); err != nil {
		return fmt.Errorf("create interaction: %w", err)
	}
	return nil
}
