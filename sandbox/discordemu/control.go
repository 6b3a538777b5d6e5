package discordemu

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// controlPrefix is where the control API is served.
const controlPrefix = "/_emu/discord"

// PutMember adds a member or replaces one with the same id. An empty
// Username defaults to "member-<id>", an empty Locale to "en-US".
func (s *Server) PutMember(m Member) {
	if m.Username == "" {
		m.Username = "member-" + m.ID
	}
	if m.Locale == "" {
		m.Locale = "en-US"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members[m.ID] = &m
	c := m
	s.publishLocked(Event{Type: EventMemberUpdate, Member: &c})
}

// SetDMsClosed sets whether the member refuses DMs from the bot (then
// sending to their DM channel fails with 403 and code 50007).
func (s *Server) SetDMsClosed(userID string, closed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.members[userID]
	if m == nil {
		return fmt.Errorf("set DMs closed for %s: %w", userID, ErrUnknownMember)
	}
	m.DMsClosed = closed
	c := *m
	s.publishLocked(Event{Type: EventMemberUpdate, Member: &c})
	return nil
}

// Members returns all members, ordered by id.
func (s *Server) Members() []Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Member, 0, len(s.members))
	for _, m := range s.members {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return compareIDs(a.ID, b.ID) })
	return out
}

func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Guilds returns the guilds the bot is in, normalized (see Guild): Channels
// lists every channel id and ChannelInfo describes each channel.
func (s *Server) Guilds() []Guild {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.guilds)
	for i := range out {
		out[i].Channels = slices.Clone(out[i].Channels)
		out[i].ChannelInfo = slices.Clone(out[i].ChannelInfo)
	}
	return out
}

// DMChannel returns the id of the member's DM channel with the bot,
// creating it if needed (as POST /users/@me/channels would).
func (s *Server) DMChannel(userID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members[userID] == nil {
		return "", fmt.Errorf("DM channel of %s: %w", userID, ErrUnknownMember)
	}
	return s.dmChannelLocked(userID).ID, nil
}

// Messages returns every message of a channel in order, including
// ephemeral and deleted ones (see Record).
func (s *Server) Messages(channelID string) []Record {
	return s.records2(func(r *Record) bool { return r.Message.ChannelID == channelID })
}

// UserMessages returns what a member sees, in order: their DM channel with
// the bot (both directions) and every ephemeral message shown to them.
func (s *Server) UserMessages(userID string) []Record {
	s.mu.Lock()
	dm := s.dmByUser[userID]
	s.mu.Unlock()
	return s.records2(func(r *Record) bool {
		return (dm != "" && r.Message.ChannelID == dm) || r.VisibleTo == userID
	})
}

// BotMessages returns every message the bot sent, in order.
func (s *Server) BotMessages() []Record {
	return s.records2(func(r *Record) bool { return r.FromBot })
}

// AllMessages returns every message with Seq greater than since, in order.
func (s *Server) AllMessages(since int64) []Record {
	return s.records2(func(r *Record) bool { return r.Seq > since })
}

func (s *Server) records2(keep func(*Record) bool) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Record{}
	for _, r := range s.records {
		if keep(r) {
			out = append(out, *r)
		}
	}
	return out
}

// WaitMessage returns the first message (already stored, or arriving or
// edited before ctx ends) for which match returns true.
func (s *Server) WaitMessage(ctx context.Context, match func(Record) bool) (Record, error) {
	events, cancel := s.Subscribe()
	defer cancel()
	for _, r := range s.AllMessages(0) {
		if match(r) {
			return r, nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return Record{}, fmt.Errorf("wait for Discord message: %w", ctx.Err())
		case e, open := <-events:
			if !open {
				return Record{}, errors.New("wait for Discord message: emulator closed")
			}
			if e.Record != nil && (e.Type == EventMessageCreate || e.Type == EventMessageUpdate) && match(*e.Record) {
				return *e.Record, nil
			}
		}
	}
}

// Commands returns the commands registered globally (guildID "") or in a
// guild.
func (s *Server) Commands(guildID string) []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands[guildID])
}

