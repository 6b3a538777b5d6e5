package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/workflows"
)

var payloadKeyVars = []string{"FLEXCORD_PAYLOAD_KEYS", "FLEXCORD_PAYLOAD_KEY_FILE"}

// TestHelpListsPayloadKeys: every command with a Temporal client documents the payload keys;
// ingress documents its codec endpoint's settings too.
func TestHelpListsPayloadKeys(t *testing.T) {
	codecVars := []string{"FLEXCORD_CODEC_TOKEN", "FLEXCORD_CODEC_CORS_ORIGINS"}
	cases := []helpCase{
		{[]string{"worker"}, payloadKeyVars, nil},
		{[]string{"ingress"}, concat(payloadKeyVars, codecVars), nil},
		{[]string{"gateway"}, payloadKeyVars, nil},
	}
	for _, ops := range [][]string{{"deliveries", "retry"}, {"cases", "list"}, {"cases", "show"}, {"cases", "set-status"},
		{"conversations", "list"}, {"conversations", "show"}, {"conversations", "close"}, {"feeds", "list"}, {"feeds", "add"}} {
		cases = append(cases, helpCase{ops, payloadKeyVars, nil})
	}
	checkHelp(t, cases)
}

// TestBadPayloadKeyStopsStartup: a malformed key, a duplicate id or both variables set stops
// every role and operator command at start, with an error naming the variable.
func TestBadPayloadKeyStopsStartup(t *testing.T) {
	good, err := payloadcodec.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DISCORD_TOKEN", "")
	t.Setenv("FLEXCORD_SANDBOX_URL", "")
	commands := map[string][]string{
		"worker":             {"worker", "-http-addr", "127.0.0.1:0"},
		"ingress":            {"ingress", "-http-addr", "127.0.0.1:0"},
		"gateway":            {"gateway", "-http-addr", "127.0.0.1:0"},
		"conversations list": {"conversations", "list", "--address", closedAddr(t)},
	}
	for bad, want := range map[string]string{
		"k1:c2hvcnQ=":       "FLEXCORD_PAYLOAD_KEYS",
		"k1:not base64!":    "FLEXCORD_PAYLOAD_KEYS",
		good + "," + good:   "FLEXCORD_PAYLOAD_KEYS",
		"no-colon-anywhere": "FLEXCORD_PAYLOAD_KEYS",
	} {
		for name, args := range commands {
			t.Run(name+" "+bad[:min(len(bad), 12)], func(t *testing.T) {
				t.Setenv("FLEXCORD_PAYLOAD_KEYS", bad)
				t.Setenv("FLEXCORD_PAYLOAD_KEY_FILE", "")
				if name == "gateway" {
					t.Setenv("DISCORD_TOKEN", "token")
					t.Setenv("DISCORD_APPLICATION_ID", "1000000000000000001")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				var out, errb bytes.Buffer
				err := run(ctx, args, &out, &errb)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("flexcord %s with FLEXCORD_PAYLOAD_KEYS=%q: %v, want an error naming %s", name, bad, err, want)
				}
			})
		}
	}
	t.Run("both variables", func(t *testing.T) {
		t.Setenv("FLEXCORD_PAYLOAD_KEYS", good)
		t.Setenv("FLEXCORD_PAYLOAD_KEY_FILE", "/nonexistent")
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{"worker", "-http-addr", "127.0.0.1:0"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "FLEXCORD_PAYLOAD_KEY_FILE") {
			t.Errorf("worker with both variables: %v", err)
		}
	})
	t.Run("codec settings", func(t *testing.T) {
		t.Setenv("FLEXCORD_PAYLOAD_KEYS", good)
		t.Setenv("FLEXCORD_PAYLOAD_KEY_FILE", "")
		for env, value := range map[string]string{"FLEXCORD_CODEC_TOKEN": "short", "FLEXCORD_CODEC_CORS_ORIGINS": "temporal.example.com"} {
			t.Setenv(env, value)
			var out, errb bytes.Buffer
			if err := run(context.Background(), []string{"ingress", "-http-addr", "127.0.0.1:0"}, &out, &errb); err == nil || !strings.Contains(err.Error(), env) {
				t.Errorf("ingress with %s=%q: %v, want an error naming it", env, value, err)
			}
			t.Setenv(env, "")
		}
	})
}

// TestOperatorCommandsDecrypt: against workers that encrypt, an operator command reads the
// conversation with the same keys in its environment, and cannot without them.
func TestOperatorCommandsDecrypt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	key, err := payloadcodec.GenerateKey("ops")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := payloadcodec.ParseKeys(key)
	codec, _ := payloadcodec.New(keys)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{ServerLogLevel: "fatal", PayloadCodec: codec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	member := devstack.SandboxMembers[0]
	if _, err := st.Discord.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "helpme", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxGeneralChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	id := workflows.ConversationWorkflowID(member.ID)
	waitFor(t, 30*time.Second, "the conversation", func() bool {
		_, err := st.Client.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
		return err == nil
	})

	t.Setenv("FLEXCORD_PAYLOAD_KEY_FILE", "")
	t.Setenv("FLEXCORD_PAYLOAD_KEYS", key)
	if out := flexcord(t, st, "conversations", "show", id); !strings.Contains(out, member.ID) || !strings.Contains(out, "Mika") {
		t.Errorf("conversations show with the keys:\n%s", out)
	}
	t.Setenv("FLEXCORD_PAYLOAD_KEYS", "")
	var out, errb bytes.Buffer
	err = run(ctx, []string{"conversations", "show", id, "--address", st.TemporalAddr, "--namespace", st.Namespace}, &out, &errb)
	if err == nil || strings.Contains(out.String(), "Mika") {
		t.Errorf("conversations show without the keys: %v\n%s", err, out.String())
	}
}
