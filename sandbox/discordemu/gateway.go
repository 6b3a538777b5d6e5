package discordemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// gatewayPath is where the gateway websocket is served; GET /gateway hands
// out ws://<emulator>/gateway and discordgo appends "/?v=9&encoding=json".
const gatewayPath = "/gateway"

// Gateway opcodes.
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opPresenceUpdate = 3
	opVoiceState     = 4
	opResume         = 6
	opReconnect      = 7
	opRequestMembers = 8
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatAck   = 11
)

// Gateway close codes.
const (
	closeUnknownOpcode        = 4001
	closeDecodeError          = 4002
	closeNotAuthenticated     = 4003
	closeAuthenticationFailed = 4004
	closeAlreadyAuthenticated = 4005
	closeInvalidShard         = 4010
	closeInvalidAPIVersion    = 4012
	closeInvalidIntents       = 4013
	closeDisallowedIntents    = 4014
)

// Gateway intents the emulator looks at.
const (
	intentGuildMessages  = 1 << 9
	intentDirectMessages = 1 << 12
	// validIntents are all intent bits Discord defines.
	validIntents = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<9 | 1<<10 |
		1<<11 | 1<<12 | 1<<13 | 1<<14 | 1<<15 | 1<<16 | 1<<20 | 1<<21 | 1<<24 | 1<<25
	// privilegedIntents are GUILD_MEMBERS, GUILD_PRESENCES and MESSAGE_CONTENT.
	privilegedIntents = 1<<1 | 1<<8 | 1<<15
)

// replayLimit is how many dispatches a session keeps for RESUME.
const replayLimit = 1000

// sessionTTL is how long a disconnected session stays resumable.
const sessionTTL = 5 * time.Minute

// gatewayPayload is a gateway frame.
type gatewayPayload struct {
	Op   int             `json:"op"`
	Data json.RawMessage `json:"d"`
	Seq  *int64          `json:"s"`
	Type *string         `json:"t"`
}

type gateway struct {
	s        *Server
	upgrader websocket.Upgrader

	mu       sync.Mutex
	sessions map[string]*gwSession
	conns    map[*gwConn]bool
	// missing, when not nil, names the dispatch events that are lost (an
	// empty set loses all); missed counts them. See MissDispatches.
	missing map[string]bool
	missed  int
}

// gwSession is a gateway session, which outlives connections for RESUME.
type gwSession struct {
	id      string
	intents int
	shard   [2]int

	mu             sync.Mutex
	seq            int64
	buffer         []gatewayPayload
	conn           *gwConn
	disconnectedAt time.Time
}

type gwConn struct {
	ws *websocket.Conn

	wmu     sync.Mutex
	session *gwSession // guarded by gateway.mu
}

// GatewaySession describes a gateway session of the bot.
type GatewaySession struct {
	ID        string `json:"id"`
	Intents   int    `json:"intents"`
	Shard     [2]int `json:"shard"`
	Connected bool   `json:"connected"`
	Seq       int64  `json:"seq"`
}

func (g *gateway) init(s *Server) {
	g.s = s
	g.sessions = make(map[string]*gwSession)
	g.conns = make(map[*gwConn]bool)
	g.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
}

func (c *gwConn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

func (c *gwConn) closeWith(code int, text string) {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.ws.Close()
}

func frame(op int, d any) map[string]any {
	return map[string]any{"op": op, "d": d, "s": nil, "t": nil}
}

// serve runs one gateway connection.
func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &gwConn{ws: ws}
	g.mu.Lock()
	g.conns[c] = true
	g.mu.Unlock()
	defer g.detach(c)

	q := r.URL.Query()
	if v := q.Get("v"); v != "" && v != "9" && v != "10" {
		c.closeWith(closeInvalidAPIVersion, "Invalid API version.")
		return
	}
	if e := q.Get("encoding"); e != "" && e != "json" {
		c.closeWith(closeDecodeError, "Only JSON encoding is emulated.")
		return
	}
	if err := c.write(frame(opHello, map[string]any{"heartbeat_interval": g.s.opts.HeartbeatInterval.Milliseconds()})); err != nil {
		return
	}
	for {
		_, raw, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway) {
				g.endSession(c, fmt.Sprintf("client closed with %d", ce.Code))
			}
			return
		}
		var p gatewayPayload
		if err := json.Unmarshal(raw, &p); err != nil {
			c.closeWith(closeDecodeError, "Error while decoding payload.")
			return
		}
		if !g.handle(c, &p) {
			return
		}
	}
}

