package discordemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/sandbox/discordemu"
)

// rawCall sends a JSON request to the emulator's REST API as the bot and
// returns the status and body.
func rawCall(t *testing.T, emu *discordemu.Server, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://discord.com/api/v10"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bot "+emu.Token())
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: emu.Transport(), Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(out)
}

func TestEditMessage(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), HeartbeatInterval: 500 * time.Millisecond})
	dg := newSession(t, emu)
	updates := make(chan *discordgo.MessageUpdate, 10)
	dg.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageUpdate) { updates <- m })
	openSession(t, dg)
	dm, err := dg.UserChannelCreate(aliceID)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := sendWithNonce(dg, dm.ID, nonceMessage{MessageSend: discordgo.MessageSend{
		Content: "Was this helpful?",
		Components: []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
			discordgo.Button{Label: "Yes", Style: discordgo.SuccessButton, CustomID: "yes"},
			discordgo.Button{Label: "No", Style: discordgo.SecondaryButton, CustomID: "no"},
		}}},
	}, Nonce: "edit-1", EnforceNonce: true})
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := emu.Subscribe()
	defer cancel()

	content := "Was this helpful? You answered yes."
	edited, err := dg.ChannelMessageEditComplex(&discordgo.MessageEdit{
		ID: sent.ID, Channel: dm.ID, Content: &content,
		Components: &[]discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
			discordgo.Button{Label: "Yes", Style: discordgo.SuccessButton, CustomID: "yes", Disabled: true},
			discordgo.Button{Label: "No", Style: discordgo.SecondaryButton, CustomID: "no", Disabled: true},
		}}},
		AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}},
	})
	if err != nil {
		t.Fatalf("ChannelMessageEditComplex: %v", err)
	}
	if edited.ID != sent.ID || edited.Content != content || edited.EditedTimestamp == nil {
		t.Fatalf("edited message = %+v", edited)
	}
	row := edited.Components[0].(*discordgo.ActionsRow)
	if b := row.Components[0].(*discordgo.Button); !b.Disabled || b.CustomID != "yes" {
		t.Fatalf("first button after the edit = %+v, want it disabled", b)
	}

	up := receive(t, updates, "MESSAGE_UPDATE")
	if up.ID != sent.ID || up.Content != content || up.ChannelID != dm.ID {
		t.Fatalf("MESSAGE_UPDATE = %+v", up.Message)
	}
	if e := waitEvent(t, events, discordemu.EventMessageUpdate); e.Record.Message.ID != sent.ID || e.Record.Message.Content != content {
		t.Fatalf("message_update event = %+v", e.Record)
	}
	recs := emu.Messages(dm.ID)
	if len(recs) != 1 || !strings.Contains(string(recs[0].AllowedMentions), `"parse":[]`) {
		t.Fatalf("channel holds %+v", recs)
	}

	t.Run("a disabled button cannot be clicked", func(t *testing.T) {
		_, err := emu.ClickButton(context.Background(), aliceID, discordemu.ButtonInput{MessageID: sent.ID, CustomID: "yes"})
		if !errors.Is(err, discordemu.ErrButtonDisabled) {
			t.Fatalf("click on a disabled button: %v, want ErrButtonDisabled", err)
		}
		// A client that has not seen the edit yet still can.
		if _, err := emu.ClickButton(context.Background(), aliceID, discordemu.ButtonInput{MessageID: sent.ID, CustomID: "yes", Stale: true}); err != nil {
			t.Fatalf("stale click: %v", err)
		}
	})

	t.Run("absent fields stay, null empties", func(t *testing.T) {
		status, body := rawCall(t, emu, http.MethodPatch, "/channels/"+dm.ID+"/messages/"+sent.ID, `{"components":null}`)
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil || status != http.StatusOK {
			t.Fatalf("PATCH = %d %s", status, body)
		}
		if m["content"] != content || len(m["components"].([]any)) != 0 {
			t.Fatalf("after components:null the message is %s", body)
		}
		if _, has := m["nonce"]; has {
			t.Errorf("an edited message carries its nonce: %s", body)
		}
	})

	dmFromAlice, err := emu.SendDM(aliceID, "hello")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, channel, message, body string
		wantStatus, wantCode         int
	}{
		{"unknown message", dm.ID, "1234567890123456789", `{"content":"x"}`, 404, 10008},
		{"unknown channel", "1234567890123456789", sent.ID, `{"content":"x"}`, 404, 10003},
		{"message in another channel", discordemu.DefaultChannelID, sent.ID, `{"content":"x"}`, 404, 10008},
		{"a member's message", dm.ID, dmFromAlice.Message.ID, `{"content":"x"}`, 403, 50005},
		{"too long", dm.ID, sent.ID, `{"content":"` + strings.Repeat("a", 2001) + `"}`, 400, 50035},
		{"emptied", dm.ID, sent.ID, `{"content":null}`, 400, 50006},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := rawCall(t, emu, http.MethodPatch, "/channels/"+tt.channel+"/messages/"+tt.message, tt.body)
			var e struct {
				Code int `json:"code"`
			}
			_ = json.Unmarshal([]byte(body), &e)
			if status != tt.wantStatus || e.Code != tt.wantCode {
				t.Fatalf("PATCH = %d %s, want %d code %d", status, body, tt.wantStatus, tt.wantCode)
			}
		})
	}
	if got := emu.Messages(dm.ID)[0].Message.Content; got != content {
		t.Fatalf("a rejected edit changed the message to %q", got)
	}
}

