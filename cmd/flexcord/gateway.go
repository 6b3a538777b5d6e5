package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/temporalclient"
)

func init() {
	register("gateway", gatewayCommand)
}

const gatewayIntro = `Usage: flexcord gateway [flags]

Holds the bot's Discord gateway connection for one shard (DISCORD_SHARD_ID of DISCORD_SHARD_COUNT)
and turns direct messages (and interactions, when no interactions endpoint URL is configured) into
Temporal signals, as ingress does. Run one process per shard. It starts and serves /healthz even
while Discord or Temporal cannot be reached, retrying with back-off; /readyz says what is missing.
`

func gatewayCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway", stderr)
	setIntro(fs, gatewayIntro)
	b := config.NewBinder(fs)
	var c common
	var sb sandboxSettings
	var httpAddr string
	c.bind(b)
	c.bindConversation(b)
	c.bindIngress(b)
	c.bindBacklog(b)
	b.String(&httpAddr, "http-addr", "FLEXCORD_HTTP_ADDR", ":8081", "address of the gateway's health and metrics server (/healthz, /readyz, /metrics)")
	p := &discordProvider{}
	p.bind(b)
	sb.bind(b)
	describeTemporal(b)
	describeTelemetry(b)
	if err := parse(fs, b, args); err != nil {
		return err
	}
	if err := sb.validate(); err != nil {
		return err
	}
	if !p.configured() && sb.url == "" {
		return errors.New("DISCORD_TOKEN is not set: the gateway connects with the bot token (or set FLEXCORD_SANDBOX_URL to use a sandbox)")
	}
	if err := p.validate(); err != nil {
		return err
	}
	if p.configured() && p.token == "" {
		return errors.New("DISCORD_TOKEN is not set: the gateway connects with the bot token")
	}
	// The client's payload keys; ingress.Server decodes with them what it reads outside the client.
	payloadCodec, err := payloadcodec.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	routeDiscordgoLogs(log)
	ln, err := listen(httpAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	tel, err := telemetry.Setup(ctx, "flexcord-gateway", Version())
	if err != nil {
		return err
	}
	defer shutdownWithin(tel.Shutdown, 5*time.Second)
	// A lazy client: the gateway starts, and answers /healthz, while Temporal is unreachable;
	// DMs that arrive meanwhile are retried until Temporal takes them.
	tc, co, err := temporalclient.Dial(temporalclient.Options{Logger: log, Telemetry: tel, Lazy: true, PayloadCodec: payloadCodec})
	if err != nil {
		return err
	}
	defer tc.Close()
	ready := &readiness{}
	ready.add("temporal", temporalCheck(tc))
	srv := newRoleServer(ready, tel)
	srv.setHandler(http.NotFoundHandler()) // health and metrics only
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- srv.serve(serveCtx, ln, log) }()
	defer func() {
		stopServing()
		<-served
	}()
	log.Info("gateway listening", "addr", ln.Addr().String(), "version", Version(), "shard_id", p.shardID, "shard_count", p.shardCount)

	if needsSandbox(sb.url, []provider{p}, log) {
		state := newComponentState("not fetched yet")
		ready.add("sandbox", state.check)
		cfg, err := fetchSandboxConfig(ctx, sb.url, state, log)
		if err != nil {
			return nil // stopped while waiting
		}
		if err := applySandbox(cfg, sb.url, []provider{p}, log); err != nil {
			return err
		}
		state.set(nil)
	}
	session, err := p.discordSession()
	if err != nil {
		return err
	}
	state := watchGateway(session)
	ready.add("discord gateway", state.check)
	in := ingress.New(ingress.Config{
		Temporal: tc, Namespace: co.Namespace, Log: log, Telemetry: tel, Conversation: c.conversation(),
		MaxInFlight: c.maxInFlight, MaxBacklogAge: c.maxBacklogAge, MaxSignalRate: float64(c.maxSignalRate),
		Codec: ingress.CodecConfig{Codec: payloadCodec},
	})
	dcfg := ingress.DiscordConfig{ApplicationID: p.appID, Session: session, ShardID: p.shardID, ShardCount: p.shardCount}
	runGateway(ctx, in, dcfg, state, log)
	log.Info("gateway stopped")
	return nil
}

// gatewayState tracks whether a discordgo session is connected: since its last READY or
// RESUMED, and no disconnect after it. The last error of an attempt to connect is kept for
// /readyz.
type gatewayState struct {
	mu        sync.Mutex
	connected bool
	lastErr   string
}

// watchGateway follows s's connection.
func watchGateway(s *discordgo.Session) *gatewayState {
	st := &gatewayState{}
	up := func() {
		st.mu.Lock()
		st.connected, st.lastErr = true, ""
		st.mu.Unlock()
	}
	s.AddHandler(func(*discordgo.Session, *discordgo.Ready) { up() })
	s.AddHandler(func(*discordgo.Session, *discordgo.Resumed) { up() })
	s.AddHandler(func(*discordgo.Session, *discordgo.Disconnect) {
		st.mu.Lock()
		st.connected = false
		st.mu.Unlock()
	})
	return st
}

// failed records why an attempt to connect failed.
func (st *gatewayState) failed(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.connected = false
	st.lastErr = strings.TrimPrefix(err.Error(), "discord gateway: ")
}

// check is a readiness check.
func (st *gatewayState) check(context.Context) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.connected:
		return nil
	case st.lastErr != "":
		return fmt.Errorf("not connected (%s)", st.lastErr)
	default:
		return errors.New("not connected")
	}
}

// runGateway keeps the gateway connection up until ctx is done. Opening it is retried with
// back-off while Discord cannot be reached; once open, discordgo reconnects (and resumes) by
// itself, and the gateway backfills the DMs a gap may have hidden.
func runGateway(ctx context.Context, in *ingress.Server, dcfg ingress.DiscordConfig, st *gatewayState, log *slog.Logger) {
	var b backoff
	for {
		err := ingress.RunDiscordGateway(ctx, in, dcfg)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the connection ended")
		}
		st.failed(err)
		d := b.wait()
		log.Warn("discord gateway not connected; retrying", "retry_in", d.String(), "error", err)
		if !sleep(ctx, d) {
			return
		}
	}
}

var discordgoLogOnce sync.Once

// routeDiscordgoLogs sends discordgo's own log lines (warnings and errors: sessions are created
// at LogWarning) to log instead of the standard logger. discordgo has one logger per process:
// the first caller's wins.
func routeDiscordgoLogs(log *slog.Logger) {
	discordgoLogOnce.Do(func() {
		l := log.With("component", "discordgo")
		discordgo.Logger = func(msgL, caller int, format string, a ...any) {
			level := slog.LevelInfo
			switch msgL {
			case discordgo.LogError:
				level = slog.LevelError
			case discordgo.LogWarning:
				level = slog.LevelWarn
			case discordgo.LogDebug:
				level = slog.LevelDebug
			}
			if strings.HasPrefix(format, "error connecting to gateway") {
				// Whoever called Open logs the failure once, with its retry: runGateway, or
				// discordgo's own reconnect loop ("error reconnecting to gateway").
				level = slog.LevelDebug
			}
			l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, a...)))
		}
	})
}
