//go:build dev

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/feedadmin"
	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/sandbox/feedemu"
)

// This file, and the other files built with the "dev" tag, make the development build: the
// embedded Temporal server and UI, the emulators and the sandbox page, and the commands that run
// them (dev, sandbox, temporal). The default build leaves them out (see devonly.go).

func init() {
	register("dev", devCommand)
}

// devBuild tells whether this is the development build.
const devBuild = true

// devConfigurable is a provider that `flexcord dev` can use for real when its credentials are set;
// otherwise dev runs its emulator.
type devConfigurable interface {
	useInDev(o *devstack.Options)
}

// useInDev makes `flexcord dev` talk to this Discord application instead of the emulator.
func (p *discordProvider) useInDev(o *devstack.Options) {
	o.Discord = &devstack.DiscordSetup{
		Token: p.token, ApplicationID: p.appID, PublicKey: p.publicKey, ShardID: p.shardID, ShardCount: p.shardCount,
	}
}

// useInDev makes `flexcord dev` talk to this Twilio account instead of the emulator.
func (p *twilioProvider) useInDev(o *devstack.Options) {
	o.Twilio = &devstack.TwilioSetup{
		Credentials: p.credentials(), WorkspaceSID: p.workspaceSID, WorkflowSID: p.workflowSID, PublicURL: p.baseURL(),
	}
}

const devIntro = `Usage: flexcord dev [flags]

Runs the whole of flexcord in one process: an embedded Temporal server and its UI, a worker,
ingress with the Discord gateway, and, for each provider whose credentials are not set, a local
emulator that speaks its real protocol, with the sandbox page to play both sides. Development
build only.
`

func devCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", stderr)
	setIntro(fs, devIntro)
	b := config.NewBinder(fs)
	var c common
	var k kbSettings
	var cs codecSettings
	var httpAddr, dataDir, feedsFile, discordEmuAddr, twilioEmuAddr string
	var temporalPort, uiPort int
	c.bind(b)
	c.bindConversation(b)
	c.bindIngress(b)
	c.bindBacklog(b)
	k.bind(b)
	provs := newProviders()
	for _, p := range provs {
		p.bind(b)
	}
	b.String(&httpAddr, "http-addr", "FLEXCORD_HTTP_ADDR", "127.0.0.1:8080", "address ingress and the sandbox page listen on")
	b.Int(&temporalPort, "temporal-port", "FLEXCORD_TEMPORAL_PORT", 7233, "port of the embedded Temporal frontend (gRPC)")
	b.Int(&uiPort, "ui-port", "FLEXCORD_UI_PORT", 8233, "port of the embedded Temporal UI")
	b.String(&dataDir, "data-dir", "FLEXCORD_DATA_DIR", ".flexcord", "directory of the embedded server's SQLite database")
	b.String(&feedsFile, "feeds-file", "FLEXCORD_FEEDS_FILE", "", "YAML or JSON file of #announcements sources, applied at start (see README, Announcements)")
	b.String(&discordEmuAddr, "discord-emulator-addr", "FLEXCORD_DISCORD_EMULATOR_ADDR", "127.0.0.1:0", "address of the Discord emulator (REST, gateway, control API); port 0 picks a free one")
	b.String(&twilioEmuAddr, "twilio-emulator-addr", "FLEXCORD_TWILIO_EMULATOR_ADDR", "127.0.0.1:0", "address of the Twilio emulator (REST by Host, control API); port 0 picks a free one")
	describePayloadKeys(b)
	cs.bind(b)
	describeFeedSecrets(b)
	describeTelemetry(b)
	if err := parse(fs, b, args); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	enc, err := devCodec(dataDir, &cs)
	if err != nil {
		return err
	}
	opts := devstack.Options{
		DataDir: dataDir, HTTPAddr: httpAddr, TemporalPort: temporalPort, UIPort: uiPort, UI: true,
		Log: log, ServerLog: log, Conversation: c.conversation(), MaxInFlight: c.maxInFlight, MaxBacklogAge: c.maxBacklogAge, MaxSignalRate: float64(c.maxSignalRate), SampleFeed: true,
		DiscordEmulatorAddr: discordEmuAddr, TwilioEmulatorAddr: twilioEmuAddr,
		PayloadCodec: enc.cfg.Codec, CodecToken: enc.cfg.Token, CodecCORSOrigins: enc.cfg.AllowedOrigins,
	}
	if feedsFile != "" {
		sources, err := feedadmin.LoadFile(feedsFile)
		if err != nil {
			return fmt.Errorf("FLEXCORD_FEEDS_FILE: %w", err)
		}
		for _, src := range sources {
			opts.Feeds = append(opts.Feeds, src.Config())
		}
	}
	var real, emulated []string
	for _, p := range provs {
		if !p.configured() {
			emulated = append(emulated, p.name())
			continue
		}
		if err := p.validate(); err != nil {
			return err
		}
		dc, ok := p.(devConfigurable)
		if !ok {
			return fmt.Errorf("%s credentials are set, but flexcord dev can only emulate it; unset them", p.name())
		}
		dc.useInDev(&opts)
		real = append(real, p.name())
	}
	tel, err := telemetry.Setup(ctx, "flexcord-dev", Version())
	if err != nil {
		return err
	}
	defer shutdownWithin(tel.Shutdown, 2*time.Second)
	opts.Telemetry = tel
	if opts.KB, err = k.open(log); err != nil {
		return err
	}
	defer opts.KB.Close()
	reloadOnHangup(ctx, opts.KB, log)

	fmt.Fprintf(stdout, "flexcord %s: starting (the first start of a new data directory takes a few seconds)\n", Version())
	st, err := devstack.Start(ctx, opts)
	if err != nil {
		var inUse *devserver.PortInUseError
		if errors.As(err, &inUse) {
			flag := map[string]string{"ingress": "--http-addr", "Temporal frontend": "--temporal-port", "Temporal UI": "--ui-port",
				"Discord emulator": "--discord-emulator-addr", "Twilio emulator": "--twilio-emulator-addr"}[inUse.What]
			return fmt.Errorf("%s port %s is already in use; choose another with %s", inUse.What, inUse.Addr, flag)
		}
		return err
	}
	fmt.Fprintf(stdout, "  Temporal frontend  %s (namespace %s, data in %s)\n", st.TemporalAddr, st.Namespace, dataDir)
	fmt.Fprintf(stdout, "  Temporal UI        %s\n", st.UIURL)
	fmt.Fprintf(stdout, "  ingress            %s  (/healthz /readyz /metrics)\n", st.URL)
	fmt.Fprintf(stdout, "  payload keys       %s\n", enc.keys)
	fmt.Fprintf(stdout, "  codec endpoint     %s  (bearer token %s; the Temporal UI decodes through it)\n", st.CodecURL, enc.token)
	if dataDir != "" {
		blobs := filepath.Join(dataDir, "blobs")
		fmt.Fprintf(stdout, "  transcripts        %s  (flexcord cases transcript ID --blob-dir %s)\n", blobs, blobs)
	}
	if st.Discord != nil {
		fmt.Fprintf(stdout, "  Discord emulator   %s  (REST /api/v9, gateway %s, control /_emu/discord/)\n", st.Discord.URL(), st.Discord.GatewayURL())
	}
	if st.Twilio != nil {
		fmt.Fprintf(stdout, "  Twilio emulator    %s  (Conversations, Flex, TaskRouter by Host header; control /_emu/twilio/)\n", st.Twilio.URL())
	}
	if st.Feeds != nil {
		fmt.Fprintf(stdout, "  sample blog        %s%s/%s.xml\n", st.URL, feedemu.DefaultPrefix, feedemu.SampleFeed)
	}
	if st.Discord != nil && st.Twilio != nil {
		fmt.Fprintf(stdout, "  sandbox page       %s/sandbox  (Discord and Flex emulated)\n", st.URL)
	} else {
		fmt.Fprintf(stdout, "  real services      %v; emulated: %v\n", real, emulated)
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	select {
	case <-ctx.Done():
	case <-st.Done():
	}
	fmt.Fprintln(stdout, "flexcord dev: stopping")
	stopErr := st.Stop()
	if err := st.Err(); err != nil {
		return err
	}
	return stopErr
}

