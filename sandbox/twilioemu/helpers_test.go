package twilioemu_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"

	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

const (
	testAccountSID   = "AC0123456789abcdef0123456789abcdef"
	testAuthToken    = "emulatorAuthToken0123"
	testWorkspaceSID = "WS0123456789abcdef0123456789abcdef"
	testWorkflowSID  = "WW0123456789abcdef0123456789abcdef"
	specDir          = "testdata/twilio-oai"
)

// startEmu starts a validating emulator with fast webhook retries.
func startEmu(t *testing.T, mod ...func(*twilioemu.Options)) *twilioemu.Server {
	t.Helper()
	opts := twilioemu.Options{
		AccountSID:   testAccountSID,
		AuthToken:    testAuthToken,
		WorkspaceSID: testWorkspaceSID,
		WorkflowSID:  testWorkflowSID,
		SpecDir:      specDir,
		Retry: twilioemu.RetryPolicy{
			MaxAttempts:    3,
			InitialBackoff: 5 * time.Millisecond,
			MaxBackoff:     20 * time.Millisecond,
			Timeout:        2 * time.Second,
		},
	}
	for _, m := range mod {
		m(&opts)
	}
	return twilioemu.StartTest(t, opts)
}

// restClient returns twilio-go pointed at emu through its transport only.
func restClient(emu *twilioemu.Server, token string, timeout time.Duration) *twilioclient.RestClient {
	c := &client.Client{
		Credentials: client.NewCredentials(testAccountSID, token),
		HTTPClient:  &http.Client{Transport: emu.Transport(), Timeout: timeout},
	}
	c.SetAccountSid(testAccountSID)
	return twilioclient.NewWithClient(c)
}

// twilioError extracts the Twilio REST error from err or fails the test.
func twilioError(t *testing.T, err error) *client.TwilioRestError {
	t.Helper()
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v (%T), want a *client.TwilioRestError", err, err)
	}
	return te
}

// hookRequest is one webhook request the receiver got.
type hookRequest struct {
	URL    string // the full URL the emulator was configured with
	Header http.Header
	Body   []byte
	Form   url.Values
}

// receiver is a webhook endpoint that records requests and answers with
// the statuses it is told to (200 once they run out).
type receiver struct {
	srv  *httptest.Server
	reqs chan hookRequest

	mu       sync.Mutex
	statuses []int
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	rv := &receiver{reqs: make(chan hookRequest, 100), statuses: statuses}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read webhook body: %v", err)
		}
		form, _ := url.ParseQuery(string(body))
		if r.Method == http.MethodGet {
			form = r.URL.Query()
		}
		rv.reqs <- hookRequest{URL: "http://" + r.Host + r.URL.RequestURI(), Header: r.Header.Clone(), Body: body, Form: form}
		rv.mu.Lock()
		status := http.StatusOK
		if len(rv.statuses) > 0 {
			status, rv.statuses = rv.statuses[0], rv.statuses[1:]
		}
		rv.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rv.srv.Close)
	return rv
}

// next waits for the next request.
func (rv *receiver) next(t *testing.T) hookRequest {
	t.Helper()
	select {
	case r := <-rv.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a webhook request")
		return hookRequest{}
	}
}

// none checks that no request is pending.
func (rv *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-rv.reqs:
		t.Fatalf("unexpected webhook %s %q", r.Form.Get("EventType"), r.Body)
	default:
	}
}

// verify checks X-Twilio-Signature with twilio-go's own validator.
func verify(t *testing.T, r hookRequest, configuredURL string) {
	t.Helper()
	rv := client.NewRequestValidator(testAuthToken)
	sig := r.Header.Get("X-Twilio-Signature")
	if sig == "" {
		t.Fatalf("%s: no X-Twilio-Signature", r.Form.Get("EventType"))
	}
	var ok bool
	if len(r.Body) > 0 {
		ok = rv.ValidateBody(configuredURL, r.Body, sig)
	} else {
		ok = rv.Validate(r.URL, map[string]string{}, sig)
	}
	if !ok {
		t.Errorf("%s: signature %q does not verify for %s", r.Form.Get("EventType"), sig, configuredURL)
	}
}

// waitEvent waits for an event that satisfies match.
func waitEvent(t *testing.T, events <-chan twilioemu.Event, match func(twilioemu.Event) bool) twilioemu.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("event channel closed")
			}
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatal("timed out waiting for an emulator event")
		}
	}
}