// handle processes one client frame and reports whether to keep reading.
func (g *gateway) handle(c *gwConn, p *gatewayPayload) bool {
	g.mu.Lock()
	sess := c.session
	g.mu.Unlock()
	switch p.Op {
	case opHeartbeat:
		return c.write(frame(opHeartbeatAck, nil)) == nil
	case opIdentify:
		if sess != nil {
			c.closeWith(closeAlreadyAuthenticated, "You sent more than one identify payload.")
			return false
		}
		return g.identify(c, p.Data)
	case opResume:
		if sess != nil {
			c.closeWith(closeAlreadyAuthenticated, "Already authenticated.")
			return false
		}
		return g.resume(c, p.Data)
	case opPresenceUpdate, opVoiceState, opRequestMembers:
		if sess == nil {
			c.closeWith(closeNotAuthenticated, "Not authenticated.")
			return false
		}
		return true
	default:
		c.closeWith(closeUnknownOpcode, "Unknown opcode.")
		return false
	}
}

func (g *gateway) tokenOK(tok string) bool {
	return tok == g.s.opts.Token || tok == "Bot "+g.s.opts.Token
}

func (g *gateway) identify(c *gwConn, data json.RawMessage) bool {
	var id struct {
		Token   string  `json:"token"`
		Intents *int    `json:"intents"`
		Shard   *[2]int `json:"shard"`
	}
	if err := json.Unmarshal(data, &id); err != nil {
		c.closeWith(closeDecodeError, "Error while decoding payload.")
		return false
	}
	if !g.tokenOK(id.Token) {
		c.closeWith(closeAuthenticationFailed, "Authentication failed.")
		g.s.publish(Event{Type: EventGatewayClosed, Detail: "4004 authentication failed"})
		return false
	}
	if id.Intents == nil || *id.Intents&^validIntents != 0 {
		c.closeWith(closeInvalidIntents, "Invalid intent(s).")
		g.s.publish(Event{Type: EventGatewayClosed, Detail: "4013 invalid intents"})
		return false
	}
	if *id.Intents&privilegedIntents&^g.s.opts.PrivilegedIntents != 0 {
		c.closeWith(closeDisallowedIntents, "Disallowed intent(s).")
		g.s.publish(Event{Type: EventGatewayClosed, Detail: "4014 disallowed intents"})
		return false
	}
	shard := [2]int{0, 1}
	if id.Shard != nil {
		shard = *id.Shard
		if shard[1] < 1 || shard[0] < 0 || shard[0] >= shard[1] {
			c.closeWith(closeInvalidShard, "Invalid shard.")
			return false
		}
	}
	sess := &gwSession{id: randomHex(16), intents: *id.Intents, shard: shard}
	guilds := []any{}
	for _, gl := range g.s.guilds {
		guilds = append(guilds, map[string]any{"id": gl.ID, "unavailable": true})
	}
	ready := map[string]any{
		"v": 9, "user": g.s.bot, "guilds": guilds, "session_id": sess.id,
		"session_type":            "normal",
		"resume_gateway_url":      g.s.GatewayURL(),
		"shard":                   shard,
		"application":             map[string]any{"id": g.s.opts.ApplicationID, "flags": g.s.opts.ApplicationFlags},
		"private_channels":        []any{},
		"relationships":           []any{},
		"presences":               []any{},
		"guild_join_requests":     []any{},
		"user_settings":           map[string]any{},
		"geo_ordered_rtc_regions": []string{"local"},
	}
	g.mu.Lock()
	g.sessions[sess.id] = sess
	c.session = sess
	g.mu.Unlock()
	sess.mu.Lock()
	sess.conn = c
	err := sess.sendLocked("READY", mustJSON(ready))
	sess.mu.Unlock()
	g.s.publish(Event{Type: EventGatewayReady, Detail: sess.id})
	return err == nil
}

func (g *gateway) resume(c *gwConn, data json.RawMessage) bool {
	var rs struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       int64  `json:"seq"`
	}
	if err := json.Unmarshal(data, &rs); err != nil {
		c.closeWith(closeDecodeError, "Error while decoding payload.")
		return false
	}
	if !g.tokenOK(rs.Token) {
		c.closeWith(closeAuthenticationFailed, "Authentication failed.")
		return false
	}
	g.mu.Lock()
	sess := g.sessions[rs.SessionID]
	g.mu.Unlock()
	if sess == nil {
		return c.write(frame(opInvalidSession, false)) == nil
	}
	g.mu.Lock()
	c.session = sess
	g.mu.Unlock()
	ok := g.attach(c, sess, rs.Seq)
	if !ok {
		g.mu.Lock()
		c.session = nil
		g.mu.Unlock()
		return c.write(frame(opInvalidSession, false)) == nil
	}
	g.s.publish(Event{Type: EventGatewayResumed, Detail: sess.id})
	return true
}

