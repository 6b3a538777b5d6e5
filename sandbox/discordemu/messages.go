package discordemu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
)

// Message flags the author may change with an edit (Discord documents
// SUPPRESS_EMBEDS and IS_COMPONENTS_V2; the emulator does not model the
// latter).
const flagSuppressEmbeds = 1 << 2

// fetched returns a message as GET and PATCH return it: Discord documents
// the nonce only for the create answer and MESSAGE_CREATE, so it is left
// out.
func fetched(m Message) Message {
	m.Nonce = nil
	return m
}

// listMessages serves GET /channels/{id}/messages: at most limit (1-100,
// default 50) messages, newest first, either the newest of the channel or
// those before, after or around a message id (mutually exclusive, as
// documented). With after, the messages closest to that id are returned;
// with around, half of the limit before the id and the rest from it on.
// Ephemeral and deleted messages are not part of a channel's history.
func (s *Server) listMessages(r *http.Request, _ []byte) (reply, error) {
	q := r.URL.Query()
	limit := 50
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 && v <= 100 {
		limit = v
	}
	var anchor, mode string
	for _, k := range []string{"around", "before", "after"} {
		if v := q.Get(k); v != "" {
			if mode != "" {
				s.recordViolation("request GET " + r.URL.Path + ": around, before and after are mutually exclusive (got " + mode + " and " + k + ")")
				return reply{}, formError(k, "BASE_TYPE_BAD", "Only one of around, before and after may be passed.")
			}
			mode, anchor = k, v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	chID := r.PathValue("channel_id")
	if _, found := s.channels[chID]; !found {
		return reply{}, errorf(http.StatusNotFound, codeUnknownChannel, "Unknown Channel")
	}
	var history []Message // oldest first
	for _, rec := range s.records {
		if rec.Message.ChannelID == chID && !rec.Ephemeral && !rec.Deleted {
			history = append(history, s.freshLocked(fetched(rec.Message)))
		}
	}
	slices.SortStableFunc(history, func(a, b Message) int { return compareIDs(a.ID, b.ID) })
	// first is the index of the first message whose id is not below anchor.
	first := slices.IndexFunc(history, func(m Message) bool { return compareIDs(m.ID, anchor) >= 0 })
	if first < 0 {
		first = len(history)
	}
	var page []Message
	switch mode {
	case "before":
		page = history[max(first-limit, 0):first]
	case "after":
		if first < len(history) && history[first].ID == anchor {
			first++
		}
		page = history[first:min(first+limit, len(history))]
	case "around":
		start := max(first-limit/2, 0)
		page = history[start:min(start+limit, len(history))]
	default:
		page = history[max(len(history)-limit, 0):]
	}
	out := slices.Clone(page)
	slices.Reverse(out)
	if out == nil {
		out = []Message{}
	}
	return ok(out), nil
}

// editMessage serves PATCH /channels/{id}/messages/{id}. Absent fields stay
// as they are; null empties content, embeds and components. Only the author
// (the bot) may change content, embeds, components and allowed_mentions;
// others may only change flags, and only in a guild channel.
//
// Attachments follow Discord's edit rules: with an attachments list the
// message keeps exactly the listed attachments (existing ones by id, new
// files by the n of files[n]); without one, new files are added.
func (s *Server) editMessage(r *http.Request, body []byte) (reply, error) {
	b, ups, present, err := s.decodeEdit(r, body)
	if err != nil {
		return reply{}, err
	}
	if err := b.check(false); err != nil {
		return reply{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, found := s.channels[r.PathValue("channel_id")]
	if !found {
		return reply{}, errorf(http.StatusNotFound, codeUnknownChannel, "Unknown Channel")
	}
	rec := s.recordByID[r.PathValue("message_id")]
	if rec == nil || rec.Deleted || rec.Ephemeral || rec.Message.ChannelID != ch.ID {
		return reply{}, errorf(http.StatusNotFound, codeUnknownMessage, "Unknown Message")
	}
	onlyFlags := len(ups) == 0 && (len(present) == 0 || (len(present) == 1 && present["flags"]))
	if rec.Message.Author.ID != s.bot.ID && (!onlyFlags || ch.Type == channelTypeDM) {
		return reply{}, errorf(http.StatusForbidden, codeEditOthersMessage, "Cannot edit a message authored by another user")
	}
	edited := *rec
	applyEdit(&edited, b)
	if b.Attachments != nil || len(ups) > 0 {
		atts, err := s.attachLocked(ch.ID, b.Attachments, ups, rec.Message.Attachments, false)
		if err != nil {
			return reply{}, err
		}
		edited.Message.Attachments = atts
	}
	if present["flags"] {
		edited.Message.Flags = edited.Message.Flags&^flagSuppressEmbeds | b.Flags&flagSuppressEmbeds
	}
	if m := edited.Message; m.Content == "" && len(m.Embeds) == 0 && len(m.Components) == 0 && len(m.Attachments) == 0 {
		return reply{}, errorf(http.StatusBadRequest, codeEmptyMessage, "Cannot send an empty message")
	}
	*rec = edited
	s.updateRecordLocked(rec)
	return ok(s.freshLocked(fetched(rec.Message))), nil
}

// decodeEdit decodes an edit body (JSON or multipart with files) and
// reports which fields it names. A field sent as null is applied as empty.
func (s *Server) decodeEdit(r *http.Request, body []byte) (*messageBody, []upload, map[string]bool, error) {
	payload, ups, err := s.messagePayload(r, body)
	if err != nil {
		return nil, nil, nil, err
	}
	var b messageBody
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&b); err != nil || json.Unmarshal(payload, &raw) != nil {
		return nil, nil, nil, errorf(http.StatusBadRequest, codeInvalidJSON, "The request body contains invalid JSON.")
	}
	b.files = len(ups)
	present := make(map[string]bool, len(raw))
	for k, v := range raw {
		present[k] = true
		if !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue
		}
		switch k {
		case "content":
			empty := ""
			b.Content = &empty
		case "embeds":
			b.Embeds = []map[string]any{}
		case "components":
			b.Components = []map[string]any{}
		case "attachments":
			b.Attachments = []any{}
		}
	}
	return &b, ups, present, nil
}
