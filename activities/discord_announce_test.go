package activities

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/sandbox/discordemu"
)

const (
	annGuildID  = "1300000000000000000"
	annTextID   = "1300000000000000001"
	annNewsID   = "1300000000000000002"
	unknownChID = "1234567890123"
)

// newAnnounceDiscord starts an emulator whose guild has a text channel and an announcement
// channel, and returns it with Discord activities talking to it. Options may shorten the nonce
// window so that only the activity's own look-up can keep a retry from posting twice.
func newAnnounceDiscord(t *testing.T, opts discordemu.Options) (*discordemu.Server, *Discord) {
	t.Helper()
	opts.Guilds = []discordemu.Guild{{
		ID: annGuildID, Name: "Brand", Locale: "en-US", Channels: []string{annTextID},
		ChannelInfo: []discordemu.Channel{discordemu.AnnouncementChannel(annNewsID, "announcements")},
	}}
	emu := discordemu.NewTest(t, opts)
	s, err := discordsession.New(emu.Token(), emu.Transport())
	if err != nil {
		t.Fatal(err)
	}
	return emu, NewDiscord(s, slog.New(slog.DiscardHandler))
}

// noNonceWindow makes the emulator forget nonces at once: a second post with the same nonce is a
// second message, as on Discord once its few minutes have passed.
var noNonceWindow = discordemu.Options{NonceWindow: time.Nanosecond}

func announcement(channelID, nonce string) PostAnnouncementInput {
	return PostAnnouncementInput{
		ChannelID: channelID, Nonce: nonce, Source: "Brand blog",
		Title: "Version 2 is out", URL: "https://example.com/blog/v2", Summary: "**Faster** and _smaller_. @everyone",
		ImageURL: "https://example.com/v2.png", Author: "Ada", Published: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC),
	}
}

// embedOf returns the only embed of a stored message.
func embedOf(t *testing.T, m discordemu.Message) map[string]any {
	t.Helper()
	if len(m.Embeds) != 1 {
		t.Fatalf("message has %d embeds, want 1", len(m.Embeds))
	}
	b, _ := json.Marshal(m.Embeds[0])
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// retryAnnouncement runs PostAnnouncement in a Temporal test workflow with a retry policy, so that
// a failed first attempt is retried as attempt 2 as on a real worker.
func retryAnnouncement(t *testing.T, d *Discord, in PostAnnouncementInput) (PostAnnouncementResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(d)
	wf := func(ctx workflow.Context) (PostAnnouncementResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
		})
		var res PostAnnouncementResult
		err := workflow.ExecuteActivity(ctx, d.PostAnnouncement, in).Get(ctx, &res)
		return res, err
	}
	env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "announce"})
	env.ExecuteWorkflow("announce")
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var res PostAnnouncementResult
	if err := env.GetWorkflowError(); err != nil {
		return res, err
	}
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func TestPostAnnouncementEmbed(t *testing.T) {
	emu, d := newAnnounceDiscord(t, discordemu.Options{})
	ctx := context.Background()
	in := announcement(annTextID, "feed-blog-1")
	res, err := d.PostAnnouncement(ctx, in)
	if err != nil {
		t.Fatalf("PostAnnouncement: %v", err)
	}
	recs := emu.Messages(annTextID)
	if len(recs) != 1 || recs[0].Message.ID != res.MessageID || res.Recovered || res.Crossposted {
		t.Fatalf("channel holds %d messages; result %+v", len(recs), res)
	}
	rec := recs[0]
	if rec.Message.Content != "" || rec.Message.Nonce != "feed-blog-1" || string(rec.AllowedMentions) != `{"parse":[]}` {
		t.Errorf("content %q, nonce %v, allowed_mentions %s; want no content, the nonce, and no mentions",
			rec.Message.Content, rec.Message.Nonce, rec.AllowedMentions)
	}
	got, _ := json.Marshal(embedOf(t, rec.Message))
	want := `{"author":{"name":"Ada"},"color":5793266,"description":"**Faster** and _smaller_. @everyone",` +
		`"footer":{"text":"Brand blog"},"image":{"url":"https://example.com/v2.png"},"timestamp":"2026-11-20T09:30:00Z",` +
		`"title":"Version 2 is out","type":"rich","url":"https://example.com/blog/v2"}`
	if string(got) != want {
		t.Errorf("embed = %s\nwant    %s", got, want)
	}

	// Without an author the source signs the post; links that are not http(s) are left out.
	in = PostAnnouncementInput{ChannelID: annTextID, Nonce: "feed-blog-2", Source: " Brand blog ", Title: "Maintenance",
		URL: "javascript:alert(1)", ImageURL: "ftp://example.com/x.png"}
	if _, err := d.PostAnnouncement(ctx, in); err != nil {
		t.Fatalf("PostAnnouncement: %v", err)
	}
	e := embedOf(t, emu.Messages(annTextID)[1].Message)
	if author, _ := e["author"].(map[string]any); author["name"] != "Brand blog" {
		t.Errorf("author = %v, want the source", e["author"])
	}
	for _, k := range []string{"url", "image", "timestamp", "description"} {
		if _, found := e[k]; found {
			t.Errorf("embed has %s = %v, want none", k, e[k])
		}
	}
}

