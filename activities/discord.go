package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"go.temporal.io/sdk/temporal"
)

// Error types of retryable Discord failures, for logs and the Temporal UI.
const (
	// ErrDiscordRateLimited: Discord answered 429; the next attempt waits retry_after.
	ErrDiscordRateLimited = "DiscordRateLimited"
	// ErrDiscordUnavailable: a 5xx, an overloaded API (130000), a timeout or a network error.
	ErrDiscordUnavailable = "DiscordUnavailable"
)

// Discord JSON error codes that mean the member cannot receive messages from the bot.
const (
	codeCannotMessageUser = 50007 // DMs closed, no mutual guild, or blocked
	codeCannotMessageYet  = 50278 // the member's settings refuse messages from this app
	codeOverloaded        = 130000
	codeUnknownChannel    = 10003
	codeEntityTooLarge    = 40005 // a file over the upload limit
)

// maxCachedDMChannels bounds the DM channel cache; past it the cache starts over.
const maxCachedDMChannels = 50_000

// Discord holds the Discord client; its methods are the Discord activities.
//
// Every message is sent with a nonce and enforce_nonce, so a retried send returns the message
// the first attempt created; with allowed_mentions empty, so relayed text never pings anyone; and
// split into several messages when the text is longer than Discord's 2,000 characters. Failures
// are classified for Temporal: permanent ones are non-retryable with a stable type
// (ErrCannotMessageUser, ErrDiscordRejected), rate limits are retried after Discord's
// retry_after, and everything else is retried with the activity's policy.
type Discord struct {
	s   *discordgo.Session
	log *slog.Logger
	now func() time.Time // the clock that ages Discord's nonce window; tests replace it

	mu  sync.Mutex
	dms map[string]string // member user id → DM channel id

	// Files fetches the agents' attachments (nil: they reach the member as notes).
	Files *Files
}

// NewDiscord returns the Discord activities on session s. The session should come from
// discordsession.New, which turns off discordgo's own retries so that Temporal owns them.
func NewDiscord(s *discordgo.Session, log *slog.Logger) *Discord {
	if log == nil {
		log = slog.Default()
	}
	return &Discord{s: s, log: log, now: time.Now, dms: make(map[string]string)}
}

// SendDirectMessage sends a direct message to a member, opening (and caching) the DM channel.
//
// Discord's enforce_nonce de-duplicates a retried send only for a few minutes. A delivery tried
// before (in.PriorAttempts > 0, or a retry of this activity) whose first try is older than
// nonceWindow therefore first looks for its message among the DM channel's recent messages, and
// sends only what it does not find there (see findDelivered). The DMs of in.More follow, in
// order, each under its own nonce.
func (d *Discord) SendDirectMessage(ctx context.Context, in SendDirectMessageInput) (SendDirectMessageResult, error) {
	if d == nil || d.s == nil {
		return SendDirectMessageResult{}, notConfigured("Discord")
	}
	return SendEach(in, func(one SendDirectMessageInput) (SendDirectMessageResult, error) {
		return d.sendDirectMessage(ctx, one)
	})
}

