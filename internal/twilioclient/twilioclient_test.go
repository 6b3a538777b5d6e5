package twilioclient_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

const (
	accountSID   = "AC0123456789abcdef0123456789abcdef"
	authToken    = "clientTestToken0123"
	apiKeySID    = "SK0123456789abcdef0123456789abcdef"
	apiKeySecret = "clientTestSecret0123"
	workspaceSID = "WS0123456789abcdef0123456789abcdef"
	ourURL       = "https://support.example.com/twilio/taskrouter"
)

func startEmu(t *testing.T, opts twilioemu.Options) *twilioemu.Server {
	t.Helper()
	opts.AccountSID, opts.AuthToken = accountSID, authToken
	opts.APIKeySID, opts.APIKeySecret = apiKeySID, apiKeySecret
	opts.WorkspaceSID = workspaceSID
	opts.SpecDir = "../../sandbox/twilioemu/testdata/twilio-oai"
	opts.Logger = slog.New(slog.DiscardHandler)
	return twilioemu.StartTest(t, opts)
}

func TestNewAuthenticatesAndIgnoresEdge(t *testing.T) {
	t.Setenv("TWILIO_EDGE", "sydney")
	t.Setenv("TWILIO_REGION", "au1")
	emu := startEmu(t, twilioemu.Options{})
	tests := []struct {
		name  string
		creds twilioclient.Credentials
		ok    bool
	}{
		{"account and auth token", twilioclient.Credentials{AccountSID: accountSID, AuthToken: authToken}, true},
		{"API key and secret", twilioclient.Credentials{AccountSID: accountSID, APIKeySID: apiKeySID, APIKeySecret: apiKeySecret}, true},
		{"API key wins over the auth token", twilioclient.Credentials{AccountSID: accountSID, AuthToken: "wrongToken", APIKeySID: apiKeySID, APIKeySecret: apiKeySecret}, true},
		{"wrong auth token", twilioclient.Credentials{AccountSID: accountSID, AuthToken: "wrongToken"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := twilioclient.New(tt.creds, emu.Transport())
			_, err := rc.TaskrouterV1.FetchWorkspace(workspaceSID)
			if (err == nil) != tt.ok {
				t.Errorf("FetchWorkspace error = %v", err)
			}
		})
	}
}

// hostRecorder fails every request after noting the host it was for.
type hostRecorder struct{ hosts []string }

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.hosts = append(h.hosts, r.URL.Host)
	return nil, errors.New("not sent")
}

func TestNewSendsEachServiceToItsPlainHost(t *testing.T) {
	t.Setenv("TWILIO_EDGE", "sydney")
	t.Setenv("TWILIO_REGION", "au1")
	rec := &hostRecorder{}
	rc := twilioclient.New(twilioclient.Credentials{AccountSID: accountSID, AuthToken: authToken}, rec)
	_, _ = rc.ConversationsV1.FetchConversation("CH0123456789abcdef0123456789abcdef")
	_, _ = rc.FlexV1.FetchInteraction("KD0123456789abcdef0123456789abcdef")
	_, _ = rc.TaskrouterV1.FetchWorkspace(workspaceSID)
	want := []string{"conversations.twilio.com", "flex-api.twilio.com", "taskrouter.twilio.com"}
	if fmt.Sprint(rec.hosts) != fmt.Sprint(want) {
		t.Errorf("hosts = %q, want %q", rec.hosts, want)
	}
}

func TestCredentialsNeverPrintSecrets(t *testing.T) {
	c := twilioclient.Credentials{AccountSID: accountSID, AuthToken: authToken, APIKeySID: apiKeySID, APIKeySecret: apiKeySecret}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("creds", "twilio", c)
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v", c, c), b.String()} {
		if strings.Contains(out, authToken) || strings.Contains(out, apiKeySecret) || !strings.Contains(out, accountSID) {
			t.Errorf("printed credentials: %s", out)
		}
	}
}

func TestSetupEventCallback(t *testing.T) {
	const all = "reservation.accepted,task.wrapup,task.completed,task.canceled,workflow.timeout"
	tests := []struct {
		name       string
		url        string
		filter     string
		force      bool
		wantErr    bool
		wantURL    string
		wantFilter string
		changes    int
	}{
		{"fresh workspace", "", "", false, false, ourURL, all, 2},
		{"already set up", ourURL, all, false, false, ourURL, all, 0},
		{"already set up, events in another order", ourURL, "task.canceled,workflow.timeout,reservation.accepted,task.completed,task.wrapup", false, false, ourURL,
			"task.canceled,workflow.timeout,reservation.accepted,task.completed,task.wrapup", 0},
		{"our URL, events missing", ourURL, "task.created,task.wrapup", false, false, ourURL,
			"task.created,task.wrapup,reservation.accepted,task.completed,task.canceled,workflow.timeout", 1},
		{"our URL, every event", ourURL, "", false, false, ourURL, all, 1},
		{"another integration's URL", "https://other.example.com/events", "task.created", false, true, "https://other.example.com/events", "task.created", 0},
		{"another integration's URL, forced", "https://other.example.com/events", "task.created", true, false, ourURL, all, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := startEmu(t, twilioemu.Options{EventCallbackURL: tt.url, EventsFilter: tt.filter})
			rc := twilioclient.New(twilioclient.Credentials{AccountSID: accountSID, AuthToken: authToken}, emu.Transport())
			res, err := twilioclient.SetupEventCallback(rc, workspaceSID, ourURL, tt.force)
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, twilioclient.ErrCallbackInUse)) {
				t.Fatalf("error = %v", err)
			}
			if len(res.Changes) != tt.changes {
				t.Errorf("changes = %q, want %d", res.Changes, tt.changes)
			}
			ws := emu.Workspace()
			if ws.EventCallbackURL != tt.wantURL || ws.EventsFilter != tt.wantFilter {
				t.Errorf("workspace = %q %q, want %q %q", ws.EventCallbackURL, ws.EventsFilter, tt.wantURL, tt.wantFilter)
			}
			if err != nil {
				return
			}
			// Running it again changes nothing.
			again, err := twilioclient.SetupEventCallback(rc, workspaceSID, ourURL, false)
			if err != nil || len(again.Changes) != 0 {
				t.Errorf("second run: %q, %v", again.Changes, err)
			}
		})
	}
}