func TestPostAnnouncementCrosspost(t *testing.T) {
	emu, d := newAnnounceDiscord(t, discordemu.Options{})
	ctx := context.Background()
	for i, tt := range []struct {
		name        string
		channelID   string
		crosspost   bool
		crossposted bool
	}{
		{"announcement channel", annNewsID, true, true},
		{"announcement channel, not asked", annNewsID, false, false},
		{"text channel", annTextID, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := announcement(tt.channelID, "x-"+strconv.Itoa(i))
			in.Crosspost = tt.crosspost
			res, err := d.PostAnnouncement(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			var flags int
			for _, r := range emu.Messages(tt.channelID) {
				if r.Message.ID == res.MessageID {
					flags = r.Message.Flags
				}
			}
			if res.Crossposted != tt.crossposted || (flags&1 != 0) != tt.crossposted || res.CrosspostError != "" {
				t.Fatalf("result %+v, message flags %d; want crossposted=%v", res, flags, tt.crossposted)
			}
		})
	}
}

// TestPostAnnouncementRetry: after a first attempt whose outcome the activity could not see, the
// retry leaves exactly one message, crossposted when asked, whether or not the first attempt
// posted it. Discord's nonce window is off, so only the activity's look-up prevents a second post.
func TestPostAnnouncementRetry(t *testing.T) {
	tests := []struct {
		name      string
		channelID string
		crosspost bool
		faults    []discordemu.Fault
		recovered bool
	}{
		{"posted, then 500", annTextID, false,
			[]discordemu.Fault{{Route: discordemu.RouteCreateMessage, Status: 500, After: true}}, true},
		{"posted, then the connection dropped", annNewsID, true,
			[]discordemu.Fault{{Route: discordemu.RouteCreateMessage, Drop: true, After: true}}, true},
		{"not posted: 503", annNewsID, true,
			[]discordemu.Fault{{Route: discordemu.RouteCreateMessage, Status: 503, Code: 130000, Message: "API resource is currently overloaded."}}, false},
		{"posted, crosspost rate limited", annNewsID, true,
			[]discordemu.Fault{{Route: discordemu.RouteCrosspostMessage, Status: 429, RetryAfter: 100 * time.Millisecond}}, true},
		{"posted, crosspost 502", annNewsID, true,
			[]discordemu.Fault{{Route: discordemu.RouteCrosspostMessage, Status: 502}}, true},
		{"posted and crossposted, answer lost (40033 on retry)", annNewsID, true,
			[]discordemu.Fault{{Route: discordemu.RouteCrosspostMessage, Status: 500, After: true}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, d := newAnnounceDiscord(t, noNonceWindow)
			// An earlier post with the same (fallback) title but another item must not be
			// mistaken for this one.
			other := announcement(tt.channelID, "feed-blog-0")
			other.Title, other.URL, other.Summary = "New post on Brand blog", "https://example.com/blog/0", "Zero"
			if _, err := d.PostAnnouncement(context.Background(), other); err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.faults {
				emu.InjectFault(f)
			}
			in := announcement(tt.channelID, "feed-blog-1")
			in.Title, in.Summary = other.Title, "One"
			in.Crosspost = tt.crosspost
			res, err := retryAnnouncement(t, d, in)
			if err != nil {
				t.Fatalf("PostAnnouncement: %v", err)
			}
			recs := emu.Messages(tt.channelID)
			if len(recs) != 2 {
				t.Fatalf("the channel holds %d messages, want 2 (the earlier post and this one)", len(recs))
			}
			m := recs[1].Message
			if m.ID != res.MessageID || res.Recovered != tt.recovered {
				t.Fatalf("result %+v; message %s; want recovered=%v", res, m.ID, tt.recovered)
			}
			if e := embedOf(t, m); e["description"] != "One" {
				t.Fatalf("the retry returned the wrong post: %v", e)
			}
			if tt.crosspost && (!res.Crossposted || m.Flags&1 == 0) {
				t.Fatalf("result %+v, flags %d: want the post crossposted", res, m.Flags)
			}
		})
	}
}