// sendDirectMessage sends one DM (SendDirectMessage without More).
func (d *Discord) sendDirectMessage(ctx context.Context, in SendDirectMessageInput) (SendDirectMessageResult, error) {
	op := "send DM to member " + in.UserID
	if in.UserID == "" {
		return SendDirectMessageResult{}, rejected(op, "no user id")
	}
	msg, files, err := d.loadFiles(ctx, in.Message)
	if err != nil {
		return SendDirectMessageResult{}, err
	}
	bodies, err := buildBodies(msg, in.Nonce)
	if err != nil {
		return SendDirectMessageResult{}, rejected(op, err.Error())
	}
	lookBack := d.mayHaveSent(ctx, in)
	for attempt := 0; ; attempt++ {
		channelID, cached, err := d.dmChannel(ctx, in.UserID)
		if err != nil {
			return SendDirectMessageResult{}, d.classify(op, err)
		}
		var found []string
		if lookBack {
			found, err = d.findDelivered(ctx, channelID, in.UserID, in.FirstTriedAt, bodies)
		}
		var ids []string
		if err == nil {
			if len(found) == len(bodies) {
				d.log.Info("the DM was delivered by an earlier attempt; not sending it again",
					"user_id", in.UserID, "nonce", in.Nonce, "messages", len(found))
				return SendDirectMessageResult{ChannelID: channelID, MessageIDs: found, AlreadySent: true}, nil
			}
			if len(found) > 0 {
				d.log.Info("an earlier attempt delivered part of the DM; sending the rest",
					"user_id", in.UserID, "nonce", in.Nonce, "found", len(found), "messages", len(bodies))
			}
			ids, err = d.sendLastWithFiles(ctx, channelID, bodies[len(found):], files)
			ids = append(found, ids...)
		}
		if err != nil && cached && attempt == 0 && discordCode(err) == codeUnknownChannel {
			// The cached channel is gone; open it again once.
			d.forgetDMChannel(in.UserID)
			continue
		}
		if err != nil {
			return SendDirectMessageResult{ChannelID: channelID, MessageIDs: ids}, d.classify(op, err)
		}
		return SendDirectMessageResult{ChannelID: channelID, MessageIDs: ids}, nil
	}
}

// EditDirectMessage rewrites a message the bot sent: its content, embeds and buttons become those
// of in.Message, rendered as SendDirectMessage renders them (a disabled button is shown greyed
// out), with mentions that ping no one. An edit rewrites one message, so content longer than
// Discord's 2,000 characters is shortened. An unknown channel or message is a permanent failure
// (ErrDiscordRejected); rate limits and 5xx answers are retried like sends.
func (d *Discord) EditDirectMessage(ctx context.Context, in EditDirectMessageInput) error {
	if d == nil || d.s == nil {
		return notConfigured("Discord")
	}
	op := "edit message " + in.MessageID + " in channel " + in.ChannelID
	if in.ChannelID == "" || in.MessageID == "" {
		return rejected(op, "no channel id or message id")
	}
	content := truncateText(in.Message.Content, maxContentLen)
	if strings.TrimSpace(content) == "" {
		content = ""
	}
	body := editBody{
		Content:         content,
		Embeds:          buildEmbeds(in.Message.Embeds),
		Components:      buildRows(in.Message.Buttons),
		AllowedMentions: allowedMentions{Parse: []string{}},
	}
	if body.Content == "" && len(body.Embeds) == 0 && len(body.Components) == 0 {
		return rejected(op, "the message is empty")
	}
	if body.Components == nil {
		body.Components = []discordgo.MessageComponent{} // an edit rewrites: no buttons means none
	}
	endpoint := discordgo.EndpointChannelMessage(in.ChannelID, in.MessageID)
	if _, err := d.s.RequestWithBucketID(http.MethodPatch, endpoint, body, discordgo.EndpointChannelMessage(in.ChannelID, ""), discordgo.WithContext(ctx)); err != nil {
		return d.classify(op, err)
	}
	return nil
}

// editBody is an edit-message body. Every field is sent, so that the message is rewritten as a
// whole: empty embeds and components remove the old ones.
type editBody struct {
	Content         string                       `json:"content"`
	Embeds          []*discordgo.MessageEmbed    `json:"embeds"`
	Components      []discordgo.MessageComponent `json:"components"`
	AllowedMentions allowedMentions              `json:"allowed_mentions"`
}

// PostChannelMessage posts a message in a guild channel.
func (d *Discord) PostChannelMessage(ctx context.Context, in PostChannelMessageInput) (PostChannelMessageResult, error) {
	if d == nil || d.s == nil {
		return PostChannelMessageResult{}, notConfigured("Discord")
	}
	op := "post to channel " + in.ChannelID
	if in.ChannelID == "" {
		return PostChannelMessageResult{}, rejected(op, "no channel id")
	}
	ids, err := d.send(ctx, in.ChannelID, in.Nonce, in.Message)
	if err != nil {
		return PostChannelMessageResult{MessageIDs: ids}, d.classify(op, err)
	}
	return PostChannelMessageResult{MessageIDs: ids}, nil
}

