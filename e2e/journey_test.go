// Package e2e tests flexcord end to end: the embedded Temporal server, the real workflows and
// activities, ingress, discordgo and twilio-go talking to the local emulators, exactly as
// `flexcord dev` runs them.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/workflows"
)

func startStack(t *testing.T, opts devstack.Options) *devstack.Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	if opts.ServerLogLevel == "" {
		opts.ServerLogLevel = "fatal"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start the stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			t.Logf("stop: %v", err)
		}
		if v := st.Discord.Violations(); len(v) > 0 {
			t.Errorf("Discord contract violations: %q", v)
		}
		if v := st.Twilio.Violations(); len(v) > 0 {
			t.Errorf("Twilio contract violations: %q", v)
		}
	})
	return st
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(25 * time.Millisecond) // polling interval
	}
}

// waitTask waits for the waiting Flex task of caseID (any case when caseID is empty) and returns it.
func waitTask(t *testing.T, tw *twilioemu.Server, caseID string) twilioemu.TaskView {
	t.Helper()
	var task twilioemu.TaskView
	waitFor(t, 20*time.Second, "the Flex task", func() bool {
		for _, tk := range tw.Tasks(twilioemu.TaskWaiting) {
			if caseID == "" || tk.Attributes["case_id"] == caseID {
				task = tk
				return true
			}
		}
		return false
	})
	return task
}

// botMessages returns what the bot sent a member (DMs and ephemeral replies), in order.
func botMessages(emu *discordemu.Server, userID string) []discordemu.Record {
	var out []discordemu.Record
	for _, r := range emu.UserMessages(userID) {
		if r.FromBot && !r.Deleted {
			out = append(out, r)
		}
	}
	return out
}

// findBot returns the last bot message to the member whose content contains s.
func findBot(emu *discordemu.Server, userID, s string) (discordemu.Record, bool) {
	msgs := botMessages(emu, userID)
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.Contains(msgs[i].Message.Content, s) {
			return msgs[i], true
		}
	}
	return discordemu.Record{}, false
}

func countBot(emu *discordemu.Server, userID, s string) int {
	n := 0
	for _, r := range botMessages(emu, userID) {
		if strings.Contains(r.Message.Content, s) {
			n++
		}
	}
	return n
}

// customIDs lists the custom ids of a message's buttons.
func customIDs(r discordemu.Record) []string {
	raw, _ := json.Marshal(r.Message.Components)
	var rows []struct {
		Components []struct {
			CustomID string `json:"custom_id"`
		} `json:"components"`
	}
	_ = json.Unmarshal(raw, &rows)
	var ids []string
	for _, row := range rows {
		for _, c := range row.Components {
			ids = append(ids, c.CustomID)
		}
	}
	return ids
}

func conversationStatus(t *testing.T, st *devstack.Stack, userID string) workflows.ConversationStatus {
	t.Helper()
	var s workflows.ConversationStatus
	v, err := st.Client.QueryWorkflow(context.Background(), workflows.ConversationWorkflowID(userID), "", workflows.QueryStatus)
	if err == nil {
		_ = v.Get(&s)
	}
	return s
}