// TestPostAnnouncementAfterEarlierActivity: a post re-queued after an earlier activity gave up
// (PriorAttempts, FirstTriedAt) looks for that activity's message too.
func TestPostAnnouncementAfterEarlierActivity(t *testing.T) {
	emu, d := newAnnounceDiscord(t, noNonceWindow)
	ctx := context.Background()
	in := announcement(annNewsID, "feed-blog-9")
	first := time.Now()
	emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: 500, After: true})
	if _, err := d.PostAnnouncement(ctx, in); err == nil {
		t.Fatal("the fault did not apply")
	}
	in.PriorAttempts, in.FirstTriedAt = 1, first
	res, err := d.PostAnnouncement(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if recs := emu.Messages(annNewsID); len(recs) != 1 || !res.Recovered || res.MessageID != recs[0].Message.ID {
		t.Fatalf("%d messages, result %+v; want the first one recovered", len(recs), res)
	}
}

func TestPostAnnouncementTrimsToLimits(t *testing.T) {
	emu, d := newAnnounceDiscord(t, discordemu.Options{})
	ctx := context.Background()
	for i, tt := range []struct {
		name    string
		in      PostAnnouncementInput
		maxDesc int
	}{
		{"long title and summary", PostAnnouncementInput{Title: strings.Repeat("제목 ", 200), Summary: strings.Repeat("요약 ", 3000), Source: "Brand"}, maxEmbedDesc},
		{"the 6,000 total", PostAnnouncementInput{Title: strings.Repeat("t", 400), Summary: strings.Repeat("s", 5000),
			Source: strings.Repeat("b", 3000), Author: strings.Repeat("a", 300)}, maxEmbedTotal - maxEmbedTitle - maxEmbedFooter - maxEmbedAuthor},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.ChannelID, in.Nonce = annNewsID, "trim-"+strconv.Itoa(i)
			res, err := d.PostAnnouncement(ctx, in)
			if err != nil {
				t.Fatalf("the emulator refused the post: %v", err)
			}
			var e map[string]any
			for _, r := range emu.Messages(annNewsID) {
				if r.Message.ID == res.MessageID {
					e = embedOf(t, r.Message)
				}
			}
			n := func(v any) int { s, _ := v.(string); return utf8.RuneCountInString(s) }
			title, desc := n(e["title"]), n(e["description"])
			footer := n(e["footer"].(map[string]any)["text"])
			author := n(e["author"].(map[string]any)["name"])
			if title > maxEmbedTitle || desc != tt.maxDesc || footer > maxEmbedFooter || author > maxEmbedAuthor {
				t.Errorf("title %d, description %d, footer %d, author %d characters; want title ≤ 256, description %d",
					title, desc, footer, author, tt.maxDesc)
			}
			if total := title + desc + footer + author; total > maxEmbedTotal {
				t.Errorf("%d characters in all", total)
			}
			if !strings.HasSuffix(e["description"].(string), "…") || !strings.HasSuffix(e["title"].(string), "…") {
				t.Errorf("cut texts should end with an ellipsis: %q… %q", e["title"], e["description"].(string)[:20])
			}
		})
	}
}

