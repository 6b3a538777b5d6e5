// Package workflows holds flexcord's durable workflows: one Conversation per Discord member being
// helped, one Case per support case, bug report or feature request, and one Feed per source of
// #announcements (with the short Announcements runs its Schedule starts).
//
// This file is the contract: the task queue, workflow ids, signal, update and query names with their
// payloads, stage and status values, and search attribute keys. It is the only part of the package
// that ingress and the command-line tools need.
package workflows

import (
	"fmt"
	"strconv"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// TaskQueue is the task queue of every flexcord workflow, and of the activities that call no
// rate-limited provider (the knowledge base, feeds).
const TaskQueue = "flexcord"

// Provider task queues: the activities that call Discord and Twilio run on their own queues, so
// that the server can hold all workers together under the provider's rate limit with the queue's
// TaskQueueActivitiesPerSecond (Discord allows 50 requests/s per bot in total).
const (
	DiscordTaskQueue = "flexcord-discord"
	TwilioTaskQueue  = "flexcord-twilio"
)

const (
	conversationIDPrefix = "conversation:"
	caseIDPrefix         = "case:"
)

// ConversationWorkflowID is the id of the Conversation of a Discord member. A member has at most
// one running conversation.
func ConversationWorkflowID(discordUserID string) string {
	return conversationIDPrefix + discordUserID
}

// DiscordUserIDFromWorkflowID is the inverse of ConversationWorkflowID.
func DiscordUserIDFromWorkflowID(workflowID string) (string, bool) {
	id, ok := strings.CutPrefix(workflowID, conversationIDPrefix)
	return id, ok && id != ""
}

// CaseWorkflowID is the id of the Case workflow for a case id such as "C-7K3QX2".
func CaseWorkflowID(caseID string) string {
	return caseIDPrefix + caseID
}

// CaseIDFromWorkflowID is the inverse of CaseWorkflowID.
func CaseIDFromWorkflowID(workflowID string) (string, bool) {
	id, ok := strings.CutPrefix(workflowID, caseIDPrefix)
	return id, ok && id != ""
}

// caseIDAlphabet has no 0/O or 1/I/L, so a case id read aloud or typed is unambiguous.
const caseIDAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// FormatCaseID turns a number into a case id: "C-" and six characters.
func FormatCaseID(n uint64) string {
	var b [6]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = caseIDAlphabet[n%uint64(len(caseIDAlphabet))]
		n /= uint64(len(caseIDAlphabet))
	}
	return "C-" + string(b[:])
}

// ValidCaseID reports whether s has the form FormatCaseID produces.
func ValidCaseID(s string) bool {
	rest, ok := strings.CutPrefix(s, "C-")
	if !ok || len(rest) != 6 {
		return false
	}
	for _, r := range rest {
		if !strings.ContainsRune(caseIDAlphabet, r) {
			return false
		}
	}
	return true
}

// Stage is where a Conversation is in the journey.
type Stage string

// Conversation stages, in journey order.
const (
	StageBot      Stage = "bot"      // the FAQ bot answers from the knowledge base
	StageQueued   Stage = "queued"   // a case exists and a Flex task waits for an agent
	StageNoAgent  Stage = "no_agent" // no agent took the chat; the member chooses to wait or leave a message
	StageLive     Stage = "live"     // an agent accepted; messages relay both ways
	StageResolved Stage = "resolved" // the agent wrapped up; the member is asked for a rating
	StageClosed   Stage = "closed"   // finished
)

// CaseType is what a case is about.
type CaseType string

// Case types.
const (
	CaseSupport CaseType = "support"
	CaseBug     CaseType = "bug"
	CaseFeature CaseType = "feature"
)

// Valid reports whether t is a known case type.
func (t CaseType) Valid() bool {
	return t == CaseSupport || t == CaseBug || t == CaseFeature
}

// CaseStatus is the life-cycle status of a case.
type CaseStatus string

