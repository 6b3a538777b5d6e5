package discordemu_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/sandbox/discordemu"
)

// dmWatcher is a discordgo session that collects MESSAGE_UPDATE and
// MESSAGE_DELETE, and the raw payloads of MESSAGE_DELETE.
type dmWatcher struct {
	dg        *discordgo.Session
	creates   <-chan *discordgo.MessageCreate
	updates   chan *discordgo.MessageUpdate
	deletes   chan *discordgo.MessageDelete
	rawDelete chan json.RawMessage
}

func watchDMs(t *testing.T, emu *discordemu.Server) *dmWatcher {
	t.Helper()
	w := &dmWatcher{
		dg:        newSession(t, emu),
		updates:   make(chan *discordgo.MessageUpdate, 100),
		deletes:   make(chan *discordgo.MessageDelete, 100),
		rawDelete: make(chan json.RawMessage, 100),
	}
	w.dg.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageUpdate) { w.updates <- m })
	w.dg.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageDelete) { w.deletes <- m })
	w.dg.AddHandler(func(_ *discordgo.Session, e *discordgo.Event) {
		if e.Type == "MESSAGE_DELETE" {
			w.rawDelete <- e.RawData
		}
	})
	w.creates, _ = openSession(t, w.dg)
	return w
}

// sessionSeqs returns the sequence number of every gateway session, by
// intents.
func sessionSeqs(emu *discordemu.Server) map[int]int64 {
	out := map[int]int64{}
	for _, s := range emu.GatewaySessions() {
		out[s.Intents] = s.Seq
	}
	return out
}

