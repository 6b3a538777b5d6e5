package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/temporalclient"
	"github.com/flexcord/flexcord/worker"
	sdkworker "go.temporal.io/sdk/worker"
)

func devCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", stderr)
	b := config.NewBinder(fs)
	var c common
	var k kbSettings
	var httpAddr, dataDir string
	var temporalPort, uiPort int
	c.bind(b)
	c.bindConversation(b)
	c.bindIngress(b)
	k.bind(b)
	provs := newProviders()
	for _, p := range provs {
		p.bind(b)
	}
	b.String(&httpAddr, "http-addr", "FLEXCORD_HTTP_ADDR", "127.0.0.1:8080", "address ingress (and the sandbox page) listens on")
	b.Int(&temporalPort, "temporal-port", "FLEXCORD_TEMPORAL_PORT", 7233, "port of the embedded Temporal frontend (gRPC)")
	b.Int(&uiPort, "ui-port", "FLEXCORD_UI_PORT", 8233, "port of the embedded Temporal UI")
	b.String(&dataDir, "data-dir", "FLEXCORD_DATA_DIR", ".flexcord", "directory of the embedded server's SQLite database")
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

	// Claim the ingress port first: a port in use should fail before anything starts.
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("ingress address %s is already in use (set --http-addr or FLEXCORD_HTTP_ADDR): %w", httpAddr, err)
	}
	defer ln.Close()

	tel, err := telemetry.Setup(ctx, "flexcord-dev", Version())
	if err != nil {
		return err
	}
	defer shutdownWithin(tel.Shutdown, 2*time.Second)

	srv, err := devserver.Start(ctx, devserver.Options{
		DataDir: dataDir, FrontendPort: temporalPort, UI: true, UIPort: uiPort,
		SearchAttributes: worker.SearchAttributeTypes(),
	})
	if err != nil {
		var inUse *devserver.PortInUseError
		if errors.As(err, &inUse) {
			return fmt.Errorf("%s (set --temporal-port / --ui-port)", inUse.Error())
		}
		return err
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			log.Warn("stop embedded Temporal server", "error", err)
		}
	}()

	tc, _, err := temporalclient.Dial(temporalclient.Options{HostPort: srv.FrontendAddr, Namespace: srv.Namespace, Logger: log, Telemetry: tel})
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := worker.RegisterSearchAttributes(ctx, tc, srv.Namespace, log); err != nil {
		return err
	}

	store, err := k.open(log)
	if err != nil {
		return err
	}
	defer store.Close()
	reloadOnHangup(ctx, store, log)
	acts, err := buildActivities(ctx, log, provs, store)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	cfg := ingress.Config{Temporal: tc, Log: log, Telemetry: tel, MaxInFlight: c.maxInFlight, Conversation: c.conv}
	for _, p := range provs {
		if !p.configured() {
			continue
		}
		if err := p.addIngress(gctx, log, &cfg, func(f func(context.Context) error) { g.Go(func() error { return f(gctx) }) }); err != nil {
			return fmt.Errorf("%s ingress: %w", p.name(), err)
		}
	}
	in := ingress.New(cfg)

	fmt.Fprintf(stdout, "flexcord dev %s\n", Version())
	fmt.Fprintf(stdout, "  Temporal frontend  %s (namespace %s, data in %s)\n", srv.FrontendAddr, srv.Namespace, dataDir)
	fmt.Fprintf(stdout, "  Temporal UI        %s\n", srv.UIURL)
	fmt.Fprintf(stdout, "  ingress            http://%s  (/healthz /readyz /metrics)\n", ln.Addr())
	fmt.Fprintf(stdout, "Press Ctrl-C to stop.\n")

	g.Go(func() error { return worker.Run(gctx, tc, acts, sdkworker.Options{}) })
	g.Go(func() error { return in.Serve(gctx, ln) })
	err = g.Wait()
	fmt.Fprintln(stdout, "flexcord dev: stopping")
	return err
}

// shutdownWithin calls f with a deadline.
func shutdownWithin(f func(context.Context) error, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = f(ctx)
}
