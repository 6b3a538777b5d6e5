package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	conversations "github.com/twilio/twilio-go/rest/conversations/v1"

	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/web"
)

// The tests in this file call, with Go, every control endpoint that
// sandbox.js calls, with the bodies it sends, and check that the answers
// carry the fields it reads. fieldsRead lists those fields as paths ("a.b"
// descends into an object; "a[].b" into every element of a list) and each
// leaf must also appear in sandbox.js, so renaming a field on either side
// fails here.

// pageJS returns the page's script.
func pageJS(t *testing.T) string {
	t.Helper()
	return readAll(t, get(t, web.Handler(web.Config{}), http.MethodGet, "/sandbox/sandbox.js").Body)
}

// call sends a JSON request to the sandbox and decodes the JSON answer.
func call(t *testing.T, method, url string, body any, wantStatus int) any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw := readAll(t, res.Body)
	if res.StatusCode != wantStatus {
		t.Fatalf("%s %s = %d, want %d: %s", method, url, res.StatusCode, wantStatus, raw)
	}
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v: %s", method, url, err, raw)
	}
	return v
}

// requireFields fails t unless v has every path and js reads every leaf.
func requireFields(t *testing.T, js, what string, v any, paths ...string) {
	t.Helper()
	for _, p := range paths {
		leaf := p[strings.LastIndexAny(p, ".]")+1:]
		if !strings.Contains(js, "."+leaf) {
			t.Errorf("%s: sandbox.js does not read %q any more; update this test", what, leaf)
		}
		if err := lookup(v, strings.Split(p, ".")); err != nil {
			t.Errorf("%s: field %s: %v", what, p, err)
		}
	}
}

func lookup(v any, path []string) error {
	if len(path) == 0 {
		return nil
	}
	key, each := strings.CutSuffix(path[0], "[]")
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%T is not an object", v)
	}
	next, found := obj[key]
	if !found {
		return fmt.Errorf("missing %q in %v", key, keys(obj))
	}
	if !each {
		return lookup(next, path[1:])
	}
	list, ok := next.([]any)
	if !ok || len(list) == 0 {
		return fmt.Errorf("%q is not a non-empty list", key)
	}
	for _, el := range list {
		if err := lookup(el, path[1:]); err != nil {
			return err
		}
	}
	return nil
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// sse reads Server-Sent Events from url until ctx ends.
type sse struct {
	events chan sseEvent
}

type sseEvent struct {
	Type string
	Data map[string]any
}

func subscribe(ctx context.Context, t *testing.T, url string) *sse {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET %s = %d %q, want 200 text/event-stream", url, res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sse{events: make(chan sseEvent, 256)}
	go func() {
		defer res.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		var typ string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var data map[string]any
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &data) == nil {
					s.events <- sseEvent{Type: typ, Data: data}
				}
			}
		}
	}()
	return s
}

// next returns the first event of type typ for which match is true.
func (s *sse) next(t *testing.T, typ string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e, open := <-s.events:
			if !open {
				t.Fatalf("event stream ended before a %q event", typ)
			}
			if e.Type == typ && (match == nil || match(e.Data)) {
				return e.Data
			}
		case <-deadline:
			t.Fatalf("no %q event within 10s", typ)
		}
	}
}

