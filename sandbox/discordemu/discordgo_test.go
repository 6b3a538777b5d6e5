package discordemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/sandbox/discordemu"
)

const (
	aliceID = "2000000000000000001"
	bobID   = "2000000000000000002"
)

// clock is a settable time source for deadline tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func members() []discordemu.Member {
	return []discordemu.Member{
		{ID: aliceID, Username: "alice", GlobalName: "Alice", Locale: "ko"},
		{ID: bobID, Username: "bob", Locale: "en-US"},
	}
}

// newSession returns a discordgo session that talks to emu only through its
// HTTP client transport.
func newSession(t *testing.T, emu *discordemu.Server) *discordgo.Session {
	t.Helper()
	dg, err := discordgo.New("Bot " + emu.Token())
	if err != nil {
		t.Fatalf("discordgo.New: %v", err)
	}
	dg.Client = &http.Client{Transport: emu.Transport(), Timeout: 10 * time.Second}
	dg.Identify.Intents = discordgo.IntentsGuilds | discordgo.IntentsDirectMessages
	dg.LogLevel = -1
	return dg
}

// openSession opens the gateway and returns channels of DMs from members
// and of interactions.
func openSession(t *testing.T, dg *discordgo.Session) (<-chan *discordgo.MessageCreate, <-chan *discordgo.InteractionCreate) {
	t.Helper()
	msgs := make(chan *discordgo.MessageCreate, 100)
	inters := make(chan *discordgo.InteractionCreate, 100)
	dg.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		if !m.Author.Bot {
			msgs <- m
		}
	})
	dg.AddHandler(func(_ *discordgo.Session, i *discordgo.InteractionCreate) { inters <- i })
	if err := dg.Open(); err != nil {
		t.Fatalf("discordgo Open: %v", err)
	}
	t.Cleanup(func() { _ = dg.Close() })
	return msgs, inters
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

var testCommands = []*discordgo.ApplicationCommand{
	{
		Name:                     "helpme",
		Description:              "Get help",
		NameLocalizations:        &map[discordgo.Locale]string{discordgo.Korean: "도움"},
		DescriptionLocalizations: &map[discordgo.Locale]string{discordgo.Korean: "도움 받기"},
		DefaultMemberPermissions: new(int64),
		Contexts:                 &[]discordgo.InteractionContextType{discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM},
		IntegrationTypes:         &[]discordgo.ApplicationIntegrationType{discordgo.ApplicationIntegrationGuildInstall},
	},
	{
		Name:        "bug",
		Description: "Report a bug",
		Options: []*discordgo.ApplicationCommandOption{
			{Type: discordgo.ApplicationCommandOptionString, Name: "area", Description: "Where"},
		},
	},
}

func registerCommands(t *testing.T, dg *discordgo.Session, emu *discordemu.Server) []*discordgo.ApplicationCommand {
	t.Helper()
	got, err := dg.ApplicationCommandBulkOverwrite(emu.ApplicationID(), "", testCommands)
	if err != nil {
		t.Fatalf("ApplicationCommandBulkOverwrite: %v", err)
	}
	return got
}

// nonceMessage is how flexcord sends a message with a nonce: discordgo's
// MessageSend has no such field.
type nonceMessage struct {
	discordgo.MessageSend
	Nonce        string `json:"nonce,omitempty"`
	EnforceNonce bool   `json:"enforce_nonce,omitempty"`
}

func sendWithNonce(dg *discordgo.Session, channelID string, m nonceMessage, opts ...discordgo.RequestOption) (*discordgo.Message, error) {
	ep := discordgo.EndpointChannelMessages(channelID)
	body, err := dg.RequestWithBucketID(http.MethodPost, ep, m, ep, opts...)
	if err != nil {
		return nil, err
	}
	var msg discordgo.Message
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, err
	}
	return &msg, nil
}

