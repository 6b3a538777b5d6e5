package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/sandbox/feedemu"
	"github.com/flexcord/flexcord/sandbox/web/webtest"
)

// screenshotPath is where the screenshot of the finished journey goes when
// FLEXCORD_SCREENSHOT is set (README shows it). Tests run in e2e/.
const screenshotPath = "../docs/sandbox.png"

// TestBrowserJourney plays the whole journey of DESIGN §2 on the sandbox
// page, in headless Chromium, against the dev stack: the member runs
// /helpme, asks a question, gets articles, asks for a human; the agent
// accepts, they exchange a message each way, the agent wraps up and the
// member rates the help. It asserts on what the page shows.
func TestBrowserJourney(t *testing.T) {
	ctx := webtest.Start(t)

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	startCtx, cancelStart := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelStart()
	stack, err := devstack.Start(startCtx, devstack.Options{HTTPAddr: "127.0.0.1:0", Log: log, ServerLogLevel: "fatal"})
	if err != nil {
		t.Fatalf("start dev stack: %v", err)
	}
	t.Cleanup(func() {
		if err := stack.Stop(); err != nil {
			t.Errorf("stop dev stack: %v", err)
		}
	})

	// The page acts as the first sandbox member at first; the texts below
	// are the catalog's, in that member's language.
	locale := devstack.SandboxMembers[0].Locale
	p := webtest.NewTab(t, ctx)
	p.Do("open the sandbox", chromedp.Navigate(stack.URL+"/sandbox"))
	p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)
	p.WaitFor("both event streams are live",
		`document.querySelector('[data-testid="conn-discord"]').dataset.state === "live" && document.querySelector('[data-testid="conn-twilio"]').dataset.state === "live"`)
	p.WaitFor("the page acts as the first sandbox member", fmt.Sprintf(`document.querySelector('[data-testid="member-select"]').value === %s`, webtest.JS(devstack.SandboxMembers[0].ID)))

	// 1. /helpme: an ephemeral acknowledgement and a DM greeting with the
	// "Talk to a human" button.
	const human = `[data-testid="dm-message"][data-from="bot"] [data-testid="dm-button"][data-custom-id="flexcord:human"]`
	p.Click(`[data-testid="run-helpme"]`)
	p.WaitText(`[data-testid="dm-message"][data-ephemeral="true"] [data-testid="ephemeral-note"]`, "Only you can see this")
	p.WaitText(human, i18n.T(locale, "button.human"))

	// 2. A question answered with articles from the knowledge base.
	p.TypeInto(`[data-testid="member-input"]`, "I forgot my password")
	p.Click(`[data-testid="member-send"]`)
	p.WaitText(`[data-testid="dm-message"][data-from="member"]`, "I forgot my password")
	p.WaitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "bot.articles_intro")))
	p.WaitFor("an article about passwords, linked",
		`Array.from(document.querySelectorAll('[data-testid="dm-embed"] [data-testid="embed-title"] a')).some(a => /password/i.test(a.textContent) && a.href.startsWith("http"))`)

	// 3. Talk to a human: the case is created and announced.
	p.Click(human)
	caseID := p.WaitMatch(`[data-testid="dm-message"][data-from="bot"]`, `C-[2-9A-HJKMNP-Z]{6}`, "created")
	p.WaitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "transfer.created", "case", caseID)))

	// 4. The agent desk: the task carries the case and the bot transcript.
	task := fmt.Sprintf(`[data-testid="task"][data-case-id=%s]`, webtest.JS(caseID))
	p.WaitFor("the task is waiting", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "waiting"`, webtest.JS(task)))
	p.Click(task)
	p.WaitText(`[data-testid="task-title"]`, caseID)
	p.WaitText(`[data-testid="task-transcript"]`, "I forgot my password")
	p.WaitFor("the task shows no placeholders", `!/null|undefined/.test(document.querySelector('[data-testid="task-detail"]').textContent)`)

	// 5. Accept as Ana; the member is told.
	p.Do("name the agent", chromedp.SetValue(chromedp.CSS(`[data-testid="agent-name"]`), "Ana"))
	p.WaitFor("the task can be accepted", `!document.querySelector('[data-testid="accept"]').disabled`)
	p.Click(`[data-testid="accept"]`)
	p.WaitFor("the task is assigned", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "assigned"`, webtest.JS(task)))
	p.WaitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "agent.joined", "agent", "Ana")))

	// 6. One message each way, each arriving on the other side.
	const fromAgent = "Hi, I'm Ana. I've sent you a new reset link."
	p.WaitFor("the agent can reply", `!document.querySelector('[data-testid="agent-input"]').disabled`)
	p.TypeInto(`[data-testid="agent-input"]`, fromAgent)
	p.Click(`[data-testid="agent-send"]`)
	p.WaitText(`[data-testid="agent-message"][data-role="agent"]`, fromAgent)
	p.WaitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "agent.message", "agent", "Ana", "text", fromAgent)))

	const fromMember = "Got it, thank you!"
	p.TypeInto(`[data-testid="member-input"]`, fromMember)
	p.Click(`[data-testid="member-send"]`)
	p.WaitText(`[data-testid="agent-message"]:not([data-role="agent"])`, fromMember)
	// The agent sees the member by the name on the task, never their chat identity, and the
	// conversation with the bot as the chat's first message.
	p.WaitFor("the member shown by name", `[...document.querySelectorAll('[data-testid="agent-message"][data-role="customer"] .who')].every(e => e.textContent === "Mika")`)
	p.WaitText(`[data-testid="agent-message"][data-role="system"]`, "Conversation with the virtual agent before the hand-over")

	// 7. Wrap up: the member is asked for a rating.
	p.Click(`[data-testid="wrapup"]`)
	p.WaitFor("the task is wrapping up", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "wrapping"`, webtest.JS(task)))
	p.WaitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "resolved.rate", "case", caseID)))
	p.WaitFor("five rating buttons",
		`document.querySelectorAll('[data-testid="dm-button"][data-custom-id^="flexcord:rate:"]').length === 5`)

	// 8. Rate 5: the buttons give way to the rating and the bot thanks the member.
	p.Click(`[data-testid="dm-button"][data-custom-id^="flexcord:rate:5:"]`)
	p.WaitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "rating.thanks", "rating", "5")))
	p.WaitFor("the rating buttons are gone",
		`document.querySelectorAll('[data-testid="dm-button"][data-custom-id^="flexcord:rate:"]').length === 0`)

	// The case the page announced is a real workflow.
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := stack.Client.DescribeWorkflowExecution(dctx, "case:"+caseID, ""); err != nil {
		t.Errorf("the page announced case %s, but its workflow cannot be described: %v", caseID, err)
	}

	p.CheckConsole()
	if os.Getenv("FLEXCORD_SCREENSHOT") != "" {
		p.Screenshot(screenshotPath)
	}
}

// plain drops the Markdown emphasis the page renders as bold or italic, so
// that a catalog message can be compared with the text the page shows.
func plain(s string) string {
	return strings.ReplaceAll(s, "**", "")
}

// TestBrowserAnnouncements follows the sample feed into the sandbox page's #announcements tab on
// the whole stack: the newest post of the feed's archive is there once the stack runs; a post
// published from the page appears, published to followers, after "Fetch now".
func TestBrowserAnnouncements(t *testing.T) {
	ctx := webtest.Start(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	startCtx, cancelStart := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelStart()
	stack, err := devstack.Start(startCtx, devstack.Options{HTTPAddr: "127.0.0.1:0", Log: log, ServerLogLevel: "fatal", SampleFeed: true})
	if err != nil {
		t.Fatalf("start dev stack: %v", err)
	}
	t.Cleanup(func() {
		if err := stack.Stop(); err != nil {
			t.Errorf("stop dev stack: %v", err)
		}
	})
	archive := stack.Feeds.Items(feedemu.SampleFeed) // newest first

	p := webtest.NewTab(t, ctx)
	p.Do("open the sandbox", chromedp.Navigate(stack.URL+"/sandbox"))
	p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)
	p.Click(`[data-testid="tab-announcements"]`)
	// The first fetch runs when the Schedule first fires; the page asks for one now.
	p.Click(`[data-testid="feed-run"]`)
	p.WaitText(`[data-testid="announcement"] [data-testid="announcement-title"]`, archive[0].Title)
	p.WaitFor("only the newest post of the archive", `document.querySelectorAll('[data-testid="announcement"]').length === 1`)

	p.TypeInto(`[data-testid="feed-publish-title"]`, "Sandbox news")
	p.TypeInto(`[data-testid="feed-publish-text"]`, "Posted from the page, fetched by a Temporal workflow.")
	p.Click(`[data-testid="feed-publish"]`)
	p.WaitText(`[data-testid="feed-status"]`, "Published")
	p.Click(`[data-testid="feed-run"]`)
	p.WaitText(`[data-testid="feed-status"]`, "fetched: 1 new post")
	p.WaitFor("the new post, published to followers", `(() => {
		const posts = [...document.querySelectorAll('[data-testid="announcement"]')];
		const last = posts[posts.length - 1];
		return posts.length === 2 && last.querySelector('[data-testid="announcement-title"]').textContent.includes("Sandbox news")
			&& last.querySelector('[data-testid="announcement-description"]').textContent.includes("fetched by a Temporal workflow")
			&& last.querySelector('[data-testid="announcement-badge"]') !== null;
	})()`)
	p.Click(`[data-testid="feed-run"]`)
	p.WaitText(`[data-testid="feed-status"]`, "fetched: no new posts")
	p.CheckConsole()
	if v := stack.Discord.Violations(); len(v) > 0 {
		t.Errorf("contract violations: %v", v)
	}
}
