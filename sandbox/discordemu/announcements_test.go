package discordemu_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/sandbox/discordemu"
)

const (
	guildID         = "1300000000000000000"
	generalID       = "1300000000000000001"
	bugsID          = "1300000000000000002"
	announcementsID = "1300000000000000003"
)

// newAnnouncementsEmu starts an emulator whose guild has two text channels
// (one declared by id only) and an announcement channel.
func newAnnouncementsEmu(t *testing.T) *discordemu.Server {
	t.Helper()
	return discordemu.NewTest(t, discordemu.Options{Members: members(), Guilds: []discordemu.Guild{{
		ID: guildID, Name: "Brand", Locale: "en-US",
		Channels: []string{generalID, bugsID},
		ChannelInfo: []discordemu.Channel{
			discordemu.AnnouncementChannel(announcementsID, "news"),
			discordemu.TextChannel(bugsID, "bug-report"),
		},
	}}})
}

// ctlGet decodes a GET of the emulator's control API.
func ctlGet(t *testing.T, emu *discordemu.Server, path string, v any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(emu.URL() + "/_emu/discord" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func TestGuildChannelTypes(t *testing.T) {
	emu := newAnnouncementsEmu(t)
	dg := newSession(t, emu)

	for _, tt := range []struct {
		id, name string
		typ      discordgo.ChannelType
		position int
	}{
		{generalID, "general", discordgo.ChannelTypeGuildText, 0},
		{bugsID, "bug-report", discordgo.ChannelTypeGuildText, 1},
		{announcementsID, "news", discordgo.ChannelTypeGuildNews, 2},
	} {
		ch, err := dg.Channel(tt.id)
		if err != nil {
			t.Fatalf("GET channel %s: %v", tt.id, err)
		}
		if ch.ID != tt.id || ch.Type != tt.typ || ch.Name != tt.name || ch.GuildID != guildID || ch.Position != tt.position {
			t.Errorf("channel %s = type %d name %q guild %s position %d; want type %d name %q guild %s position %d",
				tt.id, ch.Type, ch.Name, ch.GuildID, ch.Position, tt.typ, tt.name, guildID, tt.position)
		}
	}
	dm, err := dg.UserChannelCreate(aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := dg.Channel(dm.ID); err != nil || ch.Type != discordgo.ChannelTypeDM || len(ch.Recipients) != 1 || ch.Recipients[0].ID != aliceID {
		t.Fatalf("GET DM channel = %+v, %v", ch, err)
	}
	_, err = dg.Channel("1234567890123")
	if status, code, _ := restError(t, err); status != http.StatusNotFound || code != discordgo.ErrCodeUnknownChannel {
		t.Fatalf("unknown channel: %d %d, want 404 10003", status, code)
	}

	// Guilds lists every channel id (Channels first) and describes each one.
	g := emu.Guilds()[0]
	if strings.Join(g.Channels, ",") != generalID+","+bugsID+","+announcementsID {
		t.Errorf("Guilds()[0].Channels = %v", g.Channels)
	}
	if len(g.ChannelInfo) != 3 || g.ChannelInfo[2].Type != discordemu.ChannelTypeGuildAnnouncement || g.ChannelInfo[2].GuildID != guildID || g.ChannelInfo[0].Name != "general" {
		t.Errorf("Guilds()[0].ChannelInfo = %+v", g.ChannelInfo)
	}

	// The control API: /state and /channels list the channels with their types.
	var state struct {
		Guilds   []discordemu.Guild   `json:"guilds"`
		Channels []discordemu.Channel `json:"channels"`
	}
	ctlGet(t, emu, "/state", &state)
	var channels []discordemu.Channel
	ctlGet(t, emu, "/channels", &channels)
	for name, list := range map[string][]discordemu.Channel{"state.channels": state.Channels, "state.guilds[0].channel_info": state.Guilds[0].ChannelInfo, "/channels": channels} {
		var found []string
		for _, c := range list {
			if c.Type == discordemu.ChannelTypeGuildAnnouncement {
				found = append(found, c.ID+" #"+c.Name)
			}
		}
		if len(list) != 3 || len(found) != 1 || found[0] != announcementsID+" #news" {
			t.Errorf("%s = %+v: want three channels, one announcement channel %s #news", name, list, announcementsID)
		}
	}
}

func TestGuildChannelDeclarations(t *testing.T) {
	for _, tt := range []struct {
		name  string
		guild discordemu.Guild
		ok    bool
	}{
		{"announcement channel named by default", discordemu.Guild{ID: "1", ChannelInfo: []discordemu.Channel{{ID: "2", Type: discordemu.ChannelTypeGuildAnnouncement}}}, true},
		{"voice channel", discordemu.Guild{ID: "1", ChannelInfo: []discordemu.Channel{{ID: "2", Type: 2}}}, false},
		{"declared twice", discordemu.Guild{ID: "1", ChannelInfo: []discordemu.Channel{discordemu.TextChannel("2", "a"), discordemu.AnnouncementChannel("2", "b")}}, false},
		{"no id", discordemu.Guild{ID: "1", ChannelInfo: []discordemu.Channel{{Name: "x"}}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			emu, err := discordemu.New(discordemu.Options{Guilds: []discordemu.Guild{tt.guild}})
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
			if err == nil {
				if c := emu.GuildChannels(); len(c) != 1 || c[0].Name != "announcements" {
					t.Fatalf("GuildChannels = %+v", c)
				}
			}
		})
	}
	if _, err := discordemu.New(discordemu.Options{Guilds: []discordemu.Guild{{ID: "1", Channels: []string{"3"}}, {ID: "2", Channels: []string{"3"}}}}); err == nil {
		t.Fatal("New accepted one channel in two guilds")
	}
}

// rawCrosspost crossposts without discordgo, to see the headers.
func rawCrosspost(t *testing.T, emu *discordemu.Server, channelID, messageID string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://discord.com/api/v10/channels/"+channelID+"/messages/"+messageID+"/crosspost", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bot "+emu.Token())
	resp, err := (&http.Client{Transport: emu.Transport(), Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestCrosspost(t *testing.T) {
	emu := newAnnouncementsEmu(t)
	dg := newSession(t, emu)
	post := func(channelID, content string) *discordgo.Message {
		t.Helper()
		m, err := dg.ChannelMessageSend(channelID, content)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	news := post(announcementsID, "Version 2 is out")
	events, cancel := emu.Subscribe()
	defer cancel()

	resp, body := rawCrosspost(t, emu, announcementsID, news.ID)
	if resp.StatusCode != http.StatusOK || body["id"] != news.ID || body["flags"] != float64(discordgo.MessageFlagsCrossPosted) {
		t.Fatalf("crosspost = %d %v; want 200 and the message with flags 1", resp.StatusCode, body)
	}
	if resp.Header.Get("X-RateLimit-Bucket") == "" || resp.Header.Get("X-RateLimit-Remaining") == "" {
		t.Errorf("crosspost answered without rate-limit headers: %v", resp.Header)
	}
	rec := emu.Messages(announcementsID)[0]
	if rec.Message.Flags&int(discordgo.MessageFlagsCrossPosted) == 0 || rec.Message.EditedTimestamp != nil {
		t.Errorf("stored message flags %d, edited %v; want CROSSPOSTED and not edited", rec.Message.Flags, rec.Message.EditedTimestamp)
	}
	select {
	case e := <-events:
		if e.Type != discordemu.EventMessageUpdate || e.Record.Message.ID != news.ID || e.Record.Message.Flags&1 == 0 {
			t.Errorf("event = %s %+v, want message_update with the flag", e.Type, e.Record)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the crosspost")
	}

	general := post(generalID, "hello")
	for _, tt := range []struct {
		name              string
		channel, message  string
		wantStatus, wantC int
	}{
		{"already crossposted", announcementsID, news.ID, http.StatusBadRequest, 40033},
		{"text channel", generalID, general.ID, http.StatusBadRequest, 50024},
		{"unknown message", announcementsID, "1234567890123", http.StatusNotFound, discordgo.ErrCodeUnknownMessage},
		{"message of another channel", announcementsID, general.ID, http.StatusNotFound, discordgo.ErrCodeUnknownMessage},
		{"unknown channel", "1234567890123", news.ID, http.StatusNotFound, discordgo.ErrCodeUnknownChannel},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dg.ChannelMessageCrosspost(tt.channel, tt.message)
			if status, code, body := restError(t, err); status != tt.wantStatus || code != tt.wantC {
				t.Fatalf("crosspost = %d %d %s; want %d %d", status, code, body, tt.wantStatus, tt.wantC)
			}
		})
	}
	dm, err := dg.UserChannelCreate(aliceID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dg.ChannelMessageCrosspost(dm.ID, post(dm.ID, "hi").ID)
	if status, code, _ := restError(t, err); status != http.StatusForbidden || code != 50003 {
		t.Fatalf("crosspost in a DM = %d %d; want 403 50003", status, code)
	}

	// Faults: a 503 before the crosspost leaves the message as it was; a 500
	// after it hides a crosspost that happened.
	second := post(announcementsID, "Version 2.1 is out")
	emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCrosspostMessage, Status: http.StatusServiceUnavailable})
	if _, err := dg.ChannelMessageCrosspost(announcementsID, second.ID); err == nil {
		t.Fatal("the 503 fault did not apply")
	}
	if m := emu.Messages(announcementsID)[1].Message; m.Flags != 0 {
		t.Fatalf("flags %d after a failed crosspost", m.Flags)
	}
	emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCrosspostMessage, Status: http.StatusInternalServerError, After: true})
	if _, err := dg.ChannelMessageCrosspost(announcementsID, second.ID); err == nil {
		t.Fatal("the 500 fault did not apply")
	}
	if m := emu.Messages(announcementsID)[1].Message; m.Flags != 1 {
		t.Fatalf("flags %d after a crosspost whose answer was lost, want 1", m.Flags)
	}
	_, err = dg.ChannelMessageCrosspost(announcementsID, second.ID)
	if _, code, _ := restError(t, err); code != 40033 {
		t.Fatalf("second crosspost code %d, want 40033", code)
	}
}

func TestEmbedsStoredAsSent(t *testing.T) {
	emu := newAnnouncementsEmu(t)
	dg := newSession(t, emu)
	embed := &discordgo.MessageEmbed{
		Title: "Version 2 is out", URL: "https://example.com/blog/v2", Description: "**Faster** and _smaller_.",
		Image:     &discordgo.MessageEmbedImage{URL: "https://example.com/v2.png"},
		Author:    &discordgo.MessageEmbedAuthor{Name: "Brand blog", URL: "https://example.com/blog"},
		Footer:    &discordgo.MessageEmbedFooter{Text: "Brand blog"},
		Timestamp: "2026-11-20T09:30:00Z", Color: 0x5865F2,
	}
	sent, err := dg.ChannelMessageSendEmbed(announcementsID, embed)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type": "rich", "title": embed.Title, "url": embed.URL, "description": embed.Description,
		"image": map[string]any{"url": embed.Image.URL}, "author": map[string]any{"name": "Brand blog", "url": "https://example.com/blog"},
		"footer": map[string]any{"text": "Brand blog"}, "timestamp": embed.Timestamp, "color": float64(0x5865F2),
	}
	check := func(where string, embeds []any) {
		t.Helper()
		if len(embeds) != 1 {
			t.Fatalf("%s: %d embeds", where, len(embeds))
		}
		got, _ := json.Marshal(embeds[0])
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Errorf("%s: embed = %s\nwant %s", where, got, wantJSON)
		}
	}
	if len(sent.Embeds) != 1 || sent.Embeds[0].Image == nil || sent.Embeds[0].Author == nil || sent.Embeds[0].Timestamp != embed.Timestamp {
		t.Errorf("create answered embeds %+v", sent.Embeds)
	}
	var recs []discordemu.Record
	ctlGet(t, emu, "/channels/"+announcementsID+"/messages", &recs)
	if len(recs) != 1 {
		t.Fatalf("control API lists %d messages", len(recs))
	}
	check("control API", roundTrip(t, recs[0].Message.Embeds))
	status, body := rawCall(t, emu, http.MethodGet, "/channels/"+announcementsID+"/messages", "")
	var listed []struct {
		Embeds []any `json:"embeds"`
	}
	if err := json.Unmarshal([]byte(body), &listed); status != http.StatusOK || err != nil || len(listed) != 1 {
		t.Fatalf("GET messages = %d %s", status, body)
	}
	check("GET messages", listed[0].Embeds)
}

// roundTrip returns v as decoded from its JSON.
func roundTrip(t *testing.T, v []any) []any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEmbedLimits(t *testing.T) {
	emu := newAnnouncementsEmu(t)
	dg := newSession(t, emu)
	r := strings.Repeat
	fields := func(n int) []*discordgo.MessageEmbedField {
		var out []*discordgo.MessageEmbedField
		for range n {
			out = append(out, &discordgo.MessageEmbedField{Name: "n", Value: "v"})
		}
		return out
	}
	tests := []struct {
		name   string
		embeds []*discordgo.MessageEmbed
		// wantErr is a fragment of the 400 body; empty means accepted.
		wantErr string
	}{
		{"all at their limits", []*discordgo.MessageEmbed{{Title: r("é", 256), Description: r("d", 4096), Footer: &discordgo.MessageEmbedFooter{Text: r("f", 1392)}, Author: &discordgo.MessageEmbedAuthor{Name: r("a", 256)}}}, ""},
		{"surrounding whitespace is not counted", []*discordgo.MessageEmbed{{Title: "  " + r("t", 256) + "\n"}}, ""},
		{"title", []*discordgo.MessageEmbed{{Title: r("é", 257)}}, `"embeds":{"0":{"title":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH"`},
		{"description", []*discordgo.MessageEmbed{{Description: r("d", 4097)}}, `"description":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH"`},
		{"footer", []*discordgo.MessageEmbed{{Footer: &discordgo.MessageEmbedFooter{Text: r("f", 2049)}}}, `"footer":{"text":{"_errors"`},
		{"author", []*discordgo.MessageEmbed{{Author: &discordgo.MessageEmbedAuthor{Name: r("a", 257)}}}, `"author":{"name":{"_errors"`},
		{"second embed's field value", []*discordgo.MessageEmbed{{Title: "ok"}, {Fields: []*discordgo.MessageEmbedField{{Name: "n", Value: r("v", 1025)}}}}, `"embeds":{"1":{"fields":{"0":{"value":{"_errors"`},
		{"26 fields", []*discordgo.MessageEmbed{{Fields: fields(26)}}, `"fields":{"_errors"`},
		{"6001 characters in all", []*discordgo.MessageEmbed{{Title: r("t", 256), Description: r("d", 4096)}, {Description: r("d", 1649)}}, `"embeds":{"_errors":[{"code":"MAX_EMBED_SIZE_EXCEEDED"`},
		{"11 embeds", func() []*discordgo.MessageEmbed {
			var out []*discordgo.MessageEmbed
			for range 11 {
				out = append(out, &discordgo.MessageEmbed{Title: "x"})
			}
			return out
		}(), `"embeds":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH"`},
		{"javascript link", []*discordgo.MessageEmbed{{Title: "x", URL: "javascript:alert(1)"}}, `"url":{"_errors":[{"code":"URL_TYPE_INVALID_URL"`},
		{"relative image", []*discordgo.MessageEmbed{{Title: "x", Image: &discordgo.MessageEmbedImage{URL: "/v2.png"}}}, `"image":{"url":{"_errors"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(emu.Messages(announcementsID))
			_, err := dg.ChannelMessageSendEmbeds(announcementsID, tt.embeds)
			emu.TakeViolations() // the over-long cases also break the spec's maxLength
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			status, code, body := restError(t, err)
			if status != http.StatusBadRequest || code != discordgo.ErrCodeInvalidFormBody || !strings.Contains(body, tt.wantErr) {
				t.Fatalf("answer %d %d %s; want 400 50035 with %s", status, code, body, tt.wantErr)
			}
			if after := len(emu.Messages(announcementsID)); after != before {
				t.Fatal("a rejected message was stored")
			}
		})
	}
}

func TestFaultAfterAndDrop(t *testing.T) {
	emu := newAnnouncementsEmu(t)
	dg := newSession(t, emu)
	count := func() int { return len(emu.Messages(generalID)) }

	emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Status: http.StatusInternalServerError, After: true})
	_, err := dg.ChannelMessageSend(generalID, "one")
	if status, _, _ := restError(t, err); status != http.StatusInternalServerError || count() != 1 {
		t.Fatalf("after-fault: status %d, %d messages; want 500 and the message stored", status, count())
	}

	var ue *url.Error
	emu.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Drop: true})
	_, err = dg.ChannelMessageSend(generalID, "two")
	if !errors.As(err, &ue) || count() != 1 {
		t.Fatalf("drop before: error %v (%T), %d messages; want a connection error and nothing stored", err, err, count())
	}

	// The control API takes the same faults.
	resp, err := http.Post(emu.URL()+"/_emu/discord/faults", "application/json",
		strings.NewReader(`{"route":"`+discordemu.RouteCreateMessage+`","drop":true,"after":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /faults: %d", resp.StatusCode)
	}
	_, err = dg.ChannelMessageSend(generalID, "three")
	if !errors.As(err, &ue) || count() != 2 {
		t.Fatalf("drop after: error %v (%T), %d messages; want a connection error and the message stored", err, err, count())
	}
	if _, err := dg.ChannelMessageSend(generalID, "four"); err != nil || count() != 3 {
		t.Fatalf("after the faults: %v, %d messages", err, count())
	}
}
