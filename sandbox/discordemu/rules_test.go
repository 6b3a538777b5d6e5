package discordemu_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/sandbox/discordemu"
)

func restError(t *testing.T, err error) (status, code int, body string) {
	t.Helper()
	var re *discordgo.RESTError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want a *discordgo.RESTError", err)
	}
	if re.Message != nil {
		code = re.Message.Code
	}
	return re.Response.StatusCode, code, string(re.ResponseBody)
}

func TestMessageRules(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members()})
	dg := newSession(t, emu)
	dm, err := dg.UserChannelCreate(aliceID)
	if err != nil {
		t.Fatalf("UserChannelCreate: %v", err)
	}
	again, err := dg.UserChannelCreate(aliceID)
	if err != nil || again.ID != dm.ID {
		t.Fatalf("second UserChannelCreate = %v, %v; want the same channel %s", again, err, dm.ID)
	}

	tests := []struct {
		name       string
		send       func() error
		wantStatus int
		wantCode   int
		wantBody   string
	}{
		{
			name:       "2001 characters is too long",
			send:       func() error { _, err := dg.ChannelMessageSend(dm.ID, strings.Repeat("é", 2001)); return err },
			wantStatus: http.StatusBadRequest, wantCode: discordgo.ErrCodeInvalidFormBody,
			wantBody: `"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH"`,
		},
		{
			name:       "empty message",
			send:       func() error { _, err := dg.ChannelMessageSendComplex(dm.ID, &discordgo.MessageSend{}); return err },
			wantStatus: http.StatusBadRequest, wantCode: discordgo.ErrCodeCannotSendEmptyMessage,
		},
		{
			name:       "unknown channel",
			send:       func() error { _, err := dg.ChannelMessageSend("123", "hi"); return err },
			wantStatus: http.StatusNotFound, wantCode: discordgo.ErrCodeUnknownChannel,
		},
		{
			name: "member with DMs closed",
			send: func() error {
				if err := emu.SetDMsClosed(bobID, true); err != nil {
					t.Fatal(err)
				}
				ch, err := dg.UserChannelCreate(bobID)
				if err != nil {
					t.Fatal(err)
				}
				_, err = dg.ChannelMessageSend(ch.ID, "hi")
				return err
			},
			wantStatus: http.StatusForbidden, wantCode: discordgo.ErrCodeCannotSendMessagesToThisUser,
		},
		{
			name: "5xx fault",
			send: func() error {
				emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: 503, Code: 130000, Message: "API resource is currently overloaded."})
				_, err := dg.ChannelMessageSend(dm.ID, "hi")
				return err
			},
			wantStatus: http.StatusServiceUnavailable, wantCode: discordgo.ErrCodeAPIResourceIsCurrentlyOverloaded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, body := restError(t, tt.send())
			if status != tt.wantStatus || code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("got %d code %d body %s; want %d code %d containing %q", status, code, body, tt.wantStatus, tt.wantCode, tt.wantBody)
			}
		})
	}

	t.Run("2000 characters is fine", func(t *testing.T) {
		if _, err := dg.ChannelMessageSend(dm.ID, strings.Repeat("é", 2000)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bad token is 401", func(t *testing.T) {
		bad, _ := discordgo.New("Bot wrong")
		bad.Client = &http.Client{Transport: emu.Transport()}
		_, err := bad.User("@me")
		if status, code, _ := restError(t, err); status != http.StatusUnauthorized || code != 0 {
			t.Fatalf("got %d code %d, want 401 code 0", status, code)
		}
	})
}