// controlRoutes registers the JSON control API used by the sandbox page.
func (s *Server) controlRoutes(mux *http.ServeMux) {
	p := controlPrefix
	mux.HandleFunc("GET "+p+"/state", s.ctlState)
	mux.HandleFunc("GET "+p+"/members", func(w http.ResponseWriter, r *http.Request) { ctlJSON(w, http.StatusOK, s.Members()) })
	mux.HandleFunc("PUT "+p+"/members/{id}", s.ctlPutMember)
	mux.HandleFunc("POST "+p+"/members/{id}/dm", s.ctlSendDM)
	mux.HandleFunc("PATCH "+p+"/members/{id}/dm/{message_id}", s.ctlEditDM)
	mux.HandleFunc("DELETE "+p+"/members/{id}/dm/{message_id}", s.ctlDeleteDM)
	mux.HandleFunc("POST "+p+"/members/{id}/commands", s.ctlCommand)
	mux.HandleFunc("POST "+p+"/members/{id}/modals", s.ctlModal)
	mux.HandleFunc("POST "+p+"/members/{id}/buttons", s.ctlButton)
	mux.HandleFunc("GET "+p+"/members/{id}/messages", func(w http.ResponseWriter, r *http.Request) {
		ctlJSON(w, http.StatusOK, s.UserMessages(r.PathValue("id")))
	})
	mux.HandleFunc("GET "+p+"/channels", func(w http.ResponseWriter, r *http.Request) {
		ctlJSON(w, http.StatusOK, s.GuildChannels())
	})
	mux.HandleFunc("GET "+p+"/attachments/{channel_id}/{attachment_id}/{filename}", s.ctlAttachment)
	mux.HandleFunc("GET "+p+"/channels/{id}/messages", func(w http.ResponseWriter, r *http.Request) {
		ctlJSON(w, http.StatusOK, s.Messages(r.PathValue("id")))
	})
	mux.HandleFunc("GET "+p+"/messages", func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		ctlJSON(w, http.StatusOK, s.AllMessages(since))
	})
	mux.HandleFunc("GET "+p+"/commands", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		guilds := map[string][]Command{}
		for g, cmds := range s.commands {
			if g != "" {
				guilds[g] = slices.Clone(cmds)
			}
		}
		global := slices.Clone(s.commands[""])
		s.mu.Unlock()
		ctlJSON(w, http.StatusOK, map[string]any{"global": global, "guilds": guilds})
	})
	mux.HandleFunc("GET "+p+"/interactions/{id}", func(w http.ResponseWriter, r *http.Request) {
		info := s.Interaction(r.PathValue("id"))
		if info.ID == "" {
			ctlError(w, http.StatusNotFound, errors.New("unknown interaction"))
			return
		}
		ctlJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("POST "+p+"/faults", s.ctlFault)
	mux.HandleFunc("DELETE "+p+"/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+p+"/gateway/drop", func(w http.ResponseWriter, r *http.Request) {
		ctlJSON(w, http.StatusOK, map[string]int{"connections": s.DropGateway()})
	})
	mux.HandleFunc("POST "+p+"/gateway/reconnect", func(w http.ResponseWriter, r *http.Request) {
		ctlJSON(w, http.StatusOK, map[string]int{"connections": s.ReconnectGateway()})
	})
	mux.HandleFunc("POST "+p+"/gateway/invalidate", func(w http.ResponseWriter, r *http.Request) {
		resumable := r.URL.Query().Get("resumable") == "true"
		ctlJSON(w, http.StatusOK, map[string]int{"connections": s.InvalidateSessions(resumable)})
	})
	mux.HandleFunc("POST "+p+"/gateway/miss", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Events []string `json:"events"`
		}
		if r.ContentLength != 0 && !ctlDecode(w, r, &in) {
			return
		}
		s.MissDispatches(in.Events...)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE "+p+"/gateway/miss", func(w http.ResponseWriter, r *http.Request) {
		ctlJSON(w, http.StatusOK, map[string]int{"missed": s.StopMissingDispatches()})
	})
	mux.HandleFunc("GET "+p+"/violations", func(w http.ResponseWriter, r *http.Request) {
		v := s.Violations()
		if v == nil {
			v = []string{}
		}
		ctlJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("GET "+p+"/events", s.ctlEvents)
}

func ctlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, v)
}

func ctlError(w http.ResponseWriter, status int, err error) {
	ctlJSON(w, status, map[string]string{"error": err.Error()})
}

func ctlDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		ctlError(w, http.StatusBadRequest, fmt.Errorf("decode body: %w", err))
		return false
	}
	return true
}

// ctlActionError answers an error from a member action.
func ctlActionError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrUnknownMember), errors.Is(err, ErrUnknownMessage):
		status = http.StatusNotFound
	case errors.Is(err, ErrNotAuthor):
		status = http.StatusForbidden
	case errors.Is(err, ErrMessageDeleted):
		status = http.StatusGone
	case errors.Is(err, ErrFileTooLarge):
		status = http.StatusRequestEntityTooLarge
	}
	ctlError(w, status, err)
}

func (s *Server) ctlState(w http.ResponseWriter, _ *http.Request) {
	ctlJSON(w, http.StatusOK, map[string]any{
		"application_id":   s.opts.ApplicationID,
		"bot":              s.bot,
		"public_key":       hex.EncodeToString(s.PublicKey()),
		"gateway_url":      s.GatewayURL(),
		"interactions_url": s.opts.InteractionsURL,
		"guilds":           s.Guilds(),
		"channels":         s.GuildChannels(),
		"members":          s.Members(),
		"sessions":         s.GatewaySessions(),
	})
}

