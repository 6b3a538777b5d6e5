package discordemu

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flexcord/flexcord/sandbox/oapi"
)

// Defaults used when Options leaves a field empty.
const (
	DefaultToken         = "sandbox-bot-token"
	DefaultApplicationID = "1100000000000000001"
	DefaultBotUserID     = "1100000000000000002"
	DefaultBotUsername   = "flexcord"
	DefaultGuildID       = "1100000000000000010"
	DefaultChannelID     = "1100000000000000011"
)

// Options configure a Server. The zero value gives a working emulator with
// the default ids and token, a fresh Ed25519 key, gateway interactions and
// no contract validation.
type Options struct {
	// Token is the bot token (without the "Bot " prefix).
	Token string
	// ApplicationID and the bot user.
	ApplicationID string
	BotUserID     string
	BotUsername   string
	// ApplicationFlags is READY's application.flags. Set
	// 1<<18 (GATEWAY_MESSAGE_CONTENT) to allow the MESSAGE_CONTENT intent.
	ApplicationFlags int
	// PrivilegedIntents are the privileged gateway intents switched on "in
	// the Developer Portal" (bits of 1<<1, 1<<8, 1<<15). IDENTIFY asking for
	// others closes the gateway with 4014.
	PrivilegedIntents int

	// PrivateKey signs HTTP interactions. Nil generates a key; see PublicKey.
	PrivateKey ed25519.PrivateKey
	// InteractionsURL, when set, makes the emulator POST signed interactions
	// there instead of dispatching INTERACTION_CREATE on the gateway.
	InteractionsURL string
	// HTTPClient posts HTTP interactions. Nil uses a client with a 10 s
	// timeout.
	HTTPClient *http.Client

	// Guilds the bot and every member are in. Nil gives one guild
	// (DefaultGuildID) with one text channel (DefaultChannelID). See Guild
	// for declaring announcement channels.
	Guilds []Guild
	// Members known from the start. More can be added with PutMember.
	Members []Member

	// HeartbeatInterval sent in HELLO. Zero means 41.25 s.
	HeartbeatInterval time.Duration
	// AckDeadline is the time an interaction may go unacknowledged. Zero
	// means 3 s, as on Discord.
	AckDeadline time.Duration
	// TokenLifetime is how long interaction tokens accept follow-ups. Zero
	// means 15 minutes.
	TokenLifetime time.Duration
	// NonceWindow is how long enforce_nonce remembers a nonce. Zero means
	// 5 minutes.
	NonceWindow time.Duration
	// MaxRequestSize is the largest REST request accepted (files
	// included); larger ones answer 413 with code 40005. Zero means
	// DefaultMaxRequestSize (25 MiB).
	MaxRequestSize int64
	// MaxFileSize is the largest file a message may carry; larger ones
	// answer 413 with code 40005. Zero means DefaultMaxFileSize (10 MiB).
	MaxFileSize int64
	// AttachmentURLLifetime is how long the signed CDN URLs of attachments
	// stay valid (the ex parameter); the emulator's CDN answers 404 after.
	// Zero means 24 hours.
	AttachmentURLLifetime time.Duration
	// CDNURL is the base of attachment url and proxy_url. Empty means
	// https://cdn.discordapp.com and https://media.discordapp.net, which
	// Transport sends to the emulator; set it to the emulator's own URL for
	// clients that cannot use Transport.
	CDNURL string

	// RateLimit is the request budget per bucket and window advertised in
	// X-RateLimit-* headers and enforced with 429s. Zero means 50 per second.
	RateLimit       int
	RateLimitWindow time.Duration

	// Spec enables contract validation of every REST request and response.
	// Load it once with LoadSpec and share it. SpecPath is an alternative
	// that calls LoadSpec itself.
	Spec     *oapi.Spec
	SpecPath string

	// BaseURL is the emulator's own address (for example
	// "http://127.0.0.1:8090") when the Handler is served by someone else;
	// Start sets it. It determines the gateway URL.
	BaseURL string

	// Clock returns the current time. Nil means time.Now. Tests use it to
	// pass deadlines without sleeping.
	Clock func() time.Time
	// Logger receives debug and warning logs. Nil discards them.
	Logger *slog.Logger
}

