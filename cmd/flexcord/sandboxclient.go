package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/feedadmin"
)

// sandboxConfigPath is where `flexcord sandbox` serves the settings roles fetch
// (devstack.SandboxConfigPath; a test checks that both agree).
const sandboxConfigPath = "/sandbox/config.json"

// sandboxConfig is the JSON a sandbox serves at sandboxConfigPath: the emulators' well-known
// credentials and the Discord emulator's interaction key (devstack.SandboxConfig).
type sandboxConfig struct {
	Discord struct {
		Token         string `json:"token"`
		ApplicationID string `json:"application_id"`
		PublicKey     string `json:"public_key"`
	} `json:"discord"`
	Twilio struct {
		AccountSID   string `json:"account_sid"`
		AuthToken    string `json:"auth_token"`
		WorkspaceSID string `json:"workspace_sid"`
		WorkflowSID  string `json:"workflow_sid"`
	} `json:"twilio"`
	IngressURL string             `json:"ingress_url"`
	Feeds      []feedadmin.Source `json:"feeds"`
}

// sandboxSettings is FLEXCORD_SANDBOX_URL: the one variable that points a role at a running
// `flexcord sandbox` instead of Discord and Twilio.
type sandboxSettings struct {
	url string
}

func (s *sandboxSettings) bind(b *config.Binder) {
	b.String(&s.url, "sandbox-url", "FLEXCORD_SANDBOX_URL", "", "use the emulated Discord and Twilio of the flexcord sandbox at this URL (such as http://127.0.0.1:8090) for each provider whose credentials are not set")
}

func (s *sandboxSettings) validate() error {
	if s.url == "" {
		return nil
	}
	u, err := url.Parse(s.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("FLEXCORD_SANDBOX_URL=%q is not an absolute http(s) URL", s.url)
	}
	return nil
}

// fetchSandboxConfig reads the sandbox's settings, retrying with back-off while the sandbox does
// not answer (it may start after the role), and keeps state up to date for /readyz while it
// fails; the caller marks state ready once it has applied the settings.
func fetchSandboxConfig(ctx context.Context, base string, state *componentState, log *slog.Logger) (*sandboxConfig, error) {
	var b backoff
	endpoint := strings.TrimRight(base, "/") + sandboxConfigPath
	for {
		cfg, err := getSandboxConfig(ctx, endpoint)
		if err == nil {
			log.Info("using the sandbox", "url", base, "ingress_url", cfg.IngressURL)
			return cfg, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		state.set(fmt.Errorf("unreachable (%v)", err))
		d := b.wait()
		log.Warn("sandbox settings not fetched yet; retrying", "url", endpoint, "retry_in", d.String(), "error", err)
		if !sleep(ctx, d) {
			return nil, ctx.Err()
		}
	}
}

func getSandboxConfig(ctx context.Context, endpoint string) (*sandboxConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", endpoint, resp.Status)
	}
	var cfg sandboxConfig
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&cfg); err != nil {
		return nil, fmt.Errorf("GET %s: not a sandbox configuration: %w", endpoint, err)
	}
	if cfg.Discord.Token == "" || cfg.Twilio.AccountSID == "" {
		return nil, fmt.Errorf("GET %s: the configuration has no Discord token or Twilio account", endpoint)
	}
	return &cfg, nil
}

// discordHosts are the hosts discordgo calls (REST; the gateway URL comes from GET /gateway) and
// the CDN hosts attachments are downloaded from.
var discordHosts = map[string]bool{
	"discord.com": true, "www.discord.com": true, "discordapp.com": true,
	"canary.discord.com": true, "ptb.discord.com": true, "gateway.discord.gg": true,
	"cdn.discordapp.com": true, "media.discordapp.net": true,
}

// sandboxTransport sends what discordgo and twilio-go address to Discord and Twilio to a sandbox
// instead, keeping the path: Discord requests go to the sandbox's host, Twilio ones keep their
// Host header (the Twilio emulator tells its products apart by it). Anything else goes to base.
type sandboxTransport struct {
	target *url.URL
	base   http.RoundTripper
}

func newSandboxTransport(sandboxURL string) (http.RoundTripper, error) {
	u, err := url.Parse(sandboxURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("FLEXCORD_SANDBOX_URL=%q is not an absolute URL", sandboxURL)
	}
	return &sandboxTransport{target: u, base: http.DefaultTransport}, nil
}

// RoundTrip implements http.RoundTripper.
func (t *sandboxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	host := strings.ToLower(r.URL.Hostname())
	twilio := strings.HasSuffix(host, ".twilio.com")
	if !discordHosts[host] && !twilio {
		return t.base.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme = t.target.Scheme
	r2.URL.Host = t.target.Host
	r2.URL.Path = strings.TrimRight(t.target.Path, "/") + r.URL.Path
	if r.URL.RawPath != "" {
		r2.URL.RawPath = strings.TrimRight(t.target.Path, "/") + r.URL.RawPath
	}
	if twilio {
		r2.Host = r.URL.Host
	} else {
		r2.Host = t.target.Host
	}
	return t.base.RoundTrip(r2)
}

// sandboxUser is a provider that can use the sandbox's emulator of it.
type sandboxUser interface {
	// useSandbox takes the sandbox's credentials and transport, unless the provider's own
	// credentials are set; it reports whether it did.
	useSandbox(cfg *sandboxConfig, rt http.RoundTripper) bool
}

// applySandbox points every provider without credentials at the sandbox, and checks the result.
func applySandbox(cfg *sandboxConfig, sandboxURL string, provs []provider, log *slog.Logger) error {
	rt, err := newSandboxTransport(sandboxURL)
	if err != nil {
		return err
	}
	for _, p := range provs {
		su, ok := p.(sandboxUser)
		if !ok {
			continue
		}
		if su.useSandbox(cfg, rt) {
			log.Info(p.name()+": using the sandbox's emulator", "sandbox", sandboxURL)
		} else {
			log.Info(p.name()+": credentials are set; using them, not the sandbox", "sandbox", sandboxURL)
		}
		if err := p.validate(); err != nil {
			return fmt.Errorf("sandbox settings from %s: %w", sandboxURL, err)
		}
	}
	return nil
}

// needsSandbox reports whether some provider would use the sandbox (has no credentials of its
// own); when none would, FLEXCORD_SANDBOX_URL is ignored, with a line in the log.
func needsSandbox(sandboxURL string, provs []provider, log *slog.Logger) bool {
	if sandboxURL == "" {
		return false
	}
	for _, p := range provs {
		if !p.configured() {
			return true
		}
	}
	log.Info("FLEXCORD_SANDBOX_URL is set, but every provider has credentials: the sandbox is not used", "sandbox", sandboxURL)
	return false
}
