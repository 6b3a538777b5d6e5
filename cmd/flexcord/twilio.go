package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/worker"
)

func init() {
	registerProvider(func() provider { return &twilioProvider{} })
	register("flex", flexCommand)
}

// twilioProvider is Twilio Flex: the Flex activities (Conversations and Interactions) and the
// Twilio webhook routes of ingress.
type twilioProvider struct {
	accountSID, authToken, apiKey, apiSecret string
	workspaceSID, workflowSID                string
	publicURL                                string
	inactiveTimer, closedTimer               time.Duration

	// transport carries the Twilio REST calls; nil means the real Twilio. FLEXCORD_SANDBOX_URL
	// points it at a sandbox's emulator when no TWILIO_* credentials are set, after filling in
	// the emulator's account, token, workspace and workflow SIDs (and, unless
	// FLEXCORD_PUBLIC_URL is set, the ingress URL the sandbox sends webhooks to as publicURL).
	transport http.RoundTripper
}

func (p *twilioProvider) name() string { return "Twilio" }

func (p *twilioProvider) bind(b *config.Binder) {
	b.String(&p.accountSID, "twilio-account-sid", "TWILIO_ACCOUNT_SID", "", "Twilio account SID (AC…); Twilio is used when it is set")
	b.Secret(&p.authToken, "", "TWILIO_AUTH_TOKEN", "Twilio auth token: verifies webhook signatures, and authenticates API calls unless an API key is set")
	b.String(&p.apiKey, "twilio-api-key", "TWILIO_API_KEY", "", "Twilio API key SID (SK…) for API calls, with TWILIO_API_SECRET")
	b.Secret(&p.apiSecret, "", "TWILIO_API_SECRET", "secret of TWILIO_API_KEY")
	b.String(&p.workspaceSID, "flex-workspace-sid", "TWILIO_FLEX_WORKSPACE_SID", "", "Flex TaskRouter workspace SID (WS…)")
	b.String(&p.workflowSID, "flex-workflow-sid", "TWILIO_FLEX_WORKFLOW_SID", "", "Flex TaskRouter workflow SID (WW…) that routes support chats")
	b.Duration(&p.inactiveTimer, "flex-inactive-timer", "FLEXCORD_FLEX_INACTIVE_TIMER", activities.DefaultInactiveTimer, "Flex conversations go inactive after this long without a message (Twilio timers.inactive, at least 1m)")
	b.Duration(&p.closedTimer, "flex-closed-timer", "FLEXCORD_FLEX_CLOSED_TIMER", activities.DefaultClosedTimer, "Flex conversations close after this long without a message (Twilio timers.closed, at least 10m), so none is left orphaned")
	// Environment only: the Discord side may want the same setting.
	b.String(&p.publicURL, "", "FLEXCORD_PUBLIC_URL", "", "public base URL of ingress as Twilio calls it, such as https://support.example.com")
}

func (p *twilioProvider) configured() bool { return p.accountSID != "" }

// useSandbox takes the sandbox's Twilio emulator when no Twilio credentials are set.
func (p *twilioProvider) useSandbox(cfg *sandboxConfig, rt http.RoundTripper) bool {
	if p.configured() {
		return false
	}
	p.accountSID, p.authToken = cfg.Twilio.AccountSID, cfg.Twilio.AuthToken
	p.apiKey, p.apiSecret = "", ""
	p.workspaceSID, p.workflowSID = cfg.Twilio.WorkspaceSID, cfg.Twilio.WorkflowSID
	if p.publicURL == "" {
		p.publicURL = cfg.IngressURL
	}
	p.transport = rt
	return true
}

func (p *twilioProvider) missing() string {
	return "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FLEX_WORKSPACE_SID, TWILIO_FLEX_WORKFLOW_SID and FLEXCORD_PUBLIC_URL"
}

func (p *twilioProvider) activityNames() []string {
	return activityMethods((*activities.Flex)(nil))
}

