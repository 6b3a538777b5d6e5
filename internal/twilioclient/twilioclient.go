// Package twilioclient builds the twilio-go REST client flexcord uses, and holds the one-off
// TaskRouter workspace set-up that `flexcord flex setup` runs.
//
// The client is a narrow one: twilio-go's own twilio.RestClient holds every Twilio API and
// links all of them into the binary (about 20 MB), so RestClient holds only the three services
// flexcord calls. Do not use twilio.NewRestClient* in code the production build links
// (cmd/flexcord's TestProductionBuildLinksNarrowTwilioClient checks it).
//
// twilio-go has no setting for its base URLs: every service talks to *.twilio.com. Tests and the
// dev stack redirect it with an http.RoundTripper (see sandbox/twilioemu), which is the only thing
// New lets a caller change.
package twilioclient

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/twilio/twilio-go/client"
	conversationsv1 "github.com/twilio/twilio-go/rest/conversations/v1"
	flexv1 "github.com/twilio/twilio-go/rest/flex/v1"
	taskrouterv1 "github.com/twilio/twilio-go/rest/taskrouter/v1"
)

// Timeout bounds one Twilio API call. twilio-go sends requests without a context, so this is what
// stops a call that hangs.
const Timeout = 10 * time.Second

// MediaTimeout bounds one upload or download of a file.
const MediaTimeout = 2 * time.Minute

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

// RestClient is the part of twilio-go's twilio.RestClient that flexcord uses: the same fields,
// so code written against twilio.RestClient (rc.ConversationsV1.CreateConversation(...)) works
// unchanged.
type RestClient struct {
	ConversationsV1 *conversationsv1.ApiService
	FlexV1          *flexv1.ApiService
	TaskrouterV1    *taskrouterv1.ApiService
	// Media is the Media Content Service (nil from NewWithClient).
	Media *Media
}

// New returns a twilio-go client for creds whose requests go through transport (nil means
// http.DefaultTransport). Like twilio-go's own default client it does not follow redirects and
// gives up on a call after Timeout. The edge and region are cleared, so TWILIO_EDGE and
// TWILIO_REGION in the environment cannot send requests elsewhere.
func New(creds Credentials, transport http.RoundTripper) *RestClient {
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
	rc := NewWithClient(c)
	// Files take longer than API calls: the media client has a longer timeout of its own.
	rc.Media = newMedia(creds, &http.Client{Transport: transport, Timeout: MediaTimeout})
	return rc
}

// NewWithClient returns a RestClient whose services send their requests through c, for callers
// (tests) that set up the twilio-go client themselves; New is the one to use otherwise. The edge
// and region are left empty, whatever TWILIO_EDGE and TWILIO_REGION say, so requests go to the
// plain *.twilio.com hosts the services name.
func NewWithClient(c client.BaseClient) *RestClient {
	// Not client.NewRequestHandler: it reads TWILIO_EDGE and TWILIO_REGION.
	rh := &client.RequestHandler{Client: c}
	return &RestClient{
		ConversationsV1: conversationsv1.NewApiService(rh),
		FlexV1:          flexv1.NewApiService(rh),
		TaskrouterV1:    taskrouterv1.NewApiService(rh),
	}
}
