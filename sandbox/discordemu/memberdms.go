package discordemu

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors of EditDM and DeleteDM (the control API answers them with 404, 403
// and 410).
var (
	// ErrUnknownMessage: no message has that id in the member's DM
	// channel with the bot.
	ErrUnknownMessage = errors.New("unknown message")
	// ErrNotAuthor: the message was sent by someone else (the bot, or
	// another member); a member edits and deletes only their own messages.
	ErrNotAuthor = errors.New("the message was sent by someone else")
	// ErrMessageDeleted: the message was already deleted.
	ErrMessageDeleted = errors.New("the message was already deleted")
)

// memberMessageLocked finds a message member userID may edit or delete:
// their own, not deleted, in their DM channel with the bot. what names the
// action in errors. s.mu must be held.
func (s *Server) memberMessageLocked(what, userID, messageID string) (*Record, error) {
	if s.members[userID] == nil {
		return nil, fmt.Errorf("%s %s as %s: %w", what, messageID, userID, ErrUnknownMember)
	}
	rec := s.recordByID[messageID]
	if rec == nil {
		return nil, fmt.Errorf("%s %s as %s: %w", what, messageID, userID, ErrUnknownMessage)
	}
	if rec.Message.Author.ID != userID {
		return nil, fmt.Errorf("%s %s as %s: sent by %s: %w", what, messageID, userID, rec.Message.Author.ID, ErrNotAuthor)
	}
	if dm := s.dmByUser[userID]; dm == "" || rec.Message.ChannelID != dm || rec.GuildID != "" {
		return nil, fmt.Errorf("%s %s as %s: not in their DM channel with the bot: %w", what, messageID, userID, ErrUnknownMessage)
	}
	if rec.Deleted {
		return nil, fmt.Errorf("%s %s as %s: %w", what, messageID, userID, ErrMessageDeleted)
	}
	return rec, nil
}

// EditDM acts as member userID editing one of their direct messages to the
// bot, as the Discord app does: the content is replaced, attachments stay,
// and edited_timestamp is set to the emulator's clock (Options.Clock). The
// bot receives MESSAGE_UPDATE with the whole message as it now is (with the
// DIRECT_MESSAGES intent), and GET /channels/{id}/messages returns the new
// content. Content may be empty only if the message has attachments.
//
// It fails with ErrUnknownMember, ErrUnknownMessage (no such message in the
// member's DM channel), ErrNotAuthor (a message of the bot) or
// ErrMessageDeleted.
func (s *Server) EditDM(userID, messageID, content string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.memberMessageLocked("edit DM", userID, messageID)
	if err != nil {
		return Record{}, err
	}
	if content == "" && len(rec.Message.Attachments) == 0 {
		return Record{}, fmt.Errorf("edit DM %s as %s: content is required for a message without attachments", messageID, userID)
	}
	rec.Message.Content = content
	s.updateRecordLocked(rec)
	return *rec, nil
}

// DeleteDM acts as member userID deleting one of their direct messages to
// the bot. The Record stays in Messages with Deleted set; GET
// /channels/{id}/messages no longer lists it, and the bot receives
// MESSAGE_DELETE with the message and channel ids (with the
// DIRECT_MESSAGES intent).
//
// It fails with ErrUnknownMember, ErrUnknownMessage, ErrNotAuthor or
// ErrMessageDeleted, as EditDM.
func (s *Server) DeleteDM(userID, messageID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.memberMessageLocked("delete DM", userID, messageID)
	if err != nil {
		return err
	}
	rec.Deleted = true
	s.publishLocked(Event{Type: EventMessageDelete, Record: rec})
	s.gw.dispatchMessageDelete(rec)
	return nil
}

// ctlEditDM serves PATCH /_emu/discord/members/{id}/dm/{message_id} with
// JSON {"content": "..."}; it answers the edited Record.
func (s *Server) ctlEditDM(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Content *string `json:"content"`
	}
	if !ctlDecode(w, r, &in) {
		return
	}
	if in.Content == nil {
		ctlError(w, http.StatusBadRequest, errors.New("content is required"))
		return
	}
	rec, err := s.EditDM(r.PathValue("id"), r.PathValue("message_id"), *in.Content)
	if err != nil {
		ctlActionError(w, err)
		return
	}
	ctlJSON(w, http.StatusOK, rec)
}

// ctlDeleteDM serves DELETE /_emu/discord/members/{id}/dm/{message_id}; it
// answers 204.
func (s *Server) ctlDeleteDM(w http.ResponseWriter, r *http.Request) {
	if err := s.DeleteDM(r.PathValue("id"), r.PathValue("message_id")); err != nil {
		ctlActionError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