var (
	twilioSIDPattern    = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{32}$`)
	twilioSecretPattern = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

// validate names every missing variable in one line, then every malformed one.
func (p *twilioProvider) validate() error {
	if !p.configured() {
		return nil
	}
	var missing []string
	need := func(v, name string) {
		if v == "" {
			missing = append(missing, name)
		}
	}
	need(p.authToken, "TWILIO_AUTH_TOKEN")
	if p.apiKey != "" || p.apiSecret != "" {
		need(p.apiKey, "TWILIO_API_KEY")
		need(p.apiSecret, "TWILIO_API_SECRET")
	}
	need(p.workspaceSID, "TWILIO_FLEX_WORKSPACE_SID")
	need(p.workflowSID, "TWILIO_FLEX_WORKFLOW_SID")
	need(p.publicURL, "FLEXCORD_PUBLIC_URL")
	if len(missing) > 0 {
		verb := "are"
		if len(missing) == 1 {
			verb = "is"
		}
		return fmt.Errorf("TWILIO_ACCOUNT_SID is set but %s %s not: Twilio needs them all", strings.Join(missing, ", "), verb)
	}
	var bad []string
	sid := func(v, name, prefix string) {
		if !twilioSIDPattern.MatchString(v) || !strings.HasPrefix(v, prefix) {
			bad = append(bad, fmt.Sprintf("%s=%q is not %s followed by 32 hex digits", name, v, prefix))
		}
	}
	sid(p.accountSID, "TWILIO_ACCOUNT_SID", "AC")
	sid(p.workspaceSID, "TWILIO_FLEX_WORKSPACE_SID", "WS")
	sid(p.workflowSID, "TWILIO_FLEX_WORKFLOW_SID", "WW")
	if p.apiKey != "" {
		sid(p.apiKey, "TWILIO_API_KEY", "SK")
	}
	// twilio-go refuses other characters in credentials; the values are not printed.
	for _, s := range []struct{ name, v string }{{"TWILIO_AUTH_TOKEN", p.authToken}, {"TWILIO_API_SECRET", p.apiSecret}} {
		if s.v != "" && !twilioSecretPattern.MatchString(s.v) {
			bad = append(bad, s.name+" must contain only letters and digits")
		}
	}
	if u, err := url.Parse(p.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad = append(bad, fmt.Sprintf("FLEXCORD_PUBLIC_URL=%q is not an absolute http(s) URL without query", p.publicURL))
	}
	if len(bad) > 0 {
		return errors.New("bad Twilio setting: " + strings.Join(bad, "; "))
	}
	return nil
}

func (p *twilioProvider) credentials() twilioclient.Credentials {
	return twilioclient.Credentials{AccountSID: p.accountSID, AuthToken: p.authToken, APIKeySID: p.apiKey, APIKeySecret: p.apiSecret}
}

func (p *twilioProvider) baseURL() string { return strings.TrimSuffix(p.publicURL, "/") }

func (p *twilioProvider) addActivities(ctx context.Context, log *slog.Logger, acts *worker.Activities) error {
	rc := twilioclient.New(p.credentials(), p.transport)
	acts.Flex = activities.NewFlex(rc, activities.FlexConfig{
		WorkspaceSID:  p.workspaceSID,
		WorkflowSID:   p.workflowSID,
		WebhookURL:    p.baseURL() + ingress.TwilioConversationsPath,
		InactiveTimer: p.inactiveTimer,
		ClosedTimer:   p.closedTimer,
	}, log.With("provider", "twilio"))
	if acts.Files != nil {
		acts.Files.Media = rc.Media
	}
	log.Info("Twilio Flex activities ready", "twilio", p.credentials(), "workspace", p.workspaceSID, "webhook", p.baseURL()+ingress.TwilioConversationsPath)
	return nil
}

func (p *twilioProvider) addIngress(ctx context.Context, log *slog.Logger, cfg *ingress.Config, env ingressEnv) error {
	if p.authToken == "" {
		return errors.New("TWILIO_AUTH_TOKEN is required to verify Twilio webhook signatures")
	}
	cfg.Routes = append(cfg.Routes, ingress.TwilioRoutes(ingress.TwilioConfig{
		AuthToken:              p.authToken,
		PublicURL:              p.baseURL(),
		CustomerIdentityPrefix: activities.CustomerIdentityPrefix,
	}))
	log.Info("Twilio webhooks ready", "conversations", p.baseURL()+ingress.TwilioConversationsPath, "taskrouter", p.baseURL()+ingress.TwilioTaskRouterPath)
	return nil
}

const flexUsage = `Usage:
  flexcord flex setup [--force]   point the Flex TaskRouter workspace's event callback at ingress

setup sets the workspace's EventCallbackUrl to FLEXCORD_PUBLIC_URL/twilio/taskrouter and makes sure
its EventsFilter includes the events flexcord uses. It changes only what differs and can be run
again at any time. A Flex workspace is shared with other integrations: an existing callback to
another URL is replaced only with --force.
`

func flexCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, flexUsage)
		return nil
	}
	if args[0] != "setup" {
		fmt.Fprint(stderr, flexUsage)
		return fmt.Errorf("unknown flex command %q", args[0])
	}
	return flexSetup(ctx, &twilioProvider{}, args[1:], stdout, stderr)
}

// flexSetup runs `flexcord flex setup` with p's settings (and transport).
func flexSetup(ctx context.Context, p *twilioProvider, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("flex setup", stderr)
	b := config.NewBinder(fs)
	p.bind(b)
	force := fs.Bool("force", false, "replace an event callback URL that points elsewhere")
	if err := parse(fs, b, args); err != nil {
		return err
	}
	if !p.configured() {
		return errors.New("TWILIO_ACCOUNT_SID is not set: flex setup needs the Twilio credentials")
	}
	if err := p.validate(); err != nil {
		return err
	}
	callback := p.baseURL() + ingress.TwilioTaskRouterPath
	res, err := twilioclient.SetupEventCallback(twilioclient.New(p.credentials(), p.transport), p.workspaceSID, callback, *force)
	if err != nil {
		return err
	}
	if len(res.Changes) == 0 {
		fmt.Fprintf(stdout, "TaskRouter workspace %s is already set up: its events go to %s\n", p.workspaceSID, callback)
		return nil
	}
	fmt.Fprintf(stdout, "TaskRouter workspace %s updated:\n", p.workspaceSID)
	for _, c := range res.Changes {
		fmt.Fprintf(stdout, "  %s\n", c)
	}
	return nil
}
