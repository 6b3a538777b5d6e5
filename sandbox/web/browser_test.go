package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/web/webtest"
)

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// TestPageInBrowser drives the page in headless Chromium against both
// emulators and the scripted bot: every control a visitor uses, and what
// the page shows in answer.
func TestPageInBrowser(t *testing.T) {
	ctx := webtest.Start(t)
	sb := startSandbox(t)
	p := webtest.NewTab(t, ctx)

	p.Do("open the sandbox", chromedp.Navigate(sb.URL+"/sandbox"))
	p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)
	p.WaitFor("both event streams are live",
		`document.querySelector('[data-testid="conn-discord"]').dataset.state === "live" && document.querySelector('[data-testid="conn-twilio"]').dataset.state === "live"`)
	p.WaitText(`[data-testid="member-select"] option:checked`, "Sam ("+testMemberID+")")
	p.WaitFor("the conversation links to its workflow",
		fmt.Sprintf(`document.querySelector('[data-testid="conversation-link"]').href === %s`,
			webtest.JS("http://temporal.test:8233/namespaces/default/workflows/conversation:"+testMemberID)))

	// /helpme: an ephemeral reply and a DM with an article and buttons.
	p.Click(`[data-testid="run-helpme"]`)
	p.WaitText(`[data-testid="dm-message"][data-from="bot"]`, "Hi Sam!")
	p.WaitText(`[data-testid="dm-message"][data-ephemeral="true"] [data-testid="ephemeral-note"]`, "Only you can see this")
	p.WaitText(`[data-testid="dm-message"][data-ephemeral="true"]`, "I've sent you a direct message.")
	p.WaitFor("the article title links to the article",
		`Array.from(document.querySelectorAll('[data-testid="embed-title"] a')).some(a => a.textContent === "Reset your password" && a.href === "https://help.example.com/reset-password")`)
	p.WaitText(`[data-testid="dm-button"][data-custom-id="flexcord:human"]`, "Talk to a human")
	p.WaitFor("markdown is rendered", `Array.from(document.querySelectorAll('[data-testid="dm-content"] strong')).some(e => e.textContent === "Talk to a human")`)

	// The composer.
	p.TypeInto(`[data-testid="member-input"]`, "I forgot my password")
	p.Click(`[data-testid="member-send"]`)
	p.WaitText(`[data-testid="dm-message"][data-from="member"]`, "I forgot my password")
	p.WaitFor("the composer is cleared", `document.querySelector('[data-testid="member-input"]').value === ""`)

	// Talk to a human: the bot announces the case; the agent desk gets the task.
	p.Click(`[data-testid="dm-button"][data-custom-id="flexcord:human"]`)
	p.WaitText(`[data-testid="dm-message"]`, "Case "+testCaseID+" created")
	p.WaitFor("the case id links to the Case workflow",
		fmt.Sprintf(`Array.from(document.querySelectorAll('[data-testid="dm-message"] a[data-testid="case-link"]')).some(a => a.href === %s)`,
			webtest.JS("http://temporal.test:8233/namespaces/default/workflows/case:"+testCaseID)))
	task := fmt.Sprintf(`[data-testid="task"][data-case-id=%s]`, webtest.JS(testCaseID))
	p.WaitFor("the task is waiting", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "waiting"`, webtest.JS(task)))
	p.Click(task)
	p.WaitText(`[data-testid="task-title"]`, testCaseID)
	p.WaitText(`[data-testid="task-member"]`, "sam")
	p.WaitText(`[data-testid="task-locale"]`, "en-US")
	p.WaitText(`[data-testid="task-transcript"]`, "member sam: I forgot my password")
	p.WaitText(`[data-testid="task-attrs"]`, "Reset your password")
	p.WaitText(`[data-testid="agent-message"][data-role="customer"]`, "I forgot my password")
	p.WaitFor("the task links to the conversation workflow",
		fmt.Sprintf(`document.querySelector('[data-testid="task-conversation-link"]').href === %s`,
			webtest.JS("http://temporal.test:8233/namespaces/default/workflows/conversation:"+testMemberID)))
	p.WaitFor("only Accept is possible", `!document.querySelector('[data-testid="accept"]').disabled && document.querySelector('[data-testid="wrapup"]').disabled && document.querySelector('[data-testid="agent-input"]').disabled`)

	// Accept as Ana and reply.
	p.Do("name the agent", chromedp.SetValue(chromedp.CSS(`[data-testid="agent-name"]`), "Ana"))
	p.Click(`[data-testid="accept"]`)
	p.WaitFor("the task is assigned", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "assigned"`, webtest.JS(task)))
	p.WaitText(`[data-testid="task-agent"]`, "Agent: Ana")
	p.WaitFor("the agent can reply", `!document.querySelector('[data-testid="agent-input"]').disabled`)
	p.TypeInto(`[data-testid="agent-input"]`, "Hi Sam, I'm Ana.")
	p.Click(`[data-testid="agent-send"]`)
	p.WaitText(`[data-testid="agent-message"][data-role="agent"]`, "Hi Sam, I'm Ana.")
	tv := sb.twilio.Tasks()
	if len(tv) != 1 || tv[0].WorkerName != "Ana" || len(tv[0].Messages) != 2 {
		t.Fatalf("Twilio tasks = %+v, want one task accepted by Ana with two messages", tv)
	}

	// /bug: the modal is rendered from the bot's answer and submitted by custom id.
	p.Click(`[data-testid="run-bug"]`)
	p.WaitFor("the modal is open", `document.querySelector('[data-testid="modal"]').open`)
	p.WaitText(`[data-testid="modal-title"]`, "Report a bug")
	p.WaitFor("the modal has the bot's three inputs", `document.querySelectorAll('[data-testid="modal-input"]').length === 3 && document.querySelector('[data-custom-id="description"]').tagName === "TEXTAREA"`)
	p.TypeInto(`[data-testid="modal-input"][data-custom-id="title"]`, "Crash on login")
	p.TypeInto(`[data-testid="modal-input"][data-custom-id="description"]`, "The app closes.")
	p.TypeInto(`[data-testid="modal-input"][data-custom-id="platform"]`, "iOS 18")
	p.Click(`[data-testid="modal-submit"]`)
	p.WaitFor("the modal is closed", `!document.querySelector('[data-testid="modal"]').open`)
	p.WaitText(`[data-testid="dm-message"][data-ephemeral="true"]`, "Crash on login (iOS 18)")
	p.Click(fmt.Sprintf(`[data-testid="tab-channel"][data-channel-id=%s]`, webtest.JS(testBugChannel)))
	p.WaitFor("the bug channel shows only its own messages", fmt.Sprintf(
		`(() => { const m = document.querySelectorAll('[data-testid="dm-message"]'); return m.length === 1 && m[0].textContent.includes(%s); })()`, webtest.JS(testBugCaseID)))
	p.Click(`[data-testid="tab-dm"]`)
	p.WaitText(`[data-testid="dm-message"]`, "Hi Sam!")

	// The fault switches.
	p.Click(`[data-testid="dms-closed"]`)
	eventually(t, "the member refuses DMs", func() bool { return member(sb, testMemberID).DMsClosed })
	p.Click(`[data-testid="dms-closed"]`)
	eventually(t, "the member accepts DMs again", func() bool { return !member(sb, testMemberID).DMsClosed })

	p.Click(`[data-testid="twilio-5xx"]`)
	eventually(t, "Twilio fails messages", func() bool {
		f := sb.twilio.Faults()
		return len(f) == 1 && f[0].Fault.Status == 503 && f[0].Fault.Path == "/v1/Conversations/*/Messages"
	})
	p.Do("reload the page", chromedp.Reload())
	p.WaitFor("the page is ready again", `document.body.dataset.ready === "true"`)
	p.WaitFor("the switch shows the fault after a reload", `document.querySelector('[data-testid="twilio-5xx"]').checked`)
	p.Click(`[data-testid="twilio-5xx"]`)
	eventually(t, "Twilio is healthy", func() bool { return len(sb.twilio.Faults()) == 0 })

	// Wrap up and complete.
	p.Click(task)
	p.WaitFor("wrap-up is possible", `!document.querySelector('[data-testid="wrapup"]').disabled`)
	p.Click(`[data-testid="wrapup"]`)
	p.WaitFor("the task is wrapping", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "wrapping"`, webtest.JS(task)))
	p.WaitFor("the chat is closed", `document.querySelector('[data-testid="agent-input"]').disabled`)
	p.Click(`[data-testid="complete"]`)
	p.WaitFor("the task is done", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "completed"`, webtest.JS(task)))

	// A new member from the member bar.
	p.Click(`[data-testid="new-member"]`)
	p.TypeInto(`[data-testid="new-member-id"]`, "200000000000000099")
	p.TypeInto(`[data-testid="new-member-name"]`, "Rui")
	p.Click(`[data-testid="new-member-save"]`)
	eventually(t, "the new member exists", func() bool { return member(sb, "200000000000000099").Username == "rui" })
	p.WaitText(`[data-testid="member-select"] option:checked`, "Rui (200000000000000099)")
	p.WaitFor("the new member has no messages", `document.querySelectorAll('[data-testid="dm-message"]').length === 0`)

	p.CheckConsole()
}

func member(sb *sandbox, id string) discordemu.Member {
	for _, m := range sb.discord.Members() {
		if m.ID == id {
			return m
		}
	}
	return discordemu.Member{}
}