func TestMemberEditsAndDeletesDM(t *testing.T) {
	clk := newClock()
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), Clock: clk.Now, HeartbeatInterval: 500 * time.Millisecond})
	w := watchDMs(t, emu)
	// A second bot session without DIRECT_MESSAGES must not get DM events.
	guildOnly := newSession(t, emu)
	guildOnly.Identify.Intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages
	if err := guildOnly.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = guildOnly.Close() })
	dmIntents := int(w.dg.Identify.Intents)
	guildIntents := int(guildOnly.Identify.Intents)

	first, err := emu.SendDM(aliceID, "my order is late")
	if err != nil {
		t.Fatal(err)
	}
	receive(t, w.creates, "MESSAGE_CREATE")
	second, err := emu.SendDM(aliceID, "order 42")
	if err != nil {
		t.Fatal(err)
	}
	receive(t, w.creates, "MESSAGE_CREATE")
	dmID := first.Message.ChannelID

	events, cancel := emu.Subscribe()
	defer cancel()
	before := sessionSeqs(emu)
	clk.Advance(90 * time.Second)
	editedAt := clk.Now()
	edited, err := emu.EditDM(aliceID, first.Message.ID, "my order is late (order 42)")
	if err != nil {
		t.Fatalf("EditDM: %v", err)
	}
	wantTS := editedAt.Format("2006-01-02T15:04:05.000000+00:00")
	if edited.Message.Content != "my order is late (order 42)" || edited.Message.EditedTimestamp == nil ||
		*edited.Message.EditedTimestamp != wantTS || edited.Message.Timestamp != first.Message.Timestamp || edited.Deleted {
		t.Fatalf("EditDM = %+v, want the new content edited at %s", edited.Message, wantTS)
	}

	up := receive(t, w.updates, "MESSAGE_UPDATE")
	if up.ID != first.Message.ID || up.ChannelID != dmID || up.Content != "my order is late (order 42)" ||
		up.Author == nil || up.Author.ID != aliceID || up.GuildID != "" {
		t.Fatalf("MESSAGE_UPDATE = %+v", up.Message)
	}
	if up.EditedTimestamp == nil || !up.EditedTimestamp.Equal(editedAt) {
		t.Fatalf("MESSAGE_UPDATE edited_timestamp = %v, want %v", up.EditedTimestamp, editedAt)
	}
	if e := waitEvent(t, events, discordemu.EventMessageUpdate); e.Record.Message.ID != first.Message.ID || e.Record.Message.Content != edited.Message.Content {
		t.Fatalf("message_update event = %+v", e.Record)
	}
	after := sessionSeqs(emu)
	if after[dmIntents] != before[dmIntents]+1 || after[guildIntents] != before[guildIntents] {
		t.Fatalf("session seqs %v → %v: want one dispatch to the DIRECT_MESSAGES session only", before, after)
	}

	// The bot reading the history sees the edit.
	history, err := w.dg.ChannelMessages(dmID, 100, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 || history[1].ID != first.Message.ID || history[1].Content != edited.Message.Content ||
		history[1].EditedTimestamp == nil || !history[1].EditedTimestamp.Equal(editedAt) || history[0].EditedTimestamp != nil {
		t.Fatalf("history after the edit = %+v", history)
	}

	before = after
	if err := emu.DeleteDM(aliceID, second.Message.ID); err != nil {
		t.Fatalf("DeleteDM: %v", err)
	}
	del := receive(t, w.deletes, "MESSAGE_DELETE")
	if del.Message == nil || del.ID != second.Message.ID || del.ChannelID != dmID || del.GuildID != "" {
		t.Fatalf("MESSAGE_DELETE = %+v", del.Message)
	}
	var raw map[string]any
	if err := json.Unmarshal(receive(t, w.rawDelete, "raw MESSAGE_DELETE"), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || raw["id"] != second.Message.ID || raw["channel_id"] != dmID {
		t.Fatalf("MESSAGE_DELETE payload = %v, want only id and channel_id", raw)
	}
	if e := waitEvent(t, events, discordemu.EventMessageDelete); e.Record.Message.ID != second.Message.ID || !e.Record.Deleted {
		t.Fatalf("message_delete event = %+v", e.Record)
	}
	after = sessionSeqs(emu)
	if after[dmIntents] != before[dmIntents]+1 || after[guildIntents] != before[guildIntents] {
		t.Fatalf("session seqs %v → %v: want one dispatch to the DIRECT_MESSAGES session only", before, after)
	}

	history, err = w.dg.ChannelMessages(dmID, 100, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 1 || history[0].ID != first.Message.ID {
		t.Fatalf("history after the delete = %+v, want only the edited message", history)
	}
	recs := emu.Messages(dmID)
	if len(recs) != 2 || recs[0].Deleted || !recs[1].Deleted || recs[0].Message.Content != edited.Message.Content {
		t.Fatalf("emulator records = %+v", recs)
	}

	t.Run("errors", func(t *testing.T) {
		botMsg, err := w.dg.ChannelMessageSend(dmID, "We are looking into it.")
		if err != nil {
			t.Fatal(err)
		}
		bobMsg, err := emu.SendDM(bobID, "hi")
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, user, message string
			want                error
		}{
			{"the bot's message", aliceID, botMsg.ID, discordemu.ErrNotAuthor},
			{"another member's message", aliceID, bobMsg.Message.ID, discordemu.ErrNotAuthor},
			{"someone else's message in their own DM", bobID, first.Message.ID, discordemu.ErrNotAuthor},
			{"unknown message", aliceID, "1234567890123456789", discordemu.ErrUnknownMessage},
			{"already deleted", aliceID, second.Message.ID, discordemu.ErrMessageDeleted},
			{"unknown member", "999", first.Message.ID, discordemu.ErrUnknownMember},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := emu.EditDM(tt.user, tt.message, "x"); !errors.Is(err, tt.want) {
					t.Errorf("EditDM = %v, want %v", err, tt.want)
				}
				if err := emu.DeleteDM(tt.user, tt.message); !errors.Is(err, tt.want) {
					t.Errorf("DeleteDM = %v, want %v", err, tt.want)
				}
			})
		}
		if _, err := emu.EditDM(aliceID, first.Message.ID, ""); err == nil {
			t.Error("EditDM emptied a message without attachments")
		}
		for _, r := range emu.Messages(dmID) {
			switch r.Message.ID {
			case botMsg.ID:
				if r.Deleted || r.Message.Content != "We are looking into it." || r.Message.EditedTimestamp != nil {
					t.Errorf("a rejected action changed the bot's message: %+v", r)
				}
			case first.Message.ID:
				if r.Deleted || r.Message.Content != edited.Message.Content {
					t.Errorf("a rejected action changed alice's message: %+v", r)
				}
			}
		}
	})
}