// devCodecSetup is how `flexcord dev` encrypts payloads, and where its keys and token are.
type devCodecSetup struct {
	cfg         ingress.CodecConfig
	keys, token string // where they come from, for people
}

// devCodec returns the payload keys and codec token of FLEXCORD_PAYLOAD_KEYS (or _FILE) and
// FLEXCORD_CODEC_TOKEN; those not set are read from the data directory, and generated there the
// first time, so that the histories of that directory stay readable across restarts.
func devCodec(dataDir string, cs *codecSettings) (devCodecSetup, error) {
	var setup devCodecSetup
	codec, err := payloadcodec.FromEnv(os.LookupEnv)
	if err != nil {
		return setup, err
	}
	setup.keys = "from " + payloadcodec.EnvKeys
	if v, _ := os.LookupEnv(payloadcodec.EnvKeyFile); v != "" {
		setup.keys = "from " + v
	}
	if codec == nil {
		var path string
		var created bool
		if codec, path, created, err = devstack.LoadOrCreatePayloadKeys(dataDir); err != nil {
			return setup, fmt.Errorf("payload keys of flexcord dev: %w", err)
		}
		if created {
			path += " (generated)"
		}
		setup.keys = path + "; histories are encrypted with it"
	}
	setup.token = "from FLEXCORD_CODEC_TOKEN"
	if strings.TrimSpace(cs.token) == "" {
		path, created := "", false
		if cs.token, path, created, err = devstack.LoadOrCreateCodecToken(dataDir); err != nil {
			return setup, fmt.Errorf("codec token of flexcord dev: %w", err)
		}
		if created {
			path += " (generated)"
		}
		setup.token = "in " + path
	}
	setup.cfg, err = cs.config(codec)
	return setup, err
}
