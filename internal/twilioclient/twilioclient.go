// Package twilioclient builds the twilio-go REST client flexcord uses, and holds the one-off
// TaskRouter workspace set-up that `flexcord flex setup` runs.
//
// twilio-go has no setting for its base URLs: every service talks to *.twilio.com. Tests and the
// dev stack redirect it with an http.RoundTripper (see sandbox/twilioemu), which is the only thing
// New lets a caller change.
package twilioclient

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
)

// Timeout bounds one Twilio API call. twilio-go sends requests without a context, so this is what
// stops a call that hangs.
const Timeout = 10 * time.Second

// Credentials authenticate flexcord to Twilio. An API key and secret, when both are set, are used
// instead of the account's auth token; AccountSID is always needed (it scopes the requests).
type Credentials struct {
	AccountSID   string
	AuthToken    string
	APIKeySID    string
	APIKeySecret string
}

// UsesAPIKey reports whether the API key and secret are used.
func (c Credentials) UsesAPIKey() bool { return c.APIKeySID != "" && c.APIKeySecret != "" }

// LogValue logs the credentials without their secrets.
func (c Credentials) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("account_sid", c.AccountSID)}
	if c.UsesAPIKey() {
		attrs = append(attrs, slog.String("api_key_sid", c.APIKeySID))
	}
	return slog.GroupValue(attrs...)
}

// String describes the credentials without their secrets, so that printing them by mistake
// leaks nothing.
func (c Credentials) String() string {
	if c.UsesAPIKey() {
		return "twilio account " + c.AccountSID + " (API key " + c.APIKeySID + ")"
	}
	return "twilio account " + c.AccountSID
}

// GoString keeps %#v from printing the secrets too.
func (c Credentials) GoString() string { return "twilioclient.Credentials{" + c.String() + "}" }

// New returns a twilio-go client for creds whose requests go through transport (nil means
// http.DefaultTransport). Like twilio-go's own default client it does not follow redirects and
// gives up on a call after Timeout. The edge and region are cleared, so TWILIO_EDGE and
// TWILIO_REGION in the environment cannot send requests elsewhere.
func New(creds Credentials, transport http.RoundTripper) *twilio.RestClient {
	user, pass := creds.AccountSID, creds.AuthToken
	if creds.UsesAPIKey() {
		user, pass = creds.APIKeySID, creds.APIKeySecret
	}
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient: &http.Client{
			Transport: transport,
			Timeout:   Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	c.SetAccountSid(creds.AccountSID)
	rc := twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})
	rc.SetEdge("")
	rc.SetRegion("")
	return rc
}
