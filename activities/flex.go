package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twilio/twilio-go/client"
	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
	flex "github.com/twilio/twilio-go/rest/flex/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/twilioclient"
)

// Error types of retryable Twilio failures. Temporal retries them; a delivery that runs out of
// attempts is recorded with one of these types.
const (
	// ErrTwilioRateLimited: Twilio asked us to slow down (429/20429, 50063/50074, 45780/45719).
	ErrTwilioRateLimited = "TwilioRateLimited"
	// ErrTwilioUnavailable: Twilio failed (5xx) or could not be reached (timeout, connection
	// error); whether a create went through is unknown.
	ErrTwilioUnavailable = "TwilioUnavailable"
)

// CustomerIdentityPrefix starts the chat identity of every Discord member in a Flex conversation
// ("discord:<userID>"). Ingress uses it to tell the member's own messages from the agent's.
const CustomerIdentityPrefix = "discord:"

// CustomerIdentity is the chat identity of a Discord member in Flex conversations.
func CustomerIdentity(discordUserID string) string { return CustomerIdentityPrefix + discordUserID }

// DeliveryMarker is the key, in a message's Attributes, of the delivery key flexcord posted it
// with. Ingress drops webhooks of messages that carry it (echoes of our own messages).
const DeliveryMarker = "flexcord_delivery"

// ConversationUniqueName is the Conversations unique name of a case's (first) Flex conversation.
// Creating it twice fails with 50353, so a retried hand-over finds the first conversation.
func ConversationUniqueName(caseID string) string { return HandoverUniqueName(caseID, 1) }

// HandoverUniqueName is the unique name of the conversation of a case's hand-over n (from 1):
// "flexcord-<case>" for the first, "flexcord-<case>-<n>" from the second on. A retried hand-over
// finds its own conversation; a new hand-over (after Flex lost or closed the previous one) gets a
// new conversation.
func HandoverUniqueName(caseID string, handover int) string {
	if handover <= 1 {
		return "flexcord-" + caseID
	}
	return "flexcord-" + caseID + "-" + strconv.Itoa(handover)
}

// Conversation state timer defaults and the minimums Twilio accepts (Timers.Inactive at least a
// minute, Timers.Closed at least ten minutes).
const (
	DefaultInactiveTimer = time.Hour
	DefaultClosedTimer   = 24 * time.Hour
	MinInactiveTimer     = time.Minute
	MinClosedTimer       = 10 * time.Minute
)

// DefaultWebhookOverrides are the Twilio connection overrides added, as the URL fragment, to the
// scoped webhook's URL: a connect timeout of 3 s, a read timeout of 5 s (the most Conversations
// webhooks get), and up to 5 retries (the documented maximum) of any failure, so that ingress
// being briefly down or slow does not lose an agent's message. The fragment is never sent, and
// Twilio signs the URL without it.
const DefaultWebhookOverrides = "ct=3000&rt=5000&rc=5&rp=all"

// FlexConfig configures the Flex activities.
type FlexConfig struct {
	// WorkspaceSID (WS…) and WorkflowSID (WW…) route the interaction's task.
	WorkspaceSID string
	WorkflowSID  string
	// WebhookURL receives the conversation's scoped webhooks: the public base URL of ingress
	// followed by "/twilio/conversations". Each conversation adds ?user=…&case=… to it, and
	// WebhookOverrides as the fragment unless WebhookURL has a fragment of its own.
	WebhookURL string
	// WebhookOverrides are Twilio connection overrides for the scoped webhook
	// (default DefaultWebhookOverrides; "-" sends none).
	WebhookOverrides string
	// TaskChannel is the TaskRouter task channel (default "chat").
	TaskChannel string
	// InactiveTimer and ClosedTimer are the conversation's state timers (Timers.Inactive,
	// Timers.Closed): how long without a message before Twilio makes it inactive, and closes it.
	// Zero takes the defaults (an hour, a day); shorter than Twilio's minimums (a minute, ten
	// minutes) takes the minimum; negative sets no timer.
	InactiveTimer time.Duration
	ClosedTimer   time.Duration
}

// Flex holds the Twilio client; its methods are the Twilio Flex activities. The zero Flex fails
// every activity with ErrNotConfigured.
type Flex struct {
	rc  *twilioclient.RestClient
	cfg FlexConfig
	log *slog.Logger
	// Files fetches the members' attachments (nil: they reach the agent as notes).
	Files *Files

	mu       sync.Mutex
	services map[string]string // conversation SID → its Conversation Service SID
}

