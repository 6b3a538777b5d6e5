// Package activities holds the Temporal activities of flexcord: the calls to Discord, Twilio Flex and
// the knowledge base. Each provider has a struct that holds its client; its exported methods are the
// activities, and their names (the method names) are unique across structs. Workflows refer to
// them through method values on a nil pointer, never by string.
//
// This file holds the provider-neutral types that workflows pass in and get back.
package activities

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/transcript"
)

// Message is one outbound message to Discord, in provider-neutral form. The Discord activities
// turn it into message content, embeds and button components.
type Message struct {
	// Content is the text. Longer than Discord's 2,000-character limit, it is split into several
	// messages on line or word boundaries.
	Content string `json:"content,omitempty"`
	// Embeds are rich cards, for example knowledge-base articles or a case confirmation.
	Embeds []Embed `json:"embeds,omitempty"`
	// Buttons are shown under the message, in one row.
	Buttons []Button `json:"buttons,omitempty"`
	// Ephemeral makes an interaction follow-up visible only to the member who used the command.
	Ephemeral bool `json:"ephemeral,omitempty"`
	// Files are attachments (an agent's), uploaded with the message's last part. One that cannot
	// be passed on (too large, gone) is replaced by a note in the text.
	Files []File `json:"files,omitempty"`
}

// Embed is a card with a title, an optional link and a short description.
type Embed struct {
	Title       string `json:"title,omitempty"`
	URL         string `json:"url,omitempty"`
	Description string `json:"description,omitempty"`
	Footer      string `json:"footer,omitempty"`
	Color       int    `json:"color,omitempty"`
}

// ButtonStyle is how a button looks.
type ButtonStyle string

// Button styles.
const (
	ButtonPrimary   ButtonStyle = "primary"
	ButtonSecondary ButtonStyle = "secondary"
	ButtonSuccess   ButtonStyle = "success"
)

// Button is a clickable button. CustomID comes back to ingress when a member clicks it.
type Button struct {
	CustomID string      `json:"custom_id"`
	Label    string      `json:"label"`
	Style    ButtonStyle `json:"style,omitempty"`
	// Disabled shows the button greyed out: it no longer applies.
	Disabled bool `json:"disabled,omitempty"`
}

// TranscriptLine is one line of a conversation, kept for the agent and the Temporal UI.
type TranscriptLine struct {
	At   time.Time `json:"at"`
	From string    `json:"from"` // "member", "bot", "agent" or "system"
	Name string    `json:"name,omitempty"`
	Text string    `json:"text"`
}

// Article is a knowledge-base article suggested to a member.
type Article struct {
	ID      string  `json:"id"`
	Title   string  `json:"title"`
	URL     string  `json:"url,omitempty"`
	Snippet string  `json:"snippet,omitempty"`
	Lang    string  `json:"lang,omitempty"`
	Score   float64 `json:"score,omitempty"`
}

// SendDirectMessageInput is the input of Discord.SendDirectMessage.
type SendDirectMessageInput struct {
	UserID string `json:"user_id"`
	// Nonce is the delivery's idempotency key (at most 25 characters). Sent with enforce_nonce, a
	// retried send returns the message created by the first attempt instead of a second one.
	Nonce   string  `json:"nonce"`
	Message Message `json:"message"`
	// PriorAttempts is how many activities tried this delivery before this one (an operator's
	// RetryDeliveries, a continue-as-new). With FirstTriedAt, it tells the activity to look for
	// an earlier attempt's message before sending once Discord's nonce window has passed.
	PriorAttempts int       `json:"prior_attempts,omitempty"`
	FirstTriedAt  time.Time `json:"first_tried_at,omitempty"`
	// More are further DMs to the same member, sent after Message in order, each with its own
	// nonce: the deliveries queued for one member go out in one activity.
	More []DirectMessage `json:"more,omitempty"`
}

// DirectMessage is one DM of a SendDirectMessageInput's More, with its delivery's idempotency
// key and history (see SendDirectMessageInput).
type DirectMessage struct {
	Nonce         string    `json:"nonce"`
	Message       Message   `json:"message"`
	PriorAttempts int       `json:"prior_attempts,omitempty"`
	FirstTriedAt  time.Time `json:"first_tried_at,omitempty"`
}

// EditDirectMessageInput is the input of Discord.EditDirectMessage: a message the bot sent the
// member, rewritten (for example with its buttons disabled once they no longer apply).
type EditDirectMessageInput struct {
	ChannelID string  `json:"channel_id"`
	MessageID string  `json:"message_id"`
	Message   Message `json:"message"`
}

