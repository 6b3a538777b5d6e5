package activities

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/sandbox/discordemu"
)

const (
	aliceID = "2000000000000000001"
	bobID   = "2000000000000000002"
)

func TestSplitContent(t *testing.T) {
	words := strings.Repeat("lorem ipsum dolor sit amet ", 170) // 4,590 characters
	lines := strings.Repeat(strings.Repeat("x", 99)+"\n", 45)   // 4,500 characters
	hangul := strings.Repeat("가", 4500)                         // no boundary at all, 3 bytes a rune
	emoji := strings.Repeat("🙂", 1500)                          // 2 UTF-16 units each
	tests := []struct {
		name   string
		text   string
		chunks int
		// cutAfter, when set, must end every chunk but the last.
		cutAfter string
	}{
		{"short text is one chunk", "hello", 1, ""},
		{"exactly the limit", strings.Repeat("a", maxContentLen), 1, ""},
		{"empty", "", 0, ""},
		{"blank", " \n \n", 0, ""},
		{"words split between words", words, 3, "amet"},
		{"lines split at line ends", lines, 3, "x"},
		{"one long word is cut between runes", hangul, 3, ""},
		{"astral runes counted as two", emoji, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitContent(tt.text, maxContentLen)
			if len(got) != tt.chunks {
				t.Fatalf("%d chunks, want %d", len(got), tt.chunks)
			}
			for i, c := range got {
				if n := textLen(c); n > maxContentLen {
					t.Errorf("chunk %d has %d characters", i, n)
				}
				if !utf8.ValidString(c) {
					t.Errorf("chunk %d is not valid UTF-8 (cut inside a rune)", i)
				}
				if tt.cutAfter != "" && i < len(got)-1 && !strings.HasSuffix(c, tt.cutAfter) {
					t.Errorf("chunk %d ends with %q, want a cut after %q", i, c[len(c)-10:], tt.cutAfter)
				}
			}
			// Nothing but the separators at the cuts is lost.
			strip := func(s string) string { return strings.Join(strings.Fields(s), "") }
			if strip(strings.Join(got, "")) != strip(tt.text) {
				t.Error("chunks do not add up to the text")
			}
		})
	}
}

func TestSplitPrefersLateBoundaries(t *testing.T) {
	// A line break early in the chunk and spaces late in it: the late space wins, so chunks stay long.
	text := "title\n" + strings.Repeat("word ", 600)
	got := splitContent(text, maxContentLen)
	if n := textLen(got[0]); n < maxContentLen-10 {
		t.Fatalf("first chunk has %d characters; it should be cut at a late space", n)
	}
}

func TestChunkNonce(t *testing.T) {
	long := strings.Repeat("k", 30)
	tests := []struct {
		nonce string
		i, n  int
		want  string
	}{
		{"abc-1", 0, 1, "abc-1"},
		{"abc-1", 0, 3, "abc-1.0"},
		{"abc-1", 2, 3, "abc-1.2"},
		{"", 0, 2, ""},
	}
	for _, tt := range tests {
		if got := chunkNonce(tt.nonce, tt.i, tt.n); got != tt.want {
			t.Errorf("chunkNonce(%q, %d, %d) = %q, want %q", tt.nonce, tt.i, tt.n, got, tt.want)
		}
	}
	seen := map[string]bool{}
	for i := range 12 {
		got := chunkNonce(long, i, 12)
		if len(got) > maxNonceLen || seen[got] || got != chunkNonce(long, i, 12) {
			t.Fatalf("chunkNonce(long, %d) = %q: want ≤ 25 characters, distinct and stable", i, got)
		}
		seen[got] = true
	}
}

// newDiscord starts an emulator with contract validation and returns it with Discord activities
// talking to it.
func newDiscord(t *testing.T) (*discordemu.Server, *Discord) {
	t.Helper()
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{
		{ID: aliceID, Username: "alice", GlobalName: "Alice", Locale: "ko"},
		{ID: bobID, Username: "bob"},
	}})
	s, err := discordsession.New(emu.Token(), emu.Transport())
	if err != nil {
		t.Fatal(err)
	}
	return emu, NewDiscord(s, slog.New(slog.DiscardHandler))
}

func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v (%T) is not an ApplicationError", err, err)
	}
	return appErr
}

