//go:build dev

package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/sandbox/feedemu"
)

func init() {
	register("sandbox", sandboxCommand)
}

const sandboxIntro = `Usage: flexcord sandbox [flags]

Runs the Discord and Twilio emulators, the sample blog and the sandbox page on one address, with
no Temporal and no role: the accounts-free stand-in for Discord and Twilio when worker, ingress
and gateway run as separate processes. Point each role at it with one variable,
FLEXCORD_SANDBOX_URL=<its URL> (the sandbox reads the same variable as its own public URL): they
fetch the emulators' credentials and interaction key from /sandbox/config.json and send their
Discord and Twilio calls here. The emulators send interactions and webhooks to
FLEXCORD_INGRESS_URL. Development build only.
`

func sandboxCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sandbox", stderr)
	setIntro(fs, sandboxIntro)
	b := config.NewBinder(fs)
	var c common
	var httpAddr, publicURL, ingressURL, ingressPublicURL, keyHex, uiURL, namespace string
	c.bind(b)
	b.String(&httpAddr, "http-addr", "FLEXCORD_HTTP_ADDR", ":8090", "address the emulators and the page listen on")
	b.String(&publicURL, "public-url", "FLEXCORD_SANDBOX_URL", "", "base URL the roles reach the sandbox at, the same value they are given; the Discord emulator hands out its gateway URL from it (default: http://127.0.0.1:<port of --http-addr>)")
	b.String(&ingressURL, "ingress-url", "FLEXCORD_INGRESS_URL", "", "base URL of ingress, where the emulators send Discord interactions and Twilio webhooks, signed for it (default: FLEXCORD_PUBLIC_URL, else http://127.0.0.1:8080)")
	b.String(&ingressPublicURL, "", "FLEXCORD_PUBLIC_URL", "", "public base URL of ingress: the default of FLEXCORD_INGRESS_URL")
	b.String(&keyHex, "discord-key", "FLEXCORD_SANDBOX_DISCORD_KEY", "", "Ed25519 seed (64 hex digits) that signs the Discord emulator's interactions, so that its public key stays the same across restarts (default: a new key each run; roles read it from /sandbox/config.json)")
	b.String(&uiURL, "temporal-ui-url", "FLEXCORD_TEMPORAL_UI_URL", "http://127.0.0.1:8233", "Temporal UI the page links conversations and cases to (empty: no links)")
	b.String(&namespace, "namespace", "TEMPORAL_NAMESPACE", "default", "Temporal namespace of the links")
	if err := parse(fs, b, args); err != nil {
		return err
	}
	var key ed25519.PrivateKey
	if keyHex != "" {
		seed, err := hex.DecodeString(keyHex)
		if err != nil || len(seed) != ed25519.SeedSize {
			return errors.New("FLEXCORD_SANDBOX_DISCORD_KEY is not 64 hex digits (an Ed25519 seed)")
		}
		key = ed25519.NewKeyFromSeed(seed)
	}
	if ingressURL == "" {
		ingressURL = ingressPublicURL
	}
	for _, u := range []struct{ name, v string }{{"FLEXCORD_INGRESS_URL", ingressURL}, {"FLEXCORD_SANDBOX_URL", publicURL}} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s=%q is not an absolute http(s) URL", u.name, u.v)
		}
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	sb, err := devstack.StartSandbox(ctx, devstack.SandboxOptions{
		Addr: httpAddr, PublicURL: publicURL, IngressURL: ingressURL, DiscordKey: key,
		TemporalUIURL: uiURL, Namespace: namespace, Log: log,
	})
	if err != nil {
		if inUse, ok := errors.AsType[*devserver.PortInUseError](err); ok {
			return fmt.Errorf("sandbox address %s is already in use; choose another with --http-addr or FLEXCORD_HTTP_ADDR", inUse.Addr)
		}
		return err
	}
	cfg := sb.Config()
	log.Info("sandbox listening", "addr", sb.Addr, "url", sb.URL, "ingress_url", cfg.IngressURL, "version", Version())
	fmt.Fprintf(stdout, "flexcord sandbox %s\n", Version())
	fmt.Fprintf(stdout, "  sandbox page       %s/sandbox\n", sb.URL)
	fmt.Fprintf(stdout, "  Discord emulator   %s  (REST /api/v9, gateway %s, control /_emu/discord/)\n", sb.URL, sb.Discord.GatewayURL())
	fmt.Fprintf(stdout, "  Twilio emulator    %s  (Conversations, Flex, TaskRouter by Host header; control /_emu/twilio/)\n", sb.URL)
	fmt.Fprintf(stdout, "  sample blog        %s%s/%s.xml\n", sb.URL, feedemu.DefaultPrefix, feedemu.SampleFeed)
	fmt.Fprintf(stdout, "  roles' settings    %s%s\n", sb.URL, devstack.SandboxConfigPath)
	fmt.Fprintf(stdout, "  sends to ingress   %s  (interactions, webhooks, TaskRouter events)\n", cfg.IngressURL)
	fmt.Fprintf(stdout, "Point worker, ingress and gateway at it with FLEXCORD_SANDBOX_URL=%s\n", sb.URL)
	<-ctx.Done()
	fmt.Fprintln(stdout, "flexcord sandbox: stopping")
	return sb.Close()
}
