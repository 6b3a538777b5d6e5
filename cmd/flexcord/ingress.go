package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/temporalclient"
)

const ingressIntro = `Usage: flexcord ingress [flags]

Serves the HTTP front door: Discord interactions, Twilio webhooks, pushed #announcements items,
/healthz, /readyz and /metrics. It is stateless: run as many as you need. It does not open the
Discord gateway (that is flexcord gateway's, one process per shard) unless
FLEXCORD_INGRESS_GATEWAY=true. It starts and serves /healthz even while Temporal cannot be
reached; /readyz says what is missing.
`

func ingressCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ingress", stderr)
	setIntro(fs, ingressIntro)
	b := config.NewBinder(fs)
	var c common
	var sb sandboxSettings
	var cs codecSettings
	var httpAddr string
	var openGateway bool
	c.bind(b)
	c.bindConversation(b)
	c.bindIngress(b)
	c.bindBacklog(b)
	b.String(&httpAddr, "http-addr", "FLEXCORD_HTTP_ADDR", ":8080", "address ingress listens on")
	b.Bool(&openGateway, "gateway", "FLEXCORD_INGRESS_GATEWAY", false, "also hold the Discord gateway connection (DMs) in this process, as flexcord gateway does; for a single ingress only, never for replicas")
	provs := newProviders()
	for _, p := range provs {
		p.bind(b)
	}
	sb.bind(b)
	cs.bind(b)
	describeFeedSecrets(b)
	describeTemporal(b)
	describeTelemetry(b)
	if err := parse(fs, b, args); err != nil {
		return err
	}
	if err := sb.validate(); err != nil {
		return err
	}
	for _, p := range provs {
		if err := p.validate(); err != nil {
			return err
		}
	}
	discordOf(provs).gateway = openGateway
	// The payload keys of the client, which the codec endpoint serves too.
	payloadCodec, err := payloadcodec.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	codecCfg, err := cs.config(payloadCodec)
	if err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	cs.describe(codecCfg, log)
	routeDiscordgoLogs(log)
	ln, err := listen(httpAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	tel, err := telemetry.Setup(ctx, "flexcord-ingress", Version())
	if err != nil {
		return err
	}
	defer shutdownWithin(tel.Shutdown, 5*time.Second)
	// A lazy client: ingress starts, and answers /healthz, while Temporal is unreachable.
	tc, co, err := temporalclient.Dial(temporalclient.Options{Logger: log, Telemetry: tel, Lazy: true, PayloadCodec: payloadCodec})
	if err != nil {
		return err
	}
	defer tc.Close()
	ready := &readiness{}
	ready.add("temporal", temporalCheck(tc))
	srv := newRoleServer(ready, tel)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.serve(gctx, ln, log) })
	log.Info("ingress listening", "addr", ln.Addr().String(), "version", Version())

	g.Go(func() error {
		if needsSandbox(sb.url, provs, log) {
			state := newComponentState("not fetched yet")
			ready.add("sandbox", state.check)
			// Ready once the routes that use the sandbox's settings are served.
			defer func() {
				if srv.inner.Load() != nil {
					state.set(nil)
				}
			}()
			cfg, err := fetchSandboxConfig(gctx, sb.url, state, log)
			if err != nil {
				return nil // stopped while waiting
			}
			if err := applySandbox(cfg, sb.url, provs, log); err != nil {
				return err
			}
		}
		cfg := ingress.Config{
			Temporal: tc, Namespace: co.Namespace, Log: log, Telemetry: tel, Conversation: c.conversation(),
			MaxInFlight: c.maxInFlight, MaxBacklogAge: c.maxBacklogAge, MaxSignalRate: float64(c.maxSignalRate),
			Codec: codecCfg,
		}
		env := ingressEnv{goFn: func(f func(context.Context) error) { g.Go(func() error { return f(gctx) }) }, ready: ready}
		for _, p := range provs {
			if !p.configured() {
				log.Warn(p.name() + " is not configured; its routes are off")
				continue
			}
			if err := p.addIngress(gctx, log, &cfg, env); err != nil {
				return fmt.Errorf("%s ingress: %w", p.name(), err)
			}
		}
		// Pushed #announcements items: sources with FLEXCORD_FEED_SECRET_<NAME> set take them.
		cfg.Routes = append(cfg.Routes, ingress.AnnouncementsRoutes(ingress.AnnouncementsConfig{}))
		srv.setHandler(ingress.New(cfg).Handler())
		return nil
	})
	return g.Wait()
}
