package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/i18n"
)

// chromiumPath is where Debian's chromium package installs the browser;
// scripts/ensure-chromium.sh installs it when it is missing.
const chromiumPath = "/usr/bin/chromium"

// screenshotPath is where the screenshot of the finished journey goes when
// FLEXCORD_SCREENSHOT is set (README shows it). Tests run in e2e/.
const screenshotPath = "../docs/sandbox.png"

// TestBrowserJourney plays the whole journey of DESIGN §2 on the sandbox
// page, in headless Chromium, against the dev stack: the member runs
// /helpme, asks a question, gets articles, asks for a human; the agent
// accepts, they exchange a message each way, the agent wraps up and the
// member rates the help. It asserts on what the page shows.
func TestBrowserJourney(t *testing.T) {
	ctx := startChromium(t)

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
	p := newPageTab(t, ctx)
	p.do("open the sandbox", chromedp.Navigate(stack.URL+"/sandbox"))
	p.waitFor("the page is ready", `document.body.dataset.ready === "true"`)
	p.waitFor("both event streams are live",
		`document.querySelector('[data-testid="conn-discord"]').dataset.state === "live" && document.querySelector('[data-testid="conn-twilio"]').dataset.state === "live"`)
	p.waitFor("the page acts as the first sandbox member", fmt.Sprintf(`document.querySelector('[data-testid="member-select"]').value === %s`, jsString(devstack.SandboxMembers[0].ID)))

	// 1. /helpme: an ephemeral acknowledgement and a DM greeting with the
	// "Talk to a human" button.
	const human = `[data-testid="dm-message"][data-from="bot"] [data-testid="dm-button"][data-custom-id="flexcord:human"]`
	p.click(`[data-testid="run-helpme"]`)
	p.waitText(`[data-testid="dm-message"][data-ephemeral="true"] [data-testid="ephemeral-note"]`, "Only you can see this")
	p.waitText(human, i18n.T(locale, "button.human"))

	// 2. A question answered with articles from the knowledge base.
	p.typeInto(`[data-testid="member-input"]`, "I forgot my password")
	p.click(`[data-testid="member-send"]`)
	p.waitText(`[data-testid="dm-message"][data-from="member"]`, "I forgot my password")
	p.waitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "bot.articles_intro")))
	p.waitFor("an article about passwords, linked",
		`Array.from(document.querySelectorAll('[data-testid="dm-embed"] [data-testid="embed-title"] a')).some(a => /password/i.test(a.textContent) && a.href.startsWith("http"))`)

	// 3. Talk to a human: the case is created and announced.
	p.click(human)
	caseID := p.waitMatch(`[data-testid="dm-message"][data-from="bot"]`, `C-[2-9A-HJKMNP-Z]{6}`, "created")
	p.waitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "transfer.created", "case", caseID)))

	// 4. The agent desk: the task carries the case and the bot transcript.
	task := fmt.Sprintf(`[data-testid="task"][data-case-id=%s]`, jsString(caseID))
	p.waitFor("the task is waiting", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "waiting"`, jsString(task)))
	p.click(task)
	p.waitText(`[data-testid="task-title"]`, caseID)
	p.waitText(`[data-testid="task-transcript"]`, "I forgot my password")
	p.waitFor("the task shows no placeholders", `!/null|undefined/.test(document.querySelector('[data-testid="task-detail"]').textContent)`)

	// 5. Accept as Ana; the member is told.
	p.do("name the agent", chromedp.SetValue(chromedp.CSS(`[data-testid="agent-name"]`), "Ana"))
	p.waitFor("the task can be accepted", `!document.querySelector('[data-testid="accept"]').disabled`)
	p.click(`[data-testid="accept"]`)
	p.waitFor("the task is assigned", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "assigned"`, jsString(task)))
	p.waitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "agent.joined", "agent", "Ana")))

	// 6. One message each way, each arriving on the other side.
	const fromAgent = "Hi, I'm Ana. I've sent you a new reset link."
	p.waitFor("the agent can reply", `!document.querySelector('[data-testid="agent-input"]').disabled`)
	p.typeInto(`[data-testid="agent-input"]`, fromAgent)
	p.click(`[data-testid="agent-send"]`)
	p.waitText(`[data-testid="agent-message"][data-role="agent"]`, fromAgent)
	p.waitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "agent.message", "agent", "Ana", "text", fromAgent)))

	const fromMember = "Got it, thank you!"
	p.typeInto(`[data-testid="member-input"]`, fromMember)
	p.click(`[data-testid="member-send"]`)
	p.waitText(`[data-testid="agent-message"]:not([data-role="agent"])`, fromMember)

	// 7. Wrap up: the member is asked for a rating.
	p.click(`[data-testid="wrapup"]`)
	p.waitFor("the task is wrapping up", fmt.Sprintf(`document.querySelector(%s)?.dataset.status === "wrapping"`, jsString(task)))
	p.waitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "resolved.rate", "case", caseID)))
	p.waitFor("five rating buttons",
		`document.querySelectorAll('[data-testid="dm-button"][data-custom-id^="flexcord:rate:"]').length === 5`)

	// 8. Rate 5: the buttons give way to the rating and the bot thanks the member.
	p.click(`[data-testid="dm-button"][data-custom-id="flexcord:rate:5"]`)
	p.waitText(`[data-testid="dm-message"][data-from="bot"]`, plain(i18n.T(locale, "rating.thanks", "rating", "5")))
	p.waitFor("the rating buttons are gone",
		`document.querySelectorAll('[data-testid="dm-button"][data-custom-id^="flexcord:rate:"]').length === 0`)

	// The case the page announced is a real workflow.
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := stack.Client.DescribeWorkflowExecution(dctx, "case:"+caseID, ""); err != nil {
		t.Errorf("the page announced case %s, but its workflow cannot be described: %v", caseID, err)
	}

	p.checkConsole()
	if os.Getenv("FLEXCORD_SCREENSHOT") != "" {
		p.screenshot(screenshotPath)
	}
}

