package discordemu_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/flexcord/flexcord/sandbox/discordemu"
)

func TestIdentifyCloseCodes(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{})
	tests := []struct {
		name      string
		token     string
		intents   int
		wantClose int
	}{
		{name: "bad token", token: "Bot nope", intents: 1 << 12, wantClose: 4004},
		{name: "undefined intent bit", token: "Bot " + emu.Token(), intents: 1 << 30, wantClose: 4013},
		{name: "MESSAGE_CONTENT not enabled", token: "Bot " + emu.Token(), intents: 1<<12 | 1<<15, wantClose: 4014},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, _, err := websocket.DefaultDialer.Dial(emu.GatewayURL()+"/?v=9&encoding=json", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			var hello struct {
				Op int `json:"op"`
				D  struct {
					HeartbeatInterval int `json:"heartbeat_interval"`
				} `json:"d"`
			}
			if err := ws.ReadJSON(&hello); err != nil || hello.Op != 10 || hello.D.HeartbeatInterval != 41250 {
				t.Fatalf("HELLO = %+v, %v", hello, err)
			}
			id := map[string]any{"op": 2, "d": map[string]any{"token": tt.token, "intents": tt.intents, "properties": map[string]string{"os": "linux"}}}
			if err := ws.WriteJSON(id); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err = ws.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != tt.wantClose {
				t.Fatalf("read error = %v, want close %d", err, tt.wantClose)
			}
		})
	}
}

func TestControlAPI(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{})
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, emu.URL()+"/_emu/discord"+path, strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	events, err := client.Get(emu.URL() + "/_emu/discord/events")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	sse := bufio.NewReader(events.Body)
	if line, _ := sse.ReadString('\n'); !strings.HasPrefix(line, ": connected") {
		t.Fatalf("first SSE line = %q", line)
	}

	if resp := do(http.MethodPut, "/members/3000", `{"username":"carol","locale":"ja"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT member: %d", resp.StatusCode)
	}
	if resp := do(http.MethodPost, "/members/3000/dm", `{"content":"こんにちは"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST dm: %d", resp.StatusCode)
	}
	if resp := do(http.MethodPost, "/members/9999/dm", `{"content":"x"}`); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("DM from unknown member: %d, want 404", resp.StatusCode)
	}
	resp := do(http.MethodGet, "/members/3000/messages", "")
	var recs []discordemu.Record
	if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil || len(recs) != 1 || recs[0].Message.Content != "こんにちは" || recs[0].FromBot {
		t.Fatalf("member messages = %+v, %v", recs, err)
	}
	if resp := do(http.MethodPost, "/faults", `{"route":"GET /users/@me","status":502}`); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST fault: %d", resp.StatusCode)
	}

	var types []string
	for len(types) < 2 {
		line, err := sse.ReadString('\n')
		if err != nil {
			t.Fatalf("read SSE: %v", err)
		}
		if typ, found := strings.CutPrefix(line, "event: "); found {
			types = append(types, strings.TrimSpace(typ))
		}
	}
	if types[0] != string(discordemu.EventMemberUpdate) || types[1] != string(discordemu.EventMessageCreate) {
		t.Fatalf("SSE events = %v", types)
	}
}
