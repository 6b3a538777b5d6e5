// Package devstack assembles the whole of flexcord in one process: an embedded Temporal server
// (and UI), the worker, ingress, and — for each provider without credentials — a local emulator
// that speaks its real protocol. `flexcord dev` runs it, and so do the end-to-end and browser
// tests, so what a newcomer tries is what the tests prove.
//
// The emulators are reached only the way the real services are: discordgo and twilio-go talk to
// them through an http.RoundTripper (and the gateway URL the Discord emulator hands out), Discord
// interactions come back signed to /discord/interactions, and Twilio webhooks come back signed to
// /twilio/conversations and /twilio/taskrouter.
package devstack

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/mux"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/internal/feedadmin"
	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/temporalclient"
	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/kb"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/feedemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/sandbox/web"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

// DiscordSetup connects to a real Discord application. Nil in Options means the emulator.
type DiscordSetup struct {
	Token, ApplicationID string
	// PublicKey enables HTTP interactions at /discord/interactions; without it interactions
	// arrive over the gateway.
	PublicKey             ed25519.PublicKey
	ShardID, ShardCount   int
	transport             http.RoundTripper
	registerCommandsFirst bool
}

// TwilioSetup connects to a real Twilio Flex account. Nil in Options means the emulator.
type TwilioSetup struct {
	Credentials               twilioclient.Credentials
	WorkspaceSID, WorkflowSID string
	// PublicURL is where Twilio reaches ingress (FLEXCORD_PUBLIC_URL); webhooks are signed for it.
	PublicURL string
	transport http.RoundTripper
}

// Options configure a stack. Zero values suit tests: everything in memory on free ports.
type Options struct {
	// DataDir keeps the Temporal database across restarts; empty means in memory.
	DataDir string
	// HTTPAddr is where ingress and the sandbox page listen (default 127.0.0.1:0).
	HTTPAddr string
	// TemporalPort and UIPort (0: free ports); UI serves the Temporal UI.
	TemporalPort, UIPort int
	UI                   bool
	Log                  *slog.Logger
	Telemetry            *telemetry.Telemetry
	Conversation         workflows.ConversationOptions
	MaxInFlight          int
	// MaxBacklogAge and MaxSignalRate are ingress's admission bounds (ingress.Config; zero: off).
	MaxBacklogAge time.Duration
	MaxSignalRate float64
	// KB is the knowledge base; nil means the built-in sample.
	KB *kb.Store
	// Discord and Twilio select real services; nil runs the emulator instead.
	Discord *DiscordSetup
	Twilio  *TwilioSetup
	// ServerLogLevel is the embedded Temporal server's log level (default warn).
	ServerLogLevel string
	// ServerLog receives the embedded Temporal server's logs (at ServerLogLevel and above); nil
	// writes them as JSON to standard error. `flexcord dev` passes its own logger, so that
	// --log-format applies to them too.
	ServerLog *slog.Logger
	// DiscordEmulatorAddr and TwilioEmulatorAddr are where the emulators listen (default
	// 127.0.0.1:0, a free port); Stack.Discord.URL() and Stack.Twilio.URL() tell where they are.
	DiscordEmulatorAddr, TwilioEmulatorAddr string
	// DiscordEmulatorKey signs the Discord emulator's interactions (generated when nil); tests
	// set it to sign requests of their own.
	DiscordEmulatorKey ed25519.PrivateKey
	// SampleFeed adds the sample feed's source (Stack.Feeds, polled every minute) to
	// #announcements once the stack runs; `flexcord dev` sets it.
	SampleFeed bool
	// Limits are the worker's provider rates (zero values: the production defaults, which hold
	// all of flexcord's Discord calls under Discord's bot-wide limit). The emulators have no
	// such limit; the relay benchmark lifts them to measure flexcord itself.
	Limits worker.Limits
	// Feeds are sources to apply once the stack runs (FLEXCORD_FEEDS_FILE).
	Feeds []workflows.FeedConfig
	// FeedSecrets are push secrets by source name; sources not in it are read from the
	// environment (FLEXCORD_FEED_SECRET_<NAME>).
	FeedSecrets map[string]string
	// IngressMiddleware, when set, wraps every route ingress serves (the provider routes and
	// the mounted emulators alike). Tests use it to make ingress answer as it does when it is
	// overloaded or down, and watch the providers send again.
	IngressMiddleware func(http.Handler) http.Handler
	// PayloadCodec encrypts every payload the stack writes to Temporal: the worker, ingress and
	// the gateway share the stack's client, which has it. Nil: payloads are written plain.
	PayloadCodec *payloadcodec.Codec
	// CodecToken, with PayloadCodec, serves the codec endpoint at ingress's /codec (the bearer
	// token it wants) and has the Temporal UI decode payloads through it.
	CodecToken string
	// CodecCORSOrigins are browser origins, besides the UI's, allowed to call ingress's /codec.
	CodecCORSOrigins []string
	// Blobs keeps transcripts and attachments; nil means a directory "blobs" in DataDir, or
	// memory when DataDir is empty.
	Blobs blobstore.Store
}