// NewFlex returns the Flex activities calling Twilio through rc.
func NewFlex(rc *twilioclient.RestClient, cfg FlexConfig, log *slog.Logger) *Flex {
	if cfg.TaskChannel == "" {
		cfg.TaskChannel = "chat"
	}
	if cfg.WebhookOverrides == "" {
		cfg.WebhookOverrides = DefaultWebhookOverrides
	}
	cfg.InactiveTimer = timerOrDefault(cfg.InactiveTimer, DefaultInactiveTimer, MinInactiveTimer)
	cfg.ClosedTimer = timerOrDefault(cfg.ClosedTimer, DefaultClosedTimer, MinClosedTimer)
	if log == nil {
		log = slog.Default()
	}
	return &Flex{rc: rc, cfg: cfg, log: log}
}

// timerOrDefault applies the default (for zero) and the minimum (for a positive d) of a state
// timer; a negative d stays negative: no timer.
func timerOrDefault(d, def, least time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return d
	default:
		return max(d, least)
	}
}

// isoDuration writes d as an ISO 8601 duration in whole seconds (rounded up): "PT1H", "PT24H",
// "PT1M30S".
func isoDuration(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	h, m, sec := secs/3600, secs/60%60, secs%60
	var b strings.Builder
	b.WriteString("PT")
	if h > 0 {
		b.WriteString(strconv.FormatInt(h, 10) + "H")
	}
	if m > 0 {
		b.WriteString(strconv.FormatInt(m, 10) + "M")
	}
	if sec > 0 || secs == 0 {
		b.WriteString(strconv.FormatInt(sec, 10) + "S")
	}
	return b.String()
}

// Twilio error codes flexcord handles specially (API-CONTRACTS §2.8).
const (
	twNotFound           = 20404
	twTooManyRequests    = 20429
	twInternal           = 20500
	twUnavailable        = 20503
	twUniqueNameExists   = 50353
	twParticipantExists  = 50433
	twConversationClosed = 50377
	twFlexConvClosed     = 45376 // Flex: conversation closed or not found
	twFlexChannelClosed  = 45354 // Flex: cannot create a channel for a closed conversation
	twFlexDownstream     = 45361 // Flex: failed to add a participant, downstream error
)

var (
	twRateLimitCodes = map[int]bool{twTooManyRequests: true, 50063: true, 50074: true, 45780: true, 45719: true}
	twClosedCodes    = map[int]bool{twConversationClosed: true, twFlexConvClosed: true, twFlexChannelClosed: true}
)

// flexTranscriptLines and flexTranscriptChars bound the transcript in the task attributes (Twilio limits
// attributes to a few kilobytes).
const (
	flexTranscriptLines = 30
	flexTranscriptChars = 6000
	flexLineChars       = 500
)

// conversationAttrs is what flexcord keeps under "flexcord" in the conversation's Attributes: the
// case, and the interaction once it exists, so that a retried hand-over returns it.
type conversationAttrs struct {
	CaseID         string `json:"case_id,omitempty"`
	Handover       int    `json:"handover,omitempty"`
	DiscordUserID  string `json:"discord_user_id,omitempty"`
	InteractionSID string `json:"interaction_sid,omitempty"`
	ChannelSID     string `json:"channel_sid,omitempty"`
	TaskSID        string `json:"task_sid,omitempty"`
}

const flexAttrsKey = "flexcord"