func TestSendDirectMessageSplitsLongText(t *testing.T) {
	emu, d := newDiscord(t)
	ctx := context.Background()
	text := strings.Repeat("lorem ipsum dolor sit amet ", 167)[:4500]
	in := SendDirectMessageInput{UserID: aliceID, Nonce: "k3x9-1a", Message: Message{
		Content: text,
		Embeds:  []Embed{{Title: "How to reset", URL: "https://help.example.com/reset", Description: "Steps", Footer: "Help center"}},
		Buttons: []Button{{CustomID: "flexcord:solved", Label: "This solved it", Style: ButtonSuccess}, {CustomID: "flexcord:human", Label: "Talk to a human", Style: ButtonPrimary}},
	}}
	res, err := d.SendDirectMessage(ctx, in)
	if err != nil {
		t.Fatalf("SendDirectMessage: %v", err)
	}
	if len(res.MessageIDs) != 3 {
		t.Fatalf("%d messages, want 3", len(res.MessageIDs))
	}
	recs := emu.Messages(res.ChannelID)
	if len(recs) != 3 {
		t.Fatalf("the DM channel holds %d messages, want 3", len(recs))
	}
	nonces := map[any]bool{}
	var joined strings.Builder
	for i, r := range recs {
		m := r.Message
		if m.ID != res.MessageIDs[i] {
			t.Errorf("message %d is %s, result says %s", i, m.ID, res.MessageIDs[i])
		}
		if n := utf8.RuneCountInString(m.Content); n > 2000 || n == 0 {
			t.Errorf("message %d has %d characters", i, n)
		}
		if nonces[m.Nonce] || m.Nonce == nil {
			t.Errorf("message %d nonce %v is missing or repeated", i, m.Nonce)
		}
		nonces[m.Nonce] = true
		last := i == len(recs)-1
		if (len(m.Embeds) > 0) != last || (len(m.Components) > 0) != last {
			t.Errorf("message %d: %d embeds, %d component rows; want them only on the last message", i, len(m.Embeds), len(m.Components))
		}
		joined.WriteString(m.Content + " ")
	}
	if strings.Join(strings.Fields(joined.String()), " ") != strings.Join(strings.Fields(text), " ") {
		t.Error("the messages do not add up to the text")
	}
	last := recs[2].Message
	embed, _ := last.Embeds[0].(map[string]any)
	if embed["title"] != "How to reset" || embed["url"] != "https://help.example.com/reset" {
		t.Errorf("embed = %v", embed)
	}
	row, _ := last.Components[0].(map[string]any)
	buttons, _ := row["components"].([]any)
	if len(buttons) != 2 || buttons[1].(map[string]any)["custom_id"] != "flexcord:human" {
		t.Errorf("components = %v", last.Components)
	}
}

