package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// announcementColor is the colour bar of announcement embeds.
const announcementColor = 0x5865F2

// maxEmbedAuthor is Discord's limit on an embed's author name.
const maxEmbedAuthor = 256

// codeAlreadyCrossposted is Discord's answer to crossposting a message a second time.
const codeAlreadyCrossposted = 40033

// PostAnnouncementInput is the input of Discord.PostAnnouncement: one feed item, posted as one
// message with one embed.
type PostAnnouncementInput struct {
	ChannelID string `json:"channel_id"`
	// Nonce is the post's idempotency key (at most 25 characters; a longer one is shortened with
	// a hash), sent with enforce_nonce. It is required.
	Nonce string `json:"nonce"`
	// Source is the source's display name: the embed's footer, and its author when Author is
	// empty.
	Source string `json:"source"`
	// Title is the embed's title, cut to 256 characters.
	Title string `json:"title"`
	// URL links the title; left out unless it is an absolute http(s) URL.
	URL string `json:"url,omitempty"`
	// Summary is the embed's description (Markdown), cut to 4,096 characters and so that the
	// embed's text stays within Discord's 6,000.
	Summary string `json:"summary,omitempty"`
	// ImageURL is the embed's image; left out unless it is an absolute http(s) URL.
	ImageURL string `json:"image_url,omitempty"`
	// Author is the item's author, shown above the title.
	Author string `json:"author,omitempty"`
	// Published is the embed's timestamp; zero: none.
	Published time.Time `json:"published,omitempty"`
	// Crosspost publishes the message when the channel is an announcement channel (type 5).
	Crosspost bool `json:"crosspost,omitempty"`
	// PriorAttempts is how many activities tried this post before this one (an operator's
	// retry, a re-queued delivery). With FirstTriedAt, it makes the activity look for the message
	// an earlier activity may have posted before posting, as it does on its own retries.
	PriorAttempts int `json:"prior_attempts,omitempty"`
	// FirstTriedAt is when the first activity for this post started; the look-up searches the
	// messages posted since then.
	FirstTriedAt time.Time `json:"first_tried_at,omitempty"`
}

// PostAnnouncementResult is the message Discord.PostAnnouncement posted (or found).
type PostAnnouncementResult struct {
	MessageID string `json:"message_id"`
	// Crossposted is true when the message is published to the channels following the
	// announcement channel (by this attempt or an earlier one).
	Crossposted bool `json:"crossposted,omitempty"`
	// Recovered: an earlier attempt had already posted it (found by nonce).
	Recovered bool `json:"recovered,omitempty"`
	// CrosspostError says why the message was posted but not published, when Discord refused
	// the crosspost for good (for example the channel stopped being an announcement channel).
	// The post itself succeeded, so the activity does not fail for it.
	CrosspostError string `json:"crosspost_error,omitempty"`
}

// PostAnnouncement posts a feed item in a channel, usually #announcements, as one message with
// one embed (title, link, summary, image, author, source, publication time) that pings no one,
// and, when in.Crosspost is set and the channel is an announcement channel, publishes it to the
// channels that follow it.
//
// A retry never posts twice: the message is sent with the nonce and enforce_nonce, and every
// attempt after the first (or after in.PriorAttempts earlier activities) first looks for a message
// an earlier attempt posted, whose answer was lost, among the channel's messages since the first
// try. It then only crossposts what it found; Discord's "already crossposted" (40033) counts as
// success. Failures are classified as for the other Discord activities: an unknown channel or
// missing access is permanent (ErrDiscordRejected), rate limits wait Discord's retry_after, 5xx
// answers and network errors are retried. A crosspost that Discord refuses for good does not fail
// a post that succeeded (see PostAnnouncementResult.CrosspostError).
func (d *Discord) PostAnnouncement(ctx context.Context, in PostAnnouncementInput) (PostAnnouncementResult, error) {
	if d == nil || d.s == nil {
		return PostAnnouncementResult{}, notConfigured("Discord")
	}
	op := "post announcement to channel " + in.ChannelID
	switch {
	case in.ChannelID == "":
		return PostAnnouncementResult{}, rejected(op, "no channel id")
	case in.Nonce == "":
		return PostAnnouncementResult{}, rejected(op, "no nonce")
	}
	embed := announcementEmbed(in)
	if embed.Title == "" && embed.Description == "" && embed.URL == "" && embed.Image == nil {
		return PostAnnouncementResult{}, rejected(op, "the item has no title, summary, link or image")
	}
	body := &messageBody{
		Nonce:           chunkNonce(in.Nonce, 0, 1),
		EnforceNonce:    true,
		Embeds:          []*discordgo.MessageEmbed{embed},
		AllowedMentions: allowedMentions{Parse: []string{}},
	}

	var res PostAnnouncementResult
	if since, retried := d.announcementTriedSince(ctx, in); retried {
		id, err := d.findAnnouncement(ctx, in.ChannelID, since, body)
		if err != nil {
			return res, d.classify(op+": look for an earlier attempt's post", err)
		}
		if id != "" {
			d.log.Info("an earlier attempt had posted the announcement; not posting it again",
				"channel_id", in.ChannelID, "nonce", in.Nonce, "message_id", id)
			res.MessageID, res.Recovered = id, true
		}
	}
	if res.MessageID == "" {
		ids, err := d.sendBodies(ctx, in.ChannelID, []*messageBody{body})
		if err != nil {
			return res, d.classify(op, err)
		}
		res.MessageID = ids[0]
	}
	if !in.Crosspost {
		return res, nil
	}
	return d.crosspostAnnouncement(ctx, in.ChannelID, res)
}