func TestListMessages(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members()})
	dg := newSession(t, emu)
	dm, err := dg.UserChannelCreate(bobID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string // oldest first
	for i := range 7 {
		var id string
		if i%2 == 0 {
			rec, err := emu.SendDM(bobID, "member "+string(rune('a'+i)))
			if err != nil {
				t.Fatal(err)
			}
			id = rec.Message.ID
		} else {
			m, err := sendWithNonce(dg, dm.ID, nonceMessage{MessageSend: discordgo.MessageSend{Content: "bot " + string(rune('a'+i))}, Nonce: "n" + string(rune('a'+i)), EnforceNonce: true})
			if err != nil {
				t.Fatal(err)
			}
			if m.Content == "" {
				t.Fatal("empty create answer")
			}
			id = m.ID
		}
		ids = append(ids, id)
	}
	want := func(idx ...int) []string {
		out := make([]string, len(idx))
		for i, x := range idx {
			out[i] = ids[x]
		}
		return out
	}
	tests := []struct {
		name                  string
		limit                 int
		before, after, around string
		want                  []string
	}{
		{name: "newest first", want: want(6, 5, 4, 3, 2, 1, 0)},
		{name: "limit keeps the newest", limit: 3, want: want(6, 5, 4)},
		{name: "before", before: ids[4], limit: 2, want: want(3, 2)},
		{name: "after keeps the closest, newest first", after: ids[1], limit: 3, want: want(4, 3, 2)},
		{name: "after the newest is empty", after: ids[6], want: nil},
		{name: "after an id that is not a message", after: "1", limit: 2, want: want(1, 0)},
		{name: "around", around: ids[3], limit: 3, want: want(4, 3, 2)},
		{name: "around with limit 1 is the message", around: ids[3], limit: 1, want: want(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dg.ChannelMessages(dm.ID, tt.limit, tt.before, tt.after, tt.around)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []string
			for _, m := range got {
				gotIDs = append(gotIDs, m.ID)
			}
			if strings.Join(gotIDs, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", gotIDs, tt.want)
			}
		})
	}

	t.Run("fetched messages carry no nonce", func(t *testing.T) {
		status, body := rawCall(t, emu, http.MethodGet, "/channels/"+dm.ID+"/messages?limit=2", "")
		if status != http.StatusOK || !strings.Contains(body, `"content":"member g"`) || strings.Contains(body, `"nonce"`) {
			t.Fatalf("GET = %d %s", status, body)
		}
	})

	t.Run("before and after together are refused", func(t *testing.T) {
		status, _ := rawCall(t, emu, http.MethodGet, "/channels/"+dm.ID+"/messages?before="+ids[3]+"&after="+ids[1], "")
		if status != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", status)
		}
		if v := emu.TakeViolations(); len(v) != 1 || !strings.Contains(v[0], "mutually exclusive") {
			t.Fatalf("violations = %v", v)
		}
	})
}

func TestMissDispatches(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), HeartbeatInterval: 500 * time.Millisecond})
	dg := newSession(t, emu)
	msgs, _ := openSession(t, dg)
	dm, err := dg.UserChannelCreate(aliceID)
	if err != nil {
		t.Fatal(err)
	}

	emu.MissDispatches("MESSAGE_CREATE")
	lost, err := emu.SendDM(aliceID, "sent while the bot was away")
	if err != nil {
		t.Fatal(err)
	}
	// A resume does not bring it back: it was never kept.
	events, cancel := emu.Subscribe()
	defer cancel()
	emu.DropGateway()
	waitEvent(t, events, discordemu.EventGatewayResumed)
	if n := emu.StopMissingDispatches(); n != 1 {
		t.Fatalf("StopMissingDispatches = %d, want 1 lost dispatch", n)
	}
	if _, err := emu.SendDM(aliceID, "after the outage"); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, msgs, "DM after the outage"); m.Content != "after the outage" {
		t.Fatalf("first DM on the gateway is %q, want the one after the outage", m.Content)
	}
	// The lost message is in the channel's history, for a backfill.
	got, err := dg.ChannelMessages(dm.ID, 100, "", "1", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].ID != lost.Message.ID {
		t.Fatalf("history = %d messages, want the lost one and the next", len(got))
	}

	t.Run("control API", func(t *testing.T) {
		client := &http.Client{Timeout: 5 * time.Second}
		resp, err := client.Post(emu.URL()+"/_emu/discord/gateway/miss", "application/json", strings.NewReader(`{"events":["MESSAGE_CREATE"]}`))
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("POST gateway/miss = %v, %v", resp, err)
		}
		resp.Body.Close()
		if _, err := emu.SendDM(aliceID, "lost again"); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodDelete, emu.URL()+"/_emu/discord/gateway/miss", nil)
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Missed int `json:"missed"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Missed != 1 {
			t.Fatalf("DELETE gateway/miss = %+v, %v; want 1 missed", out, err)
		}
	})
}