// attach makes c the session's connection, replays the dispatches after
// seq and sends RESUMED. It reports false if the session cannot resume
// from seq.
func (g *gateway) attach(c *gwConn, sess *gwSession, seq int64) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if len(sess.buffer) > 0 && *sess.buffer[0].Seq > seq+1 {
		return false // too far behind: the missed dispatches are gone
	}
	if old := sess.conn; old != nil && old != c {
		go old.closeWith(4009, "Session resumed elsewhere.")
	}
	sess.conn = c
	for _, p := range sess.buffer {
		if *p.Seq > seq {
			if err := c.write(p); err != nil {
				return true // the read loop notices the broken connection
			}
		}
	}
	_ = sess.sendLocked("RESUMED", json.RawMessage(`{}`))
	return true
}

// sendLocked numbers, buffers and (if connected) writes a dispatch.
// sess.mu must be held.
func (sess *gwSession) sendLocked(t string, d json.RawMessage) error {
	sess.seq++
	seq := sess.seq
	p := gatewayPayload{Op: opDispatch, Data: d, Seq: &seq, Type: &t}
	sess.buffer = append(sess.buffer, p)
	if len(sess.buffer) > replayLimit {
		sess.buffer = sess.buffer[len(sess.buffer)-replayLimit:]
	}
	if sess.conn == nil {
		return nil
	}
	return sess.conn.write(p)
}

// detach forgets a finished connection; its session stays resumable.
func (g *gateway) detach(c *gwConn) {
	_ = c.ws.Close()
	g.mu.Lock()
	delete(g.conns, c)
	sess := c.session
	c.session = nil
	g.mu.Unlock()
	if sess == nil {
		return
	}
	sess.mu.Lock()
	if sess.conn == c {
		sess.conn = nil
		sess.disconnectedAt = g.s.now()
	}
	sess.mu.Unlock()
	g.s.publish(Event{Type: EventGatewayClosed, Detail: "session " + sess.id + " disconnected"})
}

// endSession invalidates the connection's session (client closed with
// 1000/1001, which ends a session on Discord).
func (g *gateway) endSession(c *gwConn, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.session != nil {
		delete(g.sessions, c.session.id)
		g.s.log.Debug("discord emulator: gateway session ended", "session", c.session.id, "reason", why)
	}
}

// dispatch sends an event to every session that should get it.
func (g *gateway) dispatch(t string, d []byte, guildID string, intent int) {
	now := g.s.now()
	g.mu.Lock()
	if g.missing != nil && (len(g.missing) == 0 || g.missing[t]) {
		g.missed++
		g.mu.Unlock()
		g.s.log.Debug("discord emulator: dispatch missed on purpose", "event", t)
		return
	}
	var targets []*gwSession
	for id, sess := range g.sessions {
		sess.mu.Lock()
		stale := sess.conn == nil && now.Sub(sess.disconnectedAt) > sessionTTL
		sess.mu.Unlock()
		if stale {
			delete(g.sessions, id)
			continue
		}
		if intent != 0 && sess.intents&intent == 0 {
			continue
		}
		if shardOf(guildID, sess.shard[1]) != sess.shard[0] {
			continue
		}
		targets = append(targets, sess)
	}
	g.mu.Unlock()
	for _, sess := range targets {
		sess.mu.Lock()
		if err := sess.sendLocked(t, d); err != nil {
			g.s.log.Debug("discord emulator: gateway write failed", "session", sess.id, "error", err)
		}
		sess.mu.Unlock()
	}
}

// shardOf is Discord's shard formula; DMs go to shard 0.
func shardOf(guildID string, count int) int {
	if guildID == "" || count <= 1 {
		return 0
	}
	id, err := strconv.ParseUint(guildID, 10, 64)
	if err != nil {
		return 0
	}
	return int((id >> 22) % uint64(count))
}

func (g *gateway) dispatchMessage(rec *Record) {
	g.dispatchMessageEvent("MESSAGE_CREATE", rec.Message, rec.GuildID)
}

// dispatchMessageUpdate sends MESSAGE_UPDATE: the message as it is now, with
// the extra fields of MESSAGE_CREATE, no nonce (Discord documents the nonce
// for MESSAGE_CREATE only) and tts false (as Discord documents it).
func (g *gateway) dispatchMessageUpdate(rec *Record) {
	msg := rec.Message
	msg.Nonce = nil
	msg.TTS = false
	g.dispatchMessageEvent("MESSAGE_UPDATE", msg, rec.GuildID)
}