// SendDirectMessageResult is what Discord.SendDirectMessage created.
type SendDirectMessageResult struct {
	ChannelID  string   `json:"channel_id"`
	MessageIDs []string `json:"message_ids"`
	// AlreadySent is true when an earlier attempt had delivered the whole message, found in the
	// channel after Discord's nonce window had passed; nothing was sent this time.
	AlreadySent bool `json:"already_sent,omitempty"`
	// More are the results of the input's More, in order.
	More []SendDirectMessageResult `json:"more,omitempty"`
}

// PostChannelMessageInput is the input of Discord.PostChannelMessage.
type PostChannelMessageInput struct {
	ChannelID string  `json:"channel_id"`
	Nonce     string  `json:"nonce"`
	Message   Message `json:"message"`
}

// PostChannelMessageResult is what Discord.PostChannelMessage created.
type PostChannelMessageResult struct {
	MessageIDs []string `json:"message_ids"`
}

// SendInteractionFollowUpInput is the input of Discord.SendInteractionFollowUp: a follow-up to an
// interaction that ingress acknowledged with a deferred reply. Tokens are valid for 15 minutes.
type SendInteractionFollowUpInput struct {
	ApplicationID string  `json:"application_id"`
	Token         string  `json:"token"`
	Message       Message `json:"message"`
}

// SendInteractionFollowUpResult is what Discord.SendInteractionFollowUp created.
type SendInteractionFollowUpResult struct {
	MessageID string `json:"message_id"`
}

// CreateFlexInteractionInput is the input of Flex.CreateFlexInteraction: everything the agent sees
// when the task is offered.
type CreateFlexInteractionInput struct {
	CaseID        string           `json:"case_id"`
	DiscordUserID string           `json:"discord_user_id"`
	Username      string           `json:"username,omitempty"`
	GuildID       string           `json:"guild_id,omitempty"`
	GuildName     string           `json:"guild_name,omitempty"`
	Locale        string           `json:"locale,omitempty"`
	Transcript    []TranscriptLine `json:"transcript,omitempty"`
	Articles      []Article        `json:"articles,omitempty"`
	// BotPhase is the member's whole conversation with the virtual agent before the hand-over;
	// the agent finds it as the Flex conversation's first message.
	BotPhase []transcript.Entry `json:"bot_phase,omitempty"`
	// Handover numbers the hand-overs of one case, from 1. A case handed over again after Flex
	// lost its conversation gets a new conversation (unique name "flexcord-<case>-<n>" from 2 on).
	Handover int `json:"handover,omitempty"`
}

// FlexInteraction identifies the Twilio resources created for one transferred conversation.
type FlexInteraction struct {
	ConversationSID string `json:"conversation_sid"`
	InteractionSID  string `json:"interaction_sid"`
	ChannelSID      string `json:"channel_sid"`
	TaskSID         string `json:"task_sid,omitempty"`
	// Identity is the customer participant's identity in the conversation ("discord:<userID>").
	Identity string `json:"identity"`
	// Handover is the CreateFlexInteractionInput.Handover this interaction was created for.
	Handover int `json:"handover,omitempty"`
	// Posted counts the messages flexcord posted into the conversation when it created it (the
	// bot stage, at index 0).
	Posted int `json:"posted,omitempty"`
}

// PostFlexMessageInput is the input of Flex.PostFlexMessage: a member's message posted into the
// Flex conversation as the customer.
type PostFlexMessageInput struct {
	ConversationSID string `json:"conversation_sid"`
	Identity        string `json:"identity"`
	Body            string `json:"body"`
	// DeliveryKey marks the message (in its Attributes) so that a retry after an ambiguous failure
	// can find it and not post it twice.
	DeliveryKey string `json:"delivery_key"`
	// PriorAttempts is how many activities tried this delivery before this one; the marker is
	// looked for on every attempt that follows another, whether Temporal's or the ledger's.
	PriorAttempts int `json:"prior_attempts,omitempty"`
	// Files are the member's attachments: each is uploaded to Twilio's Media Content Service and
	// posted after Body as a media message of its own, marked with DeliveryKey and its position.
	Files []File `json:"files,omitempty"`
	// More are further messages to the same conversation, posted after Body in order, each
	// marked with its own delivery key: the deliveries queued for one chat go out in one
	// activity.
	More []FlexMessage `json:"more,omitempty"`
}

// FlexMessage is one message of a PostFlexMessageInput's More (see PostFlexMessageInput).
type FlexMessage struct {
	Body          string `json:"body"`
	Files         []File `json:"files,omitempty"`
	DeliveryKey   string `json:"delivery_key"`
	PriorAttempts int    `json:"prior_attempts,omitempty"`
}

