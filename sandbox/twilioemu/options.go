package twilioemu

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"
)

// Options configure a Server.
type Options struct {
	// AccountSID is the account (AC followed by 32 hex digits). Required.
	AccountSID string
	// AuthToken signs webhooks and, with AccountSID, authenticates API
	// calls. Required; it must be alphanumeric because twilio-go refuses
	// anything else.
	AuthToken string
	// APIKeySID and APIKeySecret, if both set, are accepted as Basic-auth
	// credentials too (an API key is used in place of the account).
	APIKeySID    string
	APIKeySecret string

	// WorkspaceSID is the Flex TaskRouter workspace (WS...); WorkflowSID its
	// workflow (WW...). Random SIDs are used when they are empty.
	WorkspaceSID string
	WorkflowSID  string

	// EventCallbackURL and EventsFilter preset the workspace's event
	// callback; both can be changed later through UpdateWorkspace.
	EventCallbackURL string
	EventsFilter     string

	// SpecDir is a directory holding twilio_conversations_v1.json,
	// twilio_flex_v1.json and twilio_taskrouter_v1.json (directly or under
	// spec/json/). When set, every request and response is validated
	// against them. Empty disables validation.
	SpecDir string

	// Logger receives the emulator's logs; nil means slog.Default().
	Logger *slog.Logger

	// Retry is the webhook retry policy; zero fields take the defaults of
	// DefaultRetryPolicy.
	Retry RetryPolicy

	// WebhookClient sends webhooks and event callbacks; nil means a plain
	// http.Client (per-attempt timeouts come from Retry.Timeout).
	WebhookClient *http.Client

	// TimerInterval is how often conversation state timers (Timers.Inactive,
	// Timers.Closed) are checked against the clock; zero means one second.
	// [Server.AdvanceClock] checks them at once.
	TimerInterval time.Duration

	// MaxMediaSize is the largest file the Media Content Service accepts;
	// larger uploads answer 413 with code 50512. Zero means
	// DefaultMaxMediaSize (150 MB).
	MaxMediaSize int64
	// MediaURLLifetime is how long a Media resource's
	// links.content_direct_temporary URL works; the emulator answers 403
	// after. Zero means DefaultMediaURLLifetime (5 minutes).
	MediaURLLifetime time.Duration
}

// RetryPolicy says how webhooks and event callbacks are re-sent.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry; it doubles for
	// every further retry up to MaxBackoff.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Timeout bounds one attempt; an answer that takes longer counts as a
	// failure (Twilio allows 5 s for Conversations webhooks).
	Timeout time.Duration
}

// DefaultRetryPolicy is used for the zero fields of Options.Retry.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:    3,
	InitialBackoff: time.Second,
	MaxBackoff:     10 * time.Second,
	Timeout:        5 * time.Second,
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = DefaultRetryPolicy.InitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultRetryPolicy.MaxBackoff
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultRetryPolicy.Timeout
	}
	return p
}

// backoff returns the wait after the given failed attempt (1-based).
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

var (
	alphanumeric = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	sidPattern   = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{32}$`)
)

func (o Options) validate() error {
	var errs []error
	if !sidPattern.MatchString(o.AccountSID) || o.AccountSID[:2] != "AC" {
		errs = append(errs, fmt.Errorf("AccountSID %q is not AC followed by 32 hex digits", o.AccountSID))
	}
	if !alphanumeric.MatchString(o.AuthToken) {
		errs = append(errs, errors.New("AuthToken must be a non-empty alphanumeric string"))
	}
	if (o.APIKeySID == "") != (o.APIKeySecret == "") {
		errs = append(errs, errors.New("APIKeySID and APIKeySecret must be set together"))
	}
	for _, c := range []struct{ name, sid, prefix string }{
		{"WorkspaceSID", o.WorkspaceSID, "WS"},
		{"WorkflowSID", o.WorkflowSID, "WW"},
	} {
		if c.sid != "" && (!sidPattern.MatchString(c.sid) || c.sid[:2] != c.prefix) {
			errs = append(errs, fmt.Errorf("%s %q is not %s followed by 32 hex digits", c.name, c.sid, c.prefix))
		}
	}
	return errors.Join(errs...)
}