// Stack is a running flexcord.
type Stack struct {
	// URL is ingress's base URL; the sandbox page is URL + "/sandbox".
	URL          string
	TemporalAddr string
	UIURL        string
	Namespace    string
	// CodecURL is the codec endpoint ingress serves (URL + "/codec"), empty when it is off.
	CodecURL string
	// Client is the stack's Temporal client.
	Client client.Client
	// Discord and Twilio are the emulators, nil when the real service is used.
	Discord *discordemu.Server
	Twilio  *twilioemu.Server
	// Feeds is the sample feed server (mounted at feedemu.DefaultPrefix), nil with real services.
	Feeds *feedemu.Server
	// Blobs is the blob store of transcripts and attachments.
	Blobs blobstore.Store
	// Ingress is the stack's ingress server.
	Ingress *ingress.Server

	log     *slog.Logger
	acts    worker.Activities
	smu     sync.Mutex // guards srv across RestartTemporal
	srv     *devserver.Server
	srvOpts devserver.Options
	wmu     sync.Mutex
	worker  sdkworker.Worker
	cancel  context.CancelFunc
	done    chan struct{}
	errMu   sync.Mutex
	err     error
	closers []func() error
}

// Sandbox member ids and channels the emulator starts with.
const (
	SandboxGuildID         = discordemu.DefaultGuildID
	SandboxGeneralChannel  = discordemu.DefaultChannelID
	SandboxBugChannel      = "1100000000000000012"
	SandboxFeatureChannel  = "1100000000000000013"
	SandboxAnnouncementsID = "1100000000000000014"
	// SandboxTwilioAccountSID is the Twilio emulator's account; with SandboxTwilioAuthToken it
	// authenticates calls to the emulator's REST API.
	SandboxTwilioAccountSID = "AC0000000000000000000000000000f1ec"
	// SandboxTwilioAuthToken is the Twilio emulator's auth token; its webhooks are signed with it.
	SandboxTwilioAuthToken = "sandboxauthtoken0000000000000000"
)

// SandboxMembers are the community members the Discord emulator knows at start.
var SandboxMembers = []discordemu.Member{
	{ID: "1200000000000000001", Username: "mika", GlobalName: "Mika", Locale: "en-US"},
	{ID: "1200000000000000002", Username: "jiwoo", GlobalName: "지우", Locale: "ko"},
	{ID: "1200000000000000003", Username: "haruto", GlobalName: "Haruto", Locale: "ja"},
	{ID: "1200000000000000004", Username: "ana", GlobalName: "Ana", Locale: "pt-BR"},
}

