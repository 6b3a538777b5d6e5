package devstack

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/internal/feedadmin"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/feedemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/sandbox/web"
)

// The sandbox's Flex TaskRouter workspace and workflow. They are fixed, like the account, so that
// roles that fetched the sandbox's settings keep working across a restart of the sandbox.
const (
	SandboxTwilioWorkspaceSID = "WS0000000000000000000000000000f1ec"
	SandboxTwilioWorkflowSID  = "WW0000000000000000000000000000f1ec"
)

// SandboxConfigPath is where a sandbox serves its SandboxConfig as JSON.
const SandboxConfigPath = "/sandbox/config.json"

// SandboxConfig is what roles need to use a sandbox instead of Discord and Twilio: the
// emulators' well-known credentials, the Discord emulator's interaction key, where the
// emulators send interactions and webhooks, and the #announcements sources of the sample blog.
// A role started with FLEXCORD_SANDBOX_URL reads it from SandboxConfigPath. None of it is
// secret: it opens only the emulators.
type SandboxConfig struct {
	// Discord is the emulated application, Twilio the emulated account.
	Discord SandboxDiscord `json:"discord"`
	Twilio  SandboxTwilio  `json:"twilio"`
	// IngressURL is where the emulators send Discord interactions and Twilio webhooks; the
	// webhooks are signed for it, so it is the roles' FLEXCORD_PUBLIC_URL.
	IngressURL string `json:"ingress_url"`
	// Feeds are #announcements sources that read the sandbox's sample blog.
	Feeds []feedadmin.Source `json:"feeds"`
}

// SandboxDiscord is the Discord emulator's application.
type SandboxDiscord struct {
	// Token is the bot token (DISCORD_TOKEN), ApplicationID the application id.
	Token         string `json:"token"`
	ApplicationID string `json:"application_id"`
	// PublicKey verifies the emulator's signed interactions (hex).
	PublicKey string `json:"public_key"`
}

// SandboxTwilio is the Twilio emulator's account and Flex workspace.
type SandboxTwilio struct {
	// AccountSID and AuthToken authenticate to the emulator and sign its webhooks;
	// WorkspaceSID and WorkflowSID are its Flex TaskRouter workspace and workflow.
	AccountSID   string `json:"account_sid"`
	AuthToken    string `json:"auth_token"`
	WorkspaceSID string `json:"workspace_sid"`
	WorkflowSID  string `json:"workflow_sid"`
}

// SandboxOptions configure a standalone sandbox. Zero values suit tests.
type SandboxOptions struct {
	// Addr is where the sandbox listens (default 127.0.0.1:0, a free port).
	Addr string
	// PublicURL is the base URL roles reach the sandbox at. The Discord emulator hands out its
	// gateway URL from it, and the sample feed's items link to it. Default: the listening
	// address (127.0.0.1 for an unspecified host).
	PublicURL string
	// IngressURL is where the emulators send interactions and webhooks (default
	// http://127.0.0.1:8080).
	IngressURL string
	// DiscordKey signs the Discord emulator's interactions; nil generates a key for this run.
	DiscordKey ed25519.PrivateKey
	// TemporalUIURL and Namespace are where the page links conversations and cases to (empty
	// TemporalUIURL hides the links).
	TemporalUIURL, Namespace string
	// Log receives the emulators' logs; nil discards them.
	Log *slog.Logger
}

// Sandbox is a running standalone sandbox (`flexcord sandbox`): the Discord and Twilio emulators,
// the sample blog and the sandbox page on one address, without Temporal or any role. Roles
// reach it through FLEXCORD_SANDBOX_URL:
//
//   - /api/…, /gateway and /attachments/…: the Discord emulator (REST, gateway websocket, CDN);
//   - any request whose Host is a *.twilio.com product host: the Twilio emulator;
//   - /_emu/discord/, /_emu/twilio/, /_emu/feeds/: the emulators' control APIs and the sample blog;
//   - /sandbox: the page; SandboxConfigPath: the settings roles fetch; /healthz.
type Sandbox struct {
	// URL is the sandbox's public base URL (SandboxOptions.PublicURL).
	URL string
	// Addr is the address it listens on.
	Addr string
	// Discord and Twilio are the emulators, Feeds the sample blog; tests act on them directly.
	Discord *discordemu.Server
	Twilio  *twilioemu.Server
	Feeds   *feedemu.Server

	cfg     SandboxConfig
	handler http.Handler
	srv     *http.Server
	done    chan struct{}
}