// crosspostAnnouncement publishes the posted message when the channel is an announcement
// channel. Retryable failures fail the activity (its retry finds the post and crossposts again);
// permanent ones are reported in the result.
func (d *Discord) crosspostAnnouncement(ctx context.Context, channelID string, res PostAnnouncementResult) (PostAnnouncementResult, error) {
	op := "crosspost message " + res.MessageID + " in channel " + channelID
	ch, err := d.s.Channel(channelID, discordgo.WithContext(ctx))
	if err == nil && ch.Type != discordgo.ChannelTypeGuildNews {
		return res, nil // not an announcement channel: nothing to publish
	}
	if err == nil {
		_, err = d.s.ChannelMessageCrosspost(channelID, res.MessageID, discordgo.WithContext(ctx))
		if err == nil || discordCode(err) == codeAlreadyCrossposted {
			res.Crossposted = true
			return res, nil
		}
	}
	cerr := d.classify(op, err)
	var appErr *temporal.ApplicationError
	if errors.As(cerr, &appErr) && appErr.NonRetryable() {
		res.CrosspostError = cerr.Error()
		return res, nil
	}
	return res, cerr
}

// announcementEmbed renders a feed item as an embed within Discord's limits.
func announcementEmbed(in PostAnnouncementInput) *discordgo.MessageEmbed {
	e := &discordgo.MessageEmbed{
		Title: truncateText(strings.TrimSpace(in.Title), maxEmbedTitle),
		Color: announcementColor,
	}
	if validURL(in.URL) {
		e.URL = in.URL
	}
	if validURL(in.ImageURL) {
		e.Image = &discordgo.MessageEmbedImage{URL: in.ImageURL}
	}
	source := strings.TrimSpace(in.Source)
	if source != "" {
		e.Footer = &discordgo.MessageEmbedFooter{Text: truncateText(source, maxEmbedFooter)}
	}
	author := strings.TrimSpace(in.Author)
	if author == "" {
		author = source
	}
	if author != "" {
		e.Author = &discordgo.MessageEmbedAuthor{Name: truncateText(author, maxEmbedAuthor)}
	}
	if !in.Published.IsZero() {
		e.Timestamp = in.Published.UTC().Format(time.RFC3339)
	}
	others := textLen(e.Title)
	if e.Footer != nil {
		others += textLen(e.Footer.Text)
	}
	if e.Author != nil {
		others += textLen(e.Author.Name)
	}
	// At most 256 + 2,048 + 256 characters are taken, so there is always room for a summary.
	e.Description = truncateText(strings.TrimSpace(in.Summary), min(maxEmbedDesc, maxEmbedTotal-others))
	return e
}

// announcementTriedSince reports whether an earlier attempt or activity may have posted this
// announcement, and since when to look for its message.
func (d *Discord) announcementTriedSince(ctx context.Context, in PostAnnouncementInput) (time.Time, bool) {
	retry := discordAttempt(ctx) > 1
	if !retry && in.PriorAttempts <= 0 {
		return time.Time{}, false
	}
	since := in.FirstTriedAt
	if activity.IsActivity(ctx) {
		// The scheduled time is that of the activity's first attempt.
		if sched := activity.GetInfo(ctx).ScheduledTime; !sched.IsZero() && (since.IsZero() || sched.Before(since)) {
			since = sched
		}
	}
	if since.IsZero() {
		now := time.Now
		if d.now != nil {
			now = d.now
		}
		since = now().Add(-nonceWindow)
	}
	return since, true
}

// postedMessage is a fetched message with its embeds in full, for recognizing an announcement.
type postedMessage struct {
	fetchedMessage
	Embeds []discordgo.MessageEmbed `json:"embeds"`
}

// isPostOf reports whether m is the message created for body: the same nonce when Discord
// returned one, else a bot's message without text whose one embed has the same title, link,
// description and footer. The title alone would not do: items without a title share the
// fallback title the workflow gives them.
func (m *postedMessage) isPostOf(b *messageBody) bool {
	if m.Author == nil || !m.Author.Bot {
		return false
	}
	if n := m.nonce(); n != "" {
		return n == b.Nonce
	}
	if strings.TrimSpace(m.Content) != "" || len(m.Embeds) != 1 || len(b.Embeds) != 1 {
		return false
	}
	got, want := m.Embeds[0], b.Embeds[0]
	same := func(x, y string) bool { return strings.TrimSpace(x) == strings.TrimSpace(y) }
	footer := func(e *discordgo.MessageEmbed) string {
		if e.Footer == nil {
			return ""
		}
		return e.Footer.Text
	}
	return same(got.Title, want.Title) && same(got.URL, want.URL) &&
		same(got.Description, want.Description) && same(footer(&got), footer(want))
}

// findAnnouncement looks among the channel's messages created since the first try (one page of
// them) for the one posted for body, and returns its id, or "" when there is none.
func (d *Discord) findAnnouncement(ctx context.Context, channelID string, since time.Time, body *messageBody) (string, error) {
	endpoint := discordgo.EndpointChannelMessages(channelID)
	uri := fmt.Sprintf("%s?limit=%d&after=%s", endpoint, lookBackLimit, snowflakeAt(since.Add(-clockSkewAllowance)))
	raw, err := d.s.RequestWithBucketID(http.MethodGet, uri, nil, endpoint, discordgo.WithContext(ctx))
	if err != nil {
		return "", err
	}
	var msgs []postedMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return "", fmt.Errorf("decode the channel's messages: %w", err)
	}
	slices.SortFunc(msgs, func(a, b postedMessage) int { return compareSnowflakes(a.ID, b.ID) })
	for i := range msgs {
		if msgs[i].isPostOf(body) {
			return msgs[i].ID, nil
		}
	}
	return "", nil
}