func TestSupportJourney(t *testing.T) {
	st := startStack(t, devstack.Options{})
	ctx := context.Background()
	member := devstack.SandboxMembers[0]
	dc, tw := st.Discord, st.Twilio

	// /helpme in the guild → the greeting in a DM, with the Talk to a human button.
	if _, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "helpme", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxGeneralChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	var greeting discordemu.Record
	waitFor(t, 20*time.Second, "the greeting", func() bool {
		var ok bool
		greeting, ok = findBot(dc, member.ID, "Hi Mika")
		return ok
	})
	if ids := customIDs(greeting); len(ids) != 1 || ids[0] != workflows.ButtonCustomID(workflows.ActionTalkToHuman, 0) {
		t.Fatalf("greeting buttons = %q", ids)
	}

	// A question → three articles from the knowledge base.
	if _, err := dc.SendDM(member.ID, "I forgot my password and can't log in"); err != nil {
		t.Fatal(err)
	}
	var answer discordemu.Record
	waitFor(t, 20*time.Second, "the article suggestions", func() bool {
		var ok bool
		answer, ok = findBot(dc, member.ID, "Here's what I found")
		return ok
	})
	titles := embedTitles(answer)
	if len(titles) < 1 || len(titles) > 3 {
		t.Fatalf("answer has %d embeds, want 1 to 3", len(titles))
	}
	if !strings.Contains(strings.ToLower(titles[0]), "password") {
		t.Errorf("first suggestion %q is not the password article (all: %q)", titles[0], titles)
	}

	// Talk to a human → a case, announced, and a Flex task for an agent.
	if _, err := dc.ClickButton(ctx, member.ID, discordemu.ButtonInput{MessageID: answer.Message.ID, CustomID: "flexcord:human"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the case announcement", func() bool { _, ok := findBot(dc, member.ID, "created. Transferring you"); return ok })
	caseID := conversationStatus(t, st, member.ID).CaseID
	if !workflows.ValidCaseID(caseID) {
		t.Fatalf("case id %q", caseID)
	}
	task := waitTask(t, tw, caseID)

	// The agent accepts → the member is told.
	if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "Ana joined", func() bool { return countBot(dc, member.ID, "Ana joined") == 1 })
	if s := conversationStatus(t, st, member.ID); s.Stage != workflows.StageLive {
		t.Fatalf("stage = %s, want live", s.Stage)
	}

	// Three messages each way, each arriving once and in order.
	for i := 1; i <= 3; i++ {
		if _, err := dc.SendDM(member.ID, fmt.Sprintf("member line %d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.SendAgentMessage(task.SID, fmt.Sprintf("agent line %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "three lines each way", func() bool {
		msgs, _ := tw.ConversationMessages(task.ConversationSID)
		n := 0
		for _, m := range msgs {
			if strings.HasPrefix(m.Body, "member line") {
				n++
			}
		}
		return n >= 3 && countBot(dc, member.ID, "agent line") >= 3
	})
	msgs, _ := tw.ConversationMessages(task.ConversationSID)
	var toAgent []string
	for _, m := range msgs {
		if strings.HasPrefix(m.Body, "member line") {
			toAgent = append(toAgent, m.Body)
		}
	}
	var toMember []string
	for _, r := range botMessages(dc, member.ID) {
		if strings.Contains(r.Message.Content, "agent line") {
			toMember = append(toMember, r.Message.Content)
		}
	}
	if strings.Join(toAgent, "|") != "member line 1|member line 2|member line 3" {
		t.Errorf("the agent saw %q", toAgent)
	}
	if len(toMember) != 3 || !strings.HasSuffix(toMember[0], "agent line 1") || !strings.HasSuffix(toMember[2], "agent line 3") {
		t.Errorf("the member saw %q", toMember)
	}

	// Wrap-up → the case is resolved, the member is asked to rate, and the rating lands on the case.
	if _, err := tw.WrapUpTask(task.SID); err != nil {
		t.Fatal(err)
	}
	var rateMsg discordemu.Record
	waitFor(t, 20*time.Second, "the rating request", func() bool {
		var ok bool
		rateMsg, ok = findBot(dc, member.ID, "has been resolved")
		return ok
	})
	ids := customIDs(rateMsg)
	if len(ids) != 5 || !strings.HasPrefix(ids[4], "flexcord:rate:5:C-") {
		t.Fatalf("rating buttons = %q", ids)
	}
	if _, err := dc.ClickButton(ctx, member.ID, discordemu.ButtonInput{MessageID: rateMsg.Message.ID, CustomID: ids[4]}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the thanks", func() bool { _, ok := findBot(dc, member.ID, "Thanks for rating us 5/5"); return ok })
	var view workflows.CaseView
	waitFor(t, 20*time.Second, "the rating on the case", func() bool {
		v, err := st.Client.QueryWorkflow(ctx, workflows.CaseWorkflowID(caseID), "", workflows.QueryStatus)
		return err == nil && v.Get(&view) == nil && view.Rating == 5
	})
	if view.Status != workflows.CaseResolved || view.Assignee != "Ana" {
		t.Errorf("case = status %s assignee %q", view.Status, view.Assignee)
	}
	// The articles the bot suggested travel with the case, for the agent.
	var onCase []string
	for _, a := range view.Articles {
		onCase = append(onCase, a.Title)
	}
	if strings.Join(onCase, "|") != strings.Join(titles, "|") {
		t.Errorf("articles on the case %q, suggested %q", onCase, titles)
	}
	if fmt.Sprint(task.Attributes["articles"]) == "" || !strings.Contains(fmt.Sprint(task.Attributes), titles[0]) {
		t.Errorf("the Flex task does not carry the suggested articles: %v", task.Attributes)
	}
}

// embedTitles lists the titles of a message's embeds.
func embedTitles(r discordemu.Record) []string {
	raw, _ := json.Marshal(r.Message.Embeds)
	var embeds []struct {
		Title string `json:"title"`
	}
	_ = json.Unmarshal(raw, &embeds)
	var out []string
	for _, e := range embeds {
		out = append(out, e.Title)
	}
	return out
}