// StartSandbox starts a sandbox; it serves until Close.
func StartSandbox(ctx context.Context, opts SandboxOptions) (sb *Sandbox, err error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := orDefault(opts.Addr, "127.0.0.1:0")
	ingressURL := strings.TrimRight(orDefault(opts.IngressURL, "http://127.0.0.1:8080"), "/")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &devserver.PortInUseError{What: "sandbox", Addr: addr, Err: err}
	}
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()
	s := &Sandbox{Addr: ln.Addr().String(), done: make(chan struct{})}
	s.URL = strings.TrimRight(opts.PublicURL, "/")
	if s.URL == "" {
		s.URL = "http://" + localHostPort(ln.Addr())
	}

	if s.Discord, err = newDiscordEmulator(ingressURL, opts.DiscordKey, s.URL, log); err != nil {
		return nil, fmt.Errorf("discord emulator: %w", err)
	}
	if s.Twilio, err = newTwilioEmulator(ingressURL, log); err != nil {
		_ = s.Discord.Close()
		return nil, fmt.Errorf("twilio emulator: %w", err)
	}
	defer func() {
		if err != nil {
			_ = s.Twilio.Close()
			_ = s.Discord.Close()
		}
	}()
	s.Feeds = feedemu.New(feedemu.Options{})
	s.cfg = SandboxConfig{
		Discord: SandboxDiscord{Token: s.Discord.Token(), ApplicationID: s.Discord.ApplicationID(),
			PublicKey: hex.EncodeToString(s.Discord.PublicKey())},
		Twilio: SandboxTwilio{AccountSID: SandboxTwilioAccountSID, AuthToken: SandboxTwilioAuthToken,
			WorkspaceSID: SandboxTwilioWorkspaceSID, WorkflowSID: SandboxTwilioWorkflowSID},
		IngressURL: ingressURL,
		Feeds: []feedadmin.Source{{
			Name: SandboxFeedName, URL: s.URL + feedemu.DefaultPrefix + "/" + feedemu.SampleFeed + ".xml",
			Channel: SandboxAnnouncementsID, Every: feedadmin.Duration(time.Minute),
		}},
	}

	mux := http.NewServeMux()
	dh := s.Discord.Handler()
	for _, p := range []string{"/api/", "/gateway", "/gateway/", "/attachments/", "/_emu/discord/"} {
		mux.Handle(p, dh)
	}
	mux.Handle(twilioemu.ControlPrefix, s.Twilio)
	mux.Handle(feedemu.DefaultPrefix+"/", s.Feeds)
	page := web.Handler(web.Config{
		TemporalUIURL: opts.TemporalUIURL, Namespace: opts.Namespace, DiscordGuildID: SandboxGuildID,
		DiscordChannelID: SandboxGeneralChannel, BugChannelID: SandboxBugChannel,
		FeatureChannelID: SandboxFeatureChannel, MemberID: SandboxMembers[0].ID,
		AnnouncementsChannelID: SandboxAnnouncementsID,
		// No "Fetch now": the sandbox has no Temporal client; the workers' schedule fetches the
		// sample blog every minute.
		SampleFeedURL: feedemu.DefaultPrefix + "/" + feedemu.SampleFeed,
	})
	mux.Handle(web.Path, page)
	mux.Handle(web.Path+"/", page)
	mux.HandleFunc("GET "+SandboxConfigPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(s.cfg)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, web.Path, http.StatusFound)
	})
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsTwilioHost(r.Host) {
			s.Twilio.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})

	// The emulated application has its slash commands, as `flexcord discord register-commands`
	// gives a real one; the sandbox page runs them.
	session, err := discordsession.New(s.cfg.Discord.Token, handlerTransport{s.handler})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := session.ApplicationCommandBulkOverwrite(s.cfg.Discord.ApplicationID, "", ingress.CommandDefinitions(), discordgo.WithContext(rctx)); err != nil {
		return nil, fmt.Errorf("register slash commands with the Discord emulator: %w", err)
	}

	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("sandbox stopped serving", "error", err)
		}
	}()
	return s, nil
}

