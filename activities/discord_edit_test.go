package activities

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/sandbox/discordemu"
)

// fakeClock is a settable time source shared by the emulator and the activities.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newDiscordAt is newDiscord with one fake clock for the emulator (message ids, its nonce window)
// and the activities.
func newDiscordAt(t *testing.T) (*discordemu.Server, *Discord, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	emu := discordemu.NewTest(t, discordemu.Options{Clock: clk.Now, Members: []discordemu.Member{
		{ID: aliceID, Username: "alice", GlobalName: "Alice", Locale: "ko"},
		{ID: bobID, Username: "bob"},
	}})
	s, err := discordsession.New(emu.Token(), emu.Transport())
	if err != nil {
		t.Fatal(err)
	}
	d := NewDiscord(s, slog.New(slog.DiscardHandler))
	d.now = clk.Now
	return emu, d, clk
}

// buttons returns the buttons of a stored message, in order.
func buttons(t *testing.T, m discordemu.Message) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, row := range m.Components {
		kids, _ := row.(map[string]any)["components"].([]any)
		for _, k := range kids {
			out = append(out, k.(map[string]any))
		}
	}
	return out
}

func TestEditDirectMessage(t *testing.T) {
	emu, d := newDiscord(t)
	ctx := context.Background()
	rate := Message{
		Content: "How did we do? <@" + bobID + ">",
		Buttons: []Button{{CustomID: "flexcord:rate:1", Label: "1"}, {CustomID: "flexcord:rate:5", Label: "5", Style: ButtonSuccess}},
	}
	sent, err := d.SendDirectMessage(ctx, SendDirectMessageInput{UserID: aliceID, Nonce: "e-1", Message: rate})
	if err != nil {
		t.Fatal(err)
	}
	channelID, messageID := sent.ChannelID, sent.MessageIDs[0]
	for _, b := range buttons(t, emu.Messages(channelID)[0].Message) {
		if b["disabled"] == true {
			t.Fatalf("button %v is disabled before the edit", b)
		}
	}

	t.Run("buttons disabled", func(t *testing.T) {
		rate.Buttons[0].Disabled, rate.Buttons[1].Disabled = true, true
		if err := d.EditDirectMessage(ctx, EditDirectMessageInput{ChannelID: channelID, MessageID: messageID, Message: rate}); err != nil {
			t.Fatalf("EditDirectMessage: %v", err)
		}
		recs := emu.Messages(channelID)
		if len(recs) != 1 {
			t.Fatalf("the channel holds %d messages, want the one edited", len(recs))
		}
		m := recs[0].Message
		bs := buttons(t, m)
		if len(bs) != 2 || bs[0]["disabled"] != true || bs[1]["disabled"] != true || bs[1]["custom_id"] != "flexcord:rate:5" {
			t.Fatalf("buttons after the edit = %v, want both disabled", bs)
		}
		if m.EditedTimestamp == nil || m.Content != rate.Content {
			t.Fatalf("message after the edit = %+v", m)
		}
		var am struct {
			Parse *[]string `json:"parse"`
		}
		if err := json.Unmarshal(recs[0].AllowedMentions, &am); err != nil || am.Parse == nil || len(*am.Parse) != 0 {
			t.Fatalf("allowed_mentions = %s, want {\"parse\":[]}", recs[0].AllowedMentions)
		}
	})

	t.Run("a rewrite without buttons removes them", func(t *testing.T) {
		in := EditDirectMessageInput{ChannelID: channelID, MessageID: messageID, Message: Message{Content: "Thanks for rating us 5."}}
		if err := d.EditDirectMessage(ctx, in); err != nil {
			t.Fatal(err)
		}
		// Editing again with the same input is harmless: the activity may be retried.
		if err := d.EditDirectMessage(ctx, in); err != nil {
			t.Fatal(err)
		}
		m := emu.Messages(channelID)[0].Message
		if m.Content != "Thanks for rating us 5." || len(m.Components) != 0 {
			t.Fatalf("message = %q with %d component rows", m.Content, len(m.Components))
		}
	})

	permanent := []struct {
		name     string
		in       EditDirectMessageInput
		wantText string
	}{
		{"unknown message", EditDirectMessageInput{ChannelID: channelID, MessageID: "1234567890123456789", Message: Message{Content: "x"}}, "discord 10008"},
		{"unknown channel", EditDirectMessageInput{ChannelID: "1234567890123456789", MessageID: messageID, Message: Message{Content: "x"}}, "discord 10003"},
		{"empty message", EditDirectMessageInput{ChannelID: channelID, MessageID: messageID, Message: Message{Content: " "}}, "empty"},
		{"no ids", EditDirectMessageInput{Message: Message{Content: "x"}}, "no channel id"},
	}
	for _, tt := range permanent {
		t.Run(tt.name, func(t *testing.T) {
			err := d.EditDirectMessage(ctx, tt.in)
			appErr := appError(t, err)
			if !appErr.NonRetryable() || appErr.Type() != ErrDiscordRejected || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("error %q: want non-retryable %s mentioning %q", err, ErrDiscordRejected, tt.wantText)
			}
		})
	}

	t.Run("5xx is retryable", func(t *testing.T) {
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteEditMessage, Status: 503, Code: 130000, Message: "API resource is currently overloaded."})
		err := d.EditDirectMessage(ctx, EditDirectMessageInput{ChannelID: channelID, MessageID: messageID, Message: Message{Content: "x"}})
		if appErr := appError(t, err); appErr.NonRetryable() || appErr.Type() != ErrDiscordUnavailable {
			t.Fatalf("error %q: want retryable %s", err, ErrDiscordUnavailable)
		}
	})

	t.Run("not configured", func(t *testing.T) {
		err := (&Discord{}).EditDirectMessage(ctx, EditDirectMessageInput{ChannelID: channelID, MessageID: messageID})
		if appErr := appError(t, err); appErr.Type() != ErrNotConfigured {
			t.Fatalf("error %q: want %s", err, ErrNotConfigured)
		}
	})

	// Last: discordgo holds the bucket for retry_after afterwards.
	t.Run("429 retries after retry_after", func(t *testing.T) {
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteEditMessage, Status: 429, RetryAfter: 1500 * time.Millisecond})
		err := d.EditDirectMessage(ctx, EditDirectMessageInput{ChannelID: channelID, MessageID: messageID, Message: Message{Content: "x"}})
		appErr := appError(t, err)
		if appErr.NonRetryable() || appErr.Type() != ErrDiscordRateLimited || appErr.NextRetryDelay() != 1500*time.Millisecond {
			t.Fatalf("error %q: want retryable %s after 1.5s", err, ErrDiscordRateLimited)
		}
	})
}

