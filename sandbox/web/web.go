// Package web serves the sandbox page of `flexcord dev`: one page on which a
// visitor plays both sides of flexcord, a Discord community member on the
// left and a Twilio Flex agent on the right, against the local emulators.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary; it
// fetches nothing from the internet. Its script talks to the emulators'
// JSON control APIs on the same origin, so whoever mounts Handler must also
// mount the Discord emulator under /_emu/discord/ and the Twilio emulator
// under /_emu/twilio/:
//
//	mux := http.NewServeMux()
//	page := web.Handler(web.Config{TemporalUIURL: "http://127.0.0.1:8233", Namespace: "default"})
//	mux.Handle("/sandbox", page)
//	mux.Handle("/sandbox/", page)
//	mux.Handle("/_emu/discord/", discordEmu.Handler())
//	mux.Handle(twilioemu.ControlPrefix, twilioEmu)
//
// Live updates come from the emulators' Server-Sent Events streams
// (/_emu/discord/events and /_emu/twilio/events).
//
// Both sides can attach files. The member's direct message goes to
// POST /_emu/discord/members/{id}/dm as multipart/form-data (content and
// files[n]), as the Discord app uploads; the agent's files are uploaded one
// by one to POST /_emu/twilio/media (the Media Content Service) and named in
// POST /_emu/twilio/tasks/{sid}/messages {"body", "media_sids"}, as Flex
// does. Pictures show inline and other files as download links, loaded
// from /_emu/discord/attachments/{channel}/{attachment}/{filename} and
// /_emu/twilio/media/{sid}/content on the page's own origin.
//
// With Config.AnnouncementsChannelID set, the Discord side has a second tab,
// #announcements, that shows that channel's posts the way Discord renders
// embeds; with Config.SampleFeedURL and Config.FeedRunURL set, the tab also
// lets the visitor publish on the sample blog (sandbox/feedemu, mounted at
// /_emu/feeds/) and make flexcord fetch it at once.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Path is where the page is served; its assets are served under Path + "/".
const Path = "/sandbox"

//go:embed static
var static embed.FS

// Config is what the page needs to know about the running stack. It is
// served to the page as JSON at /sandbox/config. Empty fields fall back to
// what the Discord emulator reports (its first guild and channel) or, for
// TemporalUIURL, hide the links into the Temporal UI.
type Config struct {
	// TemporalUIURL is the base URL of the Temporal UI, for example
	// "http://127.0.0.1:8233". The page links each conversation and case
	// to its workflow there.
	TemporalUIURL string `json:"temporal_ui_url"`
	// Namespace is the Temporal namespace of the workflows.
	Namespace string `json:"namespace"`
	// DiscordGuildID is the guild in which the page runs slash commands.
	DiscordGuildID string `json:"discord_guild_id"`
	// DiscordChannelID is the channel /helpme runs in.
	DiscordChannelID string `json:"discord_channel_id"`
	// BugChannelID and FeatureChannelID are the channels /bug and
	// /new_feature run in (#bug-report and #feature-request).
	BugChannelID     string `json:"bug_channel_id"`
	FeatureChannelID string `json:"feature_channel_id"`
	// MemberID is the Discord member the page acts as at first; the page
	// creates the member in the emulator if it does not exist.
	MemberID string `json:"member_id"`
	// AnnouncementsChannelID is the #announcements channel, where flexcord
	// posts the items of the brand's feeds. The page shows it in a tab of
	// its own, beside the direct messages; empty hides the tab.
	AnnouncementsChannelID string `json:"announcements_channel_id"`
	// SampleFeedURL is the base of the sample feed's routes (package
	// sandbox/feedemu), for example "http://127.0.0.1:8080/_emu/feeds/sample"
	// or just its path: the page publishes posts with POST SampleFeedURL +
	// "/items" and links to SampleFeedURL + ".xml". Empty hides the publish
	// form.
	SampleFeedURL string `json:"sample_feed_url"`
	// FeedRunURL is a URL the page POSTs to, without a body, to make
	// flexcord fetch the sample feed now. It answers 2xx with a JSON object
	// {"new_items": <number of posts it found and posted>}, or, when the
	// fetch failed, an error status with {"error": "<what went wrong>"} (or
	// the reason as plain text); the page shows either. Empty hides the
	// "Fetch now" button.
	FeedRunURL string `json:"feed_run_url"`
}

// Handler returns the handler of the sandbox page: the page at /sandbox
// (and /sandbox/), its assets under /sandbox/, and the configuration as JSON
// at /sandbox/config. Mount it for both "/sandbox" and "/sandbox/".
func Handler(cfg Config) http.Handler {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic("web: embedded static files missing: " + err.Error()) // impossible: the directory is embedded
	}
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic("web: embedded index.html missing: " + err.Error())
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		panic("web: encode config: " + err.Error()) // impossible: only strings
	}
	assets := http.StripPrefix(Path+"/", http.FileServerFS(files))
	csp := contentSecurityPolicy(cfg)

	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(index)
	}
	mux.HandleFunc("GET "+Path, page)
	mux.HandleFunc("GET "+Path+"/{$}", page)
	mux.HandleFunc("GET "+Path+"/index.html", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path, http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET "+Path+"/config", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(config)
	})
	mux.Handle("GET "+Path+"/", assets)
	return securityHeaders(csp, mux)
}

// contentSecurityPolicy keeps the page to its own origin: scripts, styles
// and requests only from the server that serves it (the emulators are
// mounted there), nothing from elsewhere. The one exception is the sample
// feed and the feed-run URL when the configuration puts them on another
// origin: the page may send its requests there and show the sample feed's
// pictures. Links to the Temporal UI and to posts are navigations and are
// not affected.
func contentSecurityPolicy(cfg Config) string {
	connect, img := []string{"'self'"}, []string{"'self'", "data:"}
	if o := origin(cfg.SampleFeedURL); o != "" {
		connect = append(connect, o)
		img = append(img, o)
	}
	if o := origin(cfg.FeedRunURL); o != "" && !slices.Contains(connect, o) {
		connect = append(connect, o)
	}
	return "default-src 'self'; img-src " + strings.Join(img, " ") + "; style-src 'self'; " +
		"script-src 'self'; connect-src " + strings.Join(connect, " ") + "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
}

// hostPort is what origin accepts as the host of a URL: a name or an IP
// address (IPv6 in brackets) and an optional port, nothing that could end a
// CSP source expression.
var hostPort = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

// origin returns the origin of an absolute http(s) URL, or "" for a path,
// another scheme or anything it cannot vouch for.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !hostPort.MatchString(u.Host) {
		return ""
	}
	return u.Scheme + "://" + strings.ToLower(u.Host)
}

// securityHeaders sets the page's Content-Security-Policy and the headers
// that go with it.
func securityHeaders(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
