//go:build dev

package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flexcord/flexcord/internal/devstack"
)

func TestDevHelpListsPayloadKeys(t *testing.T) {
	checkHelp(t, []helpCase{
		{[]string{"dev"}, concat(payloadKeyVars, []string{"FLEXCORD_CODEC_TOKEN", "FLEXCORD_CODEC_CORS_ORIGINS"}), nil},
		{[]string{"temporal"}, []string{"FLEXCORD_UI_CODEC_ENDPOINT", "FLEXCORD_CODEC_TOKEN"}, nil},
	})
}

// TestDevEncryptsWithItsOwnKey: without keys configured, `flexcord dev` makes a payload key and a
// codec token in its data directory, says where they are, and serves the codec endpoint with
// that token.
func TestDevEncryptsWithItsOwnKey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs flexcord dev")
	}
	t.Setenv("FLEXCORD_PAYLOAD_KEYS", "")
	t.Setenv("FLEXCORD_PAYLOAD_KEY_FILE", "")
	t.Setenv("FLEXCORD_CODEC_TOKEN", "")
	dir := t.TempDir()
	r := startRoleStdout(t, "dev", "--log-format", "text", "--data-dir", dir, "--http-addr", "127.0.0.1:0",
		"--temporal-port", "0", "--ui-port", "0")
	out := r.stdout.String()
	keyFile, tokenFile := filepath.Join(dir, devstack.PayloadKeyFile), filepath.Join(dir, devstack.CodecTokenFile)
	if !strings.Contains(out, "payload keys       "+keyFile+" (generated)") || !strings.Contains(out, tokenFile) {
		t.Errorf("dev does not say where its key and token are:\n%s", out)
	}
	m := regexp.MustCompile(`codec endpoint     (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dev prints no codec endpoint:\n%s", out)
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, m[1]+"/decode", strings.NewReader(`{"payloads":[]}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Errorf("codec endpoint without the token: %d, want 401", code)
	}
	if code := post("Bearer " + strings.TrimSpace(string(token))); code != http.StatusOK {
		t.Errorf("codec endpoint with the token of %s: %d, want 200", tokenFile, code)
	}
	r.stop(t)
}
