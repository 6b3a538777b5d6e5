package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

// sandbox drives a running `flexcord sandbox` through the emulators' HTTP control APIs, as the
// sandbox page does: members run commands, send DMs and click buttons; agents accept tasks,
// answer and wrap up.
type sandbox struct {
	base string
	hc   *http.Client
	// busy counts the interactions the bot answered with "busy, try again".
	busy atomic.Int64
}

func (s *sandbox) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

func (s *sandbox) putMember(ctx context.Context, m discordemu.Member) error {
	return s.do(ctx, http.MethodPut, "/_emu/discord/members/"+m.ID, m, nil)
}

// command runs a slash command as the member; see interact.
func (s *sandbox) command(ctx context.Context, userID string, in discordemu.CommandInput) error {
	return s.interact(ctx, userID, "/"+in.Name, "/_emu/discord/members/"+userID+"/commands", in)
}

// click presses a button as the member; see interact.
func (s *sandbox) click(ctx context.Context, userID string, in discordemu.ButtonInput) error {
	return s.interact(ctx, userID, "button "+in.CustomID, "/_emu/discord/members/"+userID+"/buttons", in)
}

// busyText is what ingress answers an interaction it could not hand to Temporal in time.
var busyText = i18n.T("en-US", "ingress.busy")

// interact sends an interaction as the member. When the bot answers that it is busy, the member
// does what the answer asks: tries again a second later (at most five times). s.busy counts
// those answers.
func (s *sandbox) interact(ctx context.Context, userID, what, path string, in any) error {
	for attempt := 1; ; attempt++ {
		var info discordemu.InteractionInfo
		if err := s.do(ctx, http.MethodPost, path, in, &info); err != nil {
			return err
		}
		if info.Error != "" {
			return fmt.Errorf("%s: %s", what, info.Error)
		}
		if info.ResponseMessageID == "" {
			return nil
		}
		recs, err := s.userMessages(ctx, userID)
		if err != nil {
			return err
		}
		busy := slices.ContainsFunc(recs, func(r discordemu.Record) bool {
			return r.Message.ID == info.ResponseMessageID && r.Message.Content == busyText
		})
		if !busy {
			return nil
		}
		s.busy.Add(1)
		if attempt == 5 {
			return fmt.Errorf("%s: the bot answered %q five times", what, busyText)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second): // the member reads the answer and tries again
		}
	}
}

func (s *sandbox) sendDM(ctx context.Context, userID, content string) error {
	return s.do(ctx, http.MethodPost, "/_emu/discord/members/"+userID+"/dm", map[string]string{"content": content}, nil)
}

// userMessages is what the member sees: their DM channel both ways and the ephemeral replies.
func (s *sandbox) userMessages(ctx context.Context, userID string) ([]discordemu.Record, error) {
	var out []discordemu.Record
	err := s.do(ctx, http.MethodGet, "/_emu/discord/members/"+userID+"/messages", nil, &out)
	return out, err
}

func (s *sandbox) tasks(ctx context.Context, status twilioemu.TaskStatus) ([]twilioemu.TaskView, error) {
	var out struct {
		Tasks []twilioemu.TaskView `json:"tasks"`
	}
	err := s.do(ctx, http.MethodGet, "/_emu/twilio/tasks?status="+url.QueryEscape(string(status)), nil, &out)
	return out.Tasks, err
}

func (s *sandbox) taskAction(ctx context.Context, sid, action string, in any) error {
	if in == nil {
		in = struct{}{}
	}
	return s.do(ctx, http.MethodPost, "/_emu/twilio/tasks/"+sid+"/"+action, in, nil)
}

func (s *sandbox) conversationMessages(ctx context.Context, sid string) ([]twilioemu.MessageView, error) {
	var out struct {
		Messages []twilioemu.MessageView `json:"messages"`
	}
	err := s.do(ctx, http.MethodGet, "/_emu/twilio/conversations/"+sid+"/messages", nil, &out)
	return out.Messages, err
}

func (s *sandbox) violations(ctx context.Context, emu string) ([]string, error) {
	var raw json.RawMessage
	if err := s.do(ctx, http.MethodGet, "/_emu/"+emu+"/violations", nil, &raw); err != nil {
		return nil, err
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list, nil
	}
	var wrapped struct {
		Violations []string `json:"violations"`
	}
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return nil, fmt.Errorf("violations of %s: %w", emu, err)
	}
	return wrapped.Violations, nil
}

// arrivals records when each message body was first seen arriving, from the emulators' event
// streams: bodies the bot posts to a DM and bodies added to a Flex conversation. Latencies are
// measured against these times, on this process's clock.
type arrivals struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// mark records the arrival of the relayed message of who that body carries, if any: agents'
// lines arrive in the member's DM, members' lines in the Flex conversation.
func (a *arrivals) mark(who, body string, at time.Time) {
	m := tokenRE.FindStringSubmatch(body)
	if m == nil || m[1] != who {
		return
	}
	body = m[0]
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.seen[body]; !ok {
		a.seen[body] = at
	}
}

func (a *arrivals) at(body string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.seen[body]
	return t, ok
}

// follow reads the Server-Sent Events of path until ctx ends, calling onData with each event's
// data, and reconnects when the stream breaks.
func (s *sandbox) follow(ctx context.Context, path string, onData func([]byte)) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
		resp, err := http.DefaultClient.Do(req) // no timeout: a stream
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				onData([]byte(data))
			}
		}
		resp.Body.Close()
	}
}

// watch follows both emulators' events and records arrivals of message bodies.
func (s *sandbox) watch(ctx context.Context, a *arrivals) {
	go s.follow(ctx, "/_emu/discord/events", func(b []byte) {
		now := time.Now()
		var e struct {
			Type   string             `json:"type"`
			Record *discordemu.Record `json:"record"`
		}
		if json.Unmarshal(b, &e) == nil && e.Record != nil && e.Record.FromBot {
			a.mark("agent", e.Record.Message.Content, now)
		}
	})
	go s.follow(ctx, "/_emu/twilio/events", func(b []byte) {
		now := time.Now()
		var e twilioemu.Event
		if json.Unmarshal(b, &e) == nil && e.Type == twilioemu.EventMessageAdded && e.Message != nil {
			a.mark("member", e.Message.Body, now)
		}
	})
}
