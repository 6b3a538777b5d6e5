package discordemu

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Interaction callback types (Discord's numbering).
const (
	callbackPong               = 1
	callbackChannelMessage     = 4
	callbackDeferredChannelMsg = 5
	callbackDeferredUpdate     = 6
	callbackUpdateMessage      = 7
	callbackModal              = 9
)

// ErrUnknownMember is returned by member actions for an id that was never
// added with PutMember.
var ErrUnknownMember = errors.New("unknown member")

// ErrButtonDisabled is returned by ClickButton for a button the bot has
// disabled: Discord shows it greyed out and a member cannot press it.
var ErrButtonDisabled = errors.New("the button is disabled")

// interaction is the emulator's state for one interaction.
type interaction struct {
	info      InteractionInfo
	payload   []byte
	created   time.Time
	original  string // response message id (or the component's message for 6/7)
	loading   bool
	ephemeral bool
	sourceMsg string // message a component was clicked on
}

// InteractionInfo describes an interaction and how the bot answered it.
type InteractionInfo struct {
	ID        string `json:"id"`
	Token     string `json:"token"`
	Type      int    `json:"type"`
	UserID    string `json:"user_id"`
	GuildID   string `json:"guild_id,omitempty"`
	ChannelID string `json:"channel_id"`
	// Name is the command name or the component/modal custom_id.
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// Acknowledged is true once the bot sent its initial response.
	Acknowledged bool `json:"acknowledged"`
	// ResponseType is the callback type of the initial response (4, 5, 6,
	// 7 or 9), zero before it.
	ResponseType int `json:"response_type,omitempty"`
	// ResponseMessageID is the @original message, if any.
	ResponseMessageID string `json:"response_message_id,omitempty"`
	// Modal is the modal the bot opened (callback data of type 9).
	Modal json.RawMessage `json:"modal,omitempty"`
	// Error says why delivery or acknowledgement failed.
	Error string `json:"error,omitempty"`
}

// CommandInput describes a slash command run by a member.
type CommandInput struct {
	// Name of the command; it must be registered (globally or in GuildID).
	Name string `json:"name"`
	// GuildID and ChannelID: empty GuildID runs the command in the member's
	// DM with the bot; an empty ChannelID in a guild uses its first channel.
	GuildID   string `json:"guild_id,omitempty"`
	ChannelID string `json:"channel_id,omitempty"`
	// Locale overrides the member's locale for this interaction.
	Locale string `json:"locale,omitempty"`
	// Options are the command's options by name (strings, numbers, bools).
	Options map[string]any `json:"options,omitempty"`
}

// ModalInput describes a modal submitted by a member. Values maps each text
// input's custom_id to the text typed.
type ModalInput struct {
	// InteractionID is the interaction the bot answered with the modal; its
	// guild and channel are reused. Empty uses the member's latest modal.
	InteractionID string            `json:"interaction_id,omitempty"`
	CustomID      string            `json:"custom_id,omitempty"`
	Values        map[string]string `json:"values"`
	Locale        string            `json:"locale,omitempty"`
}

// ButtonInput describes a button click by a member.
type ButtonInput struct {
	MessageID string `json:"message_id"`
	CustomID  string `json:"custom_id"`
	Locale    string `json:"locale,omitempty"`
	// Stale clicks the button as a client that has not yet received the
	// edit that disabled it (a race that happens on Discord); without it a
	// disabled button cannot be clicked.
	Stale bool `json:"stale,omitempty"`
}

// RunCommand acts as member userID running a slash command. The interaction
// is dispatched on the gateway, or POSTed signed to Options.InteractionsURL
// (then RunCommand waits for the HTTP answer and applies it).
func (s *Server) RunCommand(ctx context.Context, userID string, in CommandInput) (InteractionInfo, error) {
	s.mu.Lock()
	m, found := s.members[userID]
	if !found {
		s.mu.Unlock()
		return InteractionInfo{}, fmt.Errorf("run command %q as %s: %w", in.Name, userID, ErrUnknownMember)
	}
	cmd, found := s.findCommandLocked(in.Name, in.GuildID)
	if !found {
		s.mu.Unlock()
		return InteractionInfo{}, fmt.Errorf("run command %q: not registered", in.Name)
	}
	data := map[string]any{"id": cmd.ID(), "name": cmd.Name(), "type": cmd["type"]}
	if in.GuildID != "" {
		data["guild_id"] = in.GuildID
	}
	if len(in.Options) > 0 {
		data["options"] = commandOptions(cmd, in.Options)
	}
	it, err := s.newInteractionLocked(m, interactionApplicationCmd, in.GuildID, in.ChannelID, in.Locale, in.Name, data, nil)
	s.mu.Unlock()
	if err != nil {
		return InteractionInfo{}, err
	}
	return s.deliver(ctx, it)
}

// commandOptions builds data.options with the option types of the
// registered command.
func commandOptions(cmd Command, values map[string]any) []any {
	types := map[string]any{}
	if opts, isList := cmd["options"].([]any); isList {
		for _, o := range opts {
			if om, isMap := o.(map[string]any); isMap {
				types[fmt.Sprint(om["name"])] = om["type"]
			}
		}
	}
	out := []any{}
	for name, v := range values {
		t := types[name]
		if t == nil {
			switch v.(type) {
			case bool:
				t = 5
			case float64, int, int64, json.Number:
				t = 10
			default:
				t = 3
			}
		}
		out = append(out, map[string]any{"name": name, "type": t, "value": v})
	}
	return out
}

func (s *Server) findCommandLocked(name, guildID string) (Command, bool) {
	if guildID != "" {
		for _, c := range s.commands[guildID] {
			if c.Name() == name {
				return c, true
			}
		}
	}
	for _, c := range s.commands[""] {
		if c.Name() == name {
			return c, true
		}
	}
	return nil, false
}

// SubmitModal acts as member userID submitting a modal the bot opened.
func (s *Server) SubmitModal(ctx context.Context, userID string, in ModalInput) (InteractionInfo, error) {
	s.mu.Lock()
	m, found := s.members[userID]
	if !found {
		s.mu.Unlock()
		return InteractionInfo{}, fmt.Errorf("submit modal as %s: %w", userID, ErrUnknownMember)
	}
	var src *interaction
	if in.InteractionID != "" {
		src = s.interactions[in.InteractionID]
	} else {
		for _, it := range s.interactions {
			if it.info.UserID == userID && it.info.Modal != nil && (src == nil || it.created.After(src.created)) {
				src = it
			}
		}
	}
	if src == nil || src.info.Modal == nil {
		s.mu.Unlock()
		return InteractionInfo{}, fmt.Errorf("submit modal as %s: no modal was opened for this member", userID)
	}
	var modal struct {
		CustomID   string           `json:"custom_id"`
		Components []map[string]any `json:"components"`
	}
	_ = json.Unmarshal(src.info.Modal, &modal)
	customID := in.CustomID
	if customID == "" {
		customID = modal.CustomID
	}
	// Answer with the modal's own text inputs, in order, as Discord does.
	rows := []any{}
	for _, row := range modal.Components {
		kids, _ := row["components"].([]any)
		var inputs []any
		for _, k := range kids {
			km, _ := k.(map[string]any)
			id, _ := km["custom_id"].(string)
			inputs = append(inputs, map[string]any{"type": 4, "custom_id": id, "value": in.Values[id]})
		}
		rows = append(rows, map[string]any{"type": 1, "components": inputs})
	}
	data := map[string]any{"custom_id": customID, "components": rows}
	it, err := s.newInteractionLocked(m, interactionModalSubmit, src.info.GuildID, src.info.ChannelID, in.Locale, customID, data, nil)
	if err == nil && src.sourceMsg != "" {
		it.sourceMsg = src.sourceMsg
	}
	s.mu.Unlock()
	if err != nil {
		return InteractionInfo{}, err
	}
	return s.deliver(ctx, it)
}

// ClickButton acts as member userID clicking the button custom_id on a
// message the bot sent.
func (s *Server) ClickButton(ctx context.Context, userID string, in ButtonInput) (InteractionInfo, error) {
	s.mu.Lock()
	m, found := s.members[userID]
	if !found {
		s.mu.Unlock()
		return InteractionInfo{}, fmt.Errorf("click button as %s: %w", userID, ErrUnknownMember)
	}
	rec := s.recordByID[in.MessageID]
	if rec == nil || rec.Deleted {
		s.mu.Unlock()
		return InteractionInfo{}, fmt.Errorf("click button on %s: unknown message", in.MessageID)
	}
	c := findComponent(rec.Message.Components, in.CustomID)
	if c == nil {
		s.mu.Unlock()
		return InteractionInfo{}, fmt.Errorf("click button on %s: no component with custom_id %q", in.MessageID, in.CustomID)
	}
	if c["disabled"] == true && !in.Stale {
		s.mu.Unlock()
		return InteractionInfo{}, fmt.Errorf("click button %q on %s: %w", in.CustomID, in.MessageID, ErrButtonDisabled)
	}
	data := map[string]any{"custom_id": in.CustomID, "component_type": 2}
	msg := rec.Message
	it, err := s.newInteractionLocked(m, interactionMessageComponent, rec.GuildID, msg.ChannelID, in.Locale, in.CustomID, data, &msg)
	if err == nil {
		it.sourceMsg = msg.ID
	}
	s.mu.Unlock()
	if err != nil {
		return InteractionInfo{}, err
	}
	return s.deliver(ctx, it)
}

// findComponent returns the component with the custom_id, at any depth.
func findComponent(list []any, customID string) map[string]any {
	for _, c := range list {
		cm, _ := c.(map[string]any)
		if cm["custom_id"] == customID {
			return cm
		}
		if kids, isList := cm["components"].([]any); isList {
			if found := findComponent(kids, customID); found != nil {
				return found
			}
		}
	}
	return nil
}

// SendDM acts as member userID sending text to the bot in their DM channel.
// The bot receives it as MESSAGE_CREATE on the gateway.
func (s *Server) SendDM(userID, content string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, found := s.members[userID]
	if !found {
		return Record{}, fmt.Errorf("send DM as %s: %w", userID, ErrUnknownMember)
	}
	ch := s.dmChannelLocked(userID)
	msg := s.newMessageLocked(ch.ID, m.user(), &messageBody{Content: &content})
	rec := &Record{Message: msg}
	s.addRecordLocked(rec)
	return *rec, nil
}

// newInteractionLocked builds and stores an interaction payload.
func (s *Server) newInteractionLocked(m *Member, typ int, guildID, channelID, locale, name string, data map[string]any, msg *Message) (*interaction, error) {
	if locale == "" {
		locale = m.Locale
	}
	if locale == "" {
		locale = "en-US"
	}
	id := s.ids.next()
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	token := "aW50ZXJhY3Rpb246" + hex.EncodeToString(tok)
	p := map[string]any{
		"id": id, "application_id": s.opts.ApplicationID, "type": typ, "data": data,
		"token": token, "version": 1, "locale": locale,
		"app_permissions":                "562949953421311",
		"entitlements":                   []any{},
		"attachment_size_limit":          s.opts.MaxFileSize,
		"authorizing_integration_owners": map[string]any{"0": "", "1": ""},
	}
	user := m.user()
	if guildID != "" {
		g := s.guildLocked(guildID)
		if g == nil {
			return nil, fmt.Errorf("unknown guild %s", guildID)
		}
		if channelID == "" && len(g.Channels) > 0 {
			channelID = g.Channels[0]
		}
		p["guild_id"] = g.ID
		p["guild"] = map[string]any{"id": g.ID, "locale": g.Locale, "features": []any{}}
		p["guild_locale"] = g.Locale
		p["context"] = contextGuild
		p["authorizing_integration_owners"] = map[string]any{"0": g.ID}
		p["member"] = map[string]any{
			"user": user, "roles": []any{}, "joined_at": "2024-01-01T00:00:00.000000+00:00",
			"deaf": false, "mute": false, "pending": false, "flags": 0, "nick": nil, "avatar": nil,
			"permissions": "2248473465835073", "premium_since": nil, "communication_disabled_until": nil,
		}
		chType, chName := channelTypeGuildText, defaultTextChannelName
		if ch := s.channels[channelID]; ch != nil && ch.GuildID == g.ID {
			chType, chName = ch.Type, ch.Name
		}
		p["channel"] = map[string]any{"id": channelID, "type": chType, "guild_id": g.ID, "name": chName}
	} else {
		ch := s.dmChannelLocked(m.ID)
		channelID = ch.ID
		p["context"] = contextBotDM
		p["authorizing_integration_owners"] = map[string]any{"0": s.opts.ApplicationID}
		p["user"] = user
		p["channel"] = map[string]any{"id": ch.ID, "type": channelTypeDM, "recipients": []User{user}, "flags": 0}
	}
	if _, found := s.channels[channelID]; !found {
		return nil, fmt.Errorf("unknown channel %s", channelID)
	}
	p["channel_id"] = channelID
	if msg != nil {
		p["message"] = msg
	}
	it := &interaction{
		payload: mustJSON(p),
		created: s.now(),
		info: InteractionInfo{
			ID: id, Token: token, Type: typ, UserID: m.ID, GuildID: guildID, ChannelID: channelID,
			Name: name, CreatedAt: s.now(),
		},
	}
	s.interactions[id] = it
	s.byToken[token] = it
	info := it.info
	s.publishLocked(Event{Type: EventInteractionCreate, Interaction: &info})
	return it, nil
}

func (s *Server) guildLocked(id string) *Guild {
	for i := range s.guilds {
		if s.guilds[i].ID == id {
			return &s.guilds[i]
		}
	}
	return nil
}

// deliver sends the interaction over HTTP (signed) or the gateway.
func (s *Server) deliver(ctx context.Context, it *interaction) (InteractionInfo, error) {
	if s.opts.InteractionsURL == "" {
		s.gw.dispatchInteraction(it.payload, it.info.GuildID)
		// Report a missed deadline even if the bot never answers.
		time.AfterFunc(s.opts.AckDeadline+50*time.Millisecond, func() { s.checkDeadline(it.info.ID) })
		return s.Interaction(it.info.ID), nil
	}
	status, contentType, body, elapsed, err := s.postInteraction(ctx, it.payload, true)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("interactions endpoint answered %d: %s", status, bytes.TrimSpace(body))
	}
	if err == nil && elapsed > s.opts.AckDeadline {
		err = fmt.Errorf("interactions endpoint took %s (deadline %s)", elapsed.Round(time.Millisecond), s.opts.AckDeadline)
	}
	if err == nil {
		// The answer may be multipart/form-data with payload_json and
		// files[n], like the callback endpoint.
		err = s.applyHTTPAnswer(it, contentType, body)
	}
	if err != nil {
		s.failInteraction(it.info.ID, err.Error())
		return s.Interaction(it.info.ID), fmt.Errorf("deliver interaction %s: %w", it.info.ID, err)
	}
	return s.Interaction(it.info.ID), nil
}

