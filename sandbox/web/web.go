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
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
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
	return securityHeaders(mux)
}

// securityHeaders keeps the page to its own origin: scripts, styles and
// requests only from the server that serves it (the emulators are mounted
// there), nothing from elsewhere. Links to the Temporal UI are navigations
// and are not affected.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; "+
			"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