func (s *Server) ctlPutMember(w http.ResponseWriter, r *http.Request) {
	var m Member
	if !ctlDecode(w, r, &m) {
		return
	}
	m.ID = r.PathValue("id")
	s.PutMember(m)
	ctlJSON(w, http.StatusOK, m)
}

// ctlSendDM serves POST /_emu/discord/members/{id}/dm: JSON
// {"content": "...", "files": [{"filename", "content_type", "description",
// "data" (base64)}]}, or multipart/form-data with a content field and one
// part per file (files[n], with a filename).
func (s *Server) ctlSendDM(w http.ResponseWriter, r *http.Request) {
	in, decoded := s.readDMInput(w, r)
	if !decoded {
		return
	}
	var rec Record
	var err error
	if len(in.Files) == 0 {
		rec, err = s.SendDM(r.PathValue("id"), in.Content)
	} else {
		rec, err = s.SendDMWithFiles(r.PathValue("id"), in.Content, in.Files...)
	}
	if err != nil {
		ctlActionError(w, err)
		return
	}
	ctlJSON(w, http.StatusOK, rec)
}

func (s *Server) ctlCommand(w http.ResponseWriter, r *http.Request) {
	var in CommandInput
	if !ctlDecode(w, r, &in) {
		return
	}
	s.ctlInteraction(w, r, func(ctx context.Context) (InteractionInfo, error) { return s.RunCommand(ctx, r.PathValue("id"), in) })
}

func (s *Server) ctlModal(w http.ResponseWriter, r *http.Request) {
	var in ModalInput
	if !ctlDecode(w, r, &in) {
		return
	}
	s.ctlInteraction(w, r, func(ctx context.Context) (InteractionInfo, error) { return s.SubmitModal(ctx, r.PathValue("id"), in) })
}

func (s *Server) ctlButton(w http.ResponseWriter, r *http.Request) {
	var in ButtonInput
	if !ctlDecode(w, r, &in) {
		return
	}
	s.ctlInteraction(w, r, func(ctx context.Context) (InteractionInfo, error) { return s.ClickButton(ctx, r.PathValue("id"), in) })
}

// ctlInteraction runs a member action. Delivery failures (the bot's
// endpoint misbehaving) still answer 200 with the interaction and its Error.
func (s *Server) ctlInteraction(w http.ResponseWriter, r *http.Request, run func(context.Context) (InteractionInfo, error)) {
	info, err := run(r.Context())
	if err != nil && info.ID == "" {
		ctlActionError(w, err)
		return
	}
	ctlJSON(w, http.StatusOK, info)
}

// faultJSON is the control API's fault body; durations are milliseconds.
type faultJSON struct {
	Route        string  `json:"route"`
	Count        int     `json:"count"`
	Status       int     `json:"status"`
	RetryAfterMS float64 `json:"retry_after_ms"`
	Global       bool    `json:"global"`
	Scope        string  `json:"scope"`
	Code         int     `json:"code"`
	Message      string  `json:"message"`
	LatencyMS    float64 `json:"latency_ms"`
	After        bool    `json:"after"`
	Drop         bool    `json:"drop"`
}

func (s *Server) ctlFault(w http.ResponseWriter, r *http.Request) {
	var in faultJSON
	if !ctlDecode(w, r, &in) {
		return
	}
	if in.Route == "" {
		ctlError(w, http.StatusBadRequest, errors.New("route is required"))
		return
	}
	s.InjectFault(Fault{
		Route: in.Route, Count: in.Count, Status: in.Status, Global: in.Global, Scope: in.Scope,
		Code: in.Code, Message: in.Message, After: in.After, Drop: in.Drop,
		RetryAfter: time.Duration(in.RetryAfterMS * float64(time.Millisecond)),
		Latency:    time.Duration(in.LatencyMS * float64(time.Millisecond)),
	})
	w.WriteHeader(http.StatusNoContent)
}

// ctlEvents streams events as Server-Sent Events ("event: <type>",
// "data: <Event JSON>").
func (s *Server) ctlEvents(w http.ResponseWriter, r *http.Request) {
	flusher, canFlush := w.(http.Flusher)
	if !canFlush {
		ctlError(w, http.StatusInternalServerError, errors.New("streaming unsupported"))
		return
	}
	events, cancel := s.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": connected\n\n")
	flusher.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			_, _ = fmt.Fprint(w, ": keep-alive\n\n")
		case e, open := <-events:
			if !open {
				return
			}
			_, _ = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, mustJSON(e))
		}
		flusher.Flush()
	}
}