// CreateFlexInteraction hands a conversation to Flex: a Conversations conversation with the member
// as customer participant, state timers and a scoped webhook to ingress, and a Flex interaction
// whose task carries the case. A retry never creates a second conversation: the conversation's
// unique name comes from the case and the hand-over number (HandoverUniqueName), and the
// interaction is recorded in the conversation's attributes once created. A new hand-over of the
// same case (Handover 2, 3, …) gets a conversation of its own. When Flex reports that the new
// interaction's channel failed, the error is retryable (ErrTwilioUnavailable) and the retry
// creates another interaction on the same conversation.
func (f *Flex) CreateFlexInteraction(ctx context.Context, in CreateFlexInteractionInput) (FlexInteraction, error) {
	if f.rc == nil {
		return FlexInteraction{}, notConfigured("Twilio")
	}
	if in.CaseID == "" || in.DiscordUserID == "" {
		return FlexInteraction{}, temporal.NewNonRetryableApplicationError(
			"create Flex interaction: case id and Discord user id are required", ErrTwilioRejected, nil)
	}
	in.Handover = max(in.Handover, 1)
	identity := CustomerIdentity(in.DiscordUserID)
	conv, err := f.ensureConversation(ctx, in)
	if err != nil {
		return FlexInteraction{}, err
	}
	out := FlexInteraction{ConversationSID: ptrVal(conv.Sid), Identity: identity, Handover: in.Handover}
	attrs, all := decodeConversationAttrs(ptrVal(conv.Attributes))
	if attrs.InteractionSID != "" {
		out.InteractionSID, out.ChannelSID, out.TaskSID = attrs.InteractionSID, attrs.ChannelSID, attrs.TaskSID
		if len(in.BotPhase) > 0 {
			out.Posted = 1 // posted before the interaction was created
		}
		f.log.Info("Flex interaction already exists", "case", in.CaseID, "handover", in.Handover,
			"conversation", out.ConversationSID, "interaction", out.InteractionSID)
		return out, nil
	}
	if err := f.ensureParticipant(ctx, out.ConversationSID, identity, in); err != nil {
		return FlexInteraction{}, err
	}
	if err := f.ensureWebhook(ctx, out.ConversationSID, in); err != nil {
		return FlexInteraction{}, err
	}
	if len(in.BotPhase) > 0 {
		// The agent finds the whole bot stage as the conversation's first message. Every
		// attempt looks for it first: an earlier one may have posted it.
		if _, err := f.postFlexMessage(ctx, PostFlexMessageInput{
			ConversationSID: out.ConversationSID, Identity: BotPhaseAuthor, Body: botPhaseText(memberName(in), in.BotPhase),
			DeliveryKey: botPhaseKey(in.CaseID, in.Handover), PriorAttempts: 1,
		}); err != nil {
			return FlexInteraction{}, err
		}
		out.Posted = 1
	}
	if out.InteractionSID, out.ChannelSID, out.TaskSID, err = f.createInteraction(ctx, out.ConversationSID, in); err != nil {
		return FlexInteraction{}, err
	}
	if err := f.checkNewChannel(ctx, out); err != nil {
		return FlexInteraction{}, err
	}
	attrs.CaseID, attrs.Handover, attrs.DiscordUserID = in.CaseID, in.Handover, in.DiscordUserID
	attrs.InteractionSID, attrs.ChannelSID, attrs.TaskSID = out.InteractionSID, out.ChannelSID, out.TaskSID
	if err := f.recordInteraction(ctx, out.ConversationSID, all, attrs); err != nil {
		return FlexInteraction{}, err
	}
	f.log.Info("handed case to Flex", "case", in.CaseID, "handover", in.Handover, "conversation", out.ConversationSID,
		"interaction", out.InteractionSID, "channel", out.ChannelSID, "task", out.TaskSID)
	return out, nil
}

// ensureConversation creates the hand-over's conversation, or fetches it when an earlier attempt
// created it.
func (f *Flex) ensureConversation(ctx context.Context, in CreateFlexInteractionInput) (*conversations.ConversationsV1Conversation, error) {
	name := HandoverUniqueName(in.CaseID, in.Handover)
	attrs, err := json.Marshal(map[string]conversationAttrs{flexAttrsKey: {CaseID: in.CaseID, Handover: in.Handover, DiscordUserID: in.DiscordUserID}})
	if err != nil {
		return nil, fmt.Errorf("encode conversation attributes: %w", err)
	}
	params := &conversations.CreateConversationParams{}
	params.SetUniqueName(name).
		SetFriendlyName(flexTruncate(fmt.Sprintf("Discord · %s · case %s", memberName(in), in.CaseID), 256)).
		SetAttributes(string(attrs))
	if f.cfg.InactiveTimer > 0 {
		params.SetTimersInactive(isoDuration(f.cfg.InactiveTimer))
	}
	if f.cfg.ClosedTimer > 0 {
		params.SetTimersClosed(isoDuration(f.cfg.ClosedTimer))
	}
	conv, err := f.rc.ConversationsV1.CreateConversation(params)
	if err == nil {
		return conv, nil
	}
	if twilioCode(err) != twUniqueNameExists {
		return nil, classifyTwilio(ctx, "create Flex conversation "+name, err)
	}
	conv, err = f.rc.ConversationsV1.FetchConversation(name)
	if err != nil {
		return nil, classifyTwilio(ctx, "fetch Flex conversation "+name, err)
	}
	return conv, nil
}