func TestRateLimits(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members()})
	dg := newSession(t, emu)
	dm, err := dg.UserChannelCreate(aliceID)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("headers on every response", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "https://discord.com/api/v9/users/@me", nil)
		req.Header.Set("Authorization", "Bot "+emu.Token())
		resp, err := (&http.Client{Transport: emu.Transport()}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("missing %s", h)
			}
		}
	})

	t.Run("429 without retry gives RetryAfter", func(t *testing.T) {
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: 429, RetryAfter: 1500 * time.Millisecond})
		_, err := dg.ChannelMessageSend(dm.ID, "hi", discordgo.WithRetryOnRatelimit(false))
		var rle *discordgo.RateLimitError
		if !errors.As(err, &rle) || rle.RetryAfter != 1500*time.Millisecond {
			t.Fatalf("error = %v, want a RateLimitError with RetryAfter 1.5s", err)
		}
	})

	t.Run("429 body and headers", func(t *testing.T) {
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: 429, RetryAfter: 2 * time.Second, Scope: "shared"})
		req, _ := http.NewRequest(http.MethodPost, "https://discord.com/api/v10/channels/"+dm.ID+"/messages", strings.NewReader(`{"content":"x"}`))
		req.Header.Set("Authorization", "Bot "+emu.Token())
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Transport: emu.Transport()}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Message    string  `json:"message"`
			RetryAfter float64 `json:"retry_after"`
			Global     *bool   `json:"global"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 429 || body.RetryAfter != 2 || body.Global == nil || *body.Global || body.Message == "" ||
			resp.Header.Get("Retry-After") != "2" || resp.Header.Get("X-RateLimit-Scope") != "shared" || resp.Header.Get("X-RateLimit-Global") != "" {
			t.Fatalf("429 = %d %+v headers %v", resp.StatusCode, body, resp.Header)
		}
	})

	t.Run("discordgo retries after retry_after", func(t *testing.T) {
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: 429, RetryAfter: 100 * time.Millisecond})
		limited := make(chan *discordgo.RateLimit, 1)
		dg.AddHandlerOnce(func(_ *discordgo.Session, rl *discordgo.RateLimit) { limited <- rl })
		if _, err := dg.ChannelMessageSend(dm.ID, "eventually"); err != nil {
			t.Fatal(err)
		}
		if rl := receive(t, limited, "RateLimit event"); rl.RetryAfter != 100*time.Millisecond {
			t.Fatalf("RetryAfter = %s", rl.RetryAfter)
		}
	})

	t.Run("latency", func(t *testing.T) {
		emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Latency: 200 * time.Millisecond})
		start := time.Now()
		if _, err := dg.ChannelMessageSend(dm.ID, "slow"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Fatalf("answered after %s, want at least 200ms", d)
		}
	})
}

func TestInteractionDeadline(t *testing.T) {
	clk := newClock()
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), Clock: clk.Now})
	dg := newSession(t, emu)
	registerCommands(t, dg, emu)

	tests := []struct {
		name     string
		wait     time.Duration
		wantCode int
	}{
		{name: "within 3 s", wait: 2900 * time.Millisecond},
		{name: "after 3 s", wait: 3001 * time.Millisecond, wantCode: discordgo.ErrCodeUnknownInteraction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := emu.RunCommand(context.Background(), aliceID, discordemu.CommandInput{Name: "helpme"})
			if err != nil {
				t.Fatal(err)
			}
			var i discordgo.Interaction
			if err := json.Unmarshal(emu.InteractionPayload(info.ID), &i); err != nil {
				t.Fatalf("discordgo cannot decode the payload: %v", err)
			}
			clk.Advance(tt.wait)
			err = dg.InteractionRespond(&i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource})
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("InteractionRespond: %v", err)
				}
				return
			}
			if status, code, _ := restError(t, err); status != http.StatusNotFound || code != tt.wantCode {
				t.Fatalf("got %d code %d, want 404 code %d", status, code, tt.wantCode)
			}
			if got := emu.Interaction(info.ID); got.Acknowledged || got.Error == "" {
				t.Fatalf("interaction state = %+v, want failed", got)
			}
		})
	}
}

func TestContractViolation(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members()})
	dg := newSession(t, emu)
	dm, err := dg.UserChannelCreate(aliceID)
	if err != nil {
		t.Fatal(err)
	}
	// A nonce longer than 25 characters breaks the spec and Discord's rule.
	_, err = sendWithNonce(dg, dm.ID, nonceMessage{MessageSend: discordgo.MessageSend{Content: "x"}, Nonce: strings.Repeat("n", 34)})
	if _, code, _ := restError(t, err); code != discordgo.ErrCodeInvalidFormBody {
		t.Fatalf("code = %d, want 50035", code)
	}
	// A route the emulator does not serve is a violation too.
	if _, err := dg.Guild(discordemu.DefaultGuildID); err == nil {
		t.Fatal("GET /guilds/{id} succeeded")
	}
	v := emu.TakeViolations()
	if len(v) != 2 || !strings.Contains(v[0], "nonce") || !strings.Contains(v[1], "not implemented") {
		for _, x := range v {
			t.Logf("violation: %.200s", x)
		}
		t.Fatalf("got %d violations", len(v))
	}
}

func TestHTTPInteractions(t *testing.T) {
	var emu *discordemu.Server
	verified := make(chan bool, 10)
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !discordgo.VerifyInteraction(r, emu.PublicKey()) {
			verified <- false
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		verified <- true
		var i discordgo.Interaction
		if err := json.NewDecoder(r.Body).Decode(&i); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp := discordgo.InteractionResponse{Type: discordgo.InteractionResponsePong}
		if i.Type != discordgo.InteractionPing {
			resp = discordgo.InteractionResponse{
				Type: discordgo.InteractionResponseDeferredChannelMessageWithSource,
				Data: &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral},
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(endpoint.Close)
	emu = discordemu.NewTest(t, discordemu.Options{Members: members(), InteractionsURL: endpoint.URL})
	dg := newSession(t, emu)
	registerCommands(t, dg, emu)

	if err := emu.VerifyInteractionsEndpoint(context.Background()); err != nil {
		t.Fatalf("VerifyInteractionsEndpoint: %v", err)
	}
	if a, b := <-verified, <-verified; a || !b {
		t.Fatalf("signature checks = %v, %v; want the invalid probe rejected and the valid PING accepted", a, b)
	}

	info, err := emu.RunCommand(context.Background(), aliceID, discordemu.CommandInput{Name: "helpme"})
	if err != nil {
		t.Fatalf("RunCommand: %v", err)
	}
	if !info.Acknowledged || info.ResponseType != 5 {
		t.Fatalf("interaction = %+v, want acknowledged with type 5", info)
	}
	var i discordgo.Interaction
	if err := json.Unmarshal(emu.InteractionPayload(info.ID), &i); err != nil {
		t.Fatal(err)
	}
	if _, err := dg.FollowupMessageCreate(&i, true, &discordgo.WebhookParams{Content: "done"}); err != nil {
		t.Fatalf("follow-up: %v", err)
	}
	rec := emu.UserMessages(aliceID)
	if last := rec[len(rec)-1]; last.Message.Content != "done" || !last.Ephemeral {
		t.Fatalf("member sees %+v", last)
	}
}

func TestSignatureKnownKey(t *testing.T) {
	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	priv := ed25519.NewKeyFromSeed(seed)
	got := make(chan *http.Request, 1)
	var body []byte
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		got <- r
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"type":1}`))
	}))
	t.Cleanup(endpoint.Close)
	emu := discordemu.NewTest(t, discordemu.Options{PrivateKey: priv, InteractionsURL: endpoint.URL})
	if !bytes.Equal(emu.PublicKey(), priv.Public().(ed25519.PublicKey)) {
		t.Fatal("PublicKey does not match the configured key")
	}
	_ = emu.VerifyInteractionsEndpoint(context.Background()) // the endpoint accepts the bad probe: error expected
	r := <-got
	sig, _ := hex.DecodeString(r.Header.Get("X-Signature-Ed25519"))
	if ed25519.Verify(emu.PublicKey(), append([]byte(r.Header.Get("X-Signature-Timestamp")), body...), sig) {
		t.Fatal("the invalid-signature probe verifies")
	}
}
