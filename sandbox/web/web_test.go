package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/flexcord/flexcord/sandbox/web"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestHandlerServesPageAndAssets(t *testing.T) {
	h := web.Handler(web.Config{})
	tests := []struct {
		path        string
		contentType string
		contains    string
	}{
		{"/sandbox", "text/html; charset=utf-8", `data-testid="run-helpme"`},
		{"/sandbox/", "text/html; charset=utf-8", `data-testid="task-list"`},
		{"/sandbox/sandbox.js", "text/javascript; charset=utf-8", "/_emu/discord"},
		{"/sandbox/sandbox.css", "text/css; charset=utf-8", ".transcript"},
		{"/sandbox/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, tt.path)
			body := readAll(t, res.Body)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200: %s", tt.path, res.StatusCode, body)
			}
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("GET %s does not contain %q", tt.path, tt.contains)
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("Content-Security-Policy = %q, want same-origin scripts and requests only", csp)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
		})
	}
}

func TestHandlerRejects(t *testing.T) {
	h := web.Handler(web.Config{})
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/sandbox/missing.js", http.StatusNotFound},
		{http.MethodPost, "/sandbox", http.StatusMethodNotAllowed},
		{http.MethodPost, "/sandbox/config", http.StatusMethodNotAllowed},
		{http.MethodGet, "/elsewhere", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			if got := get(t, h, tt.method, tt.path).StatusCode; got != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestConfigJSON(t *testing.T) {
	tests := []struct {
		name string
		cfg  web.Config
		want map[string]string
	}{
		{
			name: "all fields",
			cfg: web.Config{
				TemporalUIURL: "http://127.0.0.1:8233", Namespace: "flexcord",
				DiscordGuildID: "10", DiscordChannelID: "11", BugChannelID: "12", FeatureChannelID: "13", MemberID: "20",
				AnnouncementsChannelID: "14", SampleFeedURL: "http://127.0.0.1:8080/_emu/feeds/sample",
				FeedRunURL: "http://127.0.0.1:8080/_dev/feeds/sample/run",
			},
			want: map[string]string{
				"temporal_ui_url": "http://127.0.0.1:8233", "namespace": "flexcord",
				"discord_guild_id": "10", "discord_channel_id": "11", "bug_channel_id": "12",
				"feature_channel_id": "13", "member_id": "20", "announcements_channel_id": "14",
				"sample_feed_url": "http://127.0.0.1:8080/_emu/feeds/sample",
				"feed_run_url":    "http://127.0.0.1:8080/_dev/feeds/sample/run",
			},
		},
		{
			name: "namespace defaults",
			cfg:  web.Config{},
			want: map[string]string{
				"temporal_ui_url": "", "namespace": "default", "discord_guild_id": "", "discord_channel_id": "",
				"bug_channel_id": "", "feature_channel_id": "", "member_id": "",
				"announcements_channel_id": "", "sample_feed_url": "", "feed_run_url": "",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, web.Handler(tt.cfg), http.MethodGet, "/sandbox/config")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET /sandbox/config = %d", res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var got map[string]string
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatalf("decode config: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("config = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("config[%q] = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestPageReferencesExist checks that every /sandbox/... URL the page loads
// is served, so a renamed asset cannot leave the page without its script or
// styles.
func TestPageReferencesExist(t *testing.T) {
	h := web.Handler(web.Config{})
	page := readAll(t, get(t, h, http.MethodGet, "/sandbox").Body)
	refs := regexp.MustCompile(`(?:src|href)="(/sandbox/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("page references %d assets, want at least the script, the styles and the icon", len(refs))
	}
	for _, m := range refs {
		if res := get(t, h, http.MethodGet, m[1]); res.StatusCode != http.StatusOK {
			t.Errorf("page references %s, which answers %d", m[1], res.StatusCode)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("page refers to an absolute URL; it must load nothing from elsewhere")
	}
}

// TestPageTestIDsAreUnique guards the ids the browser tests rely on: each
// static data-testid that names a single control appears exactly once.
func TestPageTestIDsAreUnique(t *testing.T) {
	page := readAll(t, get(t, web.Handler(web.Config{}), http.MethodGet, "/sandbox").Body)
	for _, id := range []string{
		"run-helpme", "run-bug", "run-new-feature", "member-select", "member-locale", "dms-closed",
		"member-input", "member-send", "dm-transcript", "twilio-5xx", "agent-name", "task-list",
		"task-detail", "accept", "wrapup", "complete", "agent-chat", "agent-input", "agent-send",
		"modal", "modal-submit", "conn-discord", "conn-twilio", "channel-transcript", "offline-banner",
		"cancel-task", "timeout-task", "tab-dms", "tab-announcements", "announcements", "announcements-empty",
		"announcements-unread", "feed-publish-title", "feed-publish-text", "feed-publish", "feed-run", "feed-status",
	} {
		if n := strings.Count(page, `data-testid="`+id+`"`); n != 1 {
			t.Errorf("data-testid %q appears %d times, want 1", id, n)
		}
	}
}

// TestContentSecurityPolicy checks that the page may call the sample feed
// and the feed-run URL, and show the sample feed's pictures, when the
// configuration puts them on another origin, and nothing else.
func TestContentSecurityPolicy(t *testing.T) {
	directive := func(csp, name string) string {
		for _, d := range strings.Split(csp, ";") {
			if d = strings.TrimSpace(d); strings.HasPrefix(d, name+" ") {
				return d
			}
		}
		return ""
	}
	tests := []struct {
		name            string
		cfg             web.Config
		connect, images string
	}{
		{"same origin", web.Config{}, "connect-src 'self'", "img-src 'self' data:"},
		{"paths", web.Config{SampleFeedURL: "/_emu/feeds/sample", FeedRunURL: "/_dev/feeds/run"}, "connect-src 'self'", "img-src 'self' data:"},
		{
			"other origins",
			web.Config{SampleFeedURL: "http://127.0.0.1:8080/_emu/feeds/sample", FeedRunURL: "https://Flexcord.example:8443/run"},
			"connect-src 'self' http://127.0.0.1:8080 https://flexcord.example:8443", "img-src 'self' data: http://127.0.0.1:8080",
		},
		{
			"one origin for both",
			web.Config{SampleFeedURL: "http://[::1]:8080/_emu/feeds/sample", FeedRunURL: "http://[::1]:8080/run"},
			"connect-src 'self' http://[::1]:8080", "img-src 'self' data: http://[::1]:8080",
		},
		{
			"nothing it cannot vouch for",
			web.Config{SampleFeedURL: "javascript:alert(1)", FeedRunURL: "http://a.example;script-src *"},
			"connect-src 'self'", "img-src 'self' data:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csp := get(t, web.Handler(tt.cfg), http.MethodGet, "/sandbox").Header.Get("Content-Security-Policy")
			if got := directive(csp, "connect-src"); got != tt.connect {
				t.Errorf("%s, want %s", got, tt.connect)
			}
			if got := directive(csp, "img-src"); got != tt.images {
				t.Errorf("%s, want %s", got, tt.images)
			}
			if got := directive(csp, "script-src"); got != "script-src 'self'" {
				t.Errorf("%s, want script-src 'self'", got)
			}
		})
	}
}
