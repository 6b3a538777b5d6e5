//go:build dev

package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/worker"
)

func init() {
	register("temporal", temporalCommand)
}

const temporalIntro = `Usage: flexcord temporal [flags]

Runs the embedded Temporal server (SQLite in --data-dir, tuned as in flexcord dev, flexcord's
search attributes registered) and the Temporal UI, without any flexcord role: the Temporal of a
local trial with worker, ingress, gateway and sandbox as separate processes. For anything beyond
a trial, use a real Temporal cluster. Development build only.
`

func temporalCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("temporal", stderr)
	setIntro(fs, temporalIntro)
	b := config.NewBinder(fs)
	var c common
	var dataDir, ip, namespace, serverLogLevel, codecEndpoint, codecToken string
	var port, uiPort int
	var ui bool
	c.bind(b)
	b.String(&dataDir, "data-dir", "FLEXCORD_DATA_DIR", ".flexcord/temporal", "directory of the server's SQLite database (kept across restarts)")
	b.String(&ip, "ip", "FLEXCORD_TEMPORAL_IP", "127.0.0.1", "IP address the frontend and the UI listen on")
	b.Int(&port, "port", "FLEXCORD_TEMPORAL_PORT", 7233, "port of the Temporal frontend (gRPC)")
	b.Int(&uiPort, "ui-port", "FLEXCORD_UI_PORT", 8233, "port of the Temporal UI")
	b.Bool(&ui, "ui", "FLEXCORD_TEMPORAL_UI", true, "serve the Temporal UI")
	b.String(&namespace, "namespace", "TEMPORAL_NAMESPACE", "default", "namespace created at start")
	b.String(&serverLogLevel, "server-log-level", "FLEXCORD_TEMPORAL_LOG_LEVEL", "warn", "level of the server's own logs: debug, info, warn or error")
	b.String(&codecEndpoint, "codec-endpoint", "FLEXCORD_UI_CODEC_ENDPOINT", "", "codec endpoint the Temporal UI decodes encrypted payloads through: flexcord ingress's /codec (e.g. http://127.0.0.1:8080/codec)")
	b.Secret(&codecToken, "", "FLEXCORD_CODEC_TOKEN", "bearer token of that codec endpoint; the UI's own address then serves /codec and forwards it with the token")
	if err := parse(fs, b, args); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	srv, err := devserver.Start(ctx, devserver.Options{
		DataDir: dataDir, Namespace: namespace, IP: ip, FrontendPort: port, UI: ui, UIPort: uiPort,
		SearchAttributes: worker.SearchAttributeTypes(), LogLevel: serverLogLevel, Logger: log,
		Codec: devserver.UICodec{Endpoint: codecEndpoint, Token: codecToken},
	})
	if err != nil {
		if inUse, ok := errors.AsType[*devserver.PortInUseError](err); ok {
			flag := map[string]string{"Temporal frontend": "--port", "Temporal UI": "--ui-port"}[inUse.What]
			return fmt.Errorf("%s port %s is already in use; choose another with %s", inUse.What, inUse.Addr, flag)
		}
		return err
	}
	fmt.Fprintf(stdout, "flexcord temporal %s\n", Version())
	fmt.Fprintf(stdout, "  Temporal frontend  %s (namespace %s, data in %s)\n", srv.FrontendAddr, srv.Namespace, dataDir)
	if srv.UIURL != "" {
		fmt.Fprintf(stdout, "  Temporal UI        %s\n", srv.UIURL)
	}
	fmt.Fprintf(stdout, "Roles reach it with TEMPORAL_ADDRESS=%s TEMPORAL_NAMESPACE=%s\n", srv.FrontendAddr, srv.Namespace)
	log.Info("temporal server running", "frontend", srv.FrontendAddr, "ui", srv.UIURL, "namespace", srv.Namespace)
	<-ctx.Done()
	fmt.Fprintln(stdout, "flexcord temporal: stopping")
	return srv.Stop()
}
