package discordsession

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"
)

func TestNew(t *testing.T) {
	rt := http.DefaultTransport
	for _, token := range []string{"abc.def", "Bot abc.def", " abc.def\n"} {
		s, err := New(token, rt)
		if err != nil {
			t.Fatalf("New(%q): %v", token, err)
		}
		if s.Token != "Bot abc.def" || s.Identify.Token != "Bot abc.def" {
			t.Errorf("New(%q): token %q", token, s.Token)
		}
		if s.ShouldRetryOnRateLimit || s.MaxRestRetries != 0 || !s.ShouldReconnectOnError {
			t.Errorf("retries: on rate limit %v, REST %d, reconnect %v; want Temporal to own retries",
				s.ShouldRetryOnRateLimit, s.MaxRestRetries, s.ShouldReconnectOnError)
		}
		if s.Identify.Intents != discordgo.IntentsGuilds|discordgo.IntentsDirectMessages {
			t.Errorf("intents %d", s.Identify.Intents)
		}
		if s.Client.Transport != rt || s.Client.Timeout != RequestTimeout {
			t.Errorf("client %+v", s.Client)
		}
	}
	if _, err := New("  ", nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("New with no token: %v", err)
	}
}