// Case statuses: open → in_progress → resolved | declined → closed.
const (
	CaseOpen       CaseStatus = "open"
	CaseInProgress CaseStatus = "in_progress"
	CaseResolved   CaseStatus = "resolved"
	CaseDeclined   CaseStatus = "declined"
	CaseClosed     CaseStatus = "closed"
)

// caseTransitions lists the statuses each status may move to.
var caseTransitions = map[CaseStatus][]CaseStatus{
	CaseOpen:       {CaseInProgress, CaseResolved, CaseDeclined},
	CaseInProgress: {CaseOpen, CaseResolved, CaseDeclined},
	CaseResolved:   {CaseInProgress, CaseClosed},
	CaseDeclined:   {CaseOpen, CaseClosed},
	CaseClosed:     nil,
}

// Valid reports whether s is a known case status.
func (s CaseStatus) Valid() bool {
	_, ok := caseTransitions[s]
	return ok
}

// CanMoveTo reports whether a case in status s may move to status next. A case can be reopened
// (resolved → in_progress, declined → open) until it is closed; closed is final.
func (s CaseStatus) CanMoveTo(next CaseStatus) bool {
	for _, n := range caseTransitions[s] {
		if n == next {
			return true
		}
	}
	return false
}

// Signal names. Every signal payload carries the provider's EventID; a signal whose EventID the
// workflow has seen before has no effect.
const (
	// SignalHelpRequested: the member ran /helpme. Sent with SignalWithStartWorkflow.
	SignalHelpRequested = "HelpRequested"
	// SignalUserMessage: the member sent the bot a DM. Sent with SignalWithStartWorkflow.
	SignalUserMessage = "UserMessage"
	// SignalUserAction: the member clicked a button (talk to a human, solved, rating).
	SignalUserAction = "UserAction"
	// SignalUserMessageChanged: a member edited or deleted one of their DMs (record behaviour).
	SignalUserMessageChanged = "UserMessageChanged"
	// SignalAgentJoined: a Flex agent accepted the task.
	SignalAgentJoined = "AgentJoined"
	// SignalAgentMessage: the agent wrote in the Flex conversation.
	SignalAgentMessage = "AgentMessage"
	// SignalAgentWrappedUp: the agent ended the chat, or the Flex conversation was closed.
	SignalAgentWrappedUp = "AgentWrappedUp"
	// SignalNoAgent: no agent took the chat (TaskRouter task.canceled or workflow.timeout).
	SignalNoAgent = "NoAgent"
	// SignalCaseEvent: a Conversation tells its Case what happened (agent, Flex links, rating).
	SignalCaseEvent = "CaseEvent"
)

// Update and query names.
const (
	// UpdateRetryDeliveries re-queues every failed delivery of a Conversation or Case, in order.
	UpdateRetryDeliveries = "RetryDeliveries"
	// UpdateClose closes a Conversation on an operator's request.
	UpdateClose = "Close"
	// UpdateSetCaseStatus moves a Case to a new status; illegal transitions are rejected.
	UpdateSetCaseStatus = "SetCaseStatus"
	// QueryStatus returns the whole visible state of a Conversation (ConversationStatus) or a Case
	// (CaseView).
	QueryStatus = "status"
)