// applyHTTPAnswer applies the interactions endpoint's answer: JSON, or
// multipart/form-data with payload_json and files[n] like the callback
// endpoint.
func (s *Server) applyHTTPAnswer(it *interaction, contentType string, body []byte) error {
	var ups []upload
	payload := body
	if mediaTypeOf(contentType) == "multipart/form-data" {
		var err error
		if payload, ups, err = readForm(contentType, body); err == nil {
			err = s.checkUploads(ups)
		}
		if err != nil {
			return fmt.Errorf("interactions endpoint answered a bad multipart body: %w", err)
		}
	}
	var cb callbackBody
	if err := json.Unmarshal(payload, &cb); err != nil {
		return fmt.Errorf("interactions endpoint answered invalid JSON: %w", err)
	}
	if _, err := s.acknowledge(it.info.ID, it.info.Token, &cb, ups, false, true); err != nil {
		return fmt.Errorf("interactions endpoint response rejected: %w", err)
	}
	return nil
}

// checkDeadline marks an interaction failed if it is still unacknowledged
// after the deadline.
func (s *Server) checkDeadline(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.interactions[id]
	if it == nil || it.info.Acknowledged || it.info.Error != "" || s.now().Sub(it.created) <= s.opts.AckDeadline {
		return
	}
	it.info.Error = "not acknowledged within " + s.opts.AckDeadline.String()
	info := it.info
	s.publishLocked(Event{Type: EventInteractionFailed, Interaction: &info, Detail: it.info.Error})
}

