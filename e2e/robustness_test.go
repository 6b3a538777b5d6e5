package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/workflows"
)

func TestBugAndFeatureReports(t *testing.T) {
	st := startStack(t, devstack.Options{})
	ctx := context.Background()
	dc := st.Discord
	member := devstack.SandboxMembers[2] // ja locale

	for _, tc := range []struct {
		command, channel string
		values           map[string]string
		typ              workflows.CaseType
	}{
		{"bug", devstack.SandboxBugChannel, map[string]string{"title": "Shop crashes", "description": "The game closes when I open the shop.", "steps": "1. Open shop", "platform": "Android 14"}, workflows.CaseBug},
		{"new_feature", devstack.SandboxFeatureChannel, map[string]string{"title": "Dark mode", "description": "Please add a dark theme."}, workflows.CaseFeature},
	} {
		t.Run(tc.command, func(t *testing.T) {
			info, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: tc.command, GuildID: devstack.SandboxGuildID, ChannelID: tc.channel, Locale: "en-US"})
			if err != nil {
				t.Fatal(err)
			}
			if info.ResponseType != 9 {
				t.Fatalf("/%s answered with callback type %d, want a modal (9)", tc.command, info.ResponseType)
			}
			if _, err := dc.SubmitModal(ctx, member.ID, discordemu.ModalInput{Values: tc.values, Locale: "en-US"}); err != nil {
				t.Fatal(err)
			}
			// The channel gets a confirmation embed with the case id; the reporter got it ephemerally.
			var caseID string
			waitFor(t, 20*time.Second, "the channel confirmation", func() bool {
				for _, r := range dc.Messages(tc.channel) {
					if r.FromBot && !r.Ephemeral && strings.Contains(fmt.Sprint(r.Message.Embeds), tc.values["title"]) {
						caseID = findCaseID(fmt.Sprint(r.Message.Embeds))
						return caseID != ""
					}
				}
				return false
			})
			if _, ok := findBot(dc, member.ID, caseID); !ok {
				t.Errorf("the reporter was not told the case id %s", caseID)
			}
			var view workflows.CaseView
			v, err := st.Client.QueryWorkflow(ctx, workflows.CaseWorkflowID(caseID), "", workflows.QueryStatus)
			if err != nil || v.Get(&view) != nil {
				t.Fatalf("query case %s: %v", caseID, err)
			}
			if view.Type != tc.typ || view.Title != tc.values["title"] || view.ChannelID != tc.channel {
				t.Errorf("case = %+v", view)
			}

			// An operator moves the case; the reporter hears about it in a DM.
			h, err := st.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: workflows.CaseWorkflowID(caseID), UpdateName: workflows.UpdateSetCaseStatus,
				Args:         []any{workflows.SetCaseStatusRequest{Status: workflows.CaseInProgress, Note: "We can reproduce it."}},
				WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			if err != nil || h.Get(ctx, nil) != nil {
				t.Fatalf("set status: %v", err)
			}
			waitFor(t, 20*time.Second, "the status DM", func() bool {
				r, ok := findBot(dc, member.ID, caseID)
				return ok && strings.Contains(r.Message.Content, "We can reproduce it.")
			})
		})
	}
}

// caseIDPattern matches case ids as workflows.FormatCaseID writes them.
var caseIDPattern = regexp.MustCompile(`C-[2-9A-HJKMNP-Z]{6}`)

// findCaseID returns the first case id in s.
func findCaseID(s string) string { return caseIDPattern.FindString(s) }