func TestPostAnnouncementErrors(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, err error, retryable bool, typ string, delay time.Duration) {
		t.Helper()
		appErr := appError(t, err)
		if appErr.NonRetryable() == retryable || appErr.Type() != typ || (delay > 0 && appErr.NextRetryDelay() != delay) {
			t.Fatalf("error %q: retryable=%v type=%s delay=%s; want retryable=%v %s %s",
				err, !appErr.NonRetryable(), appErr.Type(), appErr.NextRetryDelay(), retryable, typ, delay)
		}
	}

	t.Run("unknown channel is permanent", func(t *testing.T) {
		_, d := newAnnounceDiscord(t, discordemu.Options{})
		_, err := d.PostAnnouncement(ctx, announcement(unknownChID, "e-1"))
		check(t, err, false, ErrDiscordRejected, 0)
		if !strings.Contains(err.Error(), "discord 10003") {
			t.Fatalf("error %q does not name 10003", err)
		}
	})
	t.Run("429 waits retry_after", func(t *testing.T) {
		emu, d := newAnnounceDiscord(t, discordemu.Options{})
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: 429, RetryAfter: 2500 * time.Millisecond})
		_, err := d.PostAnnouncement(ctx, announcement(annNewsID, "e-2"))
		check(t, err, true, ErrDiscordRateLimited, 2500*time.Millisecond)
	})
	t.Run("5xx is retryable", func(t *testing.T) {
		emu, d := newAnnounceDiscord(t, discordemu.Options{})
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: 500})
		_, err := d.PostAnnouncement(ctx, announcement(annNewsID, "e-3"))
		check(t, err, true, ErrDiscordUnavailable, 0)
	})
	t.Run("a crosspost rate limit fails the attempt", func(t *testing.T) {
		emu, d := newAnnounceDiscord(t, discordemu.Options{})
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCrosspostMessage, Status: 429, RetryAfter: 90 * time.Second})
		in := announcement(annNewsID, "e-4")
		in.Crosspost = true
		_, err := d.PostAnnouncement(ctx, in)
		check(t, err, true, ErrDiscordRateLimited, 90*time.Second)
	})
	t.Run("a channel lookup 5xx fails the attempt", func(t *testing.T) {
		emu, d := newAnnounceDiscord(t, discordemu.Options{})
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteGetChannel, Status: http.StatusServiceUnavailable})
		in := announcement(annNewsID, "e-5")
		in.Crosspost = true
		_, err := d.PostAnnouncement(ctx, in)
		check(t, err, true, ErrDiscordUnavailable, 0)
	})
	t.Run("a refused crosspost does not fail the post", func(t *testing.T) {
		emu, d := newAnnounceDiscord(t, discordemu.Options{})
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCrosspostMessage, Status: http.StatusForbidden, Code: 50013, Message: "Missing Permissions"})
		in := announcement(annNewsID, "e-6")
		in.Crosspost = true
		res, err := d.PostAnnouncement(ctx, in)
		if err != nil || res.MessageID == "" || res.Crossposted || !strings.Contains(res.CrosspostError, "50013") {
			t.Fatalf("result %+v, error %v; want the post, not crossposted, with the reason", res, err)
		}
		if n := len(emu.Messages(annNewsID)); n != 1 {
			t.Fatalf("%d messages", n)
		}
	})
	t.Run("invalid input is permanent", func(t *testing.T) {
		_, d := newAnnounceDiscord(t, discordemu.Options{})
		for _, in := range []PostAnnouncementInput{
			{Nonce: "e-7", Title: "x"},
			{ChannelID: annNewsID, Title: "x"},
			{ChannelID: annNewsID, Nonce: "e-8", Source: "Brand", Title: "  "},
		} {
			_, err := d.PostAnnouncement(ctx, in)
			check(t, err, false, ErrDiscordRejected, 0)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		_, err := (&Discord{}).PostAnnouncement(ctx, announcement(annNewsID, "e-9"))
		check(t, err, false, ErrNotConfigured, 0)
	})
}
