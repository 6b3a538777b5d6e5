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
}

// SendDirectMessageResult is what Discord.SendDirectMessage created.
type SendDirectMessageResult struct {
	ChannelID  string   `json:"channel_id"`
	MessageIDs []string `json:"message_ids"`
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
}

// FlexInteraction identifies the Twilio resources created for one transferred conversation.
type FlexInteraction struct {
	ConversationSID string `json:"conversation_sid"`
	InteractionSID  string `json:"interaction_sid"`
	ChannelSID      string `json:"channel_sid"`
	TaskSID         string `json:"task_sid,omitempty"`
	// Identity is the customer participant's identity in the conversation ("discord:<userID>").
	Identity string `json:"identity"`
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
}

// PostFlexMessageResult is the message that holds the body.
type PostFlexMessageResult struct {
	MessageSID string `json:"message_sid"`
	// AlreadyPosted is true when an earlier attempt had stored the message.
	AlreadyPosted bool `json:"already_posted,omitempty"`
}

// CloseFlexInteractionInput is the input of Flex.CloseFlexInteraction.
type CloseFlexInteractionInput struct {
	Interaction FlexInteraction `json:"interaction"`
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
	// ErrTwilioRejected: Twilio rejected the request for good.
	ErrTwilioRejected = "TwilioRejected"
	// ErrNotConfigured: the worker has no credentials for this provider.
	ErrNotConfigured = "ProviderNotConfigured"
)

// notConfigured is the error of an activity whose provider has no credentials on this worker.
func notConfigured(provider string) error {
	return temporal.NewNonRetryableApplicationError(provider+" is not configured on this worker", ErrNotConfigured, nil)
}
