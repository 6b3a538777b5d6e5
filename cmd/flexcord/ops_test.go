package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/workflows"
)

func startStack(t *testing.T) *devstack.Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{ServerLogLevel: "fatal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	return st
}

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

// flexcord runs the command line against the stack's Temporal server.
func flexcord(t *testing.T, st *devstack.Stack, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--address", st.TemporalAddr, "--namespace", st.Namespace)
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("flexcord %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func greetings(dc *discordemu.Server, userID string) int {
	n := 0
	for _, r := range dc.UserMessages(userID) {
		if r.FromBot && strings.HasPrefix(r.Message.Content, "Hi Mika") {
			n++
		}
	}
	return n
}

func TestDeliveriesRetryAfterDMsReopen(t *testing.T) {
	st := startStack(t)
	ctx := context.Background()
	dc := st.Discord
	member := devstack.SandboxMembers[0]
	if err := dc.SetDMsClosed(member.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "helpme", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxGeneralChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	// The failure is visible to operators through the search attribute.
	waitFor(t, 30*time.Second, "FailedDeliveries > 0 in visibility", func() bool {
		resp, err := st.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "FailedDeliveries > 0"})
		return err == nil && len(resp.Executions) == 1 &&
			resp.Executions[0].Execution.WorkflowId == workflows.ConversationWorkflowID(member.ID)
	})
	// The member was told, in the channel, why no DM came.
	waitFor(t, 10*time.Second, "the ephemeral notice", func() bool {
		for _, r := range dc.UserMessages(member.ID) {
			if r.Ephemeral && strings.Contains(r.Message.Content, "couldn't send you a direct message") {
				return true
			}
		}
		return false
	})
	if greetings(dc, member.ID) != 0 {
		t.Fatal("greeted with DMs closed")
	}

	if err := dc.SetDMsClosed(member.ID, false); err != nil {
		t.Fatal(err)
	}
	out := flexcord(t, st, "deliveries", "retry", "--all")
	if !strings.Contains(out, workflows.ConversationWorkflowID(member.ID)+": re-queued 1") || !strings.Contains(out, "greeting") {
		t.Fatalf("retry printed:\n%s", out)
	}
	waitFor(t, 20*time.Second, "the greeting", func() bool { return greetings(dc, member.ID) == 1 })
	waitFor(t, 20*time.Second, "FailedDeliveries back to 0", func() bool {
		resp, err := st.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "FailedDeliveries > 0"})
		return err == nil && len(resp.Executions) == 0
	})
	if out := flexcord(t, st, "deliveries", "retry", "--all"); !strings.Contains(out, "No running conversation or case has failed deliveries") {
		t.Errorf("second retry printed:\n%s", out)
	}
	if n := greetings(dc, member.ID); n != 1 {
		t.Errorf("greeted %d times", n)
	}
}

func TestCasesCommands(t *testing.T) {
	st := startStack(t)
	ctx := context.Background()
	dc := st.Discord
	member := devstack.SandboxMembers[0]
	if _, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "bug", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxBugChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.SubmitModal(ctx, member.ID, discordemu.ModalInput{Values: map[string]string{
		"title": "Login loop", "description": "The app logs me out every minute.", "steps": "Log in, wait", "platform": "iOS 19"}}); err != nil {
		t.Fatal(err)
	}
	var list string
	waitFor(t, 20*time.Second, "the bug in cases list", func() bool {
		list = flexcord(t, st, "cases", "list", "--type", "bug")
		return strings.Contains(list, " open ")
	})
	id := strings.Fields(strings.Split(strings.TrimSpace(list), "\n")[1])[0]
	if !workflows.ValidCaseID(id) {
		t.Fatalf("cases list:\n%s", list)
	}
	if show := flexcord(t, st, "cases", "show", id); !strings.Contains(show, "Login loop") || !strings.Contains(show, "iOS 19") {
		t.Errorf("cases show:\n%s", show)
	}
	if out := flexcord(t, st, "cases", "set-status", id, "in_progress", "--note", "Fix in 2.1"); !strings.Contains(out, "in_progress") {
		t.Errorf("set-status printed %q", out)
	}
	waitFor(t, 20*time.Second, "the reporter's DM", func() bool {
		for _, r := range dc.UserMessages(member.ID) {
			if r.FromBot && strings.Contains(r.Message.Content, id) && strings.Contains(r.Message.Content, "Fix in 2.1") {
				return true
			}
		}
		return false
	})
	// An illegal transition is refused with the reason.
	var out, errb bytes.Buffer
	err := run(ctx, []string{"cases", "set-status", id, "closed", "--address", st.TemporalAddr}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "cannot move from in_progress to closed") {
		t.Errorf("illegal transition: err = %v", err)
	}
}
