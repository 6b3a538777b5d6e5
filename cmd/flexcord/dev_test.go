//go:build dev

package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/workflows"
)

func TestDevHelpListsEveryVariable(t *testing.T) {
	checkHelp(t, []helpCase{
		{[]string{"dev"}, concat(logVars, discordVars, twilioVars, conversationVars, telemetryVars, []string{
			"FLEXCORD_HTTP_ADDR", "FLEXCORD_TEMPORAL_PORT", "FLEXCORD_UI_PORT", "FLEXCORD_DATA_DIR", "KB_DIR",
			"FLEXCORD_FEEDS_FILE", "FLEXCORD_DISCORD_EMULATOR_ADDR", "FLEXCORD_TWILIO_EMULATOR_ADDR",
			"FLEXCORD_MAX_INFLIGHT_SIGNALS", "FLEXCORD_FEED_SECRET_<NAME>",
		}), map[string]string{"FLEXCORD_HTTP_ADDR": "127.0.0.1:8080", "FLEXCORD_TEMPORAL_PORT": "7233", "FLEXCORD_DATA_DIR": ".flexcord"}},
		{[]string{"sandbox"}, concat(logVars, []string{
			"FLEXCORD_HTTP_ADDR", "FLEXCORD_SANDBOX_URL", "FLEXCORD_INGRESS_URL", "FLEXCORD_PUBLIC_URL",
			"FLEXCORD_SANDBOX_DISCORD_KEY", "FLEXCORD_TEMPORAL_UI_URL", "TEMPORAL_NAMESPACE",
		}), map[string]string{"FLEXCORD_HTTP_ADDR": ":8090"}},
		{[]string{"temporal"}, concat(logVars, []string{
			"FLEXCORD_DATA_DIR", "FLEXCORD_TEMPORAL_IP", "FLEXCORD_TEMPORAL_PORT", "FLEXCORD_UI_PORT",
			"FLEXCORD_TEMPORAL_UI", "TEMPORAL_NAMESPACE", "FLEXCORD_TEMPORAL_LOG_LEVEL",
		}), map[string]string{"FLEXCORD_TEMPORAL_PORT": "7233", "FLEXCORD_UI_PORT": "8233", "FLEXCORD_DATA_DIR": ".flexcord/temporal"}},
	})
}