// SendInteractionFollowUp sends a follow-up message to an acknowledged interaction through the
// interaction's webhook. Text longer than 2,000 characters becomes several follow-ups; the result
// is the first one.
func (d *Discord) SendInteractionFollowUp(ctx context.Context, in SendInteractionFollowUpInput) (SendInteractionFollowUpResult, error) {
	if d == nil || d.s == nil {
		return SendInteractionFollowUpResult{}, notConfigured("Discord")
	}
	op := "follow up interaction of application " + in.ApplicationID
	if in.ApplicationID == "" || in.Token == "" {
		return SendInteractionFollowUpResult{}, rejected(op, "no application id or interaction token")
	}
	bodies, err := buildBodies(in.Message, "")
	if err != nil {
		return SendInteractionFollowUpResult{}, rejected(op, err.Error())
	}
	// The token is part of the path: it must never appear in an error or a log line.
	endpoint := discordgo.EndpointWebhookToken(in.ApplicationID, in.Token)
	var first string
	for _, b := range bodies {
		if in.Message.Ephemeral {
			b.Flags = discordgo.MessageFlagsEphemeral
		}
		raw, err := d.s.RequestWithBucketID(http.MethodPost, endpoint+"?wait=true", b, endpoint, discordgo.WithContext(ctx))
		if err != nil {
			return SendInteractionFollowUpResult{MessageID: first}, d.classify(op, err)
		}
		var m discordgo.Message
		if err := json.Unmarshal(raw, &m); err != nil {
			return SendInteractionFollowUpResult{MessageID: first}, unavailable(op, "decode the created message: "+err.Error())
		}
		if first == "" {
			first = m.ID
		}
	}
	return SendInteractionFollowUpResult{MessageID: first}, nil
}

// dmChannel returns the member's DM channel id and whether it came from the cache.
func (d *Discord) dmChannel(ctx context.Context, userID string) (string, bool, error) {
	d.mu.Lock()
	id, ok := d.dms[userID]
	d.mu.Unlock()
	if ok {
		return id, true, nil
	}
	ch, err := d.s.UserChannelCreate(userID, discordgo.WithContext(ctx))
	if err != nil {
		return "", false, err
	}
	d.mu.Lock()
	if len(d.dms) >= maxCachedDMChannels {
		clear(d.dms)
	}
	d.dms[userID] = ch.ID
	d.mu.Unlock()
	return ch.ID, false, nil
}

func (d *Discord) forgetDMChannel(userID string) {
	d.mu.Lock()
	delete(d.dms, userID)
	d.mu.Unlock()
}

// send posts msg in a channel, split into chunks, and returns the ids of the messages created
// so far.
func (d *Discord) send(ctx context.Context, channelID, nonce string, msg Message) ([]string, error) {
	bodies, err := buildBodies(msg, nonce)
	if err != nil {
		return nil, &invalidMessageError{reason: err.Error()}
	}
	return d.sendBodies(ctx, channelID, bodies)
}