func TestSendDirectMessageIsIdempotent(t *testing.T) {
	emu, d := newDiscord(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name, nonce, text string
	}{
		{"single message", "abc-1", "hello"},
		{"split message", "abc-2", strings.Repeat("word ", 900)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := SendDirectMessageInput{UserID: bobID, Nonce: tt.nonce, Message: Message{Content: tt.text}}
			first, err := d.SendDirectMessage(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			before := len(emu.Messages(first.ChannelID))
			// A retried activity sends the same input again.
			again, err := d.SendDirectMessage(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if after := len(emu.Messages(first.ChannelID)); after != before {
				t.Fatalf("the retry created %d more messages", after-before)
			}
			if strings.Join(again.MessageIDs, ",") != strings.Join(first.MessageIDs, ",") {
				t.Fatalf("retry returned %v, first attempt %v", again.MessageIDs, first.MessageIDs)
			}
		})
	}
}

func TestMentionsAreNeutralised(t *testing.T) {
	emu, d := newDiscord(t)
	res, err := d.PostChannelMessage(context.Background(), PostChannelMessageInput{
		ChannelID: discordemu.DefaultChannelID, Nonce: "m-1",
		Message: Message{Content: "@everyone @here <@" + bobID + "> look at this"},
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := emu.Messages(discordemu.DefaultChannelID)
	if len(recs) != 1 || recs[0].Message.ID != res.MessageIDs[0] {
		t.Fatalf("channel holds %d messages", len(recs))
	}
	var am struct {
		Parse *[]string `json:"parse"`
	}
	if err := json.Unmarshal(recs[0].AllowedMentions, &am); err != nil || am.Parse == nil || len(*am.Parse) != 0 {
		t.Fatalf("allowed_mentions = %s, want {\"parse\":[]}", recs[0].AllowedMentions)
	}
	if !strings.Contains(recs[0].Message.Content, "@everyone") {
		t.Fatalf("content = %q, the text itself should be unchanged", recs[0].Message.Content)
	}
}

func TestDiscordErrorClassification(t *testing.T) {
	ctx := context.Background()

	t.Run("429 retries after retry_after", func(t *testing.T) {
		emu, d := newDiscord(t)
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: 429, RetryAfter: 1500 * time.Millisecond})
		_, err := d.SendDirectMessage(ctx, SendDirectMessageInput{UserID: aliceID, Nonce: "r-1", Message: Message{Content: "hi"}})
		appErr := appError(t, err)
		if appErr.NonRetryable() || appErr.Type() != ErrDiscordRateLimited || appErr.NextRetryDelay() != 1500*time.Millisecond {
			t.Fatalf("error %q: retryable=%v type=%s next delay=%s; want retryable %s after 1.5s",
				err, !appErr.NonRetryable(), appErr.Type(), appErr.NextRetryDelay(), ErrDiscordRateLimited)
		}
	})

	t.Run("50007 is permanent", func(t *testing.T) {
		emu, d := newDiscord(t)
		if err := emu.SetDMsClosed(aliceID, true); err != nil {
			t.Fatal(err)
		}
		_, err := d.SendDirectMessage(ctx, SendDirectMessageInput{UserID: aliceID, Nonce: "c-1", Message: Message{Content: "hi"}})
		appErr := appError(t, err)
		if !appErr.NonRetryable() || appErr.Type() != ErrCannotMessageUser {
			t.Fatalf("error %q: non-retryable=%v type=%s; want non-retryable %s", err, appErr.NonRetryable(), appErr.Type(), ErrCannotMessageUser)
		}
		want := "send DM to member " + aliceID + ": discord 50007: Cannot send messages to this user"
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not contain %q", err, want)
		}
	})

	t.Run("5xx is retryable", func(t *testing.T) {
		emu, d := newDiscord(t)
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: 503, Code: 130000, Message: "API resource is currently overloaded."})
		_, err := d.PostChannelMessage(ctx, PostChannelMessageInput{ChannelID: discordemu.DefaultChannelID, Nonce: "u-1", Message: Message{Content: "hi"}})
		appErr := appError(t, err)
		if appErr.NonRetryable() || appErr.Type() != ErrDiscordUnavailable {
			t.Fatalf("error %q: want retryable %s", err, ErrDiscordUnavailable)
		}
	})

	t.Run("unknown channel is permanent", func(t *testing.T) {
		_, d := newDiscord(t)
		_, err := d.PostChannelMessage(ctx, PostChannelMessageInput{ChannelID: "1234567890123", Nonce: "u-2", Message: Message{Content: "hi"}})
		appErr := appError(t, err)
		if !appErr.NonRetryable() || appErr.Type() != ErrDiscordRejected || !strings.Contains(err.Error(), "discord 10003") {
			t.Fatalf("error %q: want non-retryable %s with code 10003", err, ErrDiscordRejected)
		}
	})

	t.Run("empty message is permanent", func(t *testing.T) {
		_, d := newDiscord(t)
		_, err := d.PostChannelMessage(ctx, PostChannelMessageInput{ChannelID: discordemu.DefaultChannelID, Message: Message{Content: "  "}})
		if appErr := appError(t, err); !appErr.NonRetryable() || appErr.Type() != ErrDiscordRejected {
			t.Fatalf("error %q: want non-retryable %s", err, ErrDiscordRejected)
		}
	})

	t.Run("not configured", func(t *testing.T) {
		_, err := (&Discord{}).SendDirectMessage(ctx, SendDirectMessageInput{UserID: aliceID})
		if appErr := appError(t, err); appErr.Type() != ErrNotConfigured {
			t.Fatalf("error %q: want %s", err, ErrNotConfigured)
		}
	})
}

