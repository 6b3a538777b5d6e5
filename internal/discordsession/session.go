// Package discordsession builds the discordgo session flexcord uses for both the Discord
// activities (REST) and the ingress gateway listener.
//
// The session is configured so that Temporal, not discordgo, owns retries: discordgo's own
// endless rate-limit retry and its 502 retries are switched off, so a 429 or a 5xx comes back to
// the caller at once and the activity's retry policy decides what happens next.
package discordsession

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
)

// Intents are the gateway intents flexcord asks for: guild events and direct messages. Neither is
// privileged, and DM content arrives without the MESSAGE_CONTENT intent.
const Intents = discordgo.IntentsGuilds | discordgo.IntentsDirectMessages

// RequestTimeout bounds every REST request, well inside an activity's start-to-close timeout.
const RequestTimeout = 15 * time.Second

// New returns a discordgo session for the bot token (with or without the "Bot " prefix) whose
// REST client uses transport (nil means http.DefaultTransport). Pointing transport at the
// sandbox emulator is enough to run against it: its GET /gateway answer hands discordgo the
// emulator's websocket URL.
func New(token string, transport http.RoundTripper) (*discordgo.Session, error) {
	token = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(token), "Bot "))
	if token == "" {
		return nil, errors.New("discord session: the bot token is empty")
	}
	s, err := discordgo.New("Bot " + token)
	if err != nil {
		// discordgo.New never fails today; keep the token out of the message if it ever does.
		return nil, errors.New("discord session: discordgo could not create a session")
	}
	if transport == nil {
		transport = http.DefaultTransport
	}
	s.Client = &http.Client{Transport: transport, Timeout: RequestTimeout}
	s.ShouldRetryOnRateLimit = false
	s.MaxRestRetries = 0
	s.ShouldReconnectOnError = true
	s.StateEnabled = false
	s.Identify.Intents = Intents
	s.LogLevel = discordgo.LogWarning
	return s, nil
}