// Server is a local Discord: REST API, gateway websocket, signed HTTP
// interactions, and a control API that acts as members. Create it with New,
// then either Start it or serve Handler yourself. All methods are safe for
// concurrent use.
type Server struct {
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	priv   ed25519.PrivateKey
	spec   *oapi.Spec
	ids    snowflakes
	bot    User
	client *http.Client

	handler http.Handler

	mu           sync.Mutex
	baseURL      string
	listener     net.Listener
	httpServer   *http.Server
	members      map[string]*Member
	guilds       []Guild
	channels     map[string]*Channel
	dmByUser     map[string]string
	records      []*Record
	recordByID   map[string]*Record
	recordSeq    int64
	nonces       map[string]nonceEntry
	interactions map[string]*interaction
	byToken      map[string]*interaction
	commands     map[string][]Command // "" = global, else guild id
	faults       []*faultState
	buckets      map[string]*bucket
	violations   []string
	subs         map[int]chan Event
	subSeq       int
	eventSeq     int64
	closed       bool
	files        map[string]*storedFile // attachment id → content
	cdnKey       []byte                 // signs attachment URLs

	gw gateway
}

type nonceEntry struct {
	id string
	at time.Time
}

// New creates a Server. It fails if the spec cannot be loaded or a guild
// declares a channel it cannot model (see Guild).
func New(opts Options) (*Server, error) {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.ApplicationID == "" {
		opts.ApplicationID = DefaultApplicationID
	}
	if opts.BotUserID == "" {
		opts.BotUserID = DefaultBotUserID
	}
	if opts.BotUsername == "" {
		opts.BotUsername = DefaultBotUsername
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 41250 * time.Millisecond
	}
	if opts.AckDeadline <= 0 {
		opts.AckDeadline = 3 * time.Second
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = 15 * time.Minute
	}
	if opts.NonceWindow <= 0 {
		opts.NonceWindow = 5 * time.Minute
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 50
	}
	if opts.MaxRequestSize <= 0 {
		opts.MaxRequestSize = DefaultMaxRequestSize
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if opts.AttachmentURLLifetime <= 0 {
		opts.AttachmentURLLifetime = DefaultAttachmentURLLifetime
	}
	if opts.RateLimitWindow <= 0 {
		opts.RateLimitWindow = time.Second
	}
	if opts.Guilds == nil {
		opts.Guilds = []Guild{{ID: DefaultGuildID, Name: "Sandbox", Locale: "en-US", Channels: []string{DefaultChannelID}}}
	}
	s := &Server{
		opts:         opts,
		now:          opts.Clock,
		log:          opts.Logger,
		priv:         opts.PrivateKey,
		spec:         opts.Spec,
		client:       opts.HTTPClient,
		baseURL:      strings.TrimSuffix(opts.BaseURL, "/"),
		members:      make(map[string]*Member),
		channels:     make(map[string]*Channel),
		dmByUser:     make(map[string]string),
		recordByID:   make(map[string]*Record),
		nonces:       make(map[string]nonceEntry),
		interactions: make(map[string]*interaction),
		byToken:      make(map[string]*interaction),
		commands:     make(map[string][]Command),
		buckets:      make(map[string]*bucket),
		subs:         make(map[int]chan Event),
		files:        make(map[string]*storedFile),
		cdnKey:       []byte(randomHex(32)),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.ids.now = s.now
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.priv == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate interaction signing key: %w", err)
		}
		s.priv = priv
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.spec == nil && opts.SpecPath != "" {
		spec, err := LoadSpec(opts.SpecPath)
		if err != nil {
			return nil, err
		}
		s.spec = spec
	}
	s.bot = newUser(opts.BotUserID, opts.BotUsername, "", true)
	for _, g := range opts.Guilds {
		g, err := normalizeGuild(g)
		if err != nil {
			return nil, err
		}
		for _, ch := range g.ChannelInfo {
			if _, taken := s.channels[ch.ID]; taken {
				return nil, fmt.Errorf("discord emulator: channel %s is declared in more than one guild", ch.ID)
			}
			c := ch
			s.channels[c.ID] = &c
		}
		s.guilds = append(s.guilds, g)
	}
	for _, m := range opts.Members {
		s.PutMember(m)
	}
	s.gw.init(s)
	s.handler = s.routes()
	return s, nil
}

// Start listens on addr (for example "127.0.0.1:0" or ":8090") and serves
// the emulator in the background until Close.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("discord emulator listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.listener = ln
	s.httpServer = srv
	if s.baseURL == "" {
		s.baseURL = "http://" + hostPort(ln.Addr())
	}
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("discord emulator stopped serving", "error", err)
		}
	}()
	s.log.Info("discord emulator listening", "url", s.URL())
	return nil
}

