package ingress_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/mux"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

// TestHelpMeEndToEnd runs /helpme through the whole system: the Discord emulator posts a signed
// interaction to ingress's HTTP route, ingress signals a Conversation on an embedded Temporal
// server, and a worker with the real Discord activities greets the member by DM (in their
// language, with the Talk to a human button) and fills in the deferred ephemeral reply. Last, a DM
// the gateway lost reaches the conversation through the backfill that follows the gateway's
// resume.
func TestHelpMeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)

	tc, _ := startTemporal(ctx, t)

	// Ingress first: the emulator needs its URL, ingress needs the emulator's key.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	in := ingress.New(ingress.Config{
		Temporal: tc, Log: log,
		Routes: []func(*ingress.Server, *mux.Router){ingress.DiscordRoutes(ingress.DiscordConfig{ApplicationID: discordemu.DefaultApplicationID, PublicKey: pub})},
	})
	front := httptest.NewServer(in.Handler())
	t.Cleanup(front.Close)

	const (
		koUser     = "2000000000000000101"
		enUser     = "2000000000000000102"
		closedUser = "2000000000000000103"
	)
	emu := discordemu.NewTest(t, discordemu.Options{
		PrivateKey:      priv,
		InteractionsURL: front.URL + "/discord/interactions",
		Members: []discordemu.Member{
			{ID: koUser, Username: "minji", GlobalName: "민지", Locale: "ko"},
			{ID: enUser, Username: "bob", Locale: "en-US"},
			{ID: closedUser, Username: "kenji", Locale: "ja", DMsClosed: true},
		},
	})
	if err := emu.VerifyInteractionsEndpoint(ctx); err != nil {
		t.Fatalf("Discord would not accept the interactions endpoint: %v", err)
	}
	sess, err := discordsession.New(emu.Token(), emu.Transport())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.ApplicationCommandBulkOverwrite(emu.ApplicationID(), "", ingress.CommandDefinitions()); err != nil {
		t.Fatalf("register commands: %v", err)
	}

	w := worker.New(tc, worker.Activities{Discord: activities.NewDiscord(sess, log), Knowledge: activities.NewKnowledge(nil)}, sdkworker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	for _, m := range []struct{ id, locale, name string }{{koUser, "ko", "민지"}, {enUser, "en-US", "bob"}} {
		t.Run(m.locale, func(t *testing.T) {
			info, err := emu.RunCommand(ctx, m.id, discordemu.CommandInput{Name: ingress.CommandHelpMe, GuildID: discordemu.DefaultGuildID})
			if err != nil {
				t.Fatalf("/helpme: %v", err)
			}
			if info.ResponseType != 5 {
				t.Fatalf("/helpme answered with type %d, want a deferred reply (5)", info.ResponseType)
			}
			dm, err := emu.DMChannel(m.id)
			if err != nil {
				t.Fatal(err)
			}
			wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
			defer wcancel()

			greeting, err := emu.WaitMessage(wctx, func(r discordemu.Record) bool {
				return r.FromBot && r.Message.ChannelID == dm
			})
			if err != nil {
				t.Fatalf("no DM greeting: %v", err)
			}
			if want := i18n.T(m.locale, "greeting", "name", m.name); greeting.Message.Content != want {
				t.Errorf("greeting %q, want %q", greeting.Message.Content, want)
			}
			button := findButton(greeting.Message.Components, workflows.ButtonCustomID(workflows.ActionTalkToHuman, 0))
			if button == nil || button["label"] != i18n.T(m.locale, "button.human") {
				t.Errorf("greeting buttons %v, want %q labelled %q", greeting.Message.Components, "flexcord:human", i18n.T(m.locale, "button.human"))
			}

			ack := i18n.T(m.locale, "helpme.ack")
			reply, err := emu.WaitMessage(wctx, func(r discordemu.Record) bool {
				return r.InteractionID == info.ID && r.Message.Content == ack
			})
			if err != nil {
				t.Fatalf("no follow-up %q: %v", ack, err)
			}
			if !reply.Ephemeral || reply.VisibleTo != m.id {
				t.Errorf("follow-up %+v is not ephemeral to the member", reply)
			}
		})
	}

	t.Run("DMs closed", func(t *testing.T) {
		info, err := emu.RunCommand(ctx, closedUser, discordemu.CommandInput{Name: ingress.CommandHelpMe, GuildID: discordemu.DefaultGuildID})
		if err != nil {
			t.Fatalf("/helpme: %v", err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		// Discord refuses the greeting (50007): the member is told why, in their language.
		notice := i18n.T("ja", "helpme.dm_failed")
		if _, err := emu.WaitMessage(wctx, func(r discordemu.Record) bool {
			return r.InteractionID == info.ID && r.Message.Content == notice && r.Ephemeral
		}); err != nil {
			t.Fatalf("no follow-up %q: %v", notice, err)
		}
		// And the conversation records the failed delivery for operators.
		v, err := tc.QueryWorkflow(wctx, workflows.ConversationWorkflowID(closedUser), "", workflows.QueryStatus)
		if err != nil {
			t.Fatal(err)
		}
		var st workflows.ConversationStatus
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		if len(st.Failed) != 1 || st.Failed[0].ErrorType != activities.ErrCannotMessageUser || st.Failed[0].Attempts != 1 {
			t.Fatalf("failed deliveries %+v, want the greeting failed once with %s", st.Failed, activities.ErrCannotMessageUser)
		}
	})

	// The gateway loses a DM; after it resumes, the DM is fetched from the channel and the
	// member's conversation takes it.
	t.Run("DM backfilled after a gateway gap", func(t *testing.T) {
		gsess, err := discordsession.New(emu.Token(), emu.Transport())
		if err != nil {
			t.Fatal(err)
		}
		gctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- ingress.RunDiscordGateway(gctx, in, ingress.DiscordConfig{ApplicationID: emu.ApplicationID(), Session: gsess})
		}()
		defer func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("RunDiscordGateway: %v", err)
			}
		}()
		waitFor(t, "the gateway session", func() bool {
			for _, s := range emu.GatewaySessions() {
				if s.Connected {
					return true
				}
			}
			return false
		})
		status := func() workflows.ConversationStatus {
			v, err := tc.QueryWorkflow(ctx, workflows.ConversationWorkflowID(enUser), "", workflows.QueryStatus)
			if err != nil {
				t.Fatal(err)
			}
			var st workflows.ConversationStatus
			if err := v.Get(&st); err != nil {
				t.Fatal(err)
			}
			return st
		}
		live, err := emu.SendDM(enUser, "hello there")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the live DM taken", func() bool { return status().LastMessageID == live.Message.ID })

		emu.MissDispatches("MESSAGE_CREATE")
		lost, err := emu.SendDM(enUser, "my order 1234 never arrived")
		if err != nil {
			t.Fatal(err)
		}
		if n := emu.StopMissingDispatches(); n != 1 {
			t.Fatalf("the emulator lost %d dispatches, want 1", n)
		}
		if emu.ReconnectGateway() == 0 {
			t.Fatal("no gateway connection to reconnect")
		}
		var st workflows.ConversationStatus
		waitFor(t, "the lost DM taken", func() bool { st = status(); return st.LastMessageID == lost.Message.ID })
		var found bool
		for _, l := range st.Transcript {
			found = found || (l.From == "member" && l.Text == "my order 1234 never arrived")
		}
		if !found {
			t.Errorf("the lost DM is not in the transcript: %+v", st.Transcript)
		}
	})
}

// findButton returns the component with customID from a message's action rows.
func findButton(rows []any, customID string) map[string]any {
	for _, r := range rows {
		row, _ := r.(map[string]any)
		kids, _ := row["components"].([]any)
		for _, k := range kids {
			if c, _ := k.(map[string]any); c["custom_id"] == customID {
				return c
			}
		}
	}
	return nil
}
