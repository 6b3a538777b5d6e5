package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/feedadmin"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/feedemu"
)

// announcement is a post in a channel, as the Discord emulator recorded it.
type announcement struct {
	title, url  string
	crossposted bool
}

func announcements(dc *discordemu.Server, channelID string) []announcement {
	var out []announcement
	for _, r := range dc.Messages(channelID) {
		if !r.FromBot || len(r.Message.Embeds) == 0 {
			continue
		}
		e, _ := r.Message.Embeds[0].(map[string]any)
		title, _ := e["title"].(string)
		link, _ := e["url"].(string)
		out = append(out, announcement{title: title, url: link, crossposted: r.Message.Flags&1 != 0})
	}
	return out
}

func titles(as []announcement) string {
	var t []string
	for _, a := range as {
		t = append(t, a.title)
	}
	return strings.Join(t, " | ")
}

// TestFeedsEndToEnd adds a source served by a local feed server with the command line, and
// follows its items into the emulator's #announcements: the newest item of the archive first,
// then each new item once after the next run, pushed items with a good signature and none with a
// bad one; then pauses, lists and removes the source.
func TestFeedsEndToEnd(t *testing.T) {
	t.Setenv("FLEXCORD_FEED_SECRET_BLOG", "push-secret")
	st := startStack(t)
	dc := st.Discord
	channel := devstack.SandboxAnnouncementsID

	feeds := feedemu.New(feedemu.Options{Title: "Example blog"})
	mux := http.NewServeMux()
	mux.Handle(feedemu.DefaultPrefix+"/", feeds)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	feedURL := srv.URL + feedemu.DefaultPrefix + "/" + feedemu.SampleFeed + ".xml"
	archive := feeds.Items(feedemu.SampleFeed) // newest first

	out := flexcord(t, st, "feeds", "add", "--url", feedURL, "--channel", channel, "--name", "blog", "--every", "1h")
	if !strings.Contains(out, "Source blog added") {
		t.Fatalf("feeds add: %q", out)
	}
	// Adding it again changes nothing and says so.
	if out := flexcord(t, st, "feeds", "add", "--url", feedURL, "--channel", channel, "--name", "blog", "--every", "1h"); !strings.Contains(out, "Source blog updated") {
		t.Fatalf("feeds add again: %q", out)
	}

	out = flexcord(t, st, "feeds", "run", "blog")
	if !strings.Contains(out, "3 item(s), 3 new, 1 posted") {
		t.Fatalf("first run: %q", out)
	}
	got := announcements(dc, channel)
	if len(got) != 1 || got[0].title != archive[0].Title || !got[0].crossposted {
		t.Fatalf("after the first run the channel has %+v; want only the newest item %q, published", got, archive[0].Title)
	}

	// Two new posts appear after the next run, oldest first, once each.
	for _, title := range []string{"Release 2.0 is out", "Maintenance on Sunday"} {
		if _, err := feeds.Publish(feedemu.SampleFeed, feedemu.NewItem{Title: title, HTML: "<p>Read <b>all</b> about it.</p>"}); err != nil {
			t.Fatal(err)
		}
	}
	if out := flexcord(t, st, "feeds", "run", "blog"); !strings.Contains(out, "2 new, 2 posted") {
		t.Fatalf("second run: %q", out)
	}
	if out := flexcord(t, st, "feeds", "run", "blog"); !strings.Contains(out, "not modified") {
		t.Fatalf("third run: %q", out)
	}
	want := archive[0].Title + " | Release 2.0 is out | Maintenance on Sunday"
	if got := titles(announcements(dc, channel)); got != want {
		t.Fatalf("channel: %s\nwant:    %s", got, want)
	}

	// Pushes: a good signature posts the item once, even sent twice; a bad one posts nothing.
	body := []byte(`{"id":"https://example.com/changelog/42","url":"https://example.com/changelog/42","title":"Changelog 42","content_html":"<p>Fixed <em>everything</em>.</p>","date_published":"2026-11-28T10:00:00Z"}`)
	post := func(body []byte, sig string) int {
		req, _ := http.NewRequest(http.MethodPost, st.URL+"/announcements/blog", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set("X-Flexcord-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	mac := hmac.New(sha256.New, []byte("push-secret"))
	mac.Write(body)
	good := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if code := post(body, good); code != http.StatusAccepted {
		t.Fatalf("signed push: %d", code)
	}
	if code := post(body, good); code != http.StatusAccepted {
		t.Fatalf("signed push again: %d", code)
	}
	forged := []byte(strings.Replace(string(body), "Changelog 42", "Forged", 1))
	if code := post(forged, good); code != http.StatusUnauthorized {
		t.Fatalf("push with another body's signature: %d, want 401", code)
	}
	if code := post(body, ""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned push: %d, want 401", code)
	}
	waitFor(t, 30*time.Second, "the pushed item in #announcements", func() bool {
		return strings.HasSuffix(titles(announcements(dc, channel)), "Changelog 42")
	})
	// Another run and the push settle; still every item once.
	flexcord(t, st, "feeds", "run", "blog")
	all := announcements(dc, channel)
	if got := titles(all); got != want+" | Changelog 42" {
		t.Fatalf("channel after the push: %s", got)
	}
	for _, a := range all {
		if strings.Contains(a.title, "Forged") {
			t.Fatal("a forged push was posted")
		}
	}

	out = flexcord(t, st, "feeds", "list")
	for _, want := range []string{"blog", "active", "Changelog 42"} {
		if !strings.Contains(out, want) {
			t.Errorf("feeds list lacks %q:\n%s", want, out)
		}
	}
	flexcord(t, st, "feeds", "pause", "blog", "--note", "testing")
	if out := flexcord(t, st, "feeds", "show", "blog"); !strings.Contains(out, "paused (testing)") {
		t.Errorf("feeds show after pause:\n%s", out)
	}
	flexcord(t, st, "feeds", "resume", "blog")
	if out := flexcord(t, st, "feeds", "remove", "blog"); !strings.Contains(out, "removed") {
		t.Errorf("feeds remove: %q", out)
	}
	waitFor(t, 30*time.Second, "the source gone from the list", func() bool {
		return strings.Contains(flexcord(t, st, "feeds", "list"), "No sources")
	})
	if v := dc.Violations(); len(v) > 0 {
		t.Errorf("contract violations: %v", v)
	}
}

// TestFeedsBadSourceIsReported adds a source that answers 404, then one that is not a feed: the
// run says why, feeds list shows the failure, and nothing is posted.
func TestFeedsBadSourceIsReported(t *testing.T) {
	st := startStack(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone.xml":
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<!doctype html><html><body><h1>Welcome</h1></body></html>")
		}
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct{ name, path, want string }{
		{"gone", "/gone.xml", "404"},
		{"page", "/index.html", "not an RSS, Atom or JSON feed"},
	} {
		flexcord(t, st, "feeds", "add", "--url", srv.URL+c.path, "--channel", devstack.SandboxAnnouncementsID, "--name", c.name)
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"feeds", "run", c.name, "--address", st.TemporalAddr, "--namespace", st.Namespace}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("feeds run %s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
	out := flexcord(t, st, "feeds", "list")
	for _, want := range []string{"gone", "failing", "page", "404", "not an RSS"} {
		if !strings.Contains(out, want) {
			t.Errorf("feeds list lacks %q:\n%s", want, out)
		}
	}
	if n := len(announcements(st.Discord, devstack.SandboxAnnouncementsID)); n != 0 {
		t.Errorf("%d posts from broken sources", n)
	}
}

func TestFeedsFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "feeds.yaml")
	if err := os.WriteFile(good, []byte("feeds:\n  - name: blog\n    url: https://example.com/feed.xml\n    channel: \"1100000000000000014\"\n    every: 15m\n    backfill: 0\n  - name: releases\n    channel: \"1100000000000000014\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sources, err := feedadmin.LoadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 2 || sources[0].Config().Every != 15*time.Minute || *sources[0].Backfill != 0 || sources[1].URL != "" {
		t.Fatalf("sources %+v", sources)
	}
	for _, c := range []struct{ body, want string }{
		{`{"feeds":[{"name":"Blog!","url":"https://x/f","channel":"1100000000000000014"}]}`, "invalid source name"},
		{"feeds:\n  - name: a\n    url: ftp://x/f\n    channel: \"1100000000000000014\"\n", "http or https"},
		{"feeds:\n  - name: a\n    url: https://x/f\n    channel: \"1100000000000000014\"\n    every: soon\n", `not "soon"`},
		{"feeds:\n  - name: a\n    urll: https://x/f\n", "unknown field"},
		{"feeds:\n  - name: a\n    channel: \"1100000000000000014\"\n  - name: a\n    channel: \"1100000000000000014\"\n", "declared twice"},
	} {
		p := filepath.Join(dir, "bad.yaml")
		_ = os.WriteFile(p, []byte(c.body), 0o600)
		if _, err := feedadmin.LoadFile(p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.body, err, c.want)
		}
	}
}

func TestFeedsCommandArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"feeds"}, "want: feeds add"},
		{[]string{"feeds", "frobnicate"}, "unknown feeds command"},
		{[]string{"feeds", "add", "--url", "https://example.com/feed.xml"}, "invalid Discord channel id"},
		{[]string{"feeds", "add", "--url", "ftp://example.com/feed.xml", "--channel", "1100000000000000014"}, "http or https"},
		{[]string{"feeds", "add", "--url", "https://example.com/feed.xml", "--channel", "1100000000000000014", "--every", "5s"}, "every minute"},
		{[]string{"feeds", "run"}, "takes one source name"},
		{[]string{"feeds", "pause", "Not A Name"}, "invalid source name"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), c.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("flexcord %s: %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	if got := nameFromURL("https://www.Example.com/blog/feed.xml"); got != "example-com" {
		t.Errorf("name from URL: %q", got)
	}
}