// memberName is the name the agent sees for the member: the display name the workflow passes as
// Username, never the chat identity ("discord:<id>").
func memberName(in CreateFlexInteractionInput) string {
	if n := strings.TrimSpace(in.Username); n != "" {
		return n
	}
	return "Discord member " + in.DiscordUserID
}

// ensureParticipant adds the member as the customer; an existing participant is reused. Flex shows
// the participant by the friendlyName attribute; the identity stays "discord:<id>".
func (f *Flex) ensureParticipant(ctx context.Context, conversationSID, identity string, in CreateFlexInteractionInput) error {
	attrs, err := json.Marshal(map[string]string{
		"discord_user_id": in.DiscordUserID,
		"friendlyName":    memberName(in),
		"display_name":    memberName(in),
	})
	if err != nil {
		return fmt.Errorf("encode participant attributes: %w", err)
	}
	params := &conversations.CreateConversationParticipantParams{}
	params.SetIdentity(identity).SetAttributes(string(attrs))
	_, err = f.rc.ConversationsV1.CreateConversationParticipant(conversationSID, params)
	if err != nil && twilioCode(err) != twParticipantExists {
		return classifyTwilio(ctx, "add the member to Flex conversation "+conversationSID, err)
	}
	return nil
}

// flexWebhookFilters are the conversation events ingress maps to signals.
var flexWebhookFilters = []string{"onMessageAdded", "onConversationStateUpdated", "onParticipantAdded"}

// webhookURL is the scoped webhook's URL for a member and case. The query tells stateless
// ingress whom to signal; Twilio's signature covers it. The fragment holds Twilio's connection
// overrides (how long to wait, how often to retry); it is neither sent nor signed.
func (f *Flex) webhookURL(in CreateFlexInteractionInput) (string, error) {
	base, fragment, hasFragment := strings.Cut(f.cfg.WebhookURL, "#")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("Flex webhook URL %q is not an absolute http(s) URL", f.cfg.WebhookURL), ErrNotConfigured, nil)
	}
	q := u.Query()
	q.Set("user", in.DiscordUserID)
	q.Set("case", in.CaseID)
	u.RawQuery = q.Encode()
	target := u.String()
	switch {
	case hasFragment:
		if fragment != "" {
			target += "#" + fragment
		}
	case f.cfg.WebhookOverrides != "-":
		target += "#" + f.cfg.WebhookOverrides
	}
	return target, nil
}

// withoutFragment is a URL without its fragment: what Twilio sends to and signs.
func withoutFragment(u string) string {
	base, _, _ := strings.Cut(u, "#")
	return base
}

// ensureWebhook adds the scoped webhook to ingress unless the conversation already has one to the
// same URL (its connection overrides aside).
func (f *Flex) ensureWebhook(ctx context.Context, conversationSID string, in CreateFlexInteractionInput) error {
	target, err := f.webhookURL(in)
	if err != nil {
		return err
	}
	list := &conversations.ListConversationScopedWebhookParams{}
	list.SetPageSize(5) // the most a conversation can have, and the most the API accepts
	page, err := f.rc.ConversationsV1.PageConversationScopedWebhook(conversationSID, list, "", "")
	if err != nil {
		return classifyTwilio(ctx, "list the webhooks of Flex conversation "+conversationSID, err)
	}
	for _, w := range page.Webhooks {
		cfg, _ := ptrVal(w.Configuration).(map[string]any)
		if u, _ := cfg["url"].(string); withoutFragment(u) == withoutFragment(target) && ptrVal(w.Target) == "webhook" {
			return nil
		}
	}
	params := &conversations.CreateConversationScopedWebhookParams{}
	params.SetTarget("webhook").
		SetConfigurationUrl(target).
		SetConfigurationMethod("post"). // the spec's enum is lower case
		SetConfigurationFilters(flexWebhookFilters)
	if _, err := f.rc.ConversationsV1.CreateConversationScopedWebhook(conversationSID, params); err != nil {
		return classifyTwilio(ctx, "add the ingress webhook to Flex conversation "+conversationSID, err)
	}
	return nil
}