// Member identifies a Discord member.
type Member struct {
	UserID      string `json:"user_id"`
	Username    string `json:"username,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

// Name is how the member is addressed: the display name, else the username, else the id.
func (m Member) Name() string {
	switch {
	case m.DisplayName != "":
		return m.DisplayName
	case m.Username != "":
		return m.Username
	default:
		return m.UserID
	}
}

// Interaction is what a workflow needs to follow up on a Discord interaction that ingress
// acknowledged with a deferred reply. Tokens are valid for 15 minutes.
type Interaction struct {
	ApplicationID string `json:"application_id"`
	Token         string `json:"token"`
}

// HelpRequestedSignal is the payload of SignalHelpRequested.
type HelpRequestedSignal struct {
	EventID   string `json:"event_id"` // the interaction id
	Member    Member `json:"member"`
	GuildID   string `json:"guild_id,omitempty"`
	GuildName string `json:"guild_name,omitempty"`
	ChannelID string `json:"channel_id,omitempty"`
	Locale    string `json:"locale,omitempty"`
	// Interaction, when set, receives an ephemeral follow-up pointing the member to their DMs.
	Interaction *Interaction `json:"interaction,omitempty"`
}

// UserMessageSignal is the payload of SignalUserMessage.
type UserMessageSignal struct {
	EventID   string `json:"event_id"` // the Discord message id
	Member    Member `json:"member"`
	ChannelID string `json:"channel_id,omitempty"` // the DM channel
	Text      string `json:"text"`
	// Attachments are URLs of files the member attached: conversations started before the
	// record behaviour pass them on as links.
	Attachments []string `json:"attachments,omitempty"`
	// Files are the same attachments with what Discord says of them; later conversations pass
	// them on as files.
	Files []Attachment `json:"files,omitempty"`
	// WantsHuman is ingress's reading of the text: the member asks for a person (i18n.WantsHuman).
	// The workflow acts on it as data, so a change to the phrase catalogs never changes the
	// replay of a recorded history.
	WantsHuman bool `json:"wants_human,omitempty"`
	// Backfill is set on messages that ingress fetched after a gateway gap rather than received
	// live; they are handled the same way.
	Backfill bool `json:"backfill,omitempty"`
}

// UserMessageChangedSignal is the payload of SignalUserMessageChanged.
type UserMessageChangedSignal struct {
	// EventID tells changes apart: "edit:<message id>:<edited timestamp>", "delete:<message id>".
	EventID   string `json:"event_id"`
	MessageID string `json:"message_id"`
	Member    Member `json:"member"`
	Deleted   bool   `json:"deleted,omitempty"`
	// Text is the message's text after an edit.
	Text string `json:"text,omitempty"`
}

// UserAction is what a member asked for with a button.
type UserAction string

// Member actions.
const (
	ActionTalkToHuman UserAction = "human"
	ActionSolved      UserAction = "solved"
	ActionRate        UserAction = "rate"
	// ActionKeepWaiting puts the member's case back in the queue after no agent was free.
	ActionKeepWaiting UserAction = "wait"
	// ActionLeaveMessage ends the conversation after no agent was free; the case stays open for
	// support to follow up by DM.
	ActionLeaveMessage UserAction = "leave"
	// ActionTranscript asks for the transcript of a case as a file by DM. Ingress starts
	// SendTranscript for it; the conversation never sees it.
	ActionTranscript UserAction = "transcript"
)

// UserActionSignal is the payload of SignalUserAction.
type UserActionSignal struct {
	EventID string     `json:"event_id"` // the interaction id
	Member  Member     `json:"member"`
	Action  UserAction `json:"action"`
	Rating  int        `json:"rating,omitempty"` // 1–5 with ActionRate
	Locale  string     `json:"locale,omitempty"`
	// CaseID is the case the button belongs to (rating, keep waiting, leave a message). A rating
	// for a case stays valid after the member moved on to a new question.
	CaseID string `json:"case_id,omitempty"`
}

const buttonPrefix = "flexcord:"

// ButtonCustomID is the Discord custom_id of a button that triggers action (with a rating for
// ActionRate). ParseButtonCustomID reverses it.
func ButtonCustomID(action UserAction, rating int) string {
	return CaseButtonCustomID(action, rating, "")
}

// CaseButtonCustomID is the custom_id of a button that belongs to a case: "flexcord:rate:5:C-7K3QX2",
// "flexcord:wait:C-7K3QX2". An empty caseID gives the form ButtonCustomID gives.
func CaseButtonCustomID(action UserAction, rating int, caseID string) string {
	id := buttonPrefix + string(action)
	if action == ActionRate {
		id += ":" + strconv.Itoa(rating)
	}
	if caseID != "" {
		id += ":" + caseID
	}
	return id
}

// ButtonPress is what a flexcord button asks for.
type ButtonPress struct {
	Action UserAction
	Rating int    // 1–5 with ActionRate
	CaseID string // set on buttons that belong to a case
}

// ParseButton reads a custom_id made by ButtonCustomID or CaseButtonCustomID.
func ParseButton(customID string) (ButtonPress, error) {
	rest, ok := strings.CutPrefix(customID, buttonPrefix)
	if !ok {
		return ButtonPress{}, fmt.Errorf("button %q is not a flexcord button", customID)
	}
	parts := strings.Split(rest, ":")
	p := ButtonPress{Action: UserAction(parts[0])}
	args := parts[1:]
	switch p.Action {
	case ActionTalkToHuman, ActionSolved, ActionKeepWaiting, ActionLeaveMessage, ActionTranscript:
	case ActionRate:
		if len(args) == 0 {
			return ButtonPress{}, fmt.Errorf("button %q: rating must be 1 to 5", customID)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > 5 {
			return ButtonPress{}, fmt.Errorf("button %q: rating must be 1 to 5", customID)
		}
		p.Rating, args = n, args[1:]
	default:
		return ButtonPress{}, fmt.Errorf("button %q: unknown action %q", customID, parts[0])
	}
	switch {
	case len(args) == 0:
	case len(args) == 1 && ValidCaseID(args[0]):
		p.CaseID = args[0]
	default:
		return ButtonPress{}, fmt.Errorf("button %q: %q is not a case id", customID, strings.Join(args, ":"))
	}
	return p, nil
}

// ParseButtonCustomID returns the action (and rating) of a custom_id; see ParseButton.
func ParseButtonCustomID(customID string) (UserAction, int, error) {
	p, err := ParseButton(customID)
	return p.Action, p.Rating, err
}

// AgentJoinedSignal is the payload of SignalAgentJoined.
type AgentJoinedSignal struct {
	EventID string `json:"event_id"` // the TaskRouter event Sid or idempotency token
	// CaseID, when set, is the case the event belongs to; a Conversation ignores agent events
	// of another (earlier) case of the same member.
	CaseID string `json:"case_id,omitempty"`
	// AgentName is the name Flex shows the customer: the worker's full_name attribute, else its
	// friendly name. Never a login identity.
	AgentName string `json:"agent_name"`
	WorkerSID string `json:"worker_sid,omitempty"`
	// TaskSID, when set, must be the task of the conversation's current hand-over; events of an
	// earlier hand-over of the same case are ignored.
	TaskSID string `json:"task_sid,omitempty"`
}

// AgentMessageSignal is the payload of SignalAgentMessage.
type AgentMessageSignal struct {
	EventID string `json:"event_id"` // the Conversations MessageSid
	CaseID  string `json:"case_id,omitempty"`
	// AgentName is left empty by ingress: the member sees the name the agent joined with. It is
	// never the author's login identity.
	AgentName string `json:"agent_name,omitempty"`
	Text      string `json:"text"`
	// ConversationSID is the Flex conversation the message was written in; a message of another
	// (earlier) hand-over's conversation is ignored.
	ConversationSID string `json:"conversation_sid,omitempty"`
	// Index is the message's position in the Flex conversation (HasIndex tells whether it is
	// known). A jump past the last index the workflow knows makes it fetch the messages between.
	Index    int  `json:"index,omitempty"`
	HasIndex bool `json:"has_index,omitempty"`
	// Files are the message's media. A message of files alone has AttachmentPlaceholder as its
	// Text, which conversations started before the record behaviour relay as is.
	Files []Attachment `json:"files,omitempty"`
}

// AttachmentPlaceholder is the Text of an agent's message that carries only files.
const AttachmentPlaceholder = "[attachment]"

// Attachment is a file a member attached in Discord or an agent in Flex.
type Attachment struct {
	// ID is Discord's attachment id, or the media SID of an agent's file.
	ID          string `json:"id"`
	Name        string `json:"name"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	// URL is a Discord attachment's CDN link (signed; it expires).
	URL string `json:"url,omitempty"`
	// MediaSID and ServiceSID name an agent's file in Twilio's Media Content Service.
	MediaSID   string `json:"media_sid,omitempty"`
	ServiceSID string `json:"service_sid,omitempty"`
}

