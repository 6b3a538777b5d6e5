package discordemu

import (
	"fmt"
	"net/http"
)

// Discord JSON error codes of the channel routes.
const (
	codeAlreadyCrossposted   = 40033
	codeCannotActOnDM        = 50003
	codeMissingPermissions   = 50013
	codeInvalidChannelAction = 50024
)

// Default names of guild channels declared without one.
const (
	defaultTextChannelName         = "general"
	defaultAnnouncementChannelName = "announcements"
)

// normalizeGuild checks a guild's channel declarations and returns the guild
// with Channels listing every channel id and ChannelInfo describing each of
// them, in the same order (see Guild).
func normalizeGuild(g Guild) (Guild, error) {
	declared := make(map[string]Channel, len(g.ChannelInfo))
	for _, c := range g.ChannelInfo {
		if c.ID == "" {
			return Guild{}, fmt.Errorf("discord emulator: guild %s declares a channel without an id", g.ID)
		}
		if _, dup := declared[c.ID]; dup {
			return Guild{}, fmt.Errorf("discord emulator: guild %s declares channel %s twice", g.ID, c.ID)
		}
		if c.Type != channelTypeGuildText && c.Type != channelTypeAnnouncement {
			return Guild{}, fmt.Errorf("discord emulator: channel %s of guild %s has type %d; only %d (GUILD_TEXT) and %d (GUILD_ANNOUNCEMENT) are supported",
				c.ID, g.ID, c.Type, channelTypeGuildText, channelTypeAnnouncement)
		}
		declared[c.ID] = c
	}
	ids := make([]string, 0, len(g.Channels)+len(g.ChannelInfo))
	seen := make(map[string]bool, cap(ids))
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, id := range g.Channels {
		if id == "" {
			return Guild{}, fmt.Errorf("discord emulator: guild %s lists an empty channel id", g.ID)
		}
		add(id)
	}
	for _, c := range g.ChannelInfo {
		add(c.ID)
	}
	out := g
	out.Channels = ids
	out.ChannelInfo = make([]Channel, 0, len(ids))
	for _, id := range ids {
		c, found := declared[id]
		if !found {
			c = Channel{ID: id, Type: channelTypeGuildText}
		}
		c.GuildID = g.ID
		c.RecipientID = ""
		if c.Name == "" {
			c.Name = defaultTextChannelName
			if c.Type == channelTypeAnnouncement {
				c.Name = defaultAnnouncementChannelName
			}
		}
		out.ChannelInfo = append(out.ChannelInfo, c)
	}
	return out, nil
}

// GuildChannels returns the channels of every guild, guild by guild, in
// declaration order (see Guild), with their id, type, name and guild id.
func (s *Server) GuildChannels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Channel{}
	for _, g := range s.guilds {
		out = append(out, g.ChannelInfo...)
	}
	return out
}

// lastMessageIDLocked returns the id of the channel's newest message that is
// part of its history (not ephemeral, not deleted), or nil.
func (s *Server) lastMessageIDLocked(channelID string) any {
	for i := len(s.records) - 1; i >= 0; i-- {
		if rec := s.records[i]; rec.Message.ChannelID == channelID && !rec.Ephemeral && !rec.Deleted {
			return rec.Message.ID
		}
	}
	return nil
}

// getChannel serves GET /channels/{id}: a guild channel object (type 0 or
// 5, with its name and position in the guild) or a DM channel object.
func (s *Server) getChannel(r *http.Request, _ []byte) (reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, found := s.channels[r.PathValue("channel_id")]
	if !found {
		return reply{}, errorf(http.StatusNotFound, codeUnknownChannel, "Unknown Channel")
	}
	if ch.Type == channelTypeDM {
		m := s.members[ch.RecipientID]
		if m == nil {
			m = &Member{ID: ch.RecipientID, Username: "member-" + ch.RecipientID}
		}
		return ok(s.dmChannelJSONLocked(ch, m)), nil
	}
	position := 0
	if g := s.guildLocked(ch.GuildID); g != nil {
		for i, id := range g.Channels {
			if id == ch.ID {
				position = i
			}
		}
	}
	return ok(map[string]any{
		"id": ch.ID, "type": ch.Type, "guild_id": ch.GuildID, "name": ch.Name, "position": position,
		"flags": 0, "last_message_id": s.lastMessageIDLocked(ch.ID), "parent_id": nil, "topic": nil,
		"nsfw": false, "rate_limit_per_user": 0, "permission_overwrites": []any{},
	}), nil
}

// crosspostMessage serves POST /channels/{id}/messages/{id}/crosspost:
// Discord's "publish" of a message in an announcement channel to the
// channels that follow it. The emulator has no followers; it sets the
// message's CROSSPOSTED flag, answers the message and dispatches
// MESSAGE_UPDATE, as Discord documents.
//
// Errors: an unknown channel is 404 10003; a DM channel 403 50003; a channel
// that is not an announcement channel 400 50024 ("Cannot execute action on
// this channel type": the docs name no code for this case, and this is the
// generic one for a channel of the wrong type); a message that is not part
// of the channel's history 404 10008; a message already crossposted 400
// 40033. The bot has SEND_MESSAGES but not MANAGE_MESSAGES in the emulator's
// announcement channels, so crossposting a message by someone else is 403
// 50013.
func (s *Server) crosspostMessage(r *http.Request, _ []byte) (reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, found := s.channels[r.PathValue("channel_id")]
	if !found {
		return reply{}, errorf(http.StatusNotFound, codeUnknownChannel, "Unknown Channel")
	}
	switch ch.Type {
	case channelTypeAnnouncement:
	case channelTypeDM:
		return reply{}, errorf(http.StatusForbidden, codeCannotActOnDM, "Cannot execute action on a DM channel")
	default:
		return reply{}, errorf(http.StatusBadRequest, codeInvalidChannelAction, "Cannot execute action on this channel type")
	}
	rec := s.recordByID[r.PathValue("message_id")]
	if rec == nil || rec.Deleted || rec.Ephemeral || rec.Message.ChannelID != ch.ID {
		return reply{}, errorf(http.StatusNotFound, codeUnknownMessage, "Unknown Message")
	}
	if rec.Message.Author.ID != s.bot.ID {
		return reply{}, errorf(http.StatusForbidden, codeMissingPermissions, "Missing Permissions")
	}
	if rec.Message.Flags&flagCrossposted != 0 {
		return reply{}, errorf(http.StatusBadRequest, codeAlreadyCrossposted, "This message has already been crossposted.")
	}
	rec.Message.Flags |= flagCrossposted
	s.publishUpdateLocked(rec)
	return ok(fetched(rec.Message)), nil
}