// createInteraction creates the Flex interaction on the conversation and returns its SID, its
// channel's and its task's.
func (f *Flex) createInteraction(ctx context.Context, conversationSID string, in CreateFlexInteractionInput) (kd, uo, wt string, err error) {
	params := &flex.CreateInteractionParams{}
	params.SetChannel(map[string]any{
		"type":         "chat",
		"initiated_by": "customer",
		"properties":   map[string]any{"media_channel_sid": conversationSID},
	})
	params.SetRouting(map[string]any{
		"properties": map[string]any{
			"workspace_sid":            f.cfg.WorkspaceSID,
			"workflow_sid":             f.cfg.WorkflowSID,
			"task_channel_unique_name": f.cfg.TaskChannel,
			"attributes":               taskAttributes(conversationSID, in),
		},
	})
	op := "create Flex interaction for conversation " + conversationSID
	res, err := f.rc.FlexV1.CreateInteraction(params)
	if err != nil {
		return "", "", "", classifyTwilio(ctx, op, err)
	}
	kd = ptrVal(res.Sid)
	channel, _ := ptrVal(res.Channel).(map[string]any)
	uo, _ = channel["sid"].(string)
	routing, _ := ptrVal(res.Routing).(map[string]any)
	props, _ := routing["properties"].(map[string]any)
	wt, _ = props["sid"].(string)
	if kd == "" {
		return "", "", "", temporal.NewApplicationError(op+": the answer has no interaction sid", ErrTwilioUnavailable)
	}
	if uo == "" {
		// The docs call the channel in the answer best-effort; the channel list is authoritative.
		list := &flex.ListInteractionChannelParams{}
		list.SetPageSize(5)
		page, err := f.rc.FlexV1.PageInteractionChannel(kd, list, "", "")
		if err != nil {
			return "", "", "", classifyTwilio(ctx, "list the channels of Flex interaction "+kd, err)
		}
		for _, c := range page.Channels {
			if uo = ptrVal(c.Sid); uo != "" {
				break
			}
		}
	}
	return kd, uo, wt, nil
}

// Interaction channel statuses (flex.v1 interaction_channel_enum_channel_status).
const (
	channelSetup  = "setup"
	channelFailed = "failed"
	channelClosed = "closed"
)

// flexSetupPolls and flexSetupPollDelay bound how long CreateFlexInteraction waits for a new
// interaction channel to leave "setup".
const (
	flexSetupPolls     = 5
	flexSetupPollDelay = 250 * time.Millisecond
)

// checkNewChannel looks at the new interaction's channel: creating an interaction is asynchronous,
// and its 200 only means Flex accepted the request. A channel that failed fails the hand-over with
// a retryable error, so that it is tried again (the failed interaction is not recorded, and the
// retry creates another one). A channel still in set-up is waited for briefly. When the channel
// cannot be read, the interaction is kept: creating a second one could route a second task.
func (f *Flex) checkNewChannel(ctx context.Context, fi FlexInteraction) error {
	if fi.ChannelSID == "" {
		return nil
	}
	for poll := 1; ; poll++ {
		ch, err := f.rc.FlexV1.FetchInteractionChannel(fi.InteractionSID, fi.ChannelSID)
		if err != nil {
			f.log.Warn("could not check the new Flex interaction channel; keeping the interaction",
				"interaction", fi.InteractionSID, "channel", fi.ChannelSID, "error", err)
			return nil
		}
		switch status := ptrVal(ch.Status); status {
		case channelFailed:
			msg := fmt.Sprintf("Flex could not set up interaction channel %s of interaction %s for conversation %s",
				fi.ChannelSID, fi.InteractionSID, fi.ConversationSID)
			if code := ptrVal(ch.ErrorCode); code != 0 {
				msg += fmt.Sprintf(" (twilio %d: %s)", code, ptrVal(ch.ErrorMessage))
			}
			return temporal.NewApplicationError(msg+"; the hand-over will be tried again", ErrTwilioUnavailable)
		case channelSetup:
			if poll >= flexSetupPolls {
				f.log.Info("Flex interaction channel still in set-up; keeping it",
					"interaction", fi.InteractionSID, "channel", fi.ChannelSID)
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(flexSetupPollDelay):
			}
		default:
			return nil
		}
	}
}

