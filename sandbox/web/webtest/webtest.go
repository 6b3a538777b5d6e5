// Package webtest drives the sandbox page in headless Chromium for tests: Debian's chromium
// package, started with the flags a closed network needs, and a small page driver whose every
// wait polls with a deadline.
package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser;
// scripts/ensure-chromium.sh installs it when it is missing.
const ChromiumPath = "/usr/bin/chromium"

// Wait bounds every wait: a step of the journey goes through Temporal, the
// emulators' webhooks and ingress, which take well under a second each.
const Wait = 30 * time.Second

// Start starts headless Chromium for t and returns a tab context.
// The test is skipped in -short mode and when Chromium is not installed.
func Start(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Skipf("browser test needs Chromium at %s (run scripts/ensure-chromium.sh): %v", ChromiumPath, err)
	}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(ChromiumPath),
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

// Tab drives the sandbox page and fails its test on the first error.
// Every wait polls the page with a deadline.
type Tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string // console errors and uncaught exceptions
}

// NewTab wraps a Chromium context; console errors are collected for CheckConsole.
func NewTab(t *testing.T, ctx context.Context) *Tab {
	p := &Tab{t: t, ctx: ctx}
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

// Do runs actions with a deadline and fails the test on an error.
func (p *Tab) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// WaitFor polls a JavaScript predicate until it is truthy.
func (p *Tab) WaitFor(what, predicate string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Wait+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(Wait))); err != nil {
		p.t.Fatalf("wait until %s: %v%s", what, err, p.transcript())
	}
}

// WaitText waits until an element matching css contains text.
func (p *Tab) WaitText(css, text string) {
	p.t.Helper()
	p.WaitFor(fmt.Sprintf("%s shows %q", css, text),
		fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).some(e => e.textContent.includes(%s))`, JS(css), JS(text)))
}

// WaitMatch waits until an element matching css contains the word and a
// match of pattern, and returns the match.
func (p *Tab) WaitMatch(css, pattern, word string) string {
	p.t.Helper()
	re := regexp.MustCompile(pattern) // checked in Go too, so a bad pattern fails clearly
	expr := fmt.Sprintf(`(() => { const re = new RegExp(%s); for (const e of document.querySelectorAll(%s)) { const m = e.textContent.match(re); if (m && e.textContent.includes(%s)) return m[0]; } return ""; })()`,
		JS(re.String()), JS(css), JS(word))
	ctx, cancel := context.WithTimeout(p.ctx, Wait+5*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Poll[string](expr, chromedp.WithPollingTimeout(Wait)))
	if err != nil {
		p.t.Fatalf("wait until %s shows %q and %s: %v%s", css, word, pattern, err, p.transcript())
	}
	return got
}

// Click clicks the first element matching css.
func (p *Tab) Click(css string) {
	p.t.Helper()
	p.Do("click "+css, chromedp.Click(chromedp.CSS(css)))
}

// TypeInto types text into the element matching css.
func (p *Tab) TypeInto(css, text string) {
	p.t.Helper()
	p.Do("type into "+css, chromedp.SendKeys(chromedp.CSS(css), text))
}

// transcript returns what both panes show (and #announcements with the
// sample blog's status line), to explain a failed wait.
func (p *Tab) transcript() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`["channel-transcript", "dm-transcript", "announcements", "feed-status", "task-list", "agent-chat", "toasts"].map(id => "\n--- " + id + ":\n" + (document.querySelector('[data-testid="' + id + '"]')?.innerText || "")).join("")`))
	if err != nil {
		return ""
	}
	return "\npage shows:" + text
}

// CheckConsole fails the test for every console error or uncaught exception
// of the page so far.
func (p *Tab) CheckConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("page console: %s", m)
	}
	p.problems = nil
}

// TakeConsole returns the console errors and uncaught exceptions of the
// page so far and forgets them, for a test that provokes some on purpose
// (for example network errors while the server is down).
func (p *Tab) TakeConsole() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.problems
	p.problems = nil
	return out
}

// Screenshot writes a full-page PNG to path.
func (p *Tab) Screenshot(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Wait)
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

// Viewport resizes the page's viewport to width×height CSS pixels.
func (p *Tab) Viewport(width, height int64) {
	p.t.Helper()
	p.Do(fmt.Sprintf("resize the viewport to %d×%d", width, height), chromedp.EmulateViewport(width, height))
}

// ScreenshotViewport writes a PNG of what the viewport shows to path.
func (p *Tab) ScreenshotViewport(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Wait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
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

// Eval evaluates a JavaScript expression and returns its value.
func Eval[T any](p *Tab, expression string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression))
	if err != nil {
		p.t.Fatalf("evaluate %.80s: %v", expression, err)
	}
	return v
}

// JS quotes s as a JavaScript string literal.
func JS(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