func (s *Server) failInteraction(id, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.interactions[id]
	if it == nil {
		return
	}
	it.info.Error = why
	info := it.info
	s.publishLocked(Event{Type: EventInteractionFailed, Interaction: &info, Detail: why})
}

// postInteraction POSTs a payload to the interactions URL, signed with the
// emulator's key (or with a wrong signature when valid is false), and
// returns the answer's status, content type and body.
func (s *Server) postInteraction(ctx context.Context, payload []byte, valid bool) (int, string, []byte, time.Duration, error) {
	ts := strconv.FormatInt(s.now().Unix(), 10)
	sig := ed25519.Sign(s.priv, append([]byte(ts), payload...))
	if !valid {
		sig[0] ^= 0xff
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.InteractionsURL, bytes.NewReader(payload))
	if err != nil {
		return 0, "", nil, 0, fmt.Errorf("build interaction request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Discord-Interactions/1.0 (+https://discord.com)")
	req.Header.Set("X-Signature-Ed25519", hex.EncodeToString(sig))
	req.Header.Set("X-Signature-Timestamp", ts)
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", nil, time.Since(start), fmt.Errorf("post interaction to %s: %w", s.opts.InteractionsURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxRequestSize))
	elapsed := time.Since(start)
	ct := resp.Header.Get("Content-Type")
	if err != nil {
		return resp.StatusCode, ct, nil, elapsed, fmt.Errorf("read interaction response: %w", err)
	}
	return resp.StatusCode, ct, body, elapsed, nil
}

// VerifyInteractionsEndpoint does what Discord does when an Interactions
// Endpoint URL is saved: it sends a signed PING, which must be answered
// 200 {"type":1}, and a PING with an invalid signature, which must be
// answered 401.
func (s *Server) VerifyInteractionsEndpoint(ctx context.Context) error {
	if s.opts.InteractionsURL == "" {
		return errors.New("verify interactions endpoint: Options.InteractionsURL is empty")
	}
	ping := mustJSON(map[string]any{
		"id": s.ids.next(), "application_id": s.opts.ApplicationID, "type": interactionPing,
		"token": "ping", "version": 1, "user": s.bot,
	})
	status, _, _, _, err := s.postInteraction(ctx, ping, false)
	if err != nil {
		return fmt.Errorf("verify interactions endpoint: %w", err)
	}
	if status != http.StatusUnauthorized {
		return fmt.Errorf("verify interactions endpoint: invalid signature answered %d, want 401", status)
	}
	status, _, body, _, err := s.postInteraction(ctx, ping, true)
	if err != nil {
		return fmt.Errorf("verify interactions endpoint: %w", err)
	}
	var pong struct {
		Type int `json:"type"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &pong) != nil || pong.Type != callbackPong {
		return fmt.Errorf("verify interactions endpoint: PING answered %d %s, want 200 {\"type\":1}", status, bytes.TrimSpace(body))
	}
	return nil
}

// Interaction returns the current state of an interaction (zero value if
// unknown).
func (s *Server) Interaction(id string) InteractionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.interactions[id]; it != nil {
		return it.info
	}
	return InteractionInfo{}
}

// InteractionPayload returns the JSON the bot received for an interaction.
func (s *Server) InteractionPayload(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.interactions[id]; it != nil {
		return bytes.Clone(it.payload)
	}
	return nil
}

// callbackBody is an interaction response.
type callbackBody struct {
	Type int             `json:"type"`
	Data json.RawMessage `json:"data"`
}

// interactionCallback serves POST /interactions/{id}/{token}/callback, as
// JSON or as multipart/form-data with payload_json and files[n] (a
// CHANNEL_MESSAGE_WITH_SOURCE or UPDATE_MESSAGE response with files).
func (s *Server) interactionCallback(r *http.Request, body []byte) (reply, error) {
	var cb callbackBody
	ups, err := s.decodeMessage(r, body, &cb)
	if err != nil {
		return reply{}, err
	}
	withResponse := r.URL.Query().Get("with_response") == "true"
	resp, err := s.acknowledge(r.PathValue("interaction_id"), r.PathValue("token"), &cb, ups, withResponse, false)
	if err != nil {
		return reply{}, err
	}
	if !withResponse {
		return reply{status: http.StatusNoContent}, nil
	}
	return ok(resp), nil
}

// acknowledge applies an initial interaction response (from the callback
// endpoint or the HTTP interactions answer) with the files uploaded with
// it.
func (s *Server) acknowledge(id, token string, cb *callbackBody, ups []upload, withResponse, overHTTP bool) (map[string]any, error) {
	var b messageBody
	if len(cb.Data) > 0 && string(cb.Data) != "null" {
		dec := json.NewDecoder(bytes.NewReader(cb.Data))
		dec.UseNumber()
		if err := dec.Decode(&b); err != nil {
			return nil, formError("data", "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
		}
	}
	b.files = len(ups)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.interactions[id]
	if it == nil || it.info.Token != token {
		return nil, errorf(http.StatusNotFound, codeUnknownInteraction, "Unknown interaction")
	}
	if it.info.Acknowledged {
		return nil, errorf(http.StatusBadRequest, codeAlreadyAcknowledged, "Interaction has already been acknowledged.")
	}
	if !overHTTP && s.now().Sub(it.created) > s.opts.AckDeadline {
		if it.info.Error == "" {
			it.info.Error = "not acknowledged within " + s.opts.AckDeadline.String()
			info := it.info
			s.publishLocked(Event{Type: EventInteractionFailed, Interaction: &info, Detail: it.info.Error})
		}
		return nil, errorf(http.StatusNotFound, codeUnknownInteraction, "Unknown interaction")
	}
	isComponent := it.info.Type == interactionMessageComponent || (it.info.Type == interactionModalSubmit && it.sourceMsg != "")
	var rec *Record
	switch cb.Type {
	case callbackChannelMessage, callbackDeferredChannelMsg:
		if err := b.check(cb.Type == callbackChannelMessage); err != nil {
			return nil, err
		}
		var atts []Attachment
		if cb.Type == callbackChannelMessage {
			var err error
			if atts, err = s.attachLocked(it.info.ChannelID, b.Attachments, ups, nil, b.Flags&flagEphemeral != 0); err != nil {
				return nil, err
			}
		}
		msg := s.newMessageLocked(it.info.ChannelID, s.bot, &b)
		if atts != nil {
			msg.Attachments = atts
		}
		msg.Type = 20 // CHAT_INPUT_COMMAND
		if it.info.Type != interactionApplicationCmd {
			msg.Type = 19 // REPLY
		}
		msg.WebhookID = s.opts.ApplicationID
		msg.ApplicationID = s.opts.ApplicationID
		msg.InteractionMetadata = s.metadataLocked(it)
		if cb.Type == callbackDeferredChannelMsg {
			msg.Flags |= flagLoading
			it.loading = true
		}
		rec = &Record{
			GuildID: it.info.GuildID, FromBot: true, InteractionID: it.info.ID,
			Ephemeral: msg.Flags&flagEphemeral != 0, AllowedMentions: b.AllowedMentions, Message: msg,
		}
		if rec.Ephemeral {
			rec.VisibleTo = it.info.UserID
		}
		it.original = msg.ID
		it.ephemeral = rec.Ephemeral
		s.addRecordLocked(rec)
	case callbackDeferredUpdate, callbackUpdateMessage:
		if !isComponent {
			return nil, formError("type", "INTERACTION_CALLBACK_TYPE_INVALID", "Interaction callback type is not valid for this interaction type.")
		}
		it.original = it.sourceMsg
		if cb.Type == callbackUpdateMessage {
			if err := b.check(false); err != nil {
				return nil, err
			}
			if src := s.recordByID[it.sourceMsg]; src != nil {
				if err := s.editAttachmentsLocked(src, &b, ups); err != nil {
					return nil, err
				}
				applyEdit(src, &b)
				s.updateRecordLocked(src)
				rec = src
			}
		}
	case callbackModal:
		if it.info.Type == interactionModalSubmit || it.info.Type == interactionPing {
			return nil, formError("type", "INTERACTION_CALLBACK_TYPE_INVALID", "Interaction callback type is not valid for this interaction type.")
		}
		it.info.Modal = bytes.Clone(cb.Data)
	case callbackPong:
		if it.info.Type != interactionPing {
			return nil, formError("type", "INTERACTION_CALLBACK_TYPE_INVALID", "Interaction callback type is not valid for this interaction type.")
		}
	default:
		return nil, formError("type", "BASE_TYPE_CHOICES", fmt.Sprintf("Value must be one of {1, 4, 5, 6, 7, 9}; got %d.", cb.Type))
	}
	it.info.Acknowledged = true
	it.info.ResponseType = cb.Type
	it.info.ResponseMessageID = it.original
	info := it.info
	s.publishLocked(Event{Type: EventInteractionResponse, Interaction: &info})
	if cb.Type == callbackModal {
		s.publishLocked(Event{Type: EventModal, Interaction: &info})
	}
	if !withResponse {
		return nil, nil
	}
	ir := map[string]any{"id": it.info.ID, "type": it.info.Type}
	if it.original != "" {
		ir["response_message_id"] = it.original
		ir["response_message_loading"] = it.loading
		ir["response_message_ephemeral"] = it.ephemeral
	}
	out := map[string]any{"interaction": ir}
	if rec != nil && (cb.Type == callbackChannelMessage || cb.Type == callbackUpdateMessage) {
		out["resource"] = map[string]any{"type": cb.Type, "message": rec.Message}
	}
	return out, nil
}

// metadataLocked is a message's interaction_metadata for a response to it.
func (s *Server) metadataLocked(it *interaction) map[string]any {
	m := s.members[it.info.UserID]
	owners := map[string]any{"0": s.opts.ApplicationID}
	if it.info.GuildID != "" {
		owners = map[string]any{"0": it.info.GuildID}
	}
	md := map[string]any{"id": it.info.ID, "type": it.info.Type, "authorizing_integration_owners": owners}
	if m != nil {
		md["user"] = m.user()
	}
	switch it.info.Type {
	case interactionMessageComponent:
		md["interacted_message_id"] = it.sourceMsg
	case interactionModalSubmit:
		md["triggering_interaction_metadata"] = map[string]any{
			"id": it.info.ID, "type": interactionApplicationCmd, "authorizing_integration_owners": owners,
		}
	}
	return md
}

// editAttachmentsLocked applies the attachments of an edit (an
// attachments list and/or new files) to a message, as editMessage does.
func (s *Server) editAttachmentsLocked(rec *Record, b *messageBody, ups []upload) error {
	if b.Attachments == nil && len(ups) == 0 {
		return nil
	}
	atts, err := s.attachLocked(rec.Message.ChannelID, b.Attachments, ups, rec.Message.Attachments, rec.Ephemeral)
	if err != nil {
		return err
	}
	rec.Message.Attachments = atts
	return nil
}

// applyEdit changes a message according to an edit body (absent fields
// stay as they are).
func applyEdit(rec *Record, b *messageBody) {
	if b.Content != nil {
		rec.Message.Content = *b.Content
	}
	if b.Embeds != nil {
		rec.Message.Embeds = normalizeEmbeds(b.Embeds)
	}
	if b.Components != nil {
		rec.Message.Components = normalizeComponents(b.Components)
	}
	if len(b.AllowedMentions) > 0 {
		rec.AllowedMentions = b.AllowedMentions
	}
	rec.Message.Flags &^= flagLoading
}

// webhookInteractionLocked finds the interaction of a follow-up webhook.
func (s *Server) webhookInteractionLocked(r *http.Request) (*interaction, error) {
	if r.PathValue("app") != s.opts.ApplicationID {
		return nil, errorf(http.StatusNotFound, codeUnknownWebhook, "Unknown Webhook")
	}
	it := s.byToken[r.PathValue("token")]
	if it == nil || !it.info.Acknowledged {
		return nil, errorf(http.StatusNotFound, codeUnknownWebhook, "Unknown Webhook")
	}
	if s.now().Sub(it.created) > s.opts.TokenLifetime {
		return nil, errorf(http.StatusUnauthorized, codeInvalidWebhookToken, "Invalid Webhook Token")
	}
	return it, nil
}

// executeWebhook serves follow-up messages: POST /webhooks/{app}/{token},
// as JSON or as multipart/form-data with files.
func (s *Server) executeWebhook(r *http.Request, body []byte) (reply, error) {
	var b messageBody
	ups, err := s.decodeMessage(r, body, &b)
	if err != nil {
		return reply{}, err
	}
	b.files = len(ups)
	if err := b.check(true); err != nil {
		return reply{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.webhookInteractionLocked(r)
	if err != nil {
		return reply{}, err
	}
	// A follow-up straight after a deferred response fills in the loading
	// message.
	if it.loading {
		if rec := s.recordByID[it.original]; rec != nil && !rec.Deleted {
			if err := s.editAttachmentsLocked(rec, &b, ups); err != nil {
				return reply{}, err
			}
			it.loading = false
			applyEdit(rec, &b)
			s.updateRecordLocked(rec)
			return ok(rec.Message), nil
		}
	}
	atts, err := s.attachLocked(it.info.ChannelID, b.Attachments, ups, nil, b.Flags&flagEphemeral != 0)
	if err != nil {
		return reply{}, err
	}
	msg := s.newMessageLocked(it.info.ChannelID, s.bot, &b)
	msg.Attachments = atts
	msg.Type = 0
	msg.WebhookID = s.opts.ApplicationID
	msg.ApplicationID = s.opts.ApplicationID
	msg.InteractionMetadata = s.metadataLocked(it)
	rec := &Record{
		GuildID: it.info.GuildID, FromBot: true, InteractionID: it.info.ID,
		Ephemeral: msg.Flags&flagEphemeral != 0, AllowedMentions: b.AllowedMentions, Message: msg,
	}
	if rec.Ephemeral {
		rec.VisibleTo = it.info.UserID
	}
	s.addRecordLocked(rec)
	return ok(rec.Message), nil
}

// webhookMessage serves GET/PATCH/DELETE of @original (original=true) or a
// follow-up message.
func (s *Server) webhookMessage(method string, original bool) apiHandler {
	return func(r *http.Request, body []byte) (reply, error) {
		var b messageBody
		var ups []upload
		if method == http.MethodPatch {
			var err error
			if ups, err = s.decodeMessage(r, body, &b); err != nil {
				return reply{}, err
			}
			b.files = len(ups)
			if err := b.check(false); err != nil {
				return reply{}, err
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		it, err := s.webhookInteractionLocked(r)
		if err != nil {
			return reply{}, err
		}
		id := r.PathValue("message_id")
		if original {
			id = it.original
		}
		rec := s.recordByID[id]
		if rec == nil || rec.Deleted || (!original && rec.InteractionID != it.info.ID) {
			return reply{}, errorf(http.StatusNotFound, codeUnknownMessage, "Unknown Message")
		}
		switch method {
		case http.MethodPatch:
			if err := s.editAttachmentsLocked(rec, &b, ups); err != nil {
				return reply{}, err
			}
			if original {
				it.loading = false
			}
			applyEdit(rec, &b)
			s.updateRecordLocked(rec)
			return ok(rec.Message), nil
		case http.MethodDelete:
			rec.Deleted = true
			s.publishLocked(Event{Type: EventMessageDelete, Record: rec})
			return reply{status: http.StatusNoContent}, nil
		default:
			return ok(s.freshLocked(rec.Message)), nil
		}
	}
}