func TestDisabledButtonsAreSent(t *testing.T) {
	emu, d := newDiscord(t)
	msg := Message{Content: "Pick one", Buttons: []Button{
		{CustomID: "a", Label: "Still open"},
		{CustomID: "b", Label: "No longer applies", Disabled: true},
	}}
	sent, err := d.SendDirectMessage(context.Background(), SendDirectMessageInput{UserID: bobID, Nonce: "btn-1", Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.PostChannelMessage(context.Background(), PostChannelMessageInput{ChannelID: discordemu.DefaultChannelID, Nonce: "btn-2", Message: msg}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []discordemu.Message{emu.Messages(sent.ChannelID)[0].Message, emu.Messages(discordemu.DefaultChannelID)[0].Message} {
		bs := buttons(t, m)
		if len(bs) != 2 || bs[0]["disabled"] == true || bs[1]["disabled"] != true {
			t.Fatalf("buttons = %v, want only the second disabled", bs)
		}
	}
}

// TestNonceWindowLookBack: past Discord's nonce window, enforce_nonce no longer returns the first
// attempt's message; a delivery tried before finds it in the channel instead of sending it twice.
func TestNonceWindowLookBack(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("lorem ipsum dolor sit amet ", 167)[:4500] // three messages

	t.Run("delivered: nothing is sent again", func(t *testing.T) {
		emu, d, clk := newDiscordAt(t)
		first := clk.Now()
		in := SendDirectMessageInput{UserID: aliceID, Nonce: "w-1", Message: Message{Content: "Your case C-7K3QX2 is open.", Buttons: []Button{{CustomID: "flexcord:close", Label: "Close"}}}}
		sent, err := d.SendDirectMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		// The member answers meanwhile with the same words; that is not the bot's message.
		if _, err := emu.SendDM(aliceID, in.Message.Content); err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Minute) // past the emulator's 5-minute enforce_nonce window
		in.PriorAttempts, in.FirstTriedAt = 1, first
		again, err := d.SendDirectMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(emu.Messages(sent.ChannelID)); n != 2 {
			t.Fatalf("the channel holds %d messages, want the bot's one and the member's", n)
		}
		if !again.AlreadySent || strings.Join(again.MessageIDs, ",") != strings.Join(sent.MessageIDs, ",") || again.ChannelID != sent.ChannelID {
			t.Fatalf("retry = %+v, want the first attempt's %v, already sent", again, sent.MessageIDs)
		}
	})

	t.Run("without prior attempts the window is not searched", func(t *testing.T) {
		emu, d, clk := newDiscordAt(t)
		in := SendDirectMessageInput{UserID: aliceID, Nonce: "w-2", Message: Message{Content: "hello"}, FirstTriedAt: clk.Now()}
		sent, err := d.SendDirectMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Minute)
		again, err := d.SendDirectMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		// This is what the look-back prevents: the emulator, like Discord, forgot the nonce.
		if again.AlreadySent || again.MessageIDs[0] == sent.MessageIDs[0] || len(emu.Messages(sent.ChannelID)) != 2 {
			t.Fatalf("retry = %+v: want a second message once the nonce window has passed", again)
		}
	})

	t.Run("within the window enforce_nonce suffices", func(t *testing.T) {
		emu, d, clk := newDiscordAt(t)
		in := SendDirectMessageInput{UserID: aliceID, Nonce: "w-3", Message: Message{Content: "hello"}, FirstTriedAt: clk.Now()}
		sent, err := d.SendDirectMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		// Listing the channel now would fail: the look-back must not run.
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteListMessages, Status: 500})
		in.PriorAttempts = 1
		again, err := d.SendDirectMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if again.MessageIDs[0] != sent.MessageIDs[0] || len(emu.Messages(sent.ChannelID)) != 1 {
			t.Fatalf("retry = %+v, want the first message returned by enforce_nonce", again)
		}
		emu.ClearFaults()
	})

	t.Run("part of a split message: the rest is sent", func(t *testing.T) {
		emu, d, clk := newDiscordAt(t)
		first := clk.Now()
		in := SendDirectMessageInput{UserID: bobID, Nonce: "w-4", Message: Message{Content: long}}
		// The first attempt delivered the first chunk only.
		channelID, _, err := d.dmChannel(ctx, bobID)
		if err != nil {
			t.Fatal(err)
		}
		bodies, err := buildBodies(in.Message, in.Nonce)
		if err != nil || len(bodies) != 3 {
			t.Fatalf("%d bodies, %v", len(bodies), err)
		}
		firstIDs, err := d.sendBodies(ctx, channelID, bodies[:1])
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(3 * time.Minute) // past flexcord's 2-minute window, inside the emulator's
		in.PriorAttempts, in.FirstTriedAt = 2, first
		res, err := d.SendDirectMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		recs := emu.Messages(channelID)
		if len(recs) != 3 || len(res.MessageIDs) != 3 || res.MessageIDs[0] != firstIDs[0] || res.AlreadySent {
			t.Fatalf("channel holds %d messages, result %+v; want the first chunk kept and two more sent", len(recs), res)
		}
		for i, r := range recs {
			if r.Message.ID != res.MessageIDs[i] || r.Message.Content != bodies[i].Content {
				t.Fatalf("message %d = %s %.20q, want %s with chunk %d", i, r.Message.ID, r.Message.Content, res.MessageIDs[i], i)
			}
		}
	})

	t.Run("an identical message from before the first try is not this delivery", func(t *testing.T) {
		emu, d, clk := newDiscordAt(t)
		old, err := d.SendDirectMessage(ctx, SendDirectMessageInput{UserID: aliceID, Nonce: "w-5a", Message: Message{Content: "Thanks!"}})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		in := SendDirectMessageInput{UserID: aliceID, Nonce: "w-5b", Message: Message{Content: "Thanks!"}, PriorAttempts: 1, FirstTriedAt: clk.Now()}
		clk.Advance(10 * time.Minute)
		res, err := d.SendDirectMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if res.AlreadySent || res.MessageIDs[0] == old.MessageIDs[0] || len(emu.Messages(old.ChannelID)) != 2 {
			t.Fatalf("result %+v: want a new message, the old one is another delivery", res)
		}
	})

	t.Run("a failed look-back sends nothing and is retried", func(t *testing.T) {
		emu, d, clk := newDiscordAt(t)
		first := clk.Now()
		in := SendDirectMessageInput{UserID: aliceID, Nonce: "w-6", Message: Message{Content: "hello"}}
		sent, err := d.SendDirectMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Minute)
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteListMessages, Status: 502})
		in.PriorAttempts, in.FirstTriedAt = 1, first
		_, err = d.SendDirectMessage(ctx, in)
		if appErr := appError(t, err); appErr.NonRetryable() || appErr.Type() != ErrDiscordUnavailable {
			t.Fatalf("error %q: want retryable %s", err, ErrDiscordUnavailable)
		}
		if n := len(emu.Messages(sent.ChannelID)); n != 1 {
			t.Fatalf("the channel holds %d messages, want 1", n)
		}
	})
}

