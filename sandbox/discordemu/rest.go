package discordemu

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Route keys name REST routes for fault injection, independent of the API
// version and of ids.
const (
	RouteGateway             = "GET /gateway"
	RouteGatewayBot          = "GET /gateway/bot"
	RouteGetMe               = "GET /users/@me"
	RouteCreateDM            = "POST /users/@me/channels"
	RouteCreateMessage       = "POST /channels/{id}/messages"
	RouteListMessages        = "GET /channels/{id}/messages"
	RouteEditMessage         = "PATCH /channels/{id}/messages/{id}"
	RouteGetChannel          = "GET /channels/{id}"
	RouteCrosspostMessage    = "POST /channels/{id}/messages/{id}/crosspost"
	RouteInteractionCallback = "POST /interactions/{id}/{token}/callback"
	RouteExecuteWebhook      = "POST /webhooks/{app}/{token}"
	RouteGetOriginal         = "GET /webhooks/{app}/{token}/messages/@original"
	RouteEditOriginal        = "PATCH /webhooks/{app}/{token}/messages/@original"
	RouteDeleteOriginal      = "DELETE /webhooks/{app}/{token}/messages/@original"
	RouteGetFollowup         = "GET /webhooks/{app}/{token}/messages/{id}"
	RouteEditFollowup        = "PATCH /webhooks/{app}/{token}/messages/{id}"
	RouteDeleteFollowup      = "DELETE /webhooks/{app}/{token}/messages/{id}"
	RouteBulkGlobalCommands  = "PUT /applications/{app}/commands"
	RouteBulkGuildCommands   = "PUT /applications/{app}/guilds/{id}/commands"
	RouteGetGlobalCommands   = "GET /applications/{app}/commands"
	RouteGetGuildCommands    = "GET /applications/{app}/guilds/{id}/commands"
)

// Discord JSON error codes used by the emulator.
const (
	codeUnknownChannel      = 10003
	codeUnknownMessage      = 10008
	codeUnknownWebhook      = 10015
	codeUnknownInteraction  = 10062
	codeEditOthersMessage   = 50005
	codeRequestTooLarge     = 40005
	codeAlreadyAcknowledged = 40060
	codeEmptyMessage        = 50006
	codeCannotDM            = 50007
	codeInvalidWebhookToken = 50027
	codeInvalidRecipients   = 50033
	codeInvalidFormBody     = 50035
	codeInvalidJSON         = 50109
)

