package web_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
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

	// /helpme in #support: an ephemeral reply there, where the command was
	// used, and a DM with an article and buttons.
	p.Click(`[data-testid="run-helpme"]`)
	p.WaitFor("#support is shown", fmt.Sprintf(`document.querySelector('[data-testid="tab-channel"][aria-selected="true"]')?.dataset.channelId === %s`, webtest.JS(discordemu.DefaultChannelID)))
	p.WaitText(`[data-testid="dm-transcript"] [data-testid="dm-message"][data-from="bot"]`, "Hi Sam!")
	p.WaitText(`[data-testid="channel-transcript"] [data-testid="dm-message"][data-ephemeral="true"] [data-testid="ephemeral-note"]`, "Only you can see this")
	p.WaitText(`[data-testid="channel-transcript"] [data-testid="dm-message"][data-ephemeral="true"]`, "I've sent you a direct message.")
	p.WaitFor("the DM pane holds no ephemeral reply", `document.querySelectorAll('[data-testid="dm-transcript"] [data-ephemeral="true"]').length === 0`)
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
	if dir := os.Getenv("FLEXCORD_SANDBOX_SCREENSHOTS"); dir != "" {
		p.Viewport(1440, 900)
		p.WaitFor("the layout settles", `document.documentElement.clientWidth === 1440`)
		p.ScreenshotViewport(filepath.Join(dir, "sandbox-journey.png"))
	}
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
	p.WaitText(`[data-testid="channel-transcript"] [data-testid="dm-message"][data-ephemeral="true"]`, "Crash on login (iOS 18)")
	p.WaitFor("the bug channel is shown, with only its own messages", fmt.Sprintf(
		`(() => { const m = document.querySelectorAll('[data-testid="channel-transcript"] [data-testid="dm-message"]'); return document.querySelector('[data-testid="tab-channel"][aria-selected="true"]').dataset.channelId === %s && m.length === 1 && m[0].textContent.includes(%s); })()`,
		webtest.JS(testBugChannel), webtest.JS(testBugCaseID)))
	p.Click(fmt.Sprintf(`[data-testid="tab-channel"][data-channel-id=%s]`, webtest.JS(discordemu.DefaultChannelID)))
	p.WaitText(`[data-testid="channel-transcript"] [data-testid="dm-message"]`, "I've sent you a direct message.")
	p.WaitText(`[data-testid="dm-transcript"] [data-testid="dm-message"]`, "Hi Sam!")

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

// layoutProblems lists elements of the page that stick out of the viewport
// sideways, and says so when the page itself scrolls sideways.
const layoutProblems = `(() => {
  const w = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > w) out.push("the page is " + document.documentElement.scrollWidth + "px wide");
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || el.closest("dialog:not([open]), .skip, .visually-hidden")) continue;
    if (r.right > w + 1 || r.left < -1) {
      out.push((el.dataset.testid || el.id || el.className || el.tagName) + " spans " + Math.round(r.left) + ".." + Math.round(r.right));
    }
  }
  return out.slice(0, 10);
})()`

// TestPageLayout fills both panes and checks, at common window sizes, that
// nothing sticks out sideways, long words wrap and the lists scroll inside
// their panes. Screenshots go to $FLEXCORD_SANDBOX_SCREENSHOTS when set.
func TestPageLayout(t *testing.T) {
	ctx := webtest.Start(t)
	sb := startSandbox(t)
	p := webtest.NewTab(t, ctx)
	p.Do("open the sandbox", chromedp.Navigate(sb.URL+"/sandbox"))
	p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)

	p.Click(`[data-testid="run-helpme"]`)
	p.WaitText(`[data-testid="dm-message"][data-from="bot"]`, "Hi Sam!")
	long := strings.Repeat("supercalifragilistic", 12)
	p.TypeInto(`[data-testid="member-input"]`, "my key is "+long)
	p.Click(`[data-testid="member-send"]`)
	p.WaitText(`[data-testid="dm-message"][data-from="member"]`, long)
	if err := sb.bot.handOver(testMemberID); err != nil {
		t.Fatal(err)
	}
	p.WaitFor("the task is listed", `document.querySelectorAll('[data-testid="task"]').length === 1`)
	p.Click(`[data-testid="task"]`)
	p.WaitText(`[data-testid="agent-message"]`, "I forgot my password")

	dir := os.Getenv("FLEXCORD_SANDBOX_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, size := range []struct{ w, h int64 }{{1280, 800}, {800, 600}, {1024, 768}, {1440, 900}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			p.Viewport(size.w, size.h)
			p.WaitFor("the layout settles", fmt.Sprintf(`document.documentElement.clientWidth === %d`, size.w))
			p.ScreenshotViewport(filepath.Join(dir, fmt.Sprintf("sandbox-%dx%d.png", size.w, size.h)))
			if bad := webtest.Eval[[]string](p, layoutProblems); len(bad) > 0 {
				t.Errorf("at %d×%d, out of the window: %s", size.w, size.h, strings.Join(bad, "; "))
			}
			for _, list := range []string{"#dm-transcript", "#channel-transcript", "#agent-chat", "nav.task-list"} {
				overflow := webtest.Eval[string](p, fmt.Sprintf(`getComputedStyle(document.querySelector(%s)).overflowY`, webtest.JS(list)))
				if overflow != "auto" && overflow != "scroll" {
					t.Errorf("%s has overflow-y %q; it should scroll inside its pane", list, overflow)
				}
			}
			// Each pane fits in the window's height, so its lists, not the
			// page, scroll (the page may scroll to reach a stacked pane).
			for _, pane := range []string{".pane.discord", ".pane.flex"} {
				h := webtest.Eval[float64](p, fmt.Sprintf(`document.querySelector(%s).getBoundingClientRect().height`, webtest.JS(pane)))
				if h > float64(size.h) {
					t.Errorf("%s is %.0fpx tall in a %dpx window", pane, h, size.h)
				}
			}
		})
	}
	p.CheckConsole()
}

