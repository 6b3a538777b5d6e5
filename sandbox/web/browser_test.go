package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flexcord/flexcord/sandbox/discordemu"
)

// chromiumPath is where Debian's chromium package installs the browser
// (scripts/ensure-chromium.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium for t and returns a tab context. The
// test is skipped in -short mode and when Chromium is not installed.
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test needs Chromium at %s (run scripts/ensure-chromium.sh): %v", chromiumPath, err)
	}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// tab drives one page and fails its test on the first error.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string // console errors and uncaught exceptions
}

func newTab(t *testing.T, ctx context.Context) *tab {
	p := &tab{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				p.mu.Lock()
				p.problems = append(p.problems, m.String())
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// do runs actions with a deadline.
func (p *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls the JavaScript predicate until it is truthy.
func (p *tab) waitFor(what, predicate string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		p.t.Fatalf("wait until %s: %v", what, err)
	}
}

// waitText waits until an element matching css contains text.
func (p *tab) waitText(css, text string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%s shows %q", css, text),
		fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).some(e => e.textContent.includes(%s))`, js(css), js(text)))
}

func (p *tab) click(css string) {
	p.t.Helper()
	p.do("click "+css, chromedp.Click(chromedp.CSS(css)))
}

func (p *tab) typeInto(css, text string) {
	p.t.Helper()
	p.do("type into "+css, chromedp.SendKeys(chromedp.CSS(css), text))
}

// checkConsole fails the test for every console error or uncaught exception
// of the page so far.
func (p *tab) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("page console: %s", m)
	}
	p.problems = nil
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

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
	ctx := browser(t)
	sb := startSandbox(t)
	p := newTab(t, ctx)

	p.do("open the sandbox", chromedp.Navigate(sb.URL+"/sandbox"))
	p.waitFor("the page is ready", `document.body.dataset.ready === "true"`)
	p.waitFor("both event streams are live",
		`document.querySelector('[data-testid="conn-discord"]').dataset.state === "live" && document.querySelector('[data-testid="conn-twilio"]').dataset.state === "live"`)
	p.waitText(`[data-testid="member-select"] option:checked`, "Sam ("+testMemberID+")")
	p.waitFor("the conversation links to its workflow",
		fmt.Sprintf(`document.querySelector('[data-testid="conversation-link"]').href === %s`,
			js("http://temporal.test:8233/namespaces/default/workflows/conversation:"+testMemberID)))

	// /helpme: an ephemeral reply and a DM with an article and buttons.
	p.click(`[data-testid="run-helpme"]`)
	p.waitText(`[data-testid="dm-message"][data-from="bot"]`, "Hi Sam!")
	p.waitText(`[data-testid="dm-message"][data-ephemeral="true"] [data-testid="ephemeral-note"]`, "Only you can see this")
	p.waitText(`[data-testid="dm-message"][data-ephemeral="true"]`, "I've sent you a direct message.")
	p.waitFor("the article title links to the article",
		`Array.from(document.querySelectorAll('[data-testid="embed-title"] a')).some(a => a.textContent === "Reset your password" && a.href === "https://help.example.com/reset-password")`)
	p.waitText(`[data-testid="dm-button"][data-custom-id="flexcord:human"]`, "Talk to a human")
	p.waitFor("markdown is rendered", `Array.from(document.querySelectorAll('[data-testid="dm-content"] strong')).some(e => e.textContent === "Talk to a human")`)

	// The composer.
	p.typeInto(`[data-testid="member-input"]`, "I forgot my password")
	p.click(`[data-testid="member-send"]`)
	p.waitText(`[data-testid="dm-message"][data-from="member"]`, "I forgot my password")
	p.waitFor("the composer is cleared", `document.querySelector('[data-testid="member-input"]').value === ""`)

	// Talk to a human: the bot announces the case; the agent desk gets the task.
	p.click(`[data-testid="dm-button"][data-custom-id="flexcord:human"]`)
	p.waitText(`[data-testid="dm-message"]`, "Case "+testCaseID+" created")
	p.waitFor("the case id links to the Case workflow",
		fmt.Sprintf(`Array.from(document.querySelectorAll('[data-testid="dm-message"] a[data-testid="case-link"]')).some(a => a.href === %s)`,
			js("http://temporal.test:8233/namespaces/default/workflows/case:"+testCaseID)))
	task := fmt.Sprintf(`[data-testid="task"][data-case-id=%s]`, js(testCaseID))
	p.waitFor("the task is waiting", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "waiting"`, js(task)))
	p.click(task)
	p.waitText(`[data-testid="task-title"]`, testCaseID)
	p.waitText(`[data-testid="task-member"]`, "sam")
	p.waitText(`[data-testid="task-locale"]`, "en-US")
	p.waitText(`[data-testid="task-transcript"]`, "member sam: I forgot my password")
	p.waitText(`[data-testid="task-attrs"]`, "Reset your password")
	p.waitText(`[data-testid="agent-message"][data-role="customer"]`, "I forgot my password")
	p.waitFor("the task links to the conversation workflow",
		fmt.Sprintf(`document.querySelector('[data-testid="task-conversation-link"]').href === %s`,
			js("http://temporal.test:8233/namespaces/default/workflows/conversation:"+testMemberID)))
	p.waitFor("only Accept is possible", `!document.querySelector('[data-testid="accept"]').disabled && document.querySelector('[data-testid="wrapup"]').disabled && document.querySelector('[data-testid="agent-input"]').disabled`)

	// Accept as Ana and reply.
	p.do("name the agent", chromedp.SetValue(chromedp.CSS(`[data-testid="agent-name"]`), "Ana"))
	p.click(`[data-testid="accept"]`)
	p.waitFor("the task is assigned", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "assigned"`, js(task)))
	p.waitText(`[data-testid="task-agent"]`, "Agent: Ana")
	p.waitFor("the agent can reply", `!document.querySelector('[data-testid="agent-input"]').disabled`)
	p.typeInto(`[data-testid="agent-input"]`, "Hi Sam, I'm Ana.")
	p.click(`[data-testid="agent-send"]`)
	p.waitText(`[data-testid="agent-message"][data-role="agent"]`, "Hi Sam, I'm Ana.")
	tv := sb.twilio.Tasks()
	if len(tv) != 1 || tv[0].WorkerName != "Ana" || len(tv[0].Messages) != 2 {
		t.Fatalf("Twilio tasks = %+v, want one task accepted by Ana with two messages", tv)
	}

	// /bug: the modal is rendered from the bot's answer and submitted by custom id.
	p.click(`[data-testid="run-bug"]`)
	p.waitFor("the modal is open", `document.querySelector('[data-testid="modal"]').open`)
	p.waitText(`[data-testid="modal-title"]`, "Report a bug")
	p.waitFor("the modal has the bot's three inputs", `document.querySelectorAll('[data-testid="modal-input"]').length === 3 && document.querySelector('[data-custom-id="description"]').tagName === "TEXTAREA"`)
	p.typeInto(`[data-testid="modal-input"][data-custom-id="title"]`, "Crash on login")
	p.typeInto(`[data-testid="modal-input"][data-custom-id="description"]`, "The app closes.")
	p.typeInto(`[data-testid="modal-input"][data-custom-id="platform"]`, "iOS 18")
	p.click(`[data-testid="modal-submit"]`)
	p.waitFor("the modal is closed", `!document.querySelector('[data-testid="modal"]').open`)
	p.waitText(`[data-testid="dm-message"][data-ephemeral="true"]`, "Crash on login (iOS 18)")
	p.click(fmt.Sprintf(`[data-testid="tab-channel"][data-channel-id=%s]`, js(testBugChannel)))
	p.waitFor("the bug channel shows only its own messages", fmt.Sprintf(
		`(() => { const m = document.querySelectorAll('[data-testid="dm-message"]'); return m.length === 1 && m[0].textContent.includes(%s); })()`, js(testBugCaseID)))
	p.click(`[data-testid="tab-dm"]`)
	p.waitText(`[data-testid="dm-message"]`, "Hi Sam!")

	// The fault switches.
	p.click(`[data-testid="dms-closed"]`)
	eventually(t, "the member refuses DMs", func() bool { return member(sb, testMemberID).DMsClosed })
	p.click(`[data-testid="dms-closed"]`)
	eventually(t, "the member accepts DMs again", func() bool { return !member(sb, testMemberID).DMsClosed })

	p.click(`[data-testid="twilio-5xx"]`)
	eventually(t, "Twilio fails messages", func() bool {
		f := sb.twilio.Faults()
		return len(f) == 1 && f[0].Fault.Status == 503 && f[0].Fault.Path == "/v1/Conversations/*/Messages"
	})
	p.do("reload the page", chromedp.Reload())
	p.waitFor("the page is ready again", `document.body.dataset.ready === "true"`)
	p.waitFor("the switch shows the fault after a reload", `document.querySelector('[data-testid="twilio-5xx"]').checked`)
	p.click(`[data-testid="twilio-5xx"]`)
	eventually(t, "Twilio is healthy", func() bool { return len(sb.twilio.Faults()) == 0 })

	// Wrap up and complete.
	p.click(task)
	p.waitFor("wrap-up is possible", `!document.querySelector('[data-testid="wrapup"]').disabled`)
	p.click(`[data-testid="wrapup"]`)
	p.waitFor("the task is wrapping", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "wrapping"`, js(task)))
	p.waitFor("the chat is closed", `document.querySelector('[data-testid="agent-input"]').disabled`)
	p.click(`[data-testid="complete"]`)
	p.waitFor("the task is done", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "completed"`, js(task)))

	// A new member from the member bar.
	p.click(`[data-testid="new-member"]`)
	p.typeInto(`[data-testid="new-member-id"]`, "200000000000000099")
	p.typeInto(`[data-testid="new-member-name"]`, "Rui")
	p.click(`[data-testid="new-member-save"]`)
	eventually(t, "the new member exists", func() bool { return member(sb, "200000000000000099").Username == "rui" })
	p.waitText(`[data-testid="member-select"] option:checked`, "Rui (200000000000000099)")
	p.waitFor("the new member has no messages", `document.querySelectorAll('[data-testid="dm-message"]').length === 0`)

	p.checkConsole()
}

func member(sb *sandbox, id string) discordemu.Member {
	for _, m := range sb.discord.Members() {
		if m.ID == id {
			return m
		}
	}
	return discordemu.Member{}
}