func TestMemberEditKeepsAttachments(t *testing.T) {
	clk := newClock()
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), Clock: clk.Now, HeartbeatInterval: 500 * time.Millisecond})
	w := watchDMs(t, emu)
	pic := pngImage(t, 3, 2)
	rec, err := emu.SendDMWithFiles(aliceID, "", discordemu.File{Name: "receipt.png", Data: pic})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, w.creates, "MESSAGE_CREATE")

	// Long after the upload, the URLs signed then have expired; the
	// MESSAGE_UPDATE carries freshly signed ones.
	clk.Advance(25 * time.Hour)
	edited, err := emu.EditDM(aliceID, rec.Message.ID, "the receipt")
	if err != nil {
		t.Fatal(err)
	}
	if len(edited.Message.Attachments) != 1 || edited.Message.Attachments[0].ID != rec.Message.Attachments[0].ID {
		t.Fatalf("edited record attachments = %+v", edited.Message.Attachments)
	}
	up := receive(t, w.updates, "MESSAGE_UPDATE")
	if up.Content != "the receipt" || len(up.Attachments) != 1 || up.Attachments[0].ID != rec.Message.Attachments[0].ID || up.Attachments[0].Filename != "receipt.png" {
		t.Fatalf("MESSAGE_UPDATE = %+v", up.Message)
	}
	if status, _, body := download(t, emu, up.Attachments[0].URL); status != http.StatusOK || string(body) != string(pic) {
		t.Fatalf("download from MESSAGE_UPDATE = %d, want the file", status)
	}
	// With attachments, the content may be emptied.
	if _, err := emu.EditDM(aliceID, rec.Message.ID, ""); err != nil {
		t.Fatalf("emptying a message with an attachment: %v", err)
	}
	if up := receive(t, w.updates, "MESSAGE_UPDATE"); up.Content != "" || len(up.Attachments) != 1 {
		t.Fatalf("MESSAGE_UPDATE = %+v", up.Message)
	}
}

func TestMemberDMControlRoutes(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), HeartbeatInterval: 500 * time.Millisecond})
	w := watchDMs(t, emu)
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, emu.URL()+"/_emu/discord"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	sent, err := emu.SendDM(aliceID, "helo")
	if err != nil {
		t.Fatal(err)
	}
	receive(t, w.creates, "MESSAGE_CREATE")
	msgPath := "/members/" + aliceID + "/dm/" + sent.Message.ID

	status, body := do(http.MethodPatch, msgPath, `{"content":"hello"}`)
	var rec discordemu.Record
	if err := json.Unmarshal([]byte(body), &rec); err != nil || status != http.StatusOK ||
		rec.Message.Content != "hello" || rec.Message.EditedTimestamp == nil {
		t.Fatalf("PATCH dm = %d %s", status, body)
	}
	if up := receive(t, w.updates, "MESSAGE_UPDATE"); up.ID != sent.Message.ID || up.Content != "hello" || up.EditedTimestamp == nil {
		t.Fatalf("MESSAGE_UPDATE = %+v", up.Message)
	}

	if status, body := do(http.MethodDelete, msgPath, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE dm = %d %s", status, body)
	}
	if del := receive(t, w.deletes, "MESSAGE_DELETE"); del.ID != sent.Message.ID || del.ChannelID != sent.Message.ChannelID {
		t.Fatalf("MESSAGE_DELETE = %+v", del.Message)
	}
	var msgs []discordemu.Record
	ctlGet(t, emu, "/members/"+aliceID+"/messages", &msgs)
	if i := slices.IndexFunc(msgs, func(r discordemu.Record) bool { return r.Message.ID == sent.Message.ID }); i < 0 || !msgs[i].Deleted || msgs[i].Message.Content != "hello" {
		t.Fatalf("member messages = %+v", msgs)
	}

	botMsg, err := w.dg.ChannelMessageSend(sent.Message.ChannelID, "noted")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"edit a deleted message", http.MethodPatch, msgPath, `{"content":"x"}`, http.StatusGone},
		{"delete a deleted message", http.MethodDelete, msgPath, "", http.StatusGone},
		{"edit the bot's message", http.MethodPatch, "/members/" + aliceID + "/dm/" + botMsg.ID, `{"content":"x"}`, http.StatusForbidden},
		{"delete the bot's message", http.MethodDelete, "/members/" + aliceID + "/dm/" + botMsg.ID, "", http.StatusForbidden},
		{"unknown message", http.MethodPatch, "/members/" + aliceID + "/dm/1234567890123456789", `{"content":"x"}`, http.StatusNotFound},
		{"delete unknown message", http.MethodDelete, "/members/" + aliceID + "/dm/1234567890123456789", "", http.StatusNotFound},
		{"unknown member", http.MethodDelete, "/members/999/dm/" + botMsg.ID, "", http.StatusNotFound},
		{"no content", http.MethodPatch, "/members/" + aliceID + "/dm/" + botMsg.ID, `{}`, http.StatusBadRequest},
		{"bad JSON", http.MethodPatch, "/members/" + aliceID + "/dm/" + botMsg.ID, `{"content":`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(tt.method, tt.path, tt.body)
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || status != tt.want || e.Error == "" {
				t.Fatalf("%s %s = %d %s, want %d with an error", tt.method, tt.path, status, body, tt.want)
			}
		})
	}
}