// plain drops the Markdown emphasis the page renders as bold or italic, so
// that a catalog message can be compared with the text the page shows.
func plain(s string) string {
	return strings.ReplaceAll(s, "**", "")
}

// startChromium starts headless Chromium for t and returns a tab context.
// The test is skipped in -short mode and when Chromium is not installed.
func startChromium(t *testing.T) context.Context {
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

// pageTab drives the sandbox page and fails its test on the first error.
// Every wait polls the page with a deadline.
type pageTab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string // console errors and uncaught exceptions
}

// pageWait bounds every wait: the journey goes through Temporal, the
// emulators' webhooks and ingress, which take well under a second each.
const pageWait = 30 * time.Second

func newPageTab(t *testing.T, ctx context.Context) *pageTab {
	p := &pageTab{t: t, ctx: ctx}
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

func (p *pageTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript predicate until it is truthy.
func (p *pageTab) waitFor(what, predicate string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(pageWait))); err != nil {
		p.t.Fatalf("wait until %s: %v%s", what, err, p.transcript())
	}
}

// waitText waits until an element matching css contains text.
func (p *pageTab) waitText(css, text string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%s shows %q", css, text),
		fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).some(e => e.textContent.includes(%s))`, jsString(css), jsString(text)))
}

// waitMatch waits until an element matching css contains the word and a
// match of pattern, and returns the match.
func (p *pageTab) waitMatch(css, pattern, word string) string {
	p.t.Helper()
	re := regexp.MustCompile(pattern) // checked in Go too, so a bad pattern fails clearly
	expr := fmt.Sprintf(`(() => { const re = new RegExp(%s); for (const e of document.querySelectorAll(%s)) { const m = e.textContent.match(re); if (m && e.textContent.includes(%s)) return m[0]; } return ""; })()`,
		jsString(re.String()), jsString(css), jsString(word))
	ctx, cancel := context.WithTimeout(p.ctx, pageWait+5*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Poll[string](expr, chromedp.WithPollingTimeout(pageWait)))
	if err != nil {
		p.t.Fatalf("wait until %s shows %q and %s: %v%s", css, word, pattern, err, p.transcript())
	}
	return got
}

func (p *pageTab) click(css string) {
	p.t.Helper()
	p.do("click "+css, chromedp.Click(chromedp.CSS(css)))
}

func (p *pageTab) typeInto(css, text string) {
	p.t.Helper()
	p.do("type into "+css, chromedp.SendKeys(chromedp.CSS(css), text))
}

// transcript returns what both panes show, to explain a failed wait.
func (p *pageTab) transcript() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`["dm-transcript", "task-list", "agent-chat", "toasts"].map(id => "\n--- " + id + ":\n" + (document.querySelector('[data-testid="' + id + '"]')?.innerText || "")).join("")`))
	if err != nil {
		return ""
	}
	return "\npage shows:" + text
}

// checkConsole fails the test for every console error or uncaught exception
// of the page so far.
func (p *pageTab) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("page console: %s", m)
	}
	p.problems = nil
}

// screenshot writes a full-page PNG to path.
func (p *pageTab) screenshot(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pageWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	p.t.Logf("wrote %s (%d bytes)", path, len(png))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