// AgentWrappedUpSignal is the payload of SignalAgentWrappedUp.
type AgentWrappedUpSignal struct {
	EventID string `json:"event_id"`
	CaseID  string `json:"case_id,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// TaskSID and ConversationSID, when set, must match the current hand-over.
	TaskSID         string `json:"task_sid,omitempty"`
	ConversationSID string `json:"conversation_sid,omitempty"`
	// ConversationClosed is set when the Flex conversation itself was closed: no agent message can
	// follow. After a task wrap-up alone, agent messages are still relayed until then.
	ConversationClosed bool `json:"conversation_closed,omitempty"`
}

// NoAgentSignal is the payload of SignalNoAgent: the task ended without an agent (task.canceled,
// workflow.timeout).
type NoAgentSignal struct {
	EventID string `json:"event_id"`
	CaseID  string `json:"case_id,omitempty"`
	TaskSID string `json:"task_sid,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// RetryDeliveriesRequest is the argument of UpdateRetryDeliveries.
type RetryDeliveriesRequest struct {
	// Operator names who asked, for the record.
	Operator string `json:"operator,omitempty"`
}

// RetryDeliveriesResult lists the deliveries that were re-queued, in delivery order.
type RetryDeliveriesResult struct {
	Requeued []DeliveryView `json:"requeued"`
}

// CloseRequest is the argument of UpdateClose. An operator close is final: nothing that was under
// way when it landed (a case being opened, a hand-over to Flex) can reopen the conversation.
type CloseRequest struct {
	Reason   string `json:"reason,omitempty"`
	Operator string `json:"operator,omitempty"`
}

// SetCaseStatusRequest is the argument of UpdateSetCaseStatus.
type SetCaseStatusRequest struct {
	Status CaseStatus `json:"status"`
	Note   string     `json:"note,omitempty"`
	Actor  string     `json:"actor,omitempty"`
}

// Search attributes. The worker registers them on its namespace at start-up when they are missing.
var (
	SearchAttrStage            = temporal.NewSearchAttributeKeyKeyword("FlexcordStage")
	SearchAttrCaseID           = temporal.NewSearchAttributeKeyKeyword("FlexcordCaseID")
	SearchAttrCaseType         = temporal.NewSearchAttributeKeyKeyword("FlexcordCaseType")
	SearchAttrCaseStatus       = temporal.NewSearchAttributeKeyKeyword("FlexcordCaseStatus")
	SearchAttrDiscordUserID    = temporal.NewSearchAttributeKeyKeyword("DiscordUserID")
	SearchAttrAgent            = temporal.NewSearchAttributeKeyKeyword("FlexcordAgent")
	SearchAttrFailedDeliveries = temporal.NewSearchAttributeKeyInt64("FailedDeliveries")
	// SearchAttrFeed names the #announcements source of a Feed, its Schedule and its runs.
	SearchAttrFeed = temporal.NewSearchAttributeKeyKeyword("FlexcordFeed")
)

// SearchAttributes lists every custom search attribute flexcord uses, for registration.
func SearchAttributes() []temporal.SearchAttributeKey {
	return []temporal.SearchAttributeKey{
		SearchAttrStage, SearchAttrCaseID, SearchAttrCaseType, SearchAttrCaseStatus,
		SearchAttrDiscordUserID, SearchAttrAgent, SearchAttrFailedDeliveries, SearchAttrFeed,
	}
}