func (g *gateway) dispatchMessageEvent(t string, msg Message, guildID string) {
	m := map[string]any{}
	_ = json.Unmarshal(mustJSON(msg), &m)
	intent := intentDirectMessages
	if guildID != "" {
		intent = intentGuildMessages
		m["guild_id"] = guildID
		m["member"] = map[string]any{"roles": []any{}, "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "flags": 0}
	} else {
		m["channel_type"] = channelTypeDM
	}
	g.dispatch(t, mustJSON(m), guildID, intent)
}

// dispatchMessageDelete sends MESSAGE_DELETE, whose payload is only the
// message id and channel id, plus guild_id for a guild message (Discord's
// documented fields). It needs DIRECT_MESSAGES in a DM and GUILD_MESSAGES
// in a guild, as MESSAGE_CREATE and MESSAGE_UPDATE do.
func (g *gateway) dispatchMessageDelete(rec *Record) {
	d := map[string]string{"id": rec.Message.ID, "channel_id": rec.Message.ChannelID}
	intent := intentDirectMessages
	if rec.GuildID != "" {
		intent = intentGuildMessages
		d["guild_id"] = rec.GuildID
	}
	g.dispatch("MESSAGE_DELETE", mustJSON(d), rec.GuildID, intent)
}

func (g *gateway) dispatchInteraction(payload []byte, guildID string) {
	g.dispatch("INTERACTION_CREATE", payload, guildID, 0)
}

func (g *gateway) connections() []*gwConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*gwConn, 0, len(g.conns))
	for c := range g.conns {
		out = append(out, c)
	}
	return out
}

func (g *gateway) closeAll() {
	for _, c := range g.connections() {
		c.closeWith(websocket.CloseGoingAway, "emulator shutting down")
	}
}

// DropGateway cuts every gateway connection without a close frame, as a
// network failure would. Sessions stay resumable. It returns the number of
// connections dropped.
func (s *Server) DropGateway() int {
	conns := s.gw.connections()
	for _, c := range conns {
		_ = c.ws.UnderlyingConn().Close()
	}
	return len(conns)
}

// ReconnectGateway sends op 7 RECONNECT on every identified connection; the
// client is expected to reconnect and RESUME.
func (s *Server) ReconnectGateway() int {
	n := 0
	for _, c := range s.gw.connections() {
		s.gw.mu.Lock()
		identified := c.session != nil
		s.gw.mu.Unlock()
		if identified && c.write(frame(opReconnect, nil)) == nil {
			n++
		}
	}
	return n
}

// InvalidateSessions sends op 9 INVALID_SESSION (d = resumable) on every
// identified connection. The client must IDENTIFY again on the same socket;
// when resumable is false the old session is forgotten.
func (s *Server) InvalidateSessions(resumable bool) int {
	n := 0
	for _, c := range s.gw.connections() {
		s.gw.mu.Lock()
		sess := c.session
		c.session = nil
		if sess != nil && !resumable {
			delete(s.gw.sessions, sess.id)
		}
		s.gw.mu.Unlock()
		if sess == nil {
			continue
		}
		sess.mu.Lock()
		if sess.conn == c {
			sess.conn = nil
			sess.disconnectedAt = s.now()
		}
		sess.mu.Unlock()
		if c.write(frame(opInvalidSession, resumable)) == nil {
			n++
		}
	}
	return n
}

// GatewaySessions lists the bot's gateway sessions.
func (s *Server) GatewaySessions() []GatewaySession {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	out := []GatewaySession{}
	for _, sess := range s.gw.sessions {
		sess.mu.Lock()
		out = append(out, GatewaySession{ID: sess.id, Intents: sess.intents, Shard: sess.shard, Connected: sess.conn != nil, Seq: sess.seq})
		sess.mu.Unlock()
	}
	return out
}

// MissDispatches makes the gateway lose dispatch events from now on, as
// happens to a bot that is offline longer than its session can be resumed:
// the named events (for example "MESSAGE_CREATE"; none names every event)
// are neither sent nor kept for RESUME, on every session. The messages
// themselves are stored as usual, so GET /channels/{id}/messages still
// returns them and a bot can backfill what it missed. Sessions stay
// connected; READY and RESUMED are never lost. Calling it again replaces the
// set; StopMissingDispatches ends it.
func (s *Server) MissDispatches(events ...string) {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	s.gw.missing = make(map[string]bool, len(events))
	for _, e := range events {
		s.gw.missing[e] = true
	}
}

// StopMissingDispatches delivers dispatch events again and returns how many
// were lost since MissDispatches.
func (s *Server) StopMissingDispatches() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	n := s.gw.missed
	s.gw.missing = nil
	s.gw.missed = 0
	return n
}