func hostPort(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return fmt.Sprintf("127.0.0.1:%d", ta.Port)
	}
	return a.String()
}

// Close stops the listener (if started), closes every gateway connection
// and ends all event subscriptions.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.httpServer
	for id, ch := range s.subs {
		close(ch)
		delete(s.subs, id)
	}
	s.mu.Unlock()
	s.gw.closeAll()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return fmt.Errorf("shut down discord emulator: %w", err)
		}
	}
	return nil
}

// Handler returns the emulator's HTTP handler: REST under /api/v9 and
// /api/v10, the gateway websocket under /gateway, the attachment CDN under
// /attachments/, and the control API under /_emu/discord/.
func (s *Server) Handler() http.Handler { return s.handler }

// URL returns the emulator's base URL, for example "http://127.0.0.1:40123".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// GatewayURL returns the websocket URL that GET /gateway hands out.
func (s *Server) GatewayURL() string {
	return "ws" + strings.TrimPrefix(s.URL(), "http") + gatewayPath
}

// PublicKey returns the key that verifies signed HTTP interactions (what the
// Developer Portal calls the application's public key).
func (s *Server) PublicKey() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Token returns the bot token (without "Bot ").
func (s *Server) Token() string { return s.opts.Token }

// ApplicationID returns the application id.
func (s *Server) ApplicationID() string { return s.opts.ApplicationID }

// BotUser returns the bot's user object.
func (s *Server) BotUser() User { return s.bot }

// Transport returns an http.RoundTripper that sends requests for
// discord.com (and discordapp.com, gateway.discord.gg, and the attachment
// hosts cdn.discordapp.com and media.discordapp.net) to the emulator,
// keeping the path, and everything else to http.DefaultTransport. Set it as
// discordgo's Session.Client.Transport.
func (s *Server) Transport() http.RoundTripper {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = nil
	return &rewriteTransport{s: s, base: base}
}

type rewriteTransport struct {
	s    *Server
	base http.RoundTripper
}

var discordHosts = map[string]bool{
	"discord.com": true, "www.discord.com": true, "discordapp.com": true,
	"gateway.discord.gg": true, "canary.discord.com": true, "ptb.discord.com": true,
	"cdn.discordapp.com": true, "media.discordapp.net": true,
}

// RoundTrip implements http.RoundTripper.
func (t *rewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !discordHosts[strings.ToLower(r.URL.Hostname())] {
		return t.base.RoundTrip(r)
	}
	base := t.s.URL()
	scheme, host, ok := strings.Cut(base, "://")
	if !ok {
		return nil, fmt.Errorf("discord emulator has no base URL (not started and Options.BaseURL empty)")
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme = scheme
	r2.URL.Host = host
	r2.Host = host
	return t.base.RoundTrip(r2)
}