func TestDiscordgoEndToEnd(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), HeartbeatInterval: 500 * time.Millisecond})
	dg := newSession(t, emu)

	cmds := registerCommands(t, dg, emu)
	if len(cmds) != 2 || cmds[0].ID == "" || cmds[0].ApplicationID != emu.ApplicationID() {
		t.Fatalf("registered commands = %+v", cmds)
	}
	if n := len(emu.Commands("")); n != 2 {
		t.Fatalf("emulator has %d global commands, want 2", n)
	}

	readyCh := make(chan *discordgo.Ready, 1)
	dg.AddHandlerOnce(func(_ *discordgo.Session, r *discordgo.Ready) { readyCh <- r })
	msgs, inters := openSession(t, dg)
	ready := receive(t, readyCh, "READY")
	if ready.User.ID != emu.BotUser().ID || ready.SessionID == "" || ready.Application.ID != emu.ApplicationID() {
		t.Fatalf("READY = user %q session %q application %+v", ready.User.ID, ready.SessionID, ready.Application)
	}

	t.Run("DM from a member arrives as MESSAGE_CREATE", func(t *testing.T) {
		if _, err := emu.SendDM(aliceID, "hello bot"); err != nil {
			t.Fatal(err)
		}
		m := receive(t, msgs, "DM")
		if m.Content != "hello bot" || m.Author.ID != aliceID || m.GuildID != "" {
			t.Fatalf("MESSAGE_CREATE = %q from %s in guild %q", m.Content, m.Author.ID, m.GuildID)
		}
		dm, err := dg.UserChannelCreate(aliceID)
		if err != nil {
			t.Fatalf("UserChannelCreate: %v", err)
		}
		if dm.ID != m.ChannelID || dm.Type != discordgo.ChannelTypeDM || dm.Recipients[0].ID != aliceID {
			t.Fatalf("DM channel = %+v, message channel %s", dm, m.ChannelID)
		}
	})

	t.Run("nonce with enforce_nonce returns the earlier message", func(t *testing.T) {
		dm, err := dg.UserChannelCreate(aliceID)
		if err != nil {
			t.Fatal(err)
		}
		send := nonceMessage{
			MessageSend: discordgo.MessageSend{
				Content:         "Agent: hi @everyone",
				AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}},
			},
			Nonce: "IMabc123", EnforceNonce: true,
		}
		first, err := sendWithNonce(dg, dm.ID, send)
		if err != nil {
			t.Fatalf("first send: %v", err)
		}
		second, err := sendWithNonce(dg, dm.ID, send)
		if err != nil {
			t.Fatalf("retried send: %v", err)
		}
		if first.ID != second.ID {
			t.Fatalf("retried send created message %s, want the original %s", second.ID, first.ID)
		}
		var n int
		for _, r := range emu.Messages(dm.ID) {
			if r.Message.Content == send.Content {
				n++
				if !strings.Contains(string(r.AllowedMentions), `"parse":[]`) {
					t.Errorf("allowed_mentions stored as %s", r.AllowedMentions)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%d messages with the content, want 1", n)
		}
		third, err := sendWithNonce(dg, dm.ID, nonceMessage{MessageSend: send.MessageSend, Nonce: "IMother"})
		if err != nil || third.ID == first.ID {
			t.Fatalf("different nonce: id %v err %v, want a new message", third, err)
		}
	})

	t.Run("slash command in DM, deferred reply, follow-up, button, modal", func(t *testing.T) {
		info, err := emu.RunCommand(context.Background(), aliceID, discordemu.CommandInput{Name: "helpme"})
		if err != nil {
			t.Fatal(err)
		}
		ic := receive(t, inters, "INTERACTION_CREATE")
		i := ic.Interaction
		if i.ID != info.ID || i.Type != discordgo.InteractionApplicationCommand || i.User == nil || i.User.ID != aliceID ||
			i.Member != nil || i.Locale != discordgo.Korean || i.Context != discordgo.InteractionContextBotDM ||
			i.AppID != emu.ApplicationID() || i.Version != 1 || i.AppPermissions == 0 {
			t.Fatalf("interaction = %+v", i)
		}
		if name := i.ApplicationCommandData().Name; name != "helpme" {
			t.Fatalf("command name = %q", name)
		}
		err = dg.InteractionRespond(i, &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseDeferredChannelMessageWithSource,
			Data: &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral},
		})
		if err != nil {
			t.Fatalf("InteractionRespond: %v", err)
		}
		err = dg.InteractionRespond(i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource})
		var re *discordgo.RESTError
		if !errors.As(err, &re) || re.Message == nil || re.Message.Code != discordgo.ErrCodeInteractionHasAlreadyBeenAcknowledged {
			t.Fatalf("second acknowledgement error = %v, want 40060", err)
		}
		follow, err := dg.FollowupMessageCreate(i, true, &discordgo.WebhookParams{
			Content: "안녕하세요",
			Flags:   discordgo.MessageFlagsEphemeral,
			Components: []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
				discordgo.Button{Label: "Talk to a human", Style: discordgo.PrimaryButton, CustomID: "human"},
			}}},
			Embeds: []*discordgo.MessageEmbed{{Title: "Article", Description: "How to reset", Fields: []*discordgo.MessageEmbedField{{Name: "a", Value: "b"}}}},
		})
		if err != nil {
			t.Fatalf("FollowupMessageCreate: %v", err)
		}
		if follow.ID != emu.Interaction(i.ID).ResponseMessageID {
			t.Fatalf("follow-up after a deferred reply created %s, want it to fill the loading message %s", follow.ID, emu.Interaction(i.ID).ResponseMessageID)
		}
		seen := emu.UserMessages(aliceID)
		last := seen[len(seen)-1]
		if last.Message.Content != "안녕하세요" || !last.Ephemeral || last.VisibleTo != aliceID || len(last.Message.Components) != 1 || len(last.Message.Embeds) != 1 {
			t.Fatalf("member sees %+v", last)
		}
		if _, err := dg.InteractionResponseEdit(i, &discordgo.WebhookEdit{Content: ptr("안녕하세요!")}); err != nil {
			t.Fatalf("InteractionResponseEdit: %v", err)
		}

		if _, err := emu.ClickButton(context.Background(), aliceID, discordemu.ButtonInput{MessageID: follow.ID, CustomID: "human"}); err != nil {
			t.Fatal(err)
		}
		click := receive(t, inters, "button INTERACTION_CREATE").Interaction
		if click.Type != discordgo.InteractionMessageComponent || click.MessageComponentData().CustomID != "human" || click.Message == nil || click.Message.ID != follow.ID {
			t.Fatalf("button interaction = %+v", click)
		}
		err = dg.InteractionRespond(click, &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseModal,
			Data: &discordgo.InteractionResponseData{CustomID: "bug_modal", Title: "Bug", Components: []discordgo.MessageComponent{
				discordgo.ActionsRow{Components: []discordgo.MessageComponent{
					discordgo.TextInput{CustomID: "title", Label: "Title", Style: discordgo.TextInputShort, Required: true},
				}},
			}},
		})
		if err != nil {
			t.Fatalf("respond with modal: %v", err)
		}
		if _, err := emu.SubmitModal(context.Background(), aliceID, discordemu.ModalInput{Values: map[string]string{"title": "App crashes"}}); err != nil {
			t.Fatal(err)
		}
		submit := receive(t, inters, "modal INTERACTION_CREATE").Interaction
		data := submit.ModalSubmitData()
		row, isRow := data.Components[0].(*discordgo.ActionsRow)
		if submit.Type != discordgo.InteractionModalSubmit || data.CustomID != "bug_modal" || !isRow {
			t.Fatalf("modal submit = %+v", submit)
		}
		if v := row.Components[0].(*discordgo.TextInput).Value; v != "App crashes" {
			t.Fatalf("modal value = %q", v)
		}
		if err := dg.InteractionRespond(submit, &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseChannelMessageWithSource,
			Data: &discordgo.InteractionResponseData{Content: "Case C-1 created"},
		}); err != nil {
			t.Fatalf("respond to modal: %v", err)
		}
	})

	t.Run("slash command in a guild carries member and guild locale", func(t *testing.T) {
		_, err := emu.RunCommand(context.Background(), bobID, discordemu.CommandInput{
			Name: "bug", GuildID: discordemu.DefaultGuildID, Options: map[string]any{"area": "login"},
		})
		if err != nil {
			t.Fatal(err)
		}
		i := receive(t, inters, "guild INTERACTION_CREATE").Interaction
		if i.Member == nil || i.Member.User.ID != bobID || i.User != nil || i.GuildID != discordemu.DefaultGuildID ||
			i.ChannelID != discordemu.DefaultChannelID || i.GuildLocale == nil || i.Context != discordgo.InteractionContextGuild {
			t.Fatalf("guild interaction = %+v", i)
		}
		if opt := i.ApplicationCommandData().Options[0]; opt.Name != "area" || opt.StringValue() != "login" {
			t.Fatalf("option = %+v", opt)
		}
		if err := dg.InteractionRespond(i, &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseChannelMessageWithSource,
			Data: &discordgo.InteractionResponseData{Content: "Thanks", Flags: discordgo.MessageFlagsEphemeral},
		}); err != nil {
			t.Fatalf("InteractionRespond: %v", err)
		}
		if _, err := dg.ChannelMessageSendEmbed(discordemu.DefaultChannelID, &discordgo.MessageEmbed{Title: "Case C-2"}); err != nil {
			t.Fatalf("post to guild channel: %v", err)
		}
	})

	t.Run("dropped connection resumes without losing a dispatch", func(t *testing.T) {
		events, cancel := emu.Subscribe()
		defer cancel()
		if n := emu.DropGateway(); n != 1 {
			t.Fatalf("dropped %d connections, want 1", n)
		}
		if _, err := emu.SendDM(aliceID, "sent while disconnected"); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, events, discordemu.EventGatewayResumed)
		if m := receive(t, msgs, "replayed DM"); m.Content != "sent while disconnected" {
			t.Fatalf("after resume got %q", m.Content)
		}
		if _, err := emu.SendDM(aliceID, "after resume"); err != nil {
			t.Fatal(err)
		}
		if m := receive(t, msgs, "DM after resume"); m.Content != "after resume" {
			t.Fatalf("got %q, want the next DM exactly once", m.Content)
		}
		if s := emu.GatewaySessions(); len(s) != 1 || !s[0].Connected {
			t.Fatalf("sessions = %+v, want the one resumed session", s)
		}
	})

	t.Run("op 7 reconnect resumes", func(t *testing.T) {
		events, cancel := emu.Subscribe()
		defer cancel()
		if n := emu.ReconnectGateway(); n != 1 {
			t.Fatalf("reconnect sent to %d connections", n)
		}
		waitEvent(t, events, discordemu.EventGatewayResumed)
		if _, err := emu.SendDM(bobID, "after op 7"); err != nil {
			t.Fatal(err)
		}
		if m := receive(t, msgs, "DM after op 7"); m.Content != "after op 7" {
			t.Fatalf("got %q", m.Content)
		}
	})

	t.Run("op 9 invalid session re-identifies", func(t *testing.T) {
		events, cancel := emu.Subscribe()
		defer cancel()
		if n := emu.InvalidateSessions(false); n != 1 {
			t.Fatalf("invalid session sent to %d connections", n)
		}
		waitEvent(t, events, discordemu.EventGatewayReady)
		if _, err := emu.SendDM(bobID, "after op 9"); err != nil {
			t.Fatal(err)
		}
		if m := receive(t, msgs, "DM after op 9"); m.Content != "after op 9" {
			t.Fatalf("got %q", m.Content)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func waitEvent(t *testing.T, events <-chan discordemu.Event, typ discordemu.EventType) discordemu.Event {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Type == typ {
				return e
			}
		case <-deadline:
			t.Fatalf("timed out waiting for event %s", typ)
		}
	}
}