// TestSandboxCommand: `flexcord sandbox` serves both emulators, the sample blog, the page and the
// roles' settings on one address, and the real clients reach the emulators through it.
func TestSandboxCommand(t *testing.T) {
	seed := strings.Repeat("ab", ed25519.SeedSize)
	r := startRole(t, "sandbox", "--http-addr", "127.0.0.1:0", "--ingress-url", "http://127.0.0.1:18080", "--discord-key", seed)
	var url string
	waitFor(t, 10*time.Second, "the sandbox's URL on stdout", func() bool {
		m := regexp.MustCompile(`FLEXCORD_SANDBOX_URL=(\S+)`).FindStringSubmatch(r.stdout.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	if url != r.url {
		t.Errorf("printed URL %s, listening at %s", url, r.url)
	}
	for path, want := range map[string]string{
		"/healthz":                 "ok",
		"/sandbox":                 "<html",
		"/_emu/discord/state":      `"application_id"`,
		"/_emu/twilio/workspace":   devstack.SandboxTwilioWorkspaceSID,
		"/_emu/feeds/sample.xml":   "<rss",
		"/api/v9/gateway":          `"url":"ws://` + strings.TrimPrefix(url, "http://") + `/gateway"`,
		devstack.SandboxConfigPath: `"ingress_url":"http://127.0.0.1:18080"`,
	} {
		code, body := get(url + path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, want 200 with %q:\n%.300s", path, code, want, body)
		}
	}

	// What a role fetches: the key is the one configured, the Twilio account the sandbox's.
	cfg, err := getSandboxConfig(context.Background(), url+sandboxConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	wantKey := hex.EncodeToString(ed25519.NewKeyFromSeed(mustHex(t, seed)).Public().(ed25519.PublicKey))
	if cfg.Discord.PublicKey != wantKey || cfg.Twilio.AccountSID != devstack.SandboxTwilioAccountSID || len(cfg.Feeds) != 1 {
		t.Errorf("config %+v, want public key %s", cfg, wantKey)
	}

	// twilio-go through the sandbox transport: the Host header picks the Twilio emulator.
	rt, err := newSandboxTransport(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := twilioclient.New(twilioclient.Credentials{AccountSID: cfg.Twilio.AccountSID, AuthToken: cfg.Twilio.AuthToken}, rt)
	ws, err := rc.TaskrouterV1.FetchWorkspace(cfg.Twilio.WorkspaceSID)
	if err != nil {
		t.Fatalf("fetch the workspace through the sandbox: %v", err)
	}
	if ws.EventCallbackUrl == nil || *ws.EventCallbackUrl != "http://127.0.0.1:18080/twilio/taskrouter" {
		t.Errorf("workspace event callback %v", ws.EventCallbackUrl)
	}

	// The slash commands are registered, as the page runs them.
	code, body := get(url + "/_emu/discord/commands")
	if code != http.StatusOK || !strings.Contains(body, `"helpme"`) {
		t.Errorf("commands: %d %.300s", code, body)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSandboxConfigMatchesRoles: the settings devstack serves decode into what roles read.
func TestSandboxConfigMatchesRoles(t *testing.T) {
	if sandboxConfigPath != devstack.SandboxConfigPath {
		t.Fatalf("roles fetch %s, the sandbox serves %s", sandboxConfigPath, devstack.SandboxConfigPath)
	}
	served := devstack.SandboxConfig{
		Discord:    devstack.SandboxDiscord{Token: "t", ApplicationID: "1", PublicKey: "ab"},
		Twilio:     devstack.SandboxTwilio{AccountSID: "AC", AuthToken: "x", WorkspaceSID: "WS", WorkflowSID: "WW"},
		IngressURL: "http://i",
	}
	raw, _ := json.Marshal(served)
	var got sandboxConfig
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	back, _ := json.Marshal(got)
	if string(back) != string(raw) {
		t.Errorf("roles read %s from %s", back, raw)
	}
}

// TestTemporalCommand: `flexcord temporal` runs a Temporal server with flexcord's namespace and
// search attributes, and stops when asked.
func TestTemporalCommand(t *testing.T) {
	r := startRoleStdout(t, "temporal", "--data-dir", t.TempDir(), "--port", "0", "--ui=false", "--log-format", "text")
	addr := regexp.MustCompile(`TEMPORAL_ADDRESS=(\S+)`).FindStringSubmatch(r.stdout.String())[1]
	c, err := client.Dial(client.Options{HostPort: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.OperatorService().ListSearchAttributes(context.Background(), &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.GetCustomAttributes()[workflows.SearchAttrStage.GetName()]; !ok {
		t.Errorf("no %s search attribute: %v", workflows.SearchAttrStage.GetName(), resp.GetCustomAttributes())
	}
	r.stop(t)
	if logs := r.stderr.String(); strings.Contains(logs, "level=ERROR") || strings.Contains(logs, `"level"`) {
		t.Errorf("errors or JSON lines in the logs of a text-format run:\n%s", logs)
	}
}

// startRoleStdout runs a command that prints its addresses on stdout rather than logging a
// "listening" line, and waits for its "Press Ctrl-C" or "Roles reach it" line.
func startRoleStdout(t *testing.T, args ...string) *role {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &role{name: args[0], stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- run(ctx, args, r.stdout, r.stderr) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			r.stop(t)
		}
	})
	waitFor(t, 2*time.Minute, r.name+" running", func() bool {
		select {
		case err := <-r.done:
			t.Fatalf("flexcord %s exited: %v\n%s", strings.Join(args, " "), err, r.stderr.String())
		default:
		}
		out := r.stdout.String()
		return strings.Contains(out, "Press Ctrl-C") || strings.Contains(out, "Roles reach it")
	})
	return &role{name: r.name, stdout: r.stdout, stderr: r.stderr, done: r.done, cancel: func() { stopped = true; cancel() }}
}

// TestDevPrintsEmulatorsAndStopsQuietly: `flexcord dev --log-format text` prints where the
// emulators are, logs only text lines (the embedded server's too), and Ctrl-C stops it without
// an error line.
func TestDevPrintsEmulatorsAndStopsQuietly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs flexcord dev")
	}
	r := startRoleStdout(t, "dev", "--log-format", "text", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0",
		"--temporal-port", "0", "--ui-port", "0", "--twilio-emulator-addr", "127.0.0.1:0")
	out := r.stdout.String()
	for _, want := range []string{"Discord emulator   http://127.0.0.1:", "gateway ws://127.0.0.1:", "Twilio emulator    http://127.0.0.1:", "sample blog", "sandbox page"} {
		if !strings.Contains(out, want) {
			t.Errorf("dev does not print %q:\n%s", want, out)
		}
	}
	dc := regexp.MustCompile(`Discord emulator   (\S+)`).FindStringSubmatch(out)
	if dc != nil {
		if code, _ := get(dc[1] + "/_emu/discord/state"); code != http.StatusOK {
			t.Errorf("Discord emulator at %s: %d", dc[1], code)
		}
	}
	r.stop(t)
	logs := r.stderr.String()
	for _, bad := range []string{"level=ERROR", `"level":"error"`, `"level":"ERROR"`, "stacktrace", "Not enough hosts"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the logs have %q:\n%s", bad, logs)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if strings.HasPrefix(line, "{") {
			t.Errorf("a JSON line in a text-format run: %s", line)
		}
	}
}
