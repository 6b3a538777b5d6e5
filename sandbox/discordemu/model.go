package discordemu

import (
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"
)

// discordEpoch is the first millisecond of 2015, the epoch of Discord
// snowflakes.
const discordEpoch = 1420070400000

// Wire-format timestamps, as Discord writes them.
const timestampLayout = "2006-01-02T15:04:05.000000+00:00"

// Channel types the emulator knows (Discord's numbering). Guild channels
// are ChannelTypeGuildText or ChannelTypeGuildAnnouncement; DM channels are
// created by POST /users/@me/channels.
const (
	// ChannelTypeGuildText is a guild text channel (GUILD_TEXT, 0).
	ChannelTypeGuildText = 0
	// ChannelTypeDM is a direct message channel (DM, 1).
	ChannelTypeDM = 1
	// ChannelTypeGuildAnnouncement is a guild announcement channel
	// (GUILD_ANNOUNCEMENT, 5): members can follow it, and the bot can
	// crosspost (publish) its messages.
	ChannelTypeGuildAnnouncement = 5
)

// Short names for the channel types used throughout the emulator.
const (
	channelTypeGuildText    = ChannelTypeGuildText
	channelTypeDM           = ChannelTypeDM
	channelTypeAnnouncement = ChannelTypeGuildAnnouncement
)

// Message flags used by the emulator.
const (
	flagCrossposted = 1 << 0
	flagEphemeral   = 1 << 6
	flagLoading     = 1 << 7
)

// Interaction types (Discord's numbering).
const (
	interactionPing             = 1
	interactionApplicationCmd   = 2
	interactionMessageComponent = 3
	interactionModalSubmit      = 5
)

// Interaction contexts.
const (
	contextGuild = 0
	contextBotDM = 1
)

// snowflakes generates unique, time-ordered Discord ids.
type snowflakes struct {
	n   atomic.Int64
	now func() time.Time
}

func (g *snowflakes) next() string {
	ms := g.now().UnixMilli() - discordEpoch
	return strconv.FormatInt(ms<<22|(g.n.Add(1)&0x3fffff), 10)
}

// User is a Discord user object as the REST API and the gateway return it.
type User struct {
	ID            string    `json:"id"`
	Username      string    `json:"username"`
	GlobalName    *string   `json:"global_name"`
	Avatar        *string   `json:"avatar"`
	Discriminator string    `json:"discriminator"`
	PublicFlags   int       `json:"public_flags"`
	Flags         int       `json:"flags"`
	Bot           bool      `json:"bot,omitempty"`
	PrimaryGuild  *struct{} `json:"primary_guild"`
}

func newUser(id, username, globalName string, bot bool) User {
	u := User{ID: id, Username: username, Discriminator: "0", Bot: bot}
	if globalName != "" {
		u.GlobalName = &globalName
	}
	return u
}

// Message is a Discord message object as the REST API returns it. The
// emulator stores embeds and components as the bot sent them, normalized the
// way Discord echoes them (component ids assigned, embed type "rich").
type Message struct {
	ID                  string         `json:"id"`
	ChannelID           string         `json:"channel_id"`
	Type                int            `json:"type"`
	Content             string         `json:"content"`
	Author              User           `json:"author"`
	Timestamp           string         `json:"timestamp"`
	EditedTimestamp     *string        `json:"edited_timestamp"`
	TTS                 bool           `json:"tts"`
	MentionEveryone     bool           `json:"mention_everyone"`
	Mentions            []User         `json:"mentions"`
	MentionRoles        []string       `json:"mention_roles"`
	Attachments         []Attachment   `json:"attachments"`
	Embeds              []any          `json:"embeds"`
	Components          []any          `json:"components"`
	Pinned              bool           `json:"pinned"`
	Flags               int            `json:"flags"`
	Nonce               any            `json:"nonce,omitempty"`
	WebhookID           string         `json:"webhook_id,omitempty"`
	ApplicationID       string         `json:"application_id,omitempty"`
	InteractionMetadata map[string]any `json:"interaction_metadata,omitempty"`
}

