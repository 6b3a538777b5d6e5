package devstack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestSandboxServesEverythingOnOneAddress(t *testing.T) {
	sb, err := StartSandbox(context.Background(), SandboxOptions{IngressURL: "http://127.0.0.1:9/"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	get := func(path, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, sb.URL+path, nil)
		if host != "" {
			req.Host = host
		}
		req.SetBasicAuth(SandboxTwilioAccountSID, SandboxTwilioAuthToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Twilio's REST API, told apart by its Host header.
	if code, body := get("/v1/Workspaces/"+SandboxTwilioWorkspaceSID, "taskrouter.twilio.com"); code != http.StatusOK || !strings.Contains(body, "http://127.0.0.1:9/twilio/taskrouter") {
		t.Errorf("TaskRouter workspace: %d %.200s", code, body)
	}
	// Discord's REST API and gateway URL, by path.
	if code, body := get("/api/v9/gateway", ""); code != http.StatusOK || !strings.Contains(body, "ws://"+strings.TrimPrefix(sb.URL, "http://")+"/gateway") {
		t.Errorf("GET /gateway: %d %s", code, body)
	}
	code, body := get(SandboxConfigPath, "")
	var cfg SandboxConfig
	if code != http.StatusOK || json.Unmarshal([]byte(body), &cfg) != nil {
		t.Fatalf("config: %d %s", code, body)
	}
	if cfg.IngressURL != "http://127.0.0.1:9" || cfg.Discord.PublicKey == "" || cfg.Twilio.WorkflowSID != SandboxTwilioWorkflowSID || len(cfg.Feeds) != 1 {
		t.Errorf("config %+v", cfg)
	}
	if got := sb.Discord.Commands(""); len(got) != 3 {
		t.Errorf("%d slash commands registered, want 3", len(got))
	}
	for _, p := range []string{"/sandbox", "/_emu/discord/state", "/_emu/twilio/workspace", "/_emu/feeds/sample.xml", "/healthz"} {
		if code, _ := get(p, ""); code != http.StatusOK {
			t.Errorf("GET %s: %d", p, code)
		}
	}
}

func TestIsTwilioHost(t *testing.T) {
	for host, want := range map[string]bool{
		"conversations.twilio.com": true, "flex-api.twilio.com:443": true, "TaskRouter.Twilio.com": true,
		"127.0.0.1:8090": false, "discord.com": false, "twilio.com.example": false,
	} {
		if got := IsTwilioHost(host); got != want {
			t.Errorf("IsTwilioHost(%q) = %v", host, got)
		}
	}
}