// Config returns the settings the sandbox serves at SandboxConfigPath.
func (s *Sandbox) Config() SandboxConfig { return s.cfg }

// Handler returns the sandbox's HTTP handler.
func (s *Sandbox) Handler() http.Handler { return s.handler }

// Close stops serving, closing gateway connections and event streams, then the emulators.
func (s *Sandbox) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// The emulators first: they end their websockets and event streams, which Shutdown would
	// otherwise wait for.
	errs := []error{s.Discord.Close(), s.Twilio.Close()}
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return errors.Join(errs...)
}

// IsTwilioHost reports whether a Host header names a Twilio product host (conversations,
// flex-api, taskrouter … .twilio.com, with or without a port).
func IsTwilioHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.HasSuffix(strings.ToLower(host), ".twilio.com")
}

// handlerTransport answers requests from a handler in the same process, without a network.
type handlerTransport struct{ h http.Handler }

// RoundTrip implements http.RoundTripper.
func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// localHostPort is a listener's address as a client on this machine dials it.
func localHostPort(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
	}
	return a.String()
}

// newDiscordEmulator is the sandbox's Discord: its guild with #general, #bug-report,
// #feature-request and #announcements, and its members. Interactions are posted, signed, to
// ingressURL + /discord/interactions. baseURL is where the emulator is served when it is
// mounted rather than started.
func newDiscordEmulator(ingressURL string, key ed25519.PrivateKey, baseURL string, log *slog.Logger) (*discordemu.Server, error) {
	return discordemu.New(discordemu.Options{
		InteractionsURL: strings.TrimRight(ingressURL, "/") + "/discord/interactions",
		BaseURL:         baseURL,
		Guilds: []discordemu.Guild{{ID: SandboxGuildID, Name: "Sandbox", Locale: "en-US",
			Channels: []string{SandboxGeneralChannel, SandboxBugChannel, SandboxFeatureChannel, SandboxAnnouncementsID},
			ChannelInfo: []discordemu.Channel{
				discordemu.TextChannel(SandboxGeneralChannel, "general"),
				discordemu.TextChannel(SandboxBugChannel, "bug-report"),
				discordemu.TextChannel(SandboxFeatureChannel, "feature-request"),
				discordemu.AnnouncementChannel(SandboxAnnouncementsID, "announcements"),
			}}},
		Members:    SandboxMembers,
		PrivateKey: key,
		Logger:     log.With("component", "discord-emulator"),
	})
}

// newTwilioEmulator is the sandbox's Twilio: its account and Flex workspace, whose TaskRouter
// events go, signed, to ingressURL + /twilio/taskrouter.
func newTwilioEmulator(ingressURL string, log *slog.Logger) (*twilioemu.Server, error) {
	return twilioemu.New(twilioemu.Options{
		AccountSID: SandboxTwilioAccountSID, AuthToken: SandboxTwilioAuthToken,
		WorkspaceSID: SandboxTwilioWorkspaceSID, WorkflowSID: SandboxTwilioWorkflowSID,
		EventCallbackURL: strings.TrimRight(ingressURL, "/") + "/twilio/taskrouter",
		EventsFilter:     "reservation.accepted,task.wrapup,task.completed,task.canceled,workflow.timeout",
		Logger:           log.With("component", "twilio-emulator"),
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