// Start runs a stack until Stop. It returns once every part answers.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = "127.0.0.1:0"
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stack{log: log, cancel: cancel, done: make(chan struct{})}
	defer func() {
		if err != nil {
			cancel()
			s.closeAll()
		}
	}()

	ln, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return nil, &devserver.PortInUseError{What: "ingress", Addr: opts.HTTPAddr, Err: err}
	}
	s.URL = "http://" + ln.Addr().String()
	s.closers = append(s.closers, func() error { _ = ln.Close(); return nil })

	s.srvOpts = devserver.Options{
		DataDir: opts.DataDir, FrontendPort: opts.TemporalPort, UI: opts.UI, UIPort: opts.UIPort,
		SearchAttributes: worker.SearchAttributeTypes(), LogLevel: opts.ServerLogLevel, Logger: opts.ServerLog,
	}
	if opts.PayloadCodec != nil && opts.CodecToken != "" {
		s.CodecURL = s.URL + "/codec"
		s.srvOpts.Codec = devserver.UICodec{Endpoint: s.CodecURL, Token: opts.CodecToken}
	}
	srv, err := devserver.Start(ctx, s.srvOpts)
	if err != nil {
		return nil, err
	}
	s.srv = srv
	s.closers = append(s.closers, func() error {
		s.smu.Lock()
		defer s.smu.Unlock()
		return s.srv.Stop()
	})
	s.TemporalAddr, s.UIURL, s.Namespace = srv.FrontendAddr, srv.UIURL, srv.Namespace

	c, _, err := temporalclient.Dial(temporalclient.Options{
		HostPort: srv.FrontendAddr, Namespace: srv.Namespace, IgnoreEnv: true, Logger: log, Telemetry: opts.Telemetry,
		NoCompression: true, PayloadCodec: opts.PayloadCodec,
	})
	if err != nil {
		return nil, err
	}
	s.Client = c
	s.closers = append(s.closers, func() error { c.Close(); return nil })
	if err := worker.RegisterSearchAttributes(ctx, c, srv.Namespace, log); err != nil {
		return nil, err
	}

	store := opts.KB
	if store == nil {
		if store, err = kb.NewStore(kb.SampleSource(), log); err != nil {
			return nil, fmt.Errorf("knowledge base: %w", err)
		}
		s.closers = append(s.closers, store.Close)
	}
	acts := worker.Activities{Knowledge: activities.NewKnowledge(store), Feeds: activities.NewFeeds(nil, log.With("component", "feeds")), Limits: opts.Limits}
	cfg := ingress.Config{Temporal: c, Log: log, Telemetry: opts.Telemetry, MaxInFlight: opts.MaxInFlight, Conversation: opts.Conversation,
		MaxBacklogAge: opts.MaxBacklogAge, MaxSignalRate: opts.MaxSignalRate, Namespace: srv.Namespace,
		Codec: ingress.CodecConfig{Codec: opts.PayloadCodec, Token: opts.CodecToken, AllowedOrigins: codecOrigins(srv.UIURL, opts.CodecCORSOrigins)}}
	if mw := opts.IngressMiddleware; mw != nil {
		cfg.Routes = append(cfg.Routes, func(_ *ingress.Server, r *mux.Router) { r.Use(mux.MiddlewareFunc(mw)) })
	}
	var loops []func(context.Context) error

	// Discord: the real application, or the emulator posting signed interactions to ingress.
	dset := opts.Discord
	if dset == nil {
		emu, err := newDiscordEmulator(s.URL, opts.DiscordEmulatorKey, "", log)
		if err != nil {
			return nil, fmt.Errorf("discord emulator: %w", err)
		}
		addr := orDefault(opts.DiscordEmulatorAddr, "127.0.0.1:0")
		if err := emu.Start(addr); err != nil {
			_ = emu.Close()
			return nil, &devserver.PortInUseError{What: "Discord emulator", Addr: addr, Err: err}
		}
		s.closers = append(s.closers, emu.Close)
		s.Discord = emu
		dset = &DiscordSetup{Token: emu.Token(), ApplicationID: emu.ApplicationID(), PublicKey: emu.PublicKey(),
			transport: emu.Transport(), registerCommandsFirst: true}
		cfg.Routes = append(cfg.Routes, mount("/_emu/discord/", emu.Handler()))
	}
	session, err := discordsession.New(dset.Token, dset.transport)
	if err != nil {
		return nil, fmt.Errorf("discord session: %w", err)
	}
	if dset.registerCommandsFirst {
		if _, err := session.ApplicationCommandBulkOverwrite(dset.ApplicationID, "", ingress.CommandDefinitions()); err != nil {
			return nil, fmt.Errorf("register slash commands with the Discord emulator: %w", err)
		}
	}
	acts.Discord = activities.NewDiscord(session, log.With("component", "discord"))
	dcfg := ingress.DiscordConfig{ApplicationID: dset.ApplicationID, PublicKey: dset.PublicKey, Session: session,
		ShardID: dset.ShardID, ShardCount: dset.ShardCount}
	if len(dset.PublicKey) > 0 {
		cfg.Routes = append(cfg.Routes, ingress.DiscordRoutes(dcfg))
	}

	// Twilio: the real account, or the emulator sending signed webhooks to ingress.
	tset := opts.Twilio
	if tset == nil {
		emu, err := newTwilioEmulator(s.URL, log)
		if err != nil {
			return nil, fmt.Errorf("twilio emulator: %w", err)
		}
		addr := orDefault(opts.TwilioEmulatorAddr, "127.0.0.1:0")
		if err := emu.Start(addr); err != nil {
			_ = emu.Close()
			return nil, &devserver.PortInUseError{What: "Twilio emulator", Addr: addr, Err: err}
		}
		s.closers = append(s.closers, emu.Close)
		s.Twilio = emu
		ws := emu.Workspace()
		tset = &TwilioSetup{
			Credentials:  twilioclient.Credentials{AccountSID: SandboxTwilioAccountSID, AuthToken: SandboxTwilioAuthToken},
			WorkspaceSID: ws.SID, WorkflowSID: ws.WorkflowSID, PublicURL: s.URL, transport: emu.Transport(),
		}
		cfg.Routes = append(cfg.Routes, mount("/_emu/twilio/", emu))
	}
	rc := twilioclient.New(tset.Credentials, tset.transport)
	acts.Flex = activities.NewFlex(rc, activities.FlexConfig{
		WorkspaceSID: tset.WorkspaceSID, WorkflowSID: tset.WorkflowSID,
		WebhookURL: strings.TrimRight(tset.PublicURL, "/") + "/twilio/conversations",
	}, log.With("component", "flex"))
	cfg.Routes = append(cfg.Routes, ingress.TwilioRoutes(ingress.TwilioConfig{AuthToken: tset.Credentials.AuthToken, PublicURL: tset.PublicURL}))

	// Transcripts and attachments.
	if s.Blobs = opts.Blobs; s.Blobs == nil {
		if s.Blobs, err = devBlobs(opts.DataDir); err != nil {
			return nil, err
		}
	}
	acts.Files = &activities.Files{Store: s.Blobs, CDN: session.Client, Media: rc.Media, MaxBytes: opts.Conversation.Attachments.MaxBytes}
	acts.Records = &activities.Records{Store: s.Blobs, Discord: acts.Discord}

	// #announcements: pushed items, and (when Discord is emulated) the sample feed.
	cfg.Routes = append(cfg.Routes, ingress.AnnouncementsRoutes(ingress.AnnouncementsConfig{Secret: func(source string) ([]byte, bool) {
		if v, ok := opts.FeedSecrets[source]; ok {
			return []byte(v), v != ""
		}
		return ingress.SecretFromEnv(source)
	}}))
	if s.Discord != nil {
		s.Feeds = feedemu.New(feedemu.Options{})
		cfg.Routes = append(cfg.Routes, mount(feedemu.DefaultPrefix+"/", s.Feeds),
			func(_ *ingress.Server, r *mux.Router) {
				r.HandleFunc("/_dev/feeds/{source}/run", s.runFeed).Methods(http.MethodPost)
			})
	}

	// The sandbox page, when both sides are emulated.
	if s.Discord != nil && s.Twilio != nil {
		cfg.Routes = append(cfg.Routes, mount("/sandbox", web.Handler(web.Config{
			TemporalUIURL: s.UIURL, Namespace: s.Namespace, DiscordGuildID: SandboxGuildID,
			DiscordChannelID: SandboxGeneralChannel, BugChannelID: SandboxBugChannel,
			FeatureChannelID: SandboxFeatureChannel, MemberID: SandboxMembers[0].ID,
			AnnouncementsChannelID: SandboxAnnouncementsID,
			SampleFeedURL:          s.URL + feedemu.DefaultPrefix + "/" + feedemu.SampleFeed,
			FeedRunURL:             s.URL + "/_dev/feeds/" + SandboxFeedName + "/run",
		})))
	}

	s.acts = acts
	if err := s.StartWorker(); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() error { s.StopWorker(); return nil })

	in := ingress.New(cfg)
	s.Ingress = in
	loops = append(loops, func(ctx context.Context) error { return in.Serve(ctx, ln) })
	// Direct messages reach a bot only over the gateway, whichever way interactions come; the
	// stack is ready once the gateway said READY, so no DM sent after Start is missed.
	gatewayReady := make(chan struct{})
	session.AddHandlerOnce(func(*discordgo.Session, *discordgo.Ready) { close(gatewayReady) })
	loops = append(loops, func(ctx context.Context) error { return ingress.RunDiscordGateway(ctx, in, dcfg) })
	s.run(runCtx, loops)
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	select {
	case <-gatewayReady:
	case <-s.done:
		return nil, fmt.Errorf("discord gateway: %w", s.Err())
	case <-time.After(30 * time.Second):
		return nil, errors.New("the Discord gateway did not connect within 30 s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	feeds := opts.Feeds
	if opts.SampleFeed && s.Feeds != nil {
		feeds = append([]workflows.FeedConfig{s.SampleFeedConfig()}, feeds...)
	}
	for _, cfg := range feeds {
		if _, err := feedadmin.Apply(ctx, s.Client, cfg); err != nil {
			return nil, fmt.Errorf("#announcements source %s: %w", cfg.Name, err)
		}
	}
	return s, nil
}

// SandboxFeedName is the source name of the sample feed.
const SandboxFeedName = "sample-blog"

// SampleFeedConfig is the source of the sample feed: posted in the sandbox's #announcements,
// fetched every minute.
func (s *Stack) SampleFeedConfig() workflows.FeedConfig {
	return workflows.FeedConfig{
		Name: SandboxFeedName, URL: s.URL + feedemu.DefaultPrefix + "/" + feedemu.SampleFeed + ".xml",
		ChannelID: SandboxAnnouncementsID, Every: time.Minute,
	}
}

// runFeed fetches a source now and answers what it did (the sandbox page's "Fetch now").
func (s *Stack) runFeed(w http.ResponseWriter, r *http.Request) {
	source := mux.Vars(r)["source"]
	w.Header().Set("Content-Type", "application/json")
	if !workflows.ValidFeedName(source) {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "no such source"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 90*time.Second)
	defer cancel()
	res, err := feedadmin.Run(ctx, s.Client, source, "sandbox page", time.Minute)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": err.Error(), "result": res})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"new_items": res.Posted, "result": res})
}

// codecOrigins are the origins allowed to call ingress's /codec from a browser: the UI's (as
// printed, and as localhost when it listens on 127.0.0.1) and extra.
func codecOrigins(uiURL string, extra []string) []string {
	var out []string
	if uiURL != "" {
		out = append(out, uiURL)
		if u, err := url.Parse(uiURL); err == nil && u.Hostname() == "127.0.0.1" {
			out = append(out, u.Scheme+"://localhost:"+u.Port())
		}
	}
	return append(out, extra...)
}

// mount serves h for every path under prefix.
func mount(prefix string, h http.Handler) func(*ingress.Server, *mux.Router) {
	return func(_ *ingress.Server, r *mux.Router) { r.PathPrefix(prefix).Handler(h) }
}

func (s *Stack) run(ctx context.Context, loops []func(context.Context) error) {
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx); err != nil && ctx.Err() == nil {
				s.errMu.Lock()
				if s.err == nil {
					s.err = err
				}
				s.errMu.Unlock()
				s.log.Error("flexcord component stopped", "error", err)
				s.cancel()
			}
		}()
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
}