func str(v any, path ...string) string {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

func TestDiscordControlAPIAsThePageUsesIt(t *testing.T) {
	js := pageJS(t)
	sb := startSandbox(t)
	d := sb.URL + "/_emu/discord"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	events := subscribe(ctx, t, d+"/events")

	// Start-up: guilds and members.
	st := call(t, http.MethodGet, d+"/state", nil, http.StatusOK)
	requireFields(t, js, "GET /state", st, "guilds[].id", "guilds[].channels", "members[].id", "bot.id", "bot.username")
	members := call(t, http.MethodGet, d+"/members", nil, http.StatusOK)
	requireFields(t, js, "GET /members", map[string]any{"members": members},
		"members[].id", "members[].username", "members[].global_name", "members[].locale", "members[].dms_closed")

	// The member bar: new member, language, DMs closed.
	const newID = "200000000000000077"
	m := call(t, http.MethodPut, d+"/members/"+newID, map[string]any{"username": "kim", "global_name": "Kim", "locale": "ko"}, http.StatusOK)
	requireFields(t, js, "PUT /members/{id}", m, "id", "locale")
	ev := events.next(t, "member_update", func(e map[string]any) bool { return str(e, "member", "id") == newID })
	requireFields(t, js, "member_update event", ev, "member.id")
	call(t, http.MethodPut, d+"/members/"+testMemberID, map[string]any{"username": "sam", "global_name": "Sam", "locale": "en-US", "dms_closed": true}, http.StatusOK)
	if got := sb.discord.Members(); !got[0].DMsClosed {
		t.Errorf("after PUT with dms_closed, member %s has DMsClosed false", got[0].ID)
	}
	call(t, http.MethodPut, d+"/members/"+testMemberID, map[string]any{"username": "sam", "global_name": "Sam", "locale": "en-US", "dms_closed": false}, http.StatusOK)

	// /helpme in the support channel: an ephemeral reply and a DM with an
	// embed and buttons.
	cmd := map[string]any{"name": "helpme", "guild_id": discordemu.DefaultGuildID, "channel_id": discordemu.DefaultChannelID}
	info := call(t, http.MethodPost, d+"/members/"+testMemberID+"/commands", cmd, http.StatusOK)
	requireFields(t, js, "POST /commands", info, "id")
	if e := str(info, "error"); e != "" {
		t.Fatalf("/helpme failed: %s", e)
	}
	recs := call(t, http.MethodGet, d+"/members/"+testMemberID+"/messages", nil, http.StatusOK)
	requireFields(t, js, "GET /members/{id}/messages", map[string]any{"records": recs},
		"records[].seq", "records[].from_bot", "records[].ephemeral", "records[].deleted",
		"records[].message.id", "records[].message.content", "records[].message.flags", "records[].message.timestamp",
		"records[].message.author.username", "records[].message.embeds", "records[].message.components")
	list := recs.([]any)
	if len(list) != 2 {
		t.Fatalf("member sees %d messages after /helpme, want the ephemeral reply and the DM", len(list))
	}
	// The fake bot sends the DM before it answers the interaction.
	dm, reply := list[0], list[1]
	requireFields(t, js, "ephemeral reply", reply, "visible_to", "ephemeral", "guild_id", "message.channel_id")
	if reply.(map[string]any)["ephemeral"] != true || str(reply, "visible_to") != testMemberID {
		t.Errorf("reply to /helpme is not ephemeral to the member: %v", reply)
	}
	// The page shows a record in the DM pane only without a guild id: the
	// reply belongs to the channel the command was used in, the DM not.
	if str(reply, "guild_id") != discordemu.DefaultGuildID || str(reply, "message", "channel_id") != discordemu.DefaultChannelID {
		t.Errorf("reply to /helpme is in guild %q channel %q, want the support channel", str(reply, "guild_id"), str(reply, "message", "channel_id"))
	}
	if _, inGuild := dm.(map[string]any)["guild_id"]; inGuild {
		t.Errorf("the DM carries a guild_id: %v", dm)
	}
	requireFields(t, js, "DM", dm, "message.embeds[].title", "message.embeds[].url", "message.embeds[].description",
		"message.components[].type", "message.components[].components[].custom_id",
		"message.components[].components[].label", "message.components[].components[].style")

	// The button: the same message id and custom id the page sends.
	click := map[string]any{"message_id": str(dm, "message", "id"), "custom_id": "flexcord:human"}
	info = call(t, http.MethodPost, d+"/members/"+testMemberID+"/buttons", click, http.StatusOK)
	if e := str(info, "error"); e != "" {
		t.Fatalf("button click failed: %s", e)
	}
	ev = events.next(t, "message_create", func(e map[string]any) bool {
		return strings.Contains(str(e, "record", "message", "content"), testCaseID)
	})
	requireFields(t, js, "message_create event", ev, "record.message.content", "record.message.channel_id")

	// A bot message edited with its buttons disabled: message_update with
	// the new state, which the page renders in place.
	if _, err := sb.bot.dg.ChannelMessageEditComplex(&discordgo.MessageEdit{
		ID: str(dm, "message", "id"), Channel: str(dm, "message", "channel_id"),
		Components: &[]discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
			discordgo.Button{Label: "Talk to a human", Style: discordgo.PrimaryButton, CustomID: "flexcord:human", Disabled: true},
		}}},
	}); err != nil {
		t.Fatal(err)
	}
	ev = events.next(t, "message_update", func(e map[string]any) bool { return str(e, "record", "message", "id") == str(dm, "message", "id") })
	requireFields(t, js, "message_update event", ev, "record.message.id", "record.message.edited_timestamp", "record.message.components[].components[].disabled")

	// /bug in its channel opens a modal; the page renders it from the
	// interaction and submits the values by custom id.
	cmd = map[string]any{"name": "bug", "guild_id": discordemu.DefaultGuildID, "channel_id": testBugChannel}
	info = call(t, http.MethodPost, d+"/members/"+testMemberID+"/commands", cmd, http.StatusOK)
	requireFields(t, js, "POST /commands (modal)", info, "id", "modal.custom_id", "modal.title",
		"modal.components[].components[].custom_id", "modal.components[].components[].label",
		"modal.components[].components[].style", "modal.components[].components[].required")
	ev = events.next(t, "modal", func(e map[string]any) bool { return str(e, "interaction", "id") == str(info, "id") })
	requireFields(t, js, "modal event", ev, "interaction.user_id", "interaction.modal")
	submit := map[string]any{
		"interaction_id": str(info, "id"), "custom_id": str(info, "modal", "custom_id"),
		"values": map[string]string{"title": "Crash on login", "description": "It crashes.", "platform": "iOS 18"},
	}
	info = call(t, http.MethodPost, d+"/members/"+testMemberID+"/modals", submit, http.StatusOK)
	if e := str(info, "error"); e != "" {
		t.Fatalf("modal submit failed: %s", e)
	}
	chans := call(t, http.MethodGet, d+"/channels/"+testBugChannel+"/messages", nil, http.StatusOK)
	requireFields(t, js, "GET /channels/{id}/messages", map[string]any{"records": chans}, "records[].visible_to", "records[].message.content")
	if got := str(chans.([]any)[0], "message", "content"); !strings.Contains(got, testBugCaseID) || !strings.Contains(got, "Crash on login (iOS 18)") {
		t.Errorf("reply to the modal = %q, want the case id and the submitted values", got)
	}

	// The composer.
	rec := call(t, http.MethodPost, d+"/members/"+testMemberID+"/dm", map[string]any{"content": "I forgot my password"}, http.StatusOK)
	if got := str(rec, "message", "content"); got != "I forgot my password" {
		t.Errorf("DM content = %q", got)
	}

	// A failed interaction is reported with the member and the reason.
	call(t, http.MethodPost, d+"/members/"+testMemberID+"/commands", map[string]any{"name": "nope", "guild_id": discordemu.DefaultGuildID}, http.StatusBadRequest)
}