// Record is one message in the emulator's history, with what the sandbox
// needs to know beyond the wire object.
type Record struct {
	// Seq orders all records of the emulator (1, 2, ...).
	Seq int64 `json:"seq"`
	// GuildID is set for messages in guild channels.
	GuildID string `json:"guild_id,omitempty"`
	// FromBot is true for messages the bot (or its interaction webhooks) sent.
	FromBot bool `json:"from_bot"`
	// Ephemeral messages are visible only to VisibleTo.
	Ephemeral bool   `json:"ephemeral"`
	VisibleTo string `json:"visible_to,omitempty"`
	// InteractionID is set for interaction responses and follow-ups.
	InteractionID string `json:"interaction_id,omitempty"`
	// AllowedMentions is the allowed_mentions object the bot sent, if any.
	AllowedMentions json.RawMessage `json:"allowed_mentions,omitempty"`
	// Deleted is true once the message was deleted.
	Deleted bool `json:"deleted"`
	// Message is the current state of the message (after edits).
	Message Message `json:"message"`
}

// Channel is a DM or guild channel known to the emulator. In
// Guild.ChannelInfo it declares a guild channel: ID, Type
// (ChannelTypeGuildText, the zero value, or ChannelTypeGuildAnnouncement)
// and Name; GuildID is filled in from the guild.
type Channel struct {
	ID   string `json:"id"`
	Type int    `json:"type"`
	// GuildID is set for guild channels.
	GuildID string `json:"guild_id,omitempty"`
	// Name of a guild channel, without the "#". Empty defaults to
	// "general" for text channels and "announcements" for announcement
	// channels.
	Name string `json:"name,omitempty"`
	// RecipientID is the member of a DM channel.
	RecipientID string `json:"recipient_id,omitempty"`
}

// Guild is a guild the bot and all members are in.
//
// Its channels are declared by id in Channels (text channels named
// "general"), by description in ChannelInfo, or both: an id in both lists
// takes its type and name from ChannelInfo. An announcement channel is
// declared with
//
//	Guild{ID: "...", Channels: []string{generalID},
//		ChannelInfo: []Channel{AnnouncementChannel(announcementsID, "announcements")}}
//
// Guilds (and the control API's /state) return guilds normalized: Channels
// lists every channel id (those of Channels first, then the others of
// ChannelInfo, in order) and ChannelInfo describes each of them, in the same
// order, with its type, name and guild id.
type Guild struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Locale string `json:"locale"`
	// Channels are the ids of the guild's channels; the first one is used
	// when a command names no channel. Ids not described in ChannelInfo are
	// text channels.
	Channels []string `json:"channels"`
	// ChannelInfo declares channels with a type and a name (see
	// AnnouncementChannel and TextChannel).
	ChannelInfo []Channel `json:"channel_info,omitempty"`
}

// TextChannel describes a guild text channel (type 0) for
// Guild.ChannelInfo.
func TextChannel(id, name string) Channel {
	return Channel{ID: id, Type: ChannelTypeGuildText, Name: name}
}

// AnnouncementChannel describes a guild announcement channel (type 5) for
// Guild.ChannelInfo. Messages the bot posts there can be crossposted with
// POST /channels/{id}/messages/{id}/crosspost.
func AnnouncementChannel(id, name string) Channel {
	return Channel{ID: id, Type: ChannelTypeGuildAnnouncement, Name: name}
}

// Member is a Discord user the emulator can act as.
type Member struct {
	ID         string `json:"id"`
	Username   string `json:"username"`
	GlobalName string `json:"global_name,omitempty"`
	// Locale is the member's client locale, for example "en-US" or "ko".
	Locale string `json:"locale,omitempty"`
	// DMsClosed makes messages from the bot to this member fail with 50007.
	DMsClosed bool `json:"dms_closed"`
}

func (m Member) user() User { return newUser(m.ID, m.Username, m.GlobalName, false) }

// Command is an application command as registered by the bot, with the
// fields Discord adds (id, application_id, version, guild_id).
type Command map[string]any

// Name returns the command's name.
func (c Command) Name() string { s, _ := c["name"].(string); return s }

// ID returns the command's id.
func (c Command) ID() string { s, _ := c["id"].(string); return s }