// taskAttributes are what the agent sees on the task: the case, the member (by display name),
// and the bot conversation so far.
func taskAttributes(conversationSID string, in CreateFlexInteractionInput) map[string]any {
	name := memberName(in)
	articles := make([]map[string]string, 0, len(in.Articles))
	for _, a := range in.Articles {
		articles = append(articles, map[string]string{"title": a.Title, "url": a.URL})
	}
	return map[string]any{
		"case_id":          in.CaseID,
		"handover":         in.Handover,
		"discord_user_id":  in.DiscordUserID,
		"discord_username": in.Username,
		"guild_id":         in.GuildID,
		"guild_name":       in.GuildName,
		"locale":           in.Locale,
		"name":             name,
		"from":             name,
		"customerName":     name,
		"customerAddress":  name,
		"channelType":      "chat",
		"conversationSid":  conversationSID,
		"transcript":       transcriptText(in.Transcript),
		"articles":         articles,
	}
}

// transcriptText renders the last lines of the transcript as text, bounded in size.
func transcriptText(lines []TranscriptLine) string {
	if len(lines) > flexTranscriptLines {
		lines = lines[len(lines)-flexTranscriptLines:]
	}
	out := make([]string, 0, len(lines))
	size := 0
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		who := l.From
		if l.Name != "" {
			who += " " + l.Name
		}
		s := fmt.Sprintf("[%s] %s: %s", l.At.UTC().Format("15:04"), who, flexTruncate(strings.ReplaceAll(l.Text, "\n", " "), flexLineChars))
		if size+len(s)+1 > flexTranscriptChars {
			break
		}
		size += len(s) + 1
		out = append(out, s)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return strings.Join(out, "\n")
}