func TestFetchedMessageMatches(t *testing.T) {
	body := &messageBody{Content: "hello", Nonce: "k-1"}
	tests := []struct {
		name string
		json string
		want bool
	}{
		{"same nonce", `{"content":"hello","nonce":"k-1"}`, true},
		{"same nonce, edited since", `{"content":"hello (edited)","nonce":"k-1"}`, true},
		{"other nonce, same content", `{"content":"hello","nonce":"k-2"}`, false},
		{"numeric nonce", `{"content":"hello","nonce":12}`, false},
		{"no nonce, same content", `{"content":"hello"}`, true},
		{"no nonce, other content", `{"content":"hello!"}`, false},
		{"null nonce, same content", `{"content":"hello","nonce":null}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m fetchedMessage
			if err := json.Unmarshal([]byte(tt.json), &m); err != nil {
				t.Fatal(err)
			}
			if got := m.matches(body); got != tt.want {
				t.Fatalf("matches = %v, want %v", got, tt.want)
			}
		})
	}
	embedOnly := &messageBody{Embeds: buildEmbeds([]Embed{{Title: "Case C-7K3QX2"}})}
	var m fetchedMessage
	_ = json.Unmarshal([]byte(`{"content":"","embeds":[{"title":"Case C-7K3QX2"}]}`), &m)
	var other fetchedMessage
	_ = json.Unmarshal([]byte(`{"content":"","embeds":[{"title":"Case C-AAAAAA"}]}`), &other)
	if !m.matches(embedOnly) || other.matches(embedOnly) {
		t.Fatal("a message without text must match on its embed titles")
	}
}
