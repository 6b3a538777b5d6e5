package ingress_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/mocks"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/workflows"
)

func signPush(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func pushServer(t *testing.T, tc *mocks.Client) http.Handler {
	t.Helper()
	secrets := map[string]string{"blog": "s3cret", "release-notes": "other"}
	return ingress.New(ingress.Config{
		Temporal: tc, Log: slog.New(slog.DiscardHandler),
		Routes: []func(*ingress.Server, *mux.Router){ingress.AnnouncementsRoutes(ingress.AnnouncementsConfig{
			Secret: func(source string) ([]byte, bool) { s, ok := secrets[source]; return []byte(s), ok },
		})},
	}).Handler()
}

func doPush(h http.Handler, source string, body []byte, sig string) (int, string) {
	req := httptest.NewRequest(http.MethodPost, "/announcements/"+source, strings.NewReader(string(body)))
	if sig != "" {
		req.Header.Set(ingress.AnnouncementsSignatureHeader, sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

const pushItem = `{"id":"tag:example.com,2026:42","url":"https://example.com/42","title":"Version 4.2","content_html":"<p>New <b>things</b>.</p>","date_published":"2026-11-28T10:00:00Z"}`

func TestAnnouncementsPushSignedIsSignalled(t *testing.T) {
	tc := mocks.NewClient(t)
	var got workflows.FeedPushSignal
	tc.On("SignalWorkflow", mock.Anything, workflows.FeedWorkflowID("blog"), "", workflows.SignalFeedPush, mock.Anything).
		Run(func(args mock.Arguments) { got = args.Get(4).(workflows.FeedPushSignal) }).Return(nil).Twice()
	h := pushServer(t, tc)
	body := []byte(pushItem)
	for _, sig := range []string{signPush("s3cret", body), "sha256=" + signPush("s3cret", body)} {
		if code, resp := doPush(h, "blog", body, sig); code != http.StatusAccepted {
			t.Fatalf("signed push (%s): %d %s", sig[:10], code, resp)
		}
	}
	if len(got.Items) != 1 || got.Items[0].Title != "Version 4.2" || got.Items[0].URL != "https://example.com/42" || got.EventID == "" {
		t.Fatalf("signal %+v", got)
	}
}

func TestAnnouncementsPushRejections(t *testing.T) {
	tc := mocks.NewClient(t) // no call is expected: none of these reach Temporal
	h := pushServer(t, tc)
	body := []byte(pushItem)
	cases := []struct {
		name, source string
		body         []byte
		sig          string
		code         int
		says         string
	}{
		{"no signature", "blog", body, "", 401, "X-Flexcord-Signature"},
		{"another source's secret", "blog", body, signPush("other", body), 401, "invalid"},
		{"signature of another body", "blog", []byte(strings.Replace(pushItem, "4.2", "6.6", 1)), signPush("s3cret", body), 401, "invalid"},
		{"not hex", "blog", body, "sha256=zz", 401, "invalid"},
		{"source without a secret", "nobody", body, signPush("", body), 401, "invalid"},
		{"a bad source name", "Blog%20!", body, signPush("s3cret", body), 401, "invalid"},
		{"not a feed item", "blog", []byte(`{"hello":"world"}`), signPush("s3cret", []byte(`{"hello":"world"}`)), 400, ""},
		{"not JSON or XML", "blog", []byte("hello"), signPush("s3cret", []byte("hello")), 400, ""},
		{"too large", "blog", []byte(strings.Repeat("x", 1<<20+1)), "00", 413, "1 MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, resp := doPush(h, c.source, c.body, c.sig)
			if code != c.code || !strings.Contains(resp, c.says) {
				t.Errorf("%d %s, want %d mentioning %q", code, resp, c.code, c.says)
			}
		})
	}
}

func TestAnnouncementsPushToAMissingSourceIs404AndBusyIs503(t *testing.T) {
	tc := mocks.NewClient(t)
	tc.On("SignalWorkflow", mock.Anything, workflows.FeedWorkflowID("release-notes"), "", workflows.SignalFeedPush, mock.Anything).
		Return(serviceerror.NewNotFound("workflow not found")).Once()
	tc.On("SignalWorkflow", mock.Anything, workflows.FeedWorkflowID("blog"), "", workflows.SignalFeedPush, mock.Anything).
		Return(serviceerror.NewUnavailable("down")).Once()
	h := pushServer(t, tc)
	body := []byte(pushItem)
	if code, resp := doPush(h, "release-notes", body, signPush("other", body)); code != http.StatusNotFound || !strings.Contains(resp, "feeds add") {
		t.Errorf("missing source: %d %s", code, resp)
	}
	if code, resp := doPush(h, "blog", body, signPush("s3cret", body)); code != http.StatusServiceUnavailable {
		t.Errorf("Temporal down: %d %s", code, resp)
	}
}

func TestFeedSecretVariable(t *testing.T) {
	if got := ingress.FeedSecretVariable("release-notes"); got != "FLEXCORD_FEED_SECRET_RELEASE_NOTES" {
		t.Errorf("%s", got)
	}
	t.Setenv("FLEXCORD_FEED_SECRET_BLOG", "x")
	if s, ok := ingress.SecretFromEnv("blog"); !ok || string(s) != "x" {
		t.Errorf("secret %q %v", s, ok)
	}
}