// TestPageShowsDiscordFaithfully checks what the Discord side shows beyond
// the journey: mentions by name and text never turned into HTML, a message
// edited in place with its buttons disabled, new messages in a channel not
// shown, the agent's Cancel and Time out controls, and the banner while
// flexcord cannot be reached.
func TestPageShowsDiscordFaithfully(t *testing.T) {
	ctx := webtest.Start(t)
	sb := startSandbox(t)
	p := webtest.NewTab(t, ctx)
	p.Do("open the sandbox", chromedp.Navigate(sb.URL+"/sandbox"))
	p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)
	p.WaitFor("both event streams are live",
		`document.querySelector('[data-testid="conn-discord"]').dataset.state === "live" && document.querySelector('[data-testid="conn-twilio"]').dataset.state === "live"`)
	p.Click(`[data-testid="run-helpme"]`)
	p.WaitText(`[data-testid="dm-transcript"] [data-testid="dm-message"][data-from="bot"]`, "Hi Sam!")

	t.Run("mentions by name, text never HTML", func(t *testing.T) {
		text := "Hi <@" + testMemberID + ">, <@!" + discordemu.DefaultBotUserID + "> here about <#" + testBugChannel + ">. " +
			`<b>not bold</b> <img src=x onerror="document.body.dataset.pwned='yes'"> and <@999999999999999999>.`
		if err := sb.bot.dm(testMemberID, &discordgo.MessageSend{Content: text}); err != nil {
			t.Fatal(err)
		}
		want := `Hi @Sam, @flexcord here about #bug-report. <b>not bold</b> <img src=x onerror="document.body.dataset.pwned='yes'"> and @unknown-user.`
		p.WaitText(`[data-testid="dm-transcript"] [data-testid="dm-content"]`, want)
		p.WaitFor("the text made no element and ran nothing",
			`document.querySelectorAll('[data-testid="dm-transcript"] img, [data-testid="dm-transcript"] b').length === 0 && !document.body.dataset.pwned`)
		p.WaitFor("no raw id is shown", fmt.Sprintf(`!document.querySelector('[data-testid="dm-transcript"]').textContent.includes(%s) && document.querySelectorAll('[data-testid="dm-transcript"] [data-testid="mention"]').length === 4`,
			webtest.JS("999999999999999999")))
	})

	t.Run("an edit updates the message in place", func(t *testing.T) {
		var greeting discordemu.Record
		for _, r := range sb.discord.UserMessages(testMemberID) {
			if r.FromBot && strings.Contains(r.Message.Content, "Hi Sam!") {
				greeting = r
			}
		}
		content := "Hi Sam! This offer has ended."
		_, err := sb.bot.dg.ChannelMessageEditComplex(&discordgo.MessageEdit{
			ID: greeting.Message.ID, Channel: greeting.Message.ChannelID, Content: &content,
			Components: &[]discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
				discordgo.Button{Label: "Talk to a human", Style: discordgo.PrimaryButton, CustomID: "flexcord:human", Disabled: true},
				discordgo.Button{Label: "This solved it", Style: discordgo.SuccessButton, CustomID: "flexcord:solved", Disabled: true},
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf(`[data-testid="dm-message"][data-message-id=%s]`, webtest.JS(greeting.Message.ID))
		p.WaitFor("the message shows the edit, once, with its buttons disabled", fmt.Sprintf(`(() => {
			const m = document.querySelectorAll(%s);
			if (m.length !== 1 || m[0].dataset.edited !== "true" || !m[0].textContent.includes("This offer has ended.")) return false;
			const b = m[0].querySelectorAll('[data-testid="dm-button"]');
			return b.length === 2 && b[0].disabled && b[1].disabled;
		})()`, webtest.JS(msg)))
		if dir := os.Getenv("FLEXCORD_SANDBOX_SCREENSHOTS"); dir != "" {
			p.ScreenshotViewport(filepath.Join(dir, "sandbox-edited.png"))
		}
	})

	t.Run("a message in another channel is counted, not shown", func(t *testing.T) {
		if _, err := sb.bot.dg.ChannelMessageSend(testBugChannel, "Bug C-B4GR3P was triaged."); err != nil {
			t.Fatal(err)
		}
		bug := fmt.Sprintf(`[data-testid="tab-channel"][data-channel-id=%s]`, webtest.JS(testBugChannel))
		p.WaitText(bug+` [data-testid="unread"]`, "1")
		p.Click(bug)
		p.WaitText(`[data-testid="channel-transcript"] [data-testid="dm-message"]`, "was triaged.")
		p.WaitFor("the count is cleared", fmt.Sprintf(`!document.querySelector(%s + ' [data-testid="unread"]')`, webtest.JS(bug)))
	})

	t.Run("cancel and time out a waiting task", func(t *testing.T) {
		for range 2 {
			if err := sb.bot.handOver(testMemberID); err != nil {
				t.Fatal(err)
			}
		}
		p.WaitFor("two waiting tasks", `document.querySelectorAll('[data-testid="task"][data-status="waiting"]').length === 2`)
		tasks := sb.twilio.Tasks()
		for i, action := range []struct{ button, reason string }{{"cancel-task", "canceled"}, {"timeout-task", "Workflow Timeout"}} {
			task := fmt.Sprintf(`[data-testid="task"][data-task-sid=%s]`, webtest.JS(tasks[i].SID))
			p.Click(task)
			p.WaitFor("the task is selected", fmt.Sprintf(`document.querySelector('[data-testid="task-detail"]').dataset.taskSid === %s`, webtest.JS(tasks[i].SID)))
			p.WaitFor(action.button+" is possible", fmt.Sprintf(`!document.querySelector('[data-testid=%q]').disabled`, action.button))
			p.Click(fmt.Sprintf(`[data-testid=%q]`, action.button))
			p.WaitFor("the task is canceled", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "canceled"`, webtest.JS(task)))
			p.WaitText(`[data-testid="task-reason"]`, action.reason)
			p.WaitFor("nothing more can be done", `["accept", "cancel-task", "timeout-task", "wrapup"].every(id => document.querySelector('[data-testid="' + id + '"]').disabled)`)
		}
	})
	p.CheckConsole()

	t.Run("the banner while flexcord cannot be reached", func(t *testing.T) {
		banner := `document.querySelector('[data-testid="offline-banner"]')`
		p.WaitFor("no banner while all is well", banner+`.hidden`)
		sb.outage.set(true)
		p.WaitFor("the banner shows", `!`+banner+`.hidden && `+banner+`.textContent === "Can't reach flexcord — retrying…"`)
		if dir := os.Getenv("FLEXCORD_SANDBOX_SCREENSHOTS"); dir != "" {
			p.ScreenshotViewport(filepath.Join(dir, "sandbox-offline.png"))
		}
		sb.outage.set(false)
		p.WaitFor("the banner is cleared", banner+`.hidden && document.querySelector('[data-testid="conn-discord"]').dataset.state === "live" && document.querySelector('[data-testid="conn-twilio"]').dataset.state === "live"`)
		// Network errors while the server was down are expected; nothing else.
		for _, m := range p.TakeConsole() {
			if !strings.Contains(m, "net::ERR_") && !strings.Contains(m, "Failed to load resource") {
				t.Errorf("page console: %s", m)
			}
		}
		// The page works again.
		p.TypeInto(`[data-testid="member-input"]`, "back again")
		p.Click(`[data-testid="member-send"]`)
		p.WaitText(`[data-testid="dm-transcript"] [data-testid="dm-message"][data-from="member"]`, "back again")
	})
	p.CheckConsole()
}