// PostFlexMessageResult is the message that holds the body.
type PostFlexMessageResult struct {
	MessageSID string `json:"message_sid"`
	// Index is the message's index in the conversation.
	Index int `json:"index"`
	// AlreadyPosted is true when an earlier attempt had stored the message.
	AlreadyPosted bool `json:"already_posted,omitempty"`
	// FileIndexes are the indexes of the media messages of the input's Files (or of the notes
	// posted in their place), in order.
	FileIndexes []int `json:"file_indexes,omitempty"`
	// More are the results of the input's More, in order.
	More []PostFlexMessageResult `json:"more,omitempty"`
}

// CloseFlexInteractionInput is the input of Flex.CloseFlexInteraction.
type CloseFlexInteractionInput struct {
	Interaction FlexInteraction `json:"interaction"`
}

// CheckFlexInteractionInput is the input of Flex.CheckFlexInteraction.
type CheckFlexInteractionInput struct {
	Interaction FlexInteraction `json:"interaction"`
}

// CheckFlexInteractionResult says whether Flex still has the chat.
type CheckFlexInteractionResult struct {
	// Open is true while the conversation is active (or inactive) and the interaction channel is
	// not closed or failed: an agent can still answer.
	Open bool `json:"open"`
	// ConversationState is the Conversations state ("active", "inactive", "closed"); empty when
	// the conversation is gone (20404).
	ConversationState string `json:"conversation_state,omitempty"`
	// ChannelStatus is the interaction channel's status ("setup", "active", "failed", "closed");
	// empty when it is gone or unknown.
	ChannelStatus string `json:"channel_status,omitempty"`
	// LastIndex is the index of the conversation's newest message, -1 when it has none.
	LastIndex int `json:"last_index"`
}

// FetchAgentMessagesInput is the input of Flex.FetchAgentMessages.
type FetchAgentMessagesInput struct {
	ConversationSID string `json:"conversation_sid"`
	// AfterIndex: only messages with a larger index are returned.
	AfterIndex int `json:"after_index"`
}

// AgentMessage is one message an agent wrote in a Flex conversation.
type AgentMessage struct {
	SID   string `json:"sid"`
	Index int    `json:"index"`
	Body  string `json:"body"`
	// Files are the message's media.
	Files []File `json:"files,omitempty"`
}

// FetchAgentMessagesResult holds the agent's messages after the given index, in index order
// (the member's own and flexcord's marked messages left out), at most 200.
type FetchAgentMessagesResult struct {
	Messages []AgentMessage `json:"messages"`
	// LastIndex is the largest index seen (agent's or not), AfterIndex when there is none.
	LastIndex int `json:"last_index"`
}

// SearchKnowledgeBaseInput is the input of Knowledge.SearchKnowledgeBase.
type SearchKnowledgeBaseInput struct {
	Query  string `json:"query"`
	Locale string `json:"locale,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// SearchKnowledgeBaseResult holds the best articles, best first; empty when nothing is relevant
// enough to suggest.
type SearchKnowledgeBaseResult struct {
	Articles []Article `json:"articles"`
}

// Error types of non-retryable activity failures. Workflows record them on failed deliveries; they
// are stable so that operators can search and alert on them.
const (
	// ErrCannotMessageUser: Discord refuses to deliver to this member (DMs closed, no mutual
	// guild, blocked). Retrying helps only after the member changes their settings.
	ErrCannotMessageUser = "DiscordCannotMessageUser"
	// ErrDiscordRejected: Discord rejected the request for good (unknown channel, invalid body, ...).
	ErrDiscordRejected = "DiscordRejected"
	// ErrFlexConversationClosed: the Flex conversation is closed and cannot take messages.
	ErrFlexConversationClosed = "FlexConversationClosed"
	// ErrFlexConversationGone: the Flex conversation no longer exists (20404). Like a closed
	// one, the workflow hands the member to Flex again.
	ErrFlexConversationGone = "FlexConversationGone"
	// ErrTwilioRejected: Twilio rejected the request for good.
	ErrTwilioRejected = "TwilioRejected"
	// ErrNotConfigured: the worker has no credentials for this provider.
	ErrNotConfigured = "ProviderNotConfigured"
)

// notConfigured is the error of an activity whose provider has no credentials on this worker.
func notConfigured(provider string) error {
	return temporal.NewNonRetryableApplicationError(provider+" is not configured on this worker", ErrNotConfigured, nil)
}