// sendBodies posts the bodies in a channel, in order, and returns the ids of the messages created
// so far.
func (d *Discord) sendBodies(ctx context.Context, channelID string, bodies []*messageBody) ([]string, error) {
	endpoint := discordgo.EndpointChannelMessages(channelID)
	ids := make([]string, 0, len(bodies))
	for _, b := range bodies {
		raw, err := d.s.RequestWithBucketID(http.MethodPost, endpoint, b, endpoint, discordgo.WithContext(ctx))
		if err != nil {
			return ids, err
		}
		var m discordgo.Message
		if err := json.Unmarshal(raw, &m); err != nil {
			return ids, fmt.Errorf("decode the created message: %w", err)
		}
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// messageBody is a create-message (or execute-webhook) body. discordgo's MessageSend has no
// nonce, so flexcord sends its own.
type messageBody struct {
	Content         string                       `json:"content,omitempty"`
	Nonce           string                       `json:"nonce,omitempty"`
	EnforceNonce    bool                         `json:"enforce_nonce,omitempty"`
	Embeds          []*discordgo.MessageEmbed    `json:"embeds,omitempty"`
	Components      []discordgo.MessageComponent `json:"components,omitempty"`
	AllowedMentions allowedMentions              `json:"allowed_mentions"`
	Flags           discordgo.MessageFlags       `json:"flags,omitempty"`
	// Attachments name the files of a multipart message (sendWithFiles).
	Attachments []attachmentRef `json:"attachments,omitempty"`
}

// allowedMentions with an empty parse list lets no mention in the text ping anyone.
type allowedMentions struct {
	Parse []string `json:"parse"`
}

// buildBodies turns a message into the request bodies to send, in order: the text split into
// chunks of at most 2,000 characters, with the embeds and buttons on the last one.
func buildBodies(msg Message, nonce string) ([]*messageBody, error) {
	chunks := splitContent(msg.Content, maxContentLen)
	embeds := buildEmbeds(msg.Embeds)
	rows := buildRows(msg.Buttons)
	if len(chunks) == 0 {
		if len(embeds) == 0 && len(rows) == 0 && len(msg.Files) == 0 {
			return nil, errors.New("the message is empty")
		}
		chunks = []string{""}
	}
	bodies := make([]*messageBody, len(chunks))
	for i, c := range chunks {
		bodies[i] = &messageBody{
			Content:         c,
			Nonce:           chunkNonce(nonce, i, len(chunks)),
			EnforceNonce:    nonce != "",
			AllowedMentions: allowedMentions{Parse: []string{}},
		}
	}
	last := bodies[len(bodies)-1]
	last.Embeds = embeds
	last.Components = rows
	return bodies, nil
}

// buildEmbeds converts embeds within Discord's limits: at most 10, each field truncated, and the
// descriptions shortened so that all embed text stays within 6,000 characters.
func buildEmbeds(in []Embed) []*discordgo.MessageEmbed {
	if len(in) > maxEmbeds {
		in = in[:maxEmbeds]
	}
	out := make([]*discordgo.MessageEmbed, 0, len(in))
	total := 0
	for _, e := range in {
		me := &discordgo.MessageEmbed{
			Title:       truncateText(strings.TrimSpace(e.Title), maxEmbedTitle),
			Description: truncateText(e.Description, maxEmbedDesc),
			Color:       e.Color & 0xFFFFFF,
		}
		if validURL(e.URL) {
			me.URL = e.URL
		}
		if e.Footer != "" {
			me.Footer = &discordgo.MessageEmbedFooter{Text: truncateText(e.Footer, maxEmbedFooter)}
		}
		size := textLen(me.Title) + textLen(me.Description)
		if me.Footer != nil {
			size += textLen(me.Footer.Text)
		}
		if total+size > maxEmbedTotal {
			room := maxEmbedTotal - total - (size - textLen(me.Description))
			if room < 1 {
				break
			}
			me.Description = truncateText(me.Description, room)
			size = maxEmbedTotal - total
		}
		if me.Title == "" && me.Description == "" && me.Footer == nil {
			continue
		}
		total += size
		out = append(out, me)
	}
	return out
}

func validURL(s string) bool {
	if s == "" || len(s) > maxEmbedURLLen {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// buildRows lays buttons out in action rows of at most five; buttons past 25 are dropped.
func buildRows(buttons []Button) []discordgo.MessageComponent {
	var rows []discordgo.MessageComponent
	var row []discordgo.MessageComponent
	for _, b := range buttons {
		if b.CustomID == "" || len(b.CustomID) > maxCustomIDLen {
			continue
		}
		if len(rows) == maxRows {
			break
		}
		label := truncateText(strings.TrimSpace(b.Label), maxButtonLabel)
		if label == "" {
			label = "…"
		}
		row = append(row, discordgo.Button{Label: label, Style: buttonStyle(b.Style), CustomID: b.CustomID, Disabled: b.Disabled})
		if len(row) == maxButtonsPerRow {
			rows = append(rows, discordgo.ActionsRow{Components: row})
			row = nil
		}
	}
	if len(row) > 0 && len(rows) < maxRows {
		rows = append(rows, discordgo.ActionsRow{Components: row})
	}
	return rows
}

func buttonStyle(s ButtonStyle) discordgo.ButtonStyle {
	switch s {
	case ButtonPrimary:
		return discordgo.PrimaryButton
	case ButtonSuccess:
		return discordgo.SuccessButton
	default:
		return discordgo.SecondaryButton
	}
}

// invalidMessageError is a message flexcord cannot send as it is.
type invalidMessageError struct{ reason string }

func (e *invalidMessageError) Error() string { return e.reason }

// discordCode returns the JSON error code of a Discord REST error, or 0.
func discordCode(err error) int {
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Message != nil {
		return re.Message.Code
	}
	return 0
}

// classify turns an error of a Discord call into the activity error Temporal acts on. Messages
// name the operation and Discord's code and message, never a token: discordgo's own error
// strings can hold the request URL, which for interaction webhooks contains the interaction token,
// so they are not passed on.
func (d *Discord) classify(op string, err error) error {
	var (
		rl      *discordgo.RateLimitError
		re      *discordgo.RESTError
		invalid *invalidMessageError
		ue      *url.Error
	)
	var out error
	switch {
	case errors.As(err, &invalid):
		out = rejected(op, invalid.reason)
	case errors.As(err, &rl):
		delay := time.Duration(0)
		if rl.RateLimit != nil && rl.TooManyRequests != nil {
			delay = rl.RetryAfter
		}
		if delay <= 0 {
			delay = time.Second
		}
		out = temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("%s: discord rate limit, retry after %s", op, delay), ErrDiscordRateLimited,
			temporal.ApplicationErrorOptions{NextRetryDelay: delay})
	case errors.As(err, &re):
		out = classifyREST(op, re)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		out = unavailable(op, "request timed out or was cancelled")
	case errors.As(err, &ue):
		out = unavailable(op, "request failed: "+ue.Err.Error())
	default:
		out = unavailable(op, err.Error())
	}
	var appErr *temporal.ApplicationError
	if errors.As(out, &appErr) && appErr.NonRetryable() {
		d.log.Warn("discord call failed for good", "op", op, "error_type", appErr.Type(), "error", out.Error())
	} else {
		d.log.Info("discord call failed, will retry", "op", op, "error", out.Error())
	}
	return out
}

// classifyREST classifies a Discord error answer (API-CONTRACTS §3.6).
func classifyREST(op string, re *discordgo.RESTError) error {
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	code, text := 0, ""
	if re.Message != nil {
		code, text = re.Message.Code, re.Message.Message
	}
	var msg string
	switch {
	case code != 0:
		msg = fmt.Sprintf("%s: discord %d: %s", op, code, text)
	case text != "":
		msg = fmt.Sprintf("%s: discord HTTP %d: %s", op, status, text)
	default:
		msg = fmt.Sprintf("%s: discord HTTP %d", op, status)
	}
	switch {
	case code == codeCannotMessageUser || code == codeCannotMessageYet:
		return temporal.NewNonRetryableApplicationError(msg, ErrCannotMessageUser, nil)
	case code == codeOverloaded, status >= 500, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return temporal.NewApplicationError(msg, ErrDiscordUnavailable)
	case status >= 400:
		return temporal.NewNonRetryableApplicationError(msg, ErrDiscordRejected, nil)
	default:
		return temporal.NewApplicationError(msg, ErrDiscordUnavailable)
	}
}

func rejected(op, reason string) error {
	return temporal.NewNonRetryableApplicationError(op+": "+reason, ErrDiscordRejected, nil)
}

func unavailable(op, reason string) error {
	return temporal.NewApplicationError(op+": discord unavailable: "+reason, ErrDiscordUnavailable)
}