// waitReady waits until ingress answers /readyz.
func (s *Stack) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("ingress did not become ready")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return s.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StartWorker starts the worker (Start does; tests stop and start it again).
func (s *Stack) StartWorker() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.worker != nil {
		return nil
	}
	w := worker.New(s.Client, s.acts, sdkworker.Options{})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	s.worker = w
	return nil
}

// RestartTemporal stops the embedded Temporal server and starts it again on the same ports and
// database, as a crash and restart of the cluster would; clients, the worker and ingress
// reconnect by themselves. It needs Options.DataDir (an in-memory database does not survive).
func (s *Stack) RestartTemporal(ctx context.Context) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.srvOpts.DataDir == "" {
		return errors.New("restart Temporal: the stack has no data directory")
	}
	if err := s.srv.Stop(); err != nil {
		return fmt.Errorf("stop Temporal: %w", err)
	}
	opts := s.srvOpts
	_, port, _ := net.SplitHostPort(s.srv.FrontendAddr)
	opts.FrontendPort, _ = strconv.Atoi(port)
	if s.srv.UIURL != "" {
		if u, err := url.Parse(s.srv.UIURL); err == nil {
			opts.UIPort, _ = strconv.Atoi(u.Port())
		}
	}
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("start Temporal again: %w", err)
	}
	s.srv = srv
	return nil
}

// StopWorker stops the worker; signals keep arriving and wait in Temporal until it starts again.
func (s *Stack) StopWorker() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.worker != nil {
		s.worker.Stop()
		s.worker = nil
	}
}

// Done is closed when the stack stopped, by Stop or because a component failed.
func (s *Stack) Done() <-chan struct{} { return s.done }

// Err is the error that stopped the stack, if a component failed.
func (s *Stack) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Stop stops ingress and the gateway, then the worker, the emulators and the server.
func (s *Stack) Stop() error {
	s.cancel()
	<-s.done
	return s.closeAll()
}

func (s *Stack) closeAll() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// devBlobs is the blob store of a stack: a directory in its data directory, or memory.
func devBlobs(dataDir string) (blobstore.Store, error) {
	if dataDir == "" {
		return blobstore.NewMemory(), nil
	}
	d, err := blobstore.NewDir(filepath.Join(dataDir, "blobs"))
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return d, nil
}
