package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/temporalclient"
)

func ingressCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ingress", stderr)
	b := config.NewBinder(fs)
	var c common
	var httpAddr string
	c.bind(b)
	c.bindConversation(b)
	c.bindIngress(b)
	b.String(&httpAddr, "http-addr", "FLEXCORD_HTTP_ADDR", ":8080", "address ingress listens on")
	provs := newProviders()
	for _, p := range provs {
		p.bind(b)
	}
	if err := parse(fs, b, args); err != nil {
		return err
	}
	for _, p := range provs {
		if err := p.validate(); err != nil {
			return err
		}
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("ingress address %s is already in use (set --http-addr or FLEXCORD_HTTP_ADDR): %w", httpAddr, err)
	}
	defer ln.Close()
	tel, err := telemetry.Setup(ctx, "flexcord-ingress", Version())
	if err != nil {
		return err
	}
	defer shutdownWithin(tel.Shutdown, 5*time.Second)
	// A lazy client: ingress starts, and answers /healthz, while Temporal is unreachable.
	tc, _, err := temporalclient.Dial(temporalclient.Options{Logger: log, Telemetry: tel, Lazy: true})
	if err != nil {
		return err
	}
	defer tc.Close()
	cfg := ingress.Config{Temporal: tc, Log: log, Telemetry: tel, MaxInFlight: c.maxInFlight, Conversation: c.conv}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range provs {
		if !p.configured() {
			log.Warn(p.name() + " is not configured; its routes are off")
			continue
		}
		if err := p.addIngress(gctx, log, &cfg, func(f func(context.Context) error) { g.Go(func() error { return f(gctx) }) }); err != nil {
			return fmt.Errorf("%s ingress: %w", p.name(), err)
		}
	}
	// Pushed #announcements items: sources with FLEXCORD_FEED_SECRET_<NAME> set take them.
	cfg.Routes = append(cfg.Routes, ingress.AnnouncementsRoutes(ingress.AnnouncementsConfig{}))
	in := ingress.New(cfg)
	log.Info("ingress listening", "addr", ln.Addr().String(), "version", Version())
	g.Go(func() error { return in.Serve(gctx, ln) })
	return g.Wait()
}