// recordInteraction stores the interaction in the conversation's attributes, keeping any other
// attribute. It retries a few times on its own: once the interaction exists, failing here would
// make the next attempt create a second one.
func (f *Flex) recordInteraction(ctx context.Context, conversationSID string, all map[string]json.RawMessage, attrs conversationAttrs) error {
	raw, err := json.Marshal(attrs)
	if err != nil {
		return fmt.Errorf("encode conversation attributes: %w", err)
	}
	if all == nil {
		all = map[string]json.RawMessage{}
	}
	all[flexAttrsKey] = raw
	b, err := json.Marshal(all)
	if err != nil {
		return fmt.Errorf("encode conversation attributes: %w", err)
	}
	params := &conversations.UpdateConversationParams{}
	params.SetAttributes(string(b))
	op := "record the interaction in Flex conversation " + conversationSID
	delay := 200 * time.Millisecond
	for try := 1; ; try++ {
		_, err = f.rc.ConversationsV1.UpdateConversation(conversationSID, params)
		if err == nil {
			return nil
		}
		cerr := classifyTwilio(ctx, op, err)
		var appErr *temporal.ApplicationError
		if try == 3 || (errors.As(cerr, &appErr) && appErr.NonRetryable()) {
			return cerr
		}
		f.log.Warn("record interaction failed, trying again", "conversation", conversationSID, "error", cerr)
		select {
		case <-ctx.Done():
			return cerr
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// decodeConversationAttrs returns flexcord's part of a conversation's attributes and all of them.
func decodeConversationAttrs(s string) (conversationAttrs, map[string]json.RawMessage) {
	var all map[string]json.RawMessage
	var attrs conversationAttrs
	if json.Unmarshal([]byte(s), &all) != nil {
		return attrs, nil
	}
	_ = json.Unmarshal(all[flexAttrsKey], &attrs)
	return attrs, all
}

// flexRecentMessages is how many of the latest messages PostFlexMessage looks through for an earlier
// attempt's message.
const flexRecentMessages = 50

// PostFlexMessage posts a member's message into the Flex conversation as the customer. The
// message's attributes carry the delivery key; every attempt that follows another one (a Temporal
// retry, or PriorAttempts > 0 when an earlier activity tried the same delivery) first looks for it
// among the latest messages, so a message Twilio stored before an error or a timeout is not posted
// twice. The result carries the message's index. A conversation Flex no longer has (20404) fails
// for good with ErrFlexConversationGone, a closed one with ErrFlexConversationClosed. The
// messages of in.More follow, in order, each marked with its own key.
func (f *Flex) PostFlexMessage(ctx context.Context, in PostFlexMessageInput) (PostFlexMessageResult, error) {
	if f.rc == nil {
		return PostFlexMessageResult{}, notConfigured("Twilio")
	}
	return PostEach(in, func(one PostFlexMessageInput) (PostFlexMessageResult, error) {
		return f.postFlexMessage(ctx, one)
	})
}

// postFlexMessage posts one message (PostFlexMessage without More).
func (f *Flex) postFlexMessage(ctx context.Context, in PostFlexMessageInput) (PostFlexMessageResult, error) {
	op := "post message to Flex conversation " + in.ConversationSID
	if in.ConversationSID == "" || (strings.TrimSpace(in.Body) == "" && len(in.Files) == 0) {
		return PostFlexMessageResult{}, temporal.NewNonRetryableApplicationError(op+": conversation and body are required", ErrTwilioRejected, nil)
	}
	if strings.TrimSpace(in.Body) == "" {
		// Files alone: the first file's message stands for the delivery.
		files := in.Files
		in.Files = nil
		return f.postFiles(ctx, in, files, PostFlexMessageResult{})
	}
	if in.DeliveryKey != "" && (flexAttempt(ctx) > 1 || in.PriorAttempts > 0) {
		found, ok, err := f.findDelivery(in.ConversationSID, in.DeliveryKey)
		if err != nil {
			return PostFlexMessageResult{}, classifyConversation(ctx, "look for an earlier attempt in Flex conversation "+in.ConversationSID, err)
		}
		if ok {
			f.log.Info("message already in the Flex conversation", "conversation", in.ConversationSID,
				"message", ptrVal(found.Sid), "index", found.Index, "delivery", in.DeliveryKey)
			res := PostFlexMessageResult{MessageSID: ptrVal(found.Sid), Index: found.Index, AlreadyPosted: true}
			if len(in.Files) > 0 {
				return f.postFiles(ctx, in, in.Files, res)
			}
			return res, nil
		}
	}
	attrs, err := json.Marshal(map[string]string{DeliveryMarker: in.DeliveryKey, "origin": "discord"})
	if err != nil {
		return PostFlexMessageResult{}, fmt.Errorf("encode message attributes: %w", err)
	}
	params := &conversations.CreateConversationMessageParams{}
	params.SetAuthor(in.Identity).
		SetBody(in.Body).
		SetAttributes(string(attrs)).
		SetXTwilioWebhookEnabled("false") // no echo of our own message to our webhook
	msg, err := f.rc.ConversationsV1.CreateConversationMessage(in.ConversationSID, params)
	if err != nil {
		return PostFlexMessageResult{}, classifyConversation(ctx, op, err)
	}
	res := PostFlexMessageResult{MessageSID: ptrVal(msg.Sid), Index: msg.Index}
	if len(in.Files) > 0 {
		return f.postFiles(ctx, in, in.Files, res)
	}
	return res, nil
}

// findDelivery returns a recent message marked with key, if there is one.
func (f *Flex) findDelivery(conversationSID, key string) (conversations.ConversationsV1ConversationMessage, bool, error) {
	params := &conversations.ListConversationMessageParams{}
	params.SetOrder("desc").SetPageSize(flexRecentMessages)
	page, err := f.rc.ConversationsV1.PageConversationMessage(conversationSID, params, "", "")
	if err != nil {
		return conversations.ConversationsV1ConversationMessage{}, false, err
	}
	for _, m := range page.Messages {
		if k, ok := deliveryKeyOf(ptrVal(m.Attributes)); ok && k == key {
			return m, true, nil
		}
	}
	return conversations.ConversationsV1ConversationMessage{}, false, nil
}

// deliveryKeyOf returns the delivery key a message's attributes carry under DeliveryMarker.
func deliveryKeyOf(attributes string) (string, bool) {
	var attrs map[string]any
	if json.Unmarshal([]byte(attributes), &attrs) != nil {
		return "", false
	}
	v, ok := attrs[DeliveryMarker]
	if !ok {
		return "", false
	}
	k, _ := v.(string)
	return k, true
}

// CloseFlexInteraction closes the interaction channel, which ends the agent's task (it completes
// an accepted task and cancels one still waiting) and closes the conversation. Closing what is
// already closed succeeds. Without an interaction channel, it closes the conversation itself.
func (f *Flex) CloseFlexInteraction(ctx context.Context, in CloseFlexInteractionInput) error {
	if f.rc == nil {
		return notConfigured("Twilio")
	}
	fi := in.Interaction
	if fi.InteractionSID != "" && fi.ChannelSID != "" {
		params := &flex.UpdateInteractionChannelParams{}
		params.SetStatus("closed").SetRouting(map[string]any{"status": "closed"})
		_, err := f.rc.FlexV1.UpdateInteractionChannel(fi.InteractionSID, fi.ChannelSID, params)
		switch code := twilioCode(err); {
		case err == nil, twClosedCodes[code]:
			return nil
		case code != twNotFound:
			return classifyTwilio(ctx, "close Flex interaction channel "+fi.InteractionSID+"/"+fi.ChannelSID, err)
		}
		f.log.Warn("Flex interaction channel not found; closing the conversation instead",
			"interaction", fi.InteractionSID, "channel", fi.ChannelSID, "conversation", fi.ConversationSID)
	}
	if fi.ConversationSID == "" {
		return nil
	}
	params := &conversations.UpdateConversationParams{}
	params.SetState("closed")
	_, err := f.rc.ConversationsV1.UpdateConversation(fi.ConversationSID, params)
	switch code := twilioCode(err); {
	case err == nil, twClosedCodes[code]:
		return nil
	case code == twNotFound:
		f.log.Warn("Flex conversation not found; nothing to close", "conversation", fi.ConversationSID)
		return nil
	default:
		return classifyTwilio(ctx, "close Flex conversation "+fi.ConversationSID, err)
	}
}

// flexAttempt is the activity's attempt number, 1 outside an activity.
func flexAttempt(ctx context.Context) int32 {
	if activity.IsActivity(ctx) {
		return activity.GetInfo(ctx).Attempt
	}
	return 1
}

// twilioCode returns the Twilio error code of err, 0 if it is not a Twilio REST error.
func twilioCode(err error) int {
	var te *client.TwilioRestError
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// classifyConversation is classifyTwilio for calls on one conversation: a conversation that no
// longer exists (20404) fails for good with ErrFlexConversationGone.
func classifyConversation(ctx context.Context, op string, err error) error {
	var te *client.TwilioRestError
	if errors.As(err, &te) && (te.Code == twNotFound || (te.Code == 0 && te.Status == 404)) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: twilio %d: %s", op, te.Code, te.Message), ErrFlexConversationGone, nil)
	}
	return classifyTwilio(ctx, op, err)
}

// classify turns a twilio-go error into an activity error (API-CONTRACTS §2.8): rate limits and
// server errors are retryable, a closed conversation and any other rejection are not. The message
// names the operation and the Twilio code; it never carries credentials.
func classifyTwilio(ctx context.Context, op string, err error) error {
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		// Transport errors and timeouts: Twilio may or may not have acted.
		return temporal.NewApplicationError(fmt.Sprintf("%s: %v", op, err), ErrTwilioUnavailable)
	}
	msg := fmt.Sprintf("%s: twilio %d: %s", op, te.Code, te.Message)
	switch {
	case te.Status == 429 || twRateLimitCodes[te.Code]:
		return temporal.NewApplicationErrorWithOptions(msg, ErrTwilioRateLimited, temporal.ApplicationErrorOptions{
			NextRetryDelay: rateLimitDelay(flexAttempt(ctx)),
		})
	case te.Status >= 500 || te.Code == twInternal || te.Code == twUnavailable || te.Code == twFlexDownstream:
		return temporal.NewApplicationError(msg, ErrTwilioUnavailable)
	case twClosedCodes[te.Code]:
		return temporal.NewNonRetryableApplicationError(msg, ErrFlexConversationClosed, nil)
	default:
		return temporal.NewNonRetryableApplicationError(msg, ErrTwilioRejected, nil)
	}
}

// rateLimitDelay is the wait before retrying a rate-limited call after the given attempt.
// Twilio sends no Retry-After, so it backs off exponentially from one second up to half a minute,
// with up to 50% jitter so that many activities limited at once do not retry in step.
func rateLimitDelay(attempt int32) time.Duration {
	d := time.Second
	for i := int32(1); i < attempt && d < 30*time.Second; i++ {
		d *= 2
	}
	d = min(d, 30*time.Second)
	return d + rand.N(d/2)
}

func ptrVal[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// truncateRunes shortens s to at most n runes, marking the cut with an ellipsis.
func flexTruncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