// apiError is a Discord JSON error response.
type apiError struct {
	status  int
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Errors  map[string]any `json:"errors,omitempty"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %d %s", e.status, e.Code, e.Message) }

func errorf(status, code int, msg string) *apiError {
	return &apiError{status: status, Code: code, Message: msg}
}

// formError is a 50035 with one field error, as Discord nests it.
func formError(field, errCode, msg string) *apiError {
	return formErrorAt([]string{field}, errCode, msg)
}

// formErrorAt is a 50035 with one error at a nested field, for example
// ["embeds", "0", "title"] gives {"embeds":{"0":{"title":{"_errors":[...]}}}}.
func formErrorAt(path []string, errCode, msg string) *apiError {
	e := errorf(http.StatusBadRequest, codeInvalidFormBody, "Invalid Form Body")
	var node any = map[string]any{"_errors": []any{map[string]any{"code": errCode, "message": msg}}}
	for i := len(path) - 1; i >= 0; i-- {
		node = map[string]any{path[i]: node}
	}
	e.Errors = node.(map[string]any)
	return e
}

// reply is what an API handler produces: a status and a JSON body (nil body
// means no content).
type reply struct {
	status int
	body   any
}

func ok(body any) reply { return reply{status: http.StatusOK, body: body} }

type apiHandler func(r *http.Request, body []byte) (reply, error)

// routeDef describes one REST route.
type routeDef struct {
	key  string
	auth bool
	// major returns the rate-limit bucket's major parameter.
	major func(r *http.Request) string
	h     apiHandler
}

func pathMajor(names ...string) func(r *http.Request) string {
	return func(r *http.Request) string {
		var parts []string
		for _, n := range names {
			parts = append(parts, r.PathValue(n))
		}
		return strings.Join(parts, "/")
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, d routeDef) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(method+" /api/{version}"+path, s.api(d))
	}
	api("GET /gateway", routeDef{key: RouteGateway, h: s.getGateway})
	api("GET /gateway/bot", routeDef{key: RouteGatewayBot, auth: true, h: s.getGatewayBot})
	api("GET /users/@me", routeDef{key: RouteGetMe, auth: true, h: s.getMe})
	api("POST /users/@me/channels", routeDef{key: RouteCreateDM, auth: true, h: s.createDM})
	api("POST /channels/{channel_id}/messages", routeDef{key: RouteCreateMessage, auth: true, major: pathMajor("channel_id"), h: s.createMessage})
	api("GET /channels/{channel_id}/messages", routeDef{key: RouteListMessages, auth: true, major: pathMajor("channel_id"), h: s.listMessages})
	api("PATCH /channels/{channel_id}/messages/{message_id}", routeDef{key: RouteEditMessage, auth: true, major: pathMajor("channel_id"), h: s.editMessage})
	api("GET /channels/{channel_id}", routeDef{key: RouteGetChannel, auth: true, major: pathMajor("channel_id"), h: s.getChannel})
	api("POST /channels/{channel_id}/messages/{message_id}/crosspost", routeDef{key: RouteCrosspostMessage, auth: true, major: pathMajor("channel_id"), h: s.crosspostMessage})
	api("POST /interactions/{interaction_id}/{token}/callback", routeDef{key: RouteInteractionCallback, major: pathMajor("interaction_id"), h: s.interactionCallback})
	api("POST /webhooks/{app}/{token}", routeDef{key: RouteExecuteWebhook, major: pathMajor("app", "token"), h: s.executeWebhook})
	api("GET /webhooks/{app}/{token}/messages/@original", routeDef{key: RouteGetOriginal, major: pathMajor("app", "token"), h: s.webhookMessage(http.MethodGet, true)})
	api("PATCH /webhooks/{app}/{token}/messages/@original", routeDef{key: RouteEditOriginal, major: pathMajor("app", "token"), h: s.webhookMessage(http.MethodPatch, true)})
	api("DELETE /webhooks/{app}/{token}/messages/@original", routeDef{key: RouteDeleteOriginal, major: pathMajor("app", "token"), h: s.webhookMessage(http.MethodDelete, true)})
	api("GET /webhooks/{app}/{token}/messages/{message_id}", routeDef{key: RouteGetFollowup, major: pathMajor("app", "token"), h: s.webhookMessage(http.MethodGet, false)})
	api("PATCH /webhooks/{app}/{token}/messages/{message_id}", routeDef{key: RouteEditFollowup, major: pathMajor("app", "token"), h: s.webhookMessage(http.MethodPatch, false)})
	api("DELETE /webhooks/{app}/{token}/messages/{message_id}", routeDef{key: RouteDeleteFollowup, major: pathMajor("app", "token"), h: s.webhookMessage(http.MethodDelete, false)})
	api("PUT /applications/{app}/commands", routeDef{key: RouteBulkGlobalCommands, auth: true, major: pathMajor("app"), h: s.bulkCommands})
	api("PUT /applications/{app}/guilds/{guild_id}/commands", routeDef{key: RouteBulkGuildCommands, auth: true, major: pathMajor("app", "guild_id"), h: s.bulkCommands})
	api("GET /applications/{app}/commands", routeDef{key: RouteGetGlobalCommands, auth: true, major: pathMajor("app"), h: s.getCommands})
	api("GET /applications/{app}/guilds/{guild_id}/commands", routeDef{key: RouteGetGuildCommands, auth: true, major: pathMajor("app", "guild_id"), h: s.getCommands})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.recordViolation(fmt.Sprintf("request %s %s: route not implemented by the emulator", r.Method, r.URL.Path))
		writeJSON(w, http.StatusNotFound, errorf(http.StatusNotFound, 0, "404: Not Found"))
	})
	mux.HandleFunc("GET /attachments/{channel_id}/{attachment_id}/{filename}", s.serveCDN)
	mux.HandleFunc(gatewayPath, s.gw.serve)
	mux.HandleFunc(gatewayPath+"/", s.gw.serve)
	s.controlRoutes(mux)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// api wraps a handler with what every Discord REST route does: version
// check, body limit, contract validation, auth, faults, rate limits and
// JSON errors.
func (s *Server) api(d routeDef) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.PathValue("version"); v != "v9" && v != "v10" {
			writeJSON(w, http.StatusNotFound, errorf(http.StatusNotFound, 0, "404: Not Found"))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxRequestSize+1))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorf(http.StatusBadRequest, 0, "could not read body"))
			return
		}
		if int64(len(body)) <= s.opts.MaxRequestSize { // a larger body was cut short; it is refused below
			s.validateRequest(r, body)
		}

		rep, fault, err := s.serveAPI(d, r, body)
		if fault != nil && fault.Drop {
			dropConnection(w)
			return
		}
		header := http.Header{}
		if err != nil {
			var ae *apiError
			var rl *rateLimited
			switch {
			case errors.As(err, &rl):
				rep = reply{status: http.StatusTooManyRequests, body: rl.body()}
				rl.setHeaders(header)
			case errors.As(err, &ae):
				rep = reply{status: ae.status, body: ae}
			default:
				s.log.Error("discord emulator handler failed", "route", d.key, "error", err)
				rep = reply{status: http.StatusInternalServerError, body: errorf(500, 0, "500: Internal Server Error")}
			}
		}
		if header.Get("X-RateLimit-Limit") == "" {
			s.rateLimitHeaders(header, d, r)
		}
		var out []byte
		if rep.body != nil {
			out = mustJSON(rep.body)
			header.Set("Content-Type", "application/json")
		}
		s.validateResponse(r, rep.status, header, out)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(rep.status)
		if out != nil {
			_, _ = w.Write(out)
		}
	})
}

// serveAPI runs a route's handler behind its checks. It also returns the
// injected fault that applied to the request, if any, so that api can drop
// the connection when the fault says so.
func (s *Server) serveAPI(d routeDef, r *http.Request, body []byte) (reply, *Fault, error) {
	if int64(len(body)) > s.opts.MaxRequestSize {
		return reply{}, nil, errorf(http.StatusRequestEntityTooLarge, codeRequestTooLarge, "Request entity too large")
	}
	if d.auth && !s.authorized(r) {
		return reply{}, nil, errorf(http.StatusUnauthorized, 0, "401: Unauthorized")
	}
	f := s.takeFault(d.key)
	if f != nil && !f.After {
		if err := f.apply(r.Context(), d.key); err != nil || f.Drop {
			return reply{}, f, err
		}
	}
	if err := s.takeRateLimit(d, r); err != nil {
		return reply{}, f, err
	}
	rep, err := d.h(r, body)
	if f != nil && f.After {
		// The request was carried out; its answer is lost.
		if ferr := f.apply(r.Context(), d.key); ferr != nil || f.Drop {
			return reply{}, f, ferr
		}
	}
	return rep, f, err
}

func (s *Server) authorized(r *http.Request) bool {
	return r.Header.Get("Authorization") == "Bot "+s.opts.Token
}

// decodeJSON decodes a JSON request body, answering 50109 for bad JSON and
// 50035 for a missing JSON content type.
func decodeJSON(r *http.Request, body []byte, v any) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		e := errorf(http.StatusBadRequest, codeInvalidFormBody, "Invalid Form Body")
		return e
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, codeInvalidJSON, "The request body contains invalid JSON.")
	}
	return nil
}

func (s *Server) getGateway(r *http.Request, _ []byte) (reply, error) {
	return ok(map[string]any{"url": s.gatewayURLFor(r)}), nil
}

func (s *Server) gatewayURLFor(r *http.Request) string {
	if s.URL() != "" {
		return s.GatewayURL()
	}
	return "ws://" + r.Host + gatewayPath
}

func (s *Server) getGatewayBot(r *http.Request, _ []byte) (reply, error) {
	return ok(map[string]any{
		"url":    s.gatewayURLFor(r),
		"shards": 1,
		"session_start_limit": map[string]any{
			"total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1,
		},
	}), nil
}

func (s *Server) getMe(*http.Request, []byte) (reply, error) {
	me := map[string]any{}
	_ = json.Unmarshal(mustJSON(s.bot), &me)
	me["mfa_enabled"] = false
	me["locale"] = "en-US"
	me["verified"] = true
	me["email"] = nil
	return ok(me), nil
}

func (s *Server) createDM(r *http.Request, body []byte) (reply, error) {
	var req struct {
		RecipientID string `json:"recipient_id"`
	}
	if err := decodeJSON(r, body, &req); err != nil {
		return reply{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, found := s.members[req.RecipientID]
	if !found {
		return reply{}, errorf(http.StatusBadRequest, codeInvalidRecipients, "Invalid Recipient(s)")
	}
	ch := s.dmChannelLocked(m.ID)
	return ok(s.dmChannelJSONLocked(ch, m)), nil
}

// dmChannelLocked returns the member's DM channel, creating it once.
func (s *Server) dmChannelLocked(userID string) *Channel {
	if id, found := s.dmByUser[userID]; found {
		return s.channels[id]
	}
	ch := &Channel{ID: s.ids.next(), Type: channelTypeDM, RecipientID: userID}
	s.channels[ch.ID] = ch
	s.dmByUser[userID] = ch.ID
	return ch
}

func (s *Server) dmChannelJSONLocked(ch *Channel, m *Member) map[string]any {
	var last any
	for i := len(s.records) - 1; i >= 0; i-- {
		if rec := s.records[i]; rec.Message.ChannelID == ch.ID && !rec.Ephemeral {
			last = rec.Message.ID
			break
		}
	}
	return map[string]any{
		"id": ch.ID, "type": channelTypeDM, "last_message_id": last, "flags": 0,
		"recipients": []User{m.user()},
	}
}

// messageBody is the part of a message create/edit body the emulator uses.
type messageBody struct {
	Content         *string          `json:"content"`
	Nonce           json.RawMessage  `json:"nonce"`
	EnforceNonce    bool             `json:"enforce_nonce"`
	Embeds          []map[string]any `json:"embeds"`
	Components      []map[string]any `json:"components"`
	AllowedMentions json.RawMessage  `json:"allowed_mentions"`
	StickerIDs      []string         `json:"sticker_ids"`
	Attachments     []any            `json:"attachments"`
	Poll            json.RawMessage  `json:"poll"`
	Flags           int              `json:"flags"`
	TTS             bool             `json:"tts"`

	// files is the number of files uploaded with the body (multipart).
	files int
}

func (b *messageBody) empty() bool {
	return (b.Content == nil || *b.Content == "") && len(b.Embeds) == 0 && len(b.Components) == 0 &&
		len(b.StickerIDs) == 0 && len(b.Attachments) == 0 && b.files == 0 && (len(b.Poll) == 0 || string(b.Poll) == "null")
}

// check applies Discord's rules on content length (2000, stricter than the
// spec's 4000), embeds (see checkEmbeds) and emptiness.
func (b *messageBody) check(requireContent bool) error {
	if b.Content != nil && utf8.RuneCountInString(*b.Content) > 2000 {
		return formError("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
	}
	if err := checkEmbeds(b.Embeds); err != nil {
		return err
	}
	if requireContent && b.empty() {
		return errorf(http.StatusBadRequest, codeEmptyMessage, "Cannot send an empty message")
	}
	return nil
}

// nonce returns the nonce as sent (string or json.Number) and its string
// form, or an error if it is longer than 25 characters.
func (b *messageBody) nonce() (any, string, error) {
	if len(b.Nonce) == 0 || string(b.Nonce) == "null" {
		return nil, "", nil
	}
	var str string
	if err := json.Unmarshal(b.Nonce, &str); err == nil {
		if utf8.RuneCountInString(str) > 25 {
			return nil, "", formError("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
		}
		return str, str, nil
	}
	var n json.Number
	if err := json.Unmarshal(b.Nonce, &n); err == nil {
		if _, err := n.Int64(); err != nil {
			return nil, "", formError("nonce", "NUMBER_TYPE_COERCE", "Value is not int64.")
		}
		return n, n.String(), nil
	}
	return nil, "", formError("nonce", "BASE_TYPE_BAD", "Must be a string or an integer.")
}

// createMessage serves POST /channels/{id}/messages, as JSON or as
// multipart/form-data with payload_json and files[n] (see attachLocked).
func (s *Server) createMessage(r *http.Request, body []byte) (reply, error) {
	var b messageBody
	ups, err := s.decodeMessage(r, body, &b)
	if err != nil {
		return reply{}, err
	}
	b.files = len(ups)
	nonce, nonceKey, err := b.nonce()
	if err != nil {
		return reply{}, err
	}
	if err := b.check(true); err != nil {
		return reply{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, found := s.channels[r.PathValue("channel_id")]
	if !found {
		return reply{}, errorf(http.StatusNotFound, codeUnknownChannel, "Unknown Channel")
	}
	if ch.Type == channelTypeDM {
		if m := s.members[ch.RecipientID]; m == nil || m.DMsClosed {
			return reply{}, errorf(http.StatusForbidden, codeCannotDM, "Cannot send messages to this user")
		}
	}
	now := s.now()
	key := ch.ID + "\x00" + s.bot.ID + "\x00" + nonceKey
	if b.EnforceNonce && nonceKey != "" {
		if prev, seen := s.nonces[key]; seen && now.Sub(prev.at) < s.opts.NonceWindow {
			if rec := s.recordByID[prev.id]; rec != nil {
				return ok(s.freshLocked(rec.Message)), nil
			}
		}
	}
	atts, err := s.attachLocked(ch.ID, b.Attachments, ups, nil, false)
	if err != nil {
		return reply{}, err
	}
	msg := s.newMessageLocked(ch.ID, s.bot, &b)
	msg.Nonce = nonce
	msg.Attachments = atts
	rec := &Record{GuildID: ch.GuildID, FromBot: true, AllowedMentions: b.AllowedMentions, Message: msg}
	s.addRecordLocked(rec)
	if nonceKey != "" {
		s.nonces[key] = nonceEntry{id: msg.ID, at: now}
	}
	return ok(rec.Message), nil
}

// newMessageLocked builds a message from a create body.
func (s *Server) newMessageLocked(channelID string, author User, b *messageBody) Message {
	msg := Message{
		ID: s.ids.next(), ChannelID: channelID, Author: author,
		Timestamp: s.now().UTC().Format(timestampLayout),
		Mentions:  []User{}, MentionRoles: []string{}, Attachments: []Attachment{},
		Embeds: []any{}, Components: []any{}, TTS: b.TTS,
	}
	if b.Content != nil {
		msg.Content = *b.Content
	}
	msg.Embeds = normalizeEmbeds(b.Embeds)
	msg.Components = normalizeComponents(b.Components)
	msg.Flags = b.Flags & flagEphemeral
	return msg
}

// addRecordLocked stores a new message, publishes it, and dispatches it on
// the gateway unless it is ephemeral.
func (s *Server) addRecordLocked(rec *Record) {
	s.recordSeq++
	rec.Seq = s.recordSeq
	s.records = append(s.records, rec)
	s.recordByID[rec.Message.ID] = rec
	s.publishLocked(Event{Type: EventMessageCreate, Record: rec})
	if !rec.Ephemeral {
		s.gw.dispatchMessage(rec)
	}
}

// updateRecordLocked marks an edited message, publishes it, and dispatches
// MESSAGE_UPDATE on the gateway unless it is ephemeral.
func (s *Server) updateRecordLocked(rec *Record) {
	ts := s.now().UTC().Format(timestampLayout)
	rec.Message.EditedTimestamp = &ts
	s.publishUpdateLocked(rec)
}

// publishUpdateLocked publishes a changed message and dispatches
// MESSAGE_UPDATE on the gateway unless it is ephemeral, without marking it
// edited (a crosspost changes only the flags).
func (s *Server) publishUpdateLocked(rec *Record) {
	s.publishLocked(Event{Type: EventMessageUpdate, Record: rec})
	if !rec.Ephemeral {
		// Attachment URLs are signed anew, as in every message Discord
		// sends (an edit may come long after the upload).
		fresh := *rec
		fresh.Message = s.freshLocked(rec.Message)
		s.gw.dispatchMessageUpdate(&fresh)
	}
}

// normalizeEmbeds returns embeds as Discord echoes them: nulls dropped,
// type "rich", fields with inline set.
func normalizeEmbeds(in []map[string]any) []any {
	out := make([]any, 0, len(in))
	for _, e := range in {
		e = dropNulls(e).(map[string]any)
		if _, found := e["type"]; !found {
			e["type"] = "rich"
		}
		if fields, isList := e["fields"].([]any); isList {
			for _, f := range fields {
				if fm, isMap := f.(map[string]any); isMap {
					if _, found := fm["inline"]; !found {
						fm["inline"] = false
					}
				}
			}
		}
		out = append(out, e)
	}
	return out
}

// normalizeComponents returns components as Discord echoes them: nulls
// dropped and every component numbered with an id.
func normalizeComponents(in []map[string]any) []any {
	out := make([]any, 0, len(in))
	next := 1
	var walk func(c map[string]any)
	walk = func(c map[string]any) {
		if _, found := c["id"]; !found {
			c["id"] = next
		}
		next++
		if kids, isList := c["components"].([]any); isList {
			for _, k := range kids {
				if km, isMap := k.(map[string]any); isMap {
					walk(km)
				}
			}
		}
	}
	for _, c := range in {
		c = dropNulls(c).(map[string]any)
		walk(c)
		out = append(out, c)
	}
	return out
}

// dropNulls returns a deep copy of v without null object members.
func dropNulls(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			if x != nil {
				out[k] = dropNulls(x)
			}
		}
		return out
	case []any:
		out := make([]any, 0, len(t))
		for _, x := range t {
			out = append(out, dropNulls(x))
		}
		return out
	default:
		return v
	}
}

func (s *Server) bulkCommands(r *http.Request, body []byte) (reply, error) {
	if r.PathValue("app") != s.opts.ApplicationID {
		return reply{}, errorf(http.StatusForbidden, 50001, "Missing Access")
	}
	var in []map[string]any
	if err := decodeJSON(r, body, &in); err != nil {
		return reply{}, err
	}
	guildID := r.PathValue("guild_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	if guildID != "" && !s.hasGuildLocked(guildID) {
		return reply{}, errorf(http.StatusNotFound, 10004, "Unknown Guild")
	}
	old := map[string]string{}
	for _, c := range s.commands[guildID] {
		old[fmt.Sprint(c["type"], "/", c.Name())] = c.ID()
	}
	out := make([]Command, 0, len(in))
	for i, raw := range in {
		c := Command(dropNulls(raw).(map[string]any))
		name := c.Name()
		if name == "" {
			return reply{}, formError(strconv.Itoa(i), "BASE_TYPE_REQUIRED", "This field is required")
		}
		if _, found := c["type"]; !found {
			c["type"] = 1
		}
		if _, found := c["description"]; !found {
			c["description"] = ""
		}
		switch p := c["default_member_permissions"].(type) {
		case json.Number:
			c["default_member_permissions"] = p.String()
		case string:
		default:
			c["default_member_permissions"] = nil
		}
		if _, found := c["integration_types"]; !found {
			c["integration_types"] = []any{0}
		}
		id := old[fmt.Sprint(c["type"], "/", name)]
		if id == "" {
			id = s.ids.next()
		}
		c["id"] = id
		c["application_id"] = s.opts.ApplicationID
		c["version"] = s.ids.next()
		if guildID != "" {
			c["guild_id"] = guildID
		}
		out = append(out, c)
	}
	s.commands[guildID] = out
	s.publishLocked(Event{Type: EventCommandsUpdate, GuildID: guildID, Commands: out})
	return ok(out), nil
}

func (s *Server) getCommands(r *http.Request, _ []byte) (reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.commands[r.PathValue("guild_id")]
	if out == nil {
		out = []Command{}
	}
	return ok(out), nil
}

func (s *Server) hasGuildLocked(id string) bool {
	for _, g := range s.guilds {
		if g.ID == id {
			return true
		}
	}
	return false
}

// bucket is one rate-limit window.
type bucket struct {
	count int
	reset time.Time
}

func bucketHash(key string) string {
	sum := sha1.Sum([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// takeRateLimit counts the request against its bucket and returns a 429 when
// the bucket is exhausted.
func (s *Server) takeRateLimit(d routeDef, r *http.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucketLocked(d, r)
	b.count++
	if b.count > s.opts.RateLimit {
		return &rateLimited{retryAfter: b.reset.Sub(s.now()), scope: "user", bucket: bucketHash(d.key), limit: s.opts.RateLimit}
	}
	return nil
}

func (s *Server) bucketLocked(d routeDef, r *http.Request) *bucket {
	key := d.key
	if d.major != nil {
		key += " " + d.major(r)
	}
	now := s.now()
	b := s.buckets[key]
	if b == nil || !now.Before(b.reset) {
		b = &bucket{reset: now.Add(s.opts.RateLimitWindow)}
		s.buckets[key] = b
	}
	return b
}

// rateLimitHeaders sets the X-RateLimit-* headers for the request's bucket.
func (s *Server) rateLimitHeaders(h http.Header, d routeDef, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucketLocked(d, r)
	remaining := max(s.opts.RateLimit-b.count, 0)
	after := max(b.reset.Sub(s.now()).Seconds(), 0)
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(b.reset.UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after, 'f', 3, 64))
	h.Set("X-RateLimit-Bucket", bucketHash(d.key))
}

// rateLimited is a 429 answer.
type rateLimited struct {
	retryAfter time.Duration
	global     bool
	scope      string
	bucket     string
	limit      int
}

func (e *rateLimited) Error() string { return fmt.Sprintf("rate limited for %s", e.retryAfter) }

func (e *rateLimited) body() map[string]any {
	return map[string]any{
		"message":     "You are being rate limited.",
		"retry_after": math.Round(e.retryAfter.Seconds()*1000) / 1000,
		"global":      e.global,
		"code":        0,
	}
}

func (e *rateLimited) setHeaders(h http.Header) {
	secs := e.retryAfter.Seconds()
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
	h.Set("X-RateLimit-Scope", e.scope)
	if e.global {
		h.Set("X-RateLimit-Global", "true")
		return
	}
	if e.limit == 0 {
		e.limit = 1
	}
	h.Set("X-RateLimit-Limit", strconv.Itoa(e.limit))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(secs, 'f', 3, 64))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(time.Now().Add(e.retryAfter).UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Bucket", e.bucket)
}
