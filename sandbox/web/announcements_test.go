package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/flexcord/flexcord/sandbox/feedemu"
	"github.com/flexcord/flexcord/sandbox/web"
	"github.com/flexcord/flexcord/sandbox/web/webtest"
)

// announce posts embeds into #announcements as the bot, the way flexcord
// posts a feed item.
func announce(t *testing.T, sb *sandbox, embeds ...*discordgo.MessageEmbed) *discordgo.Message {
	t.Helper()
	m, err := sb.bot.dg.ChannelMessageSendComplex(testAnnouncementsChannel, &discordgo.MessageSend{Embeds: embeds})
	if err != nil {
		t.Fatalf("post in #announcements: %v", err)
	}
	return m
}

// announcement returns the CSS selector of a message of the tab.
func announcement(id string) string {
	return fmt.Sprintf(`[data-testid="announcement"][data-message-id=%s]`, webtest.JS(id))
}

// TestAnnouncementsTab drives the #announcements tab in headless Chromium:
// posts rendered as Discord renders embeds, new ones arriving live, text
// that must stay text, the Published badge, and the sample blog's publish
// form and Fetch now button.
func TestAnnouncementsTab(t *testing.T) {
	ctx := webtest.Start(t)
	sb := startSandbox(t)
	p := webtest.NewTab(t, ctx)

	// The page is opened as localhost while its configuration names the
	// sample feed and the feed run by 127.0.0.1, as `flexcord dev` does.
	origin := strings.Replace(sb.URL, "127.0.0.1", "localhost", 1)
	p.Do("open the sandbox", chromedp.Navigate(origin+"/sandbox"))
	p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)
	p.WaitFor("the Discord event stream is live", `document.querySelector('[data-testid="conn-discord"]').dataset.state === "live"`)

	tab := `document.querySelector('[data-testid="tab-announcements"]')`
	p.WaitFor("the tab is offered, not selected", `!`+tab+`.hidden && `+tab+`.getAttribute("aria-selected") === "false" && !document.querySelector("#view-dms").hidden`)
	p.Click(`[data-testid="tab-announcements"]`)
	p.WaitFor("the tab is shown instead of the DMs",
		tab+`.getAttribute("aria-selected") === "true" && !document.querySelector("#view-announcements").hidden && document.querySelector("#view-dms").hidden && location.search === "?view=announcements"`)
	p.WaitText(`[data-testid="announcements-empty"]`, "Posts from the brand's feeds appear here")
	p.WaitFor("the feed tools are there", `["feed-publish-title", "feed-publish-text", "feed-publish", "feed-run"].every(id => !document.querySelector('[data-testid="' + id + '"]').closest("[hidden]"))`)

	// A post as flexcord makes it from a feed item.
	published := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	image := sb.URL + "/_emu/feeds/sample/images/release-2-4.png" // 127.0.0.1: the page loads it from its own origin
	first := announce(t, sb, &discordgo.MessageEmbed{
		Author:      &discordgo.MessageEmbedAuthor{Name: "Sample blog", URL: "https://blog.example.com/"},
		Title:       "Release 2.4: dark mode and faster sync",
		URL:         "https://blog.example.com/posts/2",
		Description: "Dark mode is here, and sync is **twice** as fast.\n*Really* — see `sync --fast` and [the changelog](https://blog.example.com/changelog).\nNot \\*italic\\*.",
		Color:       0x2ECC71,
		Image:       &discordgo.MessageEmbedImage{URL: image},
		Footer:      &discordgo.MessageEmbedFooter{Text: "Sample blog"},
		Timestamp:   published.Format(time.RFC3339),
	})
	one := announcement(first.ID)
	p.WaitText(one+` [data-testid="announcement-title"]`, "Release 2.4: dark mode and faster sync")
	p.WaitFor("the empty state is gone", `document.querySelector('[data-testid="announcements-empty"]').hidden`)
	p.WaitFor("the title links to the post, in a new tab", fmt.Sprintf(`(() => {
		const a = document.querySelector(%s);
		return a && a.href === "https://blog.example.com/posts/2" && a.target === "_blank" && a.rel.split(" ").includes("noopener");
	})()`, webtest.JS(one+` [data-testid="announcement-title"] a`)))
	p.WaitText(one+` [data-testid="announcement-author"]`, "Sample blog")
	desc := one + ` [data-testid="announcement-description"]`
	p.WaitFor("the description's markdown is rendered", fmt.Sprintf(`(() => {
		const d = document.querySelector(%s);
		const link = d.querySelector("a");
		return d.querySelector("strong")?.textContent === "twice" && d.querySelector("em")?.textContent === "Really" &&
			d.querySelector("code")?.textContent === "sync --fast" &&
			link?.textContent === "the changelog" && link.href === "https://blog.example.com/changelog" && link.target === "_blank" && link.rel === "noopener" &&
			d.textContent.includes("Not *italic*.") && d.querySelectorAll("em").length === 1 &&
			d.textContent.includes("fast.\n") && getComputedStyle(d).whiteSpace === "pre-wrap";
	})()`, webtest.JS(desc)))
	p.WaitFor("the picture is shown, from the page's own origin", fmt.Sprintf(`(() => {
		const img = document.querySelector(%s);
		return img && img.tagName === "IMG" && img.complete && img.naturalWidth === 640 && img.src.startsWith(%s);
	})()`, webtest.JS(one+` [data-testid="announcement-image"]`), webtest.JS(origin+"/")))
	p.WaitFor("the left border has the embed's colour", fmt.Sprintf(`getComputedStyle(document.querySelector(%s)).borderLeftColor === "rgb(46, 204, 113)"`,
		webtest.JS(one+` [data-testid="announcement-embed"]`)))
	p.WaitFor("the footer names the source and the time, in local time", fmt.Sprintf(`(() => {
		const f = document.querySelector(%s);
		const time = f.querySelector("time");
		return f.textContent.startsWith("Sample blog") && time.getAttribute("datetime") === %s &&
			time.textContent === new Date(%s).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
	})()`, webtest.JS(one+` [data-testid="announcement-footer"]`), webtest.JS(published.Format(time.RFC3339)), webtest.JS(published.Format(time.RFC3339))))
	p.WaitFor("no badge before the post is published", fmt.Sprintf(`!document.querySelector(%s)`, webtest.JS(one+` [data-testid="announcement-badge"]`)))

	// The first post gets published (crossposted); a second post arrives
	// live, with text that must stay text and a picture on the internet.
	sb.crossposts.mark(first.ID)
	hostile := `<script>document.body.dataset.pwned = "script"</script> <img src=x onerror="document.body.dataset.pwned = 'img'"> ` +
		`[x](javascript:alert(1)) and [y](data:text/html,hi)`
	second := announce(t, sb, &discordgo.MessageEmbed{
		Title:       "Heads-up <b>not bold</b>",
		URL:         "https://blog.example.com/posts/3",
		Description: hostile,
		Image:       &discordgo.MessageEmbedImage{URL: "https://cdn.example.com/banner.png"},
		Footer:      &discordgo.MessageEmbedFooter{Text: "Sample blog"},
	})
	two := announcement(second.ID)
	p.WaitText(two+` [data-testid="announcement-description"]`, hostile)
	p.WaitText(two+` [data-testid="announcement-title"]`, "Heads-up <b>not bold</b>")
	p.WaitFor("the text made no element, no link and ran nothing", fmt.Sprintf(`(() => {
		const list = document.querySelector('[data-testid="announcements"]');
		const two = document.querySelector(%s);
		return list.querySelectorAll("script, b").length === 0 && two.querySelectorAll("img").length === 0 &&
			two.querySelectorAll('[data-testid="announcement-description"] a').length === 0 &&
			Array.from(list.querySelectorAll("a")).every(a => /^https?:/.test(a.href)) && !document.body.dataset.pwned;
	})()`, webtest.JS(two)))
	p.WaitFor("a picture on the internet is a link, not loaded", fmt.Sprintf(`(() => {
		const a = document.querySelector(%s);
		return a && a.tagName === "A" && a.dataset.external === "true" && a.href === "https://cdn.example.com/banner.png" && a.textContent.includes("cdn.example.com");
	})()`, webtest.JS(two+` [data-testid="announcement-image"]`)))
	p.WaitText(one+` [data-testid="announcement-badge"]`, "Published")
	p.WaitFor("only the published post has the badge", fmt.Sprintf(`!document.querySelector(%s)`, webtest.JS(two+` [data-testid="announcement-badge"]`)))
	p.WaitFor("posts are in order, oldest first, as on Discord", fmt.Sprintf(`Array.from(document.querySelectorAll('[data-testid="announcement"]')).map(e => e.dataset.messageId).join() === %s`,
		webtest.JS(first.ID+","+second.ID)))
	p.WaitFor("the newest post is in view once the picture has loaded", fmt.Sprintf(`(() => {
		const list = document.querySelector('[data-testid="announcements"]');
		const img = document.querySelector(%s);
		return img.complete && list.scrollHeight > list.clientHeight && list.scrollHeight - list.scrollTop - list.clientHeight < 2;
	})()`, webtest.JS(one+` img[data-testid="announcement-image"]`)))
	if dir := os.Getenv("FLEXCORD_SANDBOX_SCREENSHOTS"); dir != "" {
		p.ScreenshotViewport(filepath.Join(dir, "sandbox-announcements.png"))
	}

	// A post while the DMs are shown is counted on the tab.
	p.Click(`[data-testid="tab-dms"]`)
	p.WaitFor("the DMs are shown again", `!document.querySelector("#view-dms").hidden && document.querySelector("#view-announcements").hidden && location.search === ""`)
	third := announce(t, sb, &discordgo.MessageEmbed{Title: "Third post", Description: "More news."})
	p.WaitText(`[data-testid="tab-announcements"] [data-testid="announcements-unread"]`, "1")
	p.Do("move to the tab with the keyboard", chromedp.Focus(chromedp.CSS(`[data-testid="tab-dms"]`)), chromedp.KeyEvent(kb.ArrowRight))
	p.WaitFor("the tab is selected and focused", tab+`.getAttribute("aria-selected") === "true" && document.activeElement === `+tab)
	p.WaitText(announcement(third.ID)+` [data-testid="announcement-title"]`, "Third post")
	p.WaitFor("the count is cleared", `document.querySelector('[data-testid="announcements-unread"]').hidden`)

	// Publish on the sample blog.
	p.TypeInto(`[data-testid="feed-publish-title"]`, "Hello from the sandbox")
	p.TypeInto(`[data-testid="feed-publish-text"]`, "First line\nsecond <line>\n\nNew paragraph")
	p.Click(`[data-testid="feed-publish"]`)
	p.WaitText(`[data-testid="feed-status"]`, "Published “Hello from the sandbox” on the sample blog.")
	p.WaitFor("the form is cleared", `document.querySelector('[data-testid="feed-publish-title"]').value === "" && document.querySelector('[data-testid="feed-publish-text"]').value === ""`)
	items := sampleItems(t, sb)
	if len(items) != 4 || items[0].Title != "Hello from the sandbox" {
		t.Fatalf("sample feed items = %+v, want the new post first", items)
	}
	if want := "<p>First line<br>second &lt;line&gt;</p>\n<p>New paragraph</p>"; items[0].HTML != want {
		t.Errorf("post HTML = %q, want %q", items[0].HTML, want)
	}

	// An empty title is refused by the form itself.
	p.Click(`[data-testid="feed-publish"]`)
	p.WaitFor("the title is reported missing", `!document.querySelector('[data-testid="feed-publish-title"]').validity.valid`)
	if n := len(sampleItems(t, sb)); n != 4 {
		t.Errorf("%d items after publishing without a title, want 4", n)
	}

	// Fetch now.
	p.Click(`[data-testid="feed-run"]`)
	p.WaitText(`[data-testid="feed-status"]`, "fetched: 1 new post")
	calls := sb.feedRuns.Calls()
	if len(calls) != 1 || calls[0].Method != http.MethodPost || calls[0].Body != "" {
		t.Fatalf("feed-run calls = %+v, want one POST without a body", calls)
	}
	sb.feedRuns.answer(http.StatusServiceUnavailable, `{"error":"the Temporal server is unreachable"}`)
	p.Click(`[data-testid="feed-run"]`)
	p.WaitFor("the error is shown", `(() => { const s = document.querySelector('[data-testid="feed-status"]'); return s.textContent === "the Temporal server is unreachable" && s.dataset.kind === "error"; })()`)
	sb.feedRuns.answer(http.StatusOK, `{"new_items":0}`)
	p.Click(`[data-testid="feed-run"]`)
	p.WaitText(`[data-testid="feed-status"]`, "fetched: no new posts")
	for _, m := range p.TakeConsole() { // Chromium logs the 503 it was answered
		if !strings.Contains(m, "503") {
			t.Errorf("page console: %s", m)
		}
	}

	// The choice of tab survives a reload.
	p.Do("reload the page", chromedp.Reload())
	p.WaitFor("the page is ready again", `document.body.dataset.ready === "true"`)
	p.WaitFor("#announcements is still shown", tab+`.getAttribute("aria-selected") === "true" && !document.querySelector("#view-announcements").hidden`)
	p.WaitFor("with its posts", `document.querySelectorAll('[data-testid="announcement"]').length === 3`)

	for _, size := range []struct{ w, h int64 }{{800, 600}, {1440, 900}} {
		p.Viewport(size.w, size.h)
		p.WaitFor("the layout settles", fmt.Sprintf(`document.documentElement.clientWidth === %d`, size.w))
		if bad := webtest.Eval[[]string](p, layoutProblems); len(bad) > 0 {
			t.Errorf("at %d×%d, out of the window: %s", size.w, size.h, strings.Join(bad, "; "))
		}
		if overflow := webtest.Eval[string](p, `getComputedStyle(document.querySelector("#announcements")).overflowY`); overflow != "auto" {
			t.Errorf("at %d×%d the posts have overflow-y %q; they should scroll inside the pane", size.w, size.h, overflow)
		}
		if dir := os.Getenv("FLEXCORD_SANDBOX_SCREENSHOTS"); dir != "" {
			p.ScreenshotViewport(filepath.Join(dir, fmt.Sprintf("sandbox-announcements-%dx%d.png", size.w, size.h)))
		}
	}
	p.CheckConsole()

	t.Run("what the configuration leaves out is hidden", func(t *testing.T) {
		noFeed := startSandboxWith(t, func(c *web.Config) { c.SampleFeedURL, c.FeedRunURL = "", "" })
		p.Do("open a sandbox without the sample feed", chromedp.Navigate(noFeed.URL+"/sandbox?view=announcements"))
		p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)
		p.WaitFor("the tab is shown without the feed tools", tab+`.getAttribute("aria-selected") === "true" && document.querySelector('[data-testid="feed-publish"]').closest("[hidden]") && document.querySelector('[data-testid="feed-run"]').closest("[hidden]")`)

		runOnly := startSandboxWith(t, func(c *web.Config) { c.SampleFeedURL = "" })
		p.Do("open a sandbox with only the feed run", chromedp.Navigate(runOnly.URL+"/sandbox?view=announcements"))
		p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)
		p.WaitFor("Fetch now without the form", `!document.querySelector('[data-testid="feed-run"]').closest("[hidden]") && document.querySelector('[data-testid="feed-publish-title"]').closest("[hidden]")`)

		noChannel := startSandboxWith(t, func(c *web.Config) { c.AnnouncementsChannelID = "" })
		p.Do("open a sandbox without #announcements", chromedp.Navigate(noChannel.URL+"/sandbox?view=announcements"))
		p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)
		p.WaitFor("no tab, the DMs shown", tab+`.hidden && !document.querySelector("#view-dms").hidden && document.querySelector("#view-announcements").hidden`)
		p.CheckConsole()
	})
}

// sampleItems lists the sample feed's items through its HTTP API.
func sampleItems(t *testing.T, sb *sandbox) []feedemu.Item {
	t.Helper()
	res, err := http.Get(sb.URL + feedemu.DefaultPrefix + "/sample/items")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Items []feedemu.Item `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET sample items = %d: %v", res.StatusCode, err)
	}
	return out.Items
}