func TestDMChannelIsCached(t *testing.T) {
	emu, d := newDiscord(t)
	ctx := context.Background()
	first, err := d.SendDirectMessage(ctx, SendDirectMessageInput{UserID: aliceID, Nonce: "d-1", Message: Message{Content: "one"}})
	if err != nil {
		t.Fatal(err)
	}
	// Opening the DM channel again would fail now.
	emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateDM, Status: 500, Count: 5})
	second, err := d.SendDirectMessage(ctx, SendDirectMessageInput{UserID: aliceID, Nonce: "d-2", Message: Message{Content: "two"}})
	if err != nil {
		t.Fatalf("second DM opened the channel again: %v", err)
	}
	if second.ChannelID != first.ChannelID {
		t.Fatalf("channel %s, then %s", first.ChannelID, second.ChannelID)
	}
	emu.ClearFaults()
}

func TestPostChannelMessageLaysOutButtons(t *testing.T) {
	emu, d := newDiscord(t)
	var buttons []Button
	for i := 1; i <= 7; i++ {
		buttons = append(buttons, Button{CustomID: "test:" + strconv.Itoa(i), Label: strings.Repeat("b", i)})
	}
	_, err := d.PostChannelMessage(context.Background(), PostChannelMessageInput{
		ChannelID: discordemu.DefaultChannelID, Nonce: "b-1",
		Message: Message{Embeds: []Embed{{Title: strings.Repeat("t", 300), Description: strings.Repeat("d", 5000), URL: "not a url", Footer: "C-7K3QX2 · open"}}, Buttons: buttons},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := emu.Messages(discordemu.DefaultChannelID)[0].Message
	if len(m.Components) != 2 {
		t.Fatalf("%d action rows, want 2 (5 + 2 buttons)", len(m.Components))
	}
	embed := m.Embeds[0].(map[string]any)
	if n := utf8.RuneCountInString(embed["title"].(string)); n != maxEmbedTitle {
		t.Errorf("embed title has %d characters, want it cut to %d", n, maxEmbedTitle)
	}
	if n := utf8.RuneCountInString(embed["description"].(string)); n != maxEmbedDesc {
		t.Errorf("embed description has %d characters, want it cut to %d", n, maxEmbedDesc)
	}
	if _, ok := embed["url"]; ok {
		t.Errorf("an invalid embed URL was sent: %v", embed["url"])
	}
}

func TestSendInteractionFollowUp(t *testing.T) {
	emu, d := newDiscord(t)
	ctx := context.Background()
	if _, err := d.s.ApplicationCommandBulkOverwrite(emu.ApplicationID(), "", []*discordgo.ApplicationCommand{{Name: "helpme", Description: "Get help"}}); err != nil {
		t.Fatal(err)
	}
	info, err := emu.RunCommand(ctx, aliceID, discordemu.CommandInput{Name: "helpme", GuildID: discordemu.DefaultGuildID})
	if err != nil {
		t.Fatal(err)
	}
	// Acknowledge as ingress does: a deferred, ephemeral reply.
	err = d.s.InteractionRespond(&discordgo.Interaction{ID: info.ID, Token: info.Token}, &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseDeferredChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.SendInteractionFollowUp(ctx, SendInteractionFollowUpInput{
		ApplicationID: emu.ApplicationID(), Token: info.Token, Message: Message{Content: "Check your DMs @everyone", Ephemeral: true},
	})
	if err != nil {
		t.Fatalf("SendInteractionFollowUp: %v", err)
	}
	var got *discordemu.Record
	for _, r := range emu.UserMessages(aliceID) {
		if r.Message.ID == res.MessageID {
			got = &r
		}
	}
	if got == nil || !got.Ephemeral || got.Message.Content != "Check your DMs @everyone" || string(got.AllowedMentions) != `{"parse":[]}` {
		t.Fatalf("follow-up = %+v", got)
	}

	t.Run("a bad token is permanent and never shown", func(t *testing.T) {
		token := "aW50ZXJhY3Rpb246secret-token"
		_, err := d.SendInteractionFollowUp(ctx, SendInteractionFollowUpInput{ApplicationID: emu.ApplicationID(), Token: token, Message: Message{Content: "x"}})
		appErr := appError(t, err)
		if !appErr.NonRetryable() || appErr.Type() != ErrDiscordRejected {
			t.Fatalf("error %q: want non-retryable %s", err, ErrDiscordRejected)
		}
		if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), emu.Token()) {
			t.Fatalf("error %q shows a token", err)
		}
	})
}