func TestRedeliveredAndForgedEventsHaveNoEffect(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st := startStack(t, devstack.Options{DiscordEmulatorKey: key})
	ctx := context.Background()
	dc, tw := st.Discord, st.Twilio
	member := devstack.SandboxMembers[0]

	// An interaction delivered twice (Discord retries) greets once.
	info, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "helpme", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxGeneralChannel, Locale: "en-US"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the greeting", func() bool { return countBot(dc, member.ID, "Hi Mika") == 1 })
	payload := dc.InteractionPayload(info.ID)
	if code := postInteraction(t, st.URL, key, payload); code != http.StatusOK {
		t.Fatalf("re-delivered interaction answered %d", code)
	}
	// A forged one (signed with another key) is refused and starts nothing.
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged := bytes.Replace(payload, []byte(member.ID), []byte(devstack.SandboxMembers[1].ID), -1)
	if code := postInteraction(t, st.URL, otherKey, forged); code != http.StatusUnauthorized {
		t.Fatalf("forged interaction answered %d, want 401", code)
	}

	// Hand over to an agent, then replay an agent message webhook and forge another.
	if _, err := dc.SendDM(member.ID, "I want to talk to a human"); err != nil {
		t.Fatal(err)
	}
	task := waitTask(t, tw, "")
	if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.SendAgentMessage(task.SID, "only once please"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the agent message", func() bool { return countBot(dc, member.ID, "only once please") == 1 })
	var hook twilioemu.Delivery
	for _, d := range tw.Deliveries() {
		if d.EventType == "onMessageAdded" && strings.Contains(d.Params.Get("Body"), "only once please") {
			hook = d
		}
	}
	if hook.URL == "" {
		t.Fatal("no onMessageAdded delivery recorded")
	}
	if code := postTwilio(t, hook.URL, twilioemu.Signature(devstack.SandboxTwilioAuthToken, hook.URL, hook.Params), hook.Params); code != http.StatusOK {
		t.Fatalf("replayed webhook answered %d", code)
	}
	forgedParams := url.Values{}
	for k, v := range hook.Params {
		forgedParams[k] = v
	}
	forgedParams.Set("Body", "forged text")
	forgedParams.Set("MessageSid", "IM"+strings.Repeat("f", 32))
	if code := postTwilio(t, hook.URL, twilioemu.Signature("wrongtoken", hook.URL, forgedParams), forgedParams); code != http.StatusForbidden {
		t.Fatalf("forged webhook answered %d, want 403", code)
	}

	// A marker message after everything above: once it arrives, nothing else is coming.
	if _, err := tw.SendAgentMessage(task.SID, "marker"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the marker", func() bool { return countBot(dc, member.ID, "marker") == 1 })
	if n := countBot(dc, member.ID, "Hi Mika"); n != 1 {
		t.Errorf("greeted %d times", n)
	}
	if n := countBot(dc, member.ID, "only once please"); n != 1 {
		t.Errorf("agent message delivered %d times", n)
	}
	if n := countBot(dc, member.ID, "forged"); n != 0 {
		t.Errorf("forged message delivered")
	}
	if _, err := st.Client.DescribeWorkflowExecution(ctx, workflows.ConversationWorkflowID(devstack.SandboxMembers[1].ID), ""); err == nil {
		t.Errorf("a forged interaction started a conversation")
	}
}

func TestWorkerStoppedMidConversation(t *testing.T) {
	st := startStack(t, devstack.Options{})
	dc, tw := st.Discord, st.Twilio
	member := devstack.SandboxMembers[1]
	if _, err := dc.SendDM(member.ID, "상담원 연결해 주세요"); err != nil { // "please connect me to an agent"
		t.Fatal(err)
	}
	task := waitTask(t, tw, "")
	if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "Ana joined", func() bool { return countBot(dc, member.ID, "Ana") == 1 })

	st.StopWorker()
	for i := 1; i <= 3; i++ {
		if _, err := tw.SendAgentMessage(task.SID, "agent "+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := dc.SendDM(member.ID, "member "+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Ingress took every event while no worker ran; nothing was delivered yet.
	waitFor(t, 20*time.Second, "the webhooks answered", func() bool {
		n := 0
		for _, d := range tw.Deliveries() {
			if d.EventType == "onMessageAdded" && d.LastStatus == http.StatusOK {
				n++
			}
		}
		return n >= 3
	})
	if n := countBot(dc, member.ID, "agent "); n != 0 {
		t.Fatalf("%d messages delivered with the worker stopped", n)
	}
	if err := st.StartWorker(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "everything delivered after the restart", func() bool {
		msgs, _ := tw.ConversationMessages(task.ConversationSID)
		n := 0
		for _, m := range msgs {
			if strings.HasPrefix(m.Body, "member ") {
				n++
			}
		}
		return n == 3 && countBot(dc, member.ID, "agent ") == 3
	})
	var got []string
	for _, r := range botMessages(dc, member.ID) {
		if i := strings.Index(r.Message.Content, "agent "); i >= 0 {
			got = append(got, r.Message.Content[i:])
		}
	}
	if strings.Join(got, "|") != "agent 1|agent 2|agent 3" {
		t.Errorf("member saw %q", got)
	}
}

func postInteraction(t *testing.T, base string, key ed25519.PrivateKey, body []byte) int {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest(http.MethodPost, base+"/discord/interactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature-Timestamp", ts)
	req.Header.Set("X-Signature-Ed25519", hex.EncodeToString(ed25519.Sign(key, append([]byte(ts), body...))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func postTwilio(t *testing.T, target, signature string, params url.Values) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