func TestTwilioControlAPIAsThePageUsesIt(t *testing.T) {
	js := pageJS(t)
	sb := startSandbox(t)
	tw := sb.URL + "/_emu/twilio"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	events := subscribe(ctx, t, tw+"/events")

	if err := sb.bot.handOver(testMemberID); err != nil {
		t.Fatal(err)
	}
	ev := events.next(t, "task.created", nil)
	requireFields(t, js, "task.created event", ev, "task.sid")

	tasks := call(t, http.MethodGet, tw+"/tasks", nil, http.StatusOK)
	requireFields(t, js, "GET /tasks", tasks,
		"tasks[].sid", "tasks[].status", "tasks[].date_created", "tasks[].conversation_sid", "tasks[].conversation_state",
		"tasks[].attributes.case_id", "tasks[].attributes.discord_user_id", "tasks[].attributes.discord_username",
		"tasks[].attributes.locale", "tasks[].attributes.transcript", "tasks[].attributes.articles")
	task := tasks.(map[string]any)["tasks"].([]any)[0]
	sid, conv := str(task, "sid"), str(task, "conversation_sid")
	if got := str(task, "status"); got != "waiting" {
		t.Fatalf("new task status = %q, want waiting", got)
	}

	accepted := call(t, http.MethodPost, tw+"/tasks/"+sid+"/accept", map[string]any{"agent": "Ana"}, http.StatusOK)
	requireFields(t, js, "POST /tasks/{sid}/accept", accepted, "worker_name")
	if str(accepted, "status") != "assigned" || str(accepted, "worker_name") != "Ana" {
		t.Errorf("accepted task = %s by %q, want assigned by Ana", str(accepted, "status"), str(accepted, "worker_name"))
	}
	call(t, http.MethodPost, tw+"/tasks/"+sid+"/accept", map[string]any{"agent": "Bo"}, http.StatusConflict)

	call(t, http.MethodPost, tw+"/tasks/"+sid+"/messages", map[string]any{"body": "Hi, I'm Ana."}, http.StatusCreated)
	ev = events.next(t, "message.added", func(e map[string]any) bool { return str(e, "message", "body") == "Hi, I'm Ana." })
	requireFields(t, js, "message.added event", ev, "conversation_sid")
	msgs := call(t, http.MethodGet, tw+"/conversations/"+conv+"/messages", nil, http.StatusOK)
	requireFields(t, js, "GET /conversations/{sid}/messages", msgs,
		"messages[].sid", "messages[].author", "messages[].body", "messages[].role", "messages[].conversation_sid")
	roles := map[string]string{}
	for _, m := range msgs.(map[string]any)["messages"].([]any) {
		roles[str(m, "body")] = str(m, "role")
	}
	if roles["I forgot my password"] != "customer" || roles["Hi, I'm Ana."] != "agent" {
		t.Errorf("message roles = %v, want the member as customer and Ana as agent", roles)
	}

	// The "Twilio 5xx" switch: the exact fault the page posts, found again
	// by the page's own test (isOurFault), then removed by id.
	fault := map[string]any{
		"host": "conversations.twilio.com", "method": "POST", "path": "/v1/Conversations/*/Messages",
		"status": 503, "count": -1, "message": "Service Unavailable (injected by the sandbox page)",
	}
	for k := range fault {
		if !strings.Contains(js, k+": ") {
			t.Errorf("sandbox.js no longer sends fault field %q; update this test", k)
		}
	}
	created := call(t, http.MethodPost, tw+"/faults", fault, http.StatusCreated)
	requireFields(t, js, "POST /faults", created, "id")
	faults := call(t, http.MethodGet, tw+"/faults", nil, http.StatusOK)
	requireFields(t, js, "GET /faults", faults, "faults[].id", "faults[].fault.path", "faults[].fault.status", "faults[].remaining")
	if r := faults.(map[string]any)["faults"].([]any)[0].(map[string]any)["remaining"]; r != float64(-1) {
		t.Errorf("fault remaining = %v, want -1 (until removed)", r)
	}
	_, err := sb.bot.rc.ConversationsV1.CreateConversationMessage(conv, (&conversations.CreateConversationMessageParams{}).SetBody("lost"))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("posting a message with the fault on: err = %v, want a 503", err)
	}
	call(t, http.MethodDelete, tw+"/faults/"+str(created, "id"), nil, http.StatusNoContent)
	if f := sb.twilio.Faults(); len(f) != 0 {
		t.Errorf("faults after DELETE = %v, want none", f)
	}

	// Cancel task and Time out task, on tasks nobody accepted.
	for _, action := range []struct{ path, reason string }{{"cancel", "Task canceled"}, {"timeout", "Workflow Timeout"}} {
		if err := sb.bot.handOver(testMemberID); err != nil {
			t.Fatal(err)
		}
		ev := events.next(t, "task.created", nil)
		other := str(ev, "task", "sid")
		got := call(t, http.MethodPost, tw+"/tasks/"+other+"/"+action.path, nil, http.StatusOK)
		requireFields(t, js, "POST /tasks/{sid}/"+action.path, got, "status", "reason")
		if str(got, "status") != "canceled" || !strings.Contains(str(got, "reason"), action.reason) {
			t.Errorf("after %s the task is %q (%q), want canceled (%s)", action.path, str(got, "status"), str(got, "reason"), action.reason)
		}
		// Only a waiting task can be canceled.
		call(t, http.MethodPost, tw+"/tasks/"+other+"/"+action.path, nil, http.StatusConflict)
	}

	wrapped := call(t, http.MethodPost, tw+"/tasks/"+sid+"/wrapup", nil, http.StatusOK)
	if got := str(wrapped, "status"); got != "wrapping" {
		t.Errorf("status after wrap-up = %q, want wrapping", got)
	}
	if got := str(wrapped, "conversation_state"); got != "closed" {
		t.Errorf("conversation after wrap-up = %q, want closed", got)
	}
	done := call(t, http.MethodPost, tw+"/tasks/"+sid+"/complete", nil, http.StatusOK)
	if got := str(done, "status"); got != "completed" {
		t.Errorf("status after complete = %q, want completed", got)
	}
	ev = events.next(t, "task.updated", func(e map[string]any) bool { return str(e, "task", "status") == "completed" })
	requireFields(t, js, "task.updated event", ev, "task.status")
}
