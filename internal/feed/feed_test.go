package feed

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestParseFeedFixtures parses odd real-world shaped documents and checks every normalized field.
func TestParseFeedFixtures(t *testing.T) {
	longGUID := "tag:keys.example,2025:" + strings.Repeat("x", 300)
	tests := []struct {
		name      string
		file      string
		base      string
		wantTitle string
		wantLink  string
		want      []Item
		warnings  []string
	}{
		{
			name: "RSS 2.0 with HTML, entities, CDATA, scripts, nested lists, relative links and xml:base",
			file: "rss_html.xml", base: "https://acme.example/blog/feed.xml",
			wantTitle: "Acme & Co. Blog", wantLink: "https://acme.example/",
			want: []Item{
				{
					Key: "link:https://acme.example/archive/2019/first-post", Title: "From the archive",
					URL:       "https://acme.example/archive/2019/first-post",
					Summary:   "Ten years ago we wrote [about us](https://acme.example/about).",
					Published: at(t, "2025-06-08T07:00:00Z"),
				},
				{
					Key: "id:https://shop.acme.example/sale", Title: "Spring sale & more",
					URL:       "https://shop.acme.example/sale?utm_source=rss",
					Summary:   "Everything is *20% off*\u00a0until Sunday.\n\nSee [the terms](https://shop.acme.example/terms.html) & this.",
					ImageURL:  "https://cdn.acme.example/sale.png",
					Published: at(t, "2025-06-09T08:00:00Z"),
				},
				{
					Key: "id:acme-post-2001", Title: "Patch notes – v2.1",
					URL:       "https://acme.example/posts/patch-2-1",
					Summary:   "We’ve shipped\u00a0v2.1 & it’s **fast**. Read the [upgrade guide](https://acme.example/docs/upgrade).\n\n- Faster sync\n\n  - Up to 3× faster\n- Fewer bugs",
					Author:    "Ada Lovelace",
					Published: at(t, "2025-06-10T09:30:00Z"),
				},
			},
		},
		{
			name: "keys from guid, non-permalink guid, link, title and date; item without title or link skipped",
			file: "rss_keys.xml", base: "https://keys.example/feed.xml",
			wantTitle: "Keys", wantLink: "https://keys.example/",
			want: []Item{
				{Key: "id:sha256:" + sha(longGUID), Title: "A very long guid", Published: at(t, "2025-06-01T10:00:00Z")},
				{
					Key:   "hash:" + sha("Neither guid nor link\x002025-06-02T10:00:00Z")[:32],
					Title: "Neither guid nor link", Summary: "Only a title and a date.", Published: at(t, "2025-06-02T10:00:00Z"),
				},
				{
					Key: "link:https://keys.example/p/relative", Title: "No guid, a relative link",
					URL: "https://keys.example/p/relative", Published: at(t, "2025-06-03T10:00:00Z"),
				},
				{
					Key: "id:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", Title: "With a guid that is not a permalink",
					URL: "https://keys.example/p/uuid", Published: at(t, "2025-06-04T10:00:00Z"),
				},
				{
					Key: "id:https://keys.example/p/permalink", Title: "With a permalink guid",
					URL: "https://keys.example/p/permalink", Published: at(t, "2025-06-05T10:00:00Z"),
				},
			},
			warnings: []string{
				"1 item had no id or link; keyed by title and date",
				"1 item had neither title nor link; skipped",
			},
		},
		{
			name: "dates: RFC 1123, without seconds, named zone, RFC 3339, unparseable",
			file: "rss_dates.xml", base: "https://dates.example/feed.xml",
			wantTitle: "Dates", wantLink: "https://dates.example/",
			want: []Item{
				{Key: "link:https://dates.example/rfc1123", Title: "RFC 1123", URL: "https://dates.example/rfc1123", Published: at(t, "2025-06-01T07:15:30Z")},
				{Key: "link:https://dates.example/no-seconds", Title: "RFC 1123 without seconds", URL: "https://dates.example/no-seconds", Published: at(t, "2025-06-02T18:45:00Z")},
				{Key: "link:https://dates.example/named-zone", Title: "Named zone", URL: "https://dates.example/named-zone", Published: at(t, "2025-06-03T16:00:00Z")},
				// Undated, it stays where the document put it: after the item below it there.
				{Key: "link:https://dates.example/unparseable", Title: "Unparseable", URL: "https://dates.example/unparseable"},
				{Key: "link:https://dates.example/rfc3339", Title: "RFC 3339", URL: "https://dates.example/rfc3339", Published: at(t, "2025-06-05T10:00:00Z")},
			},
			warnings: []string{`1 item had a date that did not parse (e.g. "sometime last week"); kept without it`},
		},
		{
			name: "images: enclosure, media:thumbnail, media:group, first <img> (not a tracking pixel), none",
			file: "rss_media.xml", base: "https://media.example/feed.xml",
			wantTitle: "Media", wantLink: "https://media.example/",
			want: []Item{
				{Key: "link:https://media.example/none", Title: "No image", URL: "https://media.example/none", Summary: "Plain text only.", Published: at(t, "2025-06-01T10:00:00Z")},
				{
					Key: "link:https://media.example/inline", Title: "First image of the content", URL: "https://media.example/inline",
					Summary: "Look:\n\nThe new look.", ImageURL: "https://media.example/uploads/inline.png", Published: at(t, "2025-06-02T10:00:00Z"),
				},
				{
					Key: "link:https://media.example/group", Title: "Media group", URL: "https://media.example/group",
					ImageURL: "https://img.media.example/group-thumb.jpg", Published: at(t, "2025-06-03T10:00:00Z"),
				},
				{
					Key: "link:https://media.example/thumbnail", Title: "Media thumbnail", URL: "https://media.example/thumbnail",
					Summary: "A video.", ImageURL: "https://img.media.example/thumb.jpg", Published: at(t, "2025-06-04T10:00:00Z"),
				},
				{
					Key: "link:https://media.example/enclosure", Title: "Image enclosure", URL: "https://media.example/enclosure",
					Summary: "Cover attached.", ImageURL: "https://media.example/files/cover.jpg", Published: at(t, "2025-06-05T10:00:00Z"),
				},
			},
		},
		{
			name: "ISO-8859-1",
			file: "rss_latin1.xml", base: "https://cafe.example/rss",
			wantTitle: "Café des Nouvelles", wantLink: "https://cafe.example/",
			want: []Item{{
				Key: "link:https://cafe.example/noel", Title: "Crème brûlée à Noël ½ prix", URL: "https://cafe.example/noel",
				Summary: "Ça coûte 5\u00a0£.", Published: at(t, "2025-12-24T17:00:00Z"),
			}},
		},
		{
			name: "windows-1252",
			file: "rss_cp1252.xml", base: "https://win.example/rss",
			wantTitle: "Windows Feed", wantLink: "https://win.example/",
			want: []Item{{
				Key: "link:https://win.example/quoted", Title: "It’s “quoted” – now €5", URL: "https://win.example/quoted",
				Published: at(t, "2025-06-02T10:00:00Z"),
			}},
		},
		{
			name: "RSS 1.0",
			file: "rdf.xml", base: "https://rdf.example/index.rdf",
			wantTitle: "RDF Example", wantLink: "https://rdf.example/",
			want: []Item{{
				Key: "link:https://rdf.example/one", Title: "RSS 1.0 item", URL: "https://rdf.example/one",
				Summary: "An item from an RDF feed.", Author: "Rosalind Franklin",
				Published: at(t, "2025-06-01T08:00:00Z"), Updated: at(t, "2025-06-01T08:00:00Z"),
			}},
		},
		{
			name: "Atom with html content and summary, alternate links, xml:base",
			file: "atom_html.xml", base: "https://atom.example/blog/feed.atom",
			wantTitle: "Atom Example", wantLink: "https://atom.example/blog/",
			want: []Item{
				{
					Key: "id:tag:atom.example,2025:content-only", Title: "Content only",
					URL:     "https://atom.example/blog/2025/06/content-only",
					Summary: "## Heading\n\nBody with `code` and a [root link](https://atom.example/abs).",
					Updated: at(t, "2025-06-04T10:00:00Z"),
				},
				{
					Key: "id:urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", Title: "Release day",
					URL:       "https://atom.example/blog/2025/06/release-day",
					Summary:   "The release is *out*. See the [notes](https://atom.example/blog/notes).",
					ImageURL:  "https://atom.example/blog/images/banner.png",
					Author:    "Grace Hopper, Alan Turing",
					Published: at(t, "2025-06-05T13:00:00Z"), Updated: at(t, "2025-06-05T18:30:02Z"),
				},
			},
		},
		{
			name: "GitHub releases",
			file: "atom_github_releases.xml", base: "https://github.com/acme/widget/releases.atom",
			wantTitle: "Release notes from widget", wantLink: "https://github.com/acme/widget/releases",
			want: []Item{
				{
					Key: "id:tag:github.com,2008:Repository/123456789/v1.4.0", Title: "v1.4.0",
					URL: "https://github.com/acme/widget/releases/tag/v1.4.0", Summary: "No notes.", Author: "hubot",
					Updated: at(t, "2025-05-20T09:00:00Z"),
				},
				{
					Key: "id:tag:github.com,2008:Repository/123456789/v1.5.0", Title: "v1.5.0",
					URL: "https://github.com/acme/widget/releases/tag/v1.5.0",
					Summary: "## What's Changed\n\n" +
						"- Add dark mode by [@octocat](https://github.com/octocat) in [#42](https://github.com/acme/widget/pull/42)\n" +
						"- Fix crash on start by [@hubot](https://github.com/hubot)\n\n" +
						"**Full Changelog**: [`v1.4.0...v1.5.0`](https://github.com/acme/widget/compare/v1.4.0...v1.5.0)",
					ImageURL: "https://avatars.githubusercontent.com/u/583231?s=60&v=4",
					Author:   "octocat",
					Updated:  at(t, "2025-06-05T14:03:11Z"),
				},
			},
		},
		{
			name: "JSON Feed 1.1 with content_html, image, authors, a numeric id and content_text",
			file: "jsonfeed.json", base: "https://json.example/feed.json",
			wantTitle: "JSON Example", wantLink: "https://json.example/",
			want: []Item{
				{
					Key: "id:1", Title: "A numeric id", URL: "https://json.example/2025/06/numeric-id",
					Summary: "Plain text with *stars*\n\nand a second paragraph.", Author: "Mary Jackson",
					Published: at(t, "2025-06-04T10:00:00Z"),
				},
				{
					Key: "id:2", Title: "JSON & friends", URL: "https://json.example/2025/06/json-launch",
					Summary:  "We launched a [JSON feed](https://json.example/docs).",
					ImageURL: "https://json.example/images/launch.png", Author: "Katherine Johnson, Dorothy Vaughan",
					Published: at(t, "2025-06-05T10:00:00Z"), Updated: at(t, "2025-06-05T11:00:00Z"),
				},
			},
		},
		{
			name: "empty feed",
			file: "rss_empty.xml", base: "https://empty.example/rss",
			wantTitle: "Nothing yet", wantLink: "https://empty.example/",
			want: []Item{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(readFixture(t, tc.file), tc.base)
			if err != nil {
				t.Fatal(err)
			}
			if got.Title != tc.wantTitle || got.Link != tc.wantLink {
				t.Errorf("feed title, link = %q, %q; want %q, %q", got.Title, got.Link, tc.wantTitle, tc.wantLink)
			}
			if len(got.Items) != len(tc.want) {
				t.Fatalf("%d items, want %d: %+v", len(got.Items), len(tc.want), got.Items)
			}
			for i := range tc.want {
				if !reflect.DeepEqual(got.Items[i], tc.want[i]) {
					t.Errorf("item %d:\n got  %#v\n want %#v", i, got.Items[i], tc.want[i])
				}
			}
			if !reflect.DeepEqual(got.Warnings, tc.warnings) {
				t.Errorf("warnings %q, want %q", got.Warnings, tc.warnings)
			}
			// Stable keys: the same document parses to the same keys.
			again, err := Parse(readFixture(t, tc.file), tc.base)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got.Items {
				if again.Items[i].Key != got.Items[i].Key {
					t.Errorf("item %d key changed from %q to %q", i, got.Items[i].Key, again.Items[i].Key)
				}
			}
		})
	}
}

// TestParseFeedBaseCarriesNoSecrets checks that the credentials and token of a feed URL never
// reach the links of its items.
func TestParseFeedBaseCarriesNoSecrets(t *testing.T) {
	body := []byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link></link>
<item><title>Fragment</title><link>#news</link><description>&lt;a href=""&gt;here&lt;/a&gt; and &lt;a href="?page=2"&gt;next&lt;/a&gt;</description></item>
</channel></rss>`)
	f, err := Parse(body, "https://user:pw@secret.example/feed.xml?token=s3cret#top")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Items) != 1 {
		t.Fatalf("items %+v", f.Items)
	}
	it := f.Items[0]
	if it.URL != "https://secret.example/feed.xml#news" || it.Summary != "[here](https://secret.example/feed.xml#news) and [next](https://secret.example/feed.xml?page=2)" {
		t.Errorf("item %+v", it)
	}
	if b, _ := json.Marshal(f); strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "pw@") {
		t.Errorf("a secret of the feed URL leaked: %s", b)
	}
}

// TestParseFeedNotAFeed checks that bodies that are not feeds are told apart from empty feeds.
func TestParseFeedNotAFeed(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"HTML page", readFixture(t, "not_a_feed.html")},
		{"empty body", nil},
		{"plain text", []byte("Service Unavailable")},
		{"unrelated JSON", []byte(`{"error": "not found", "status": 404}`)},
		{"invalid JSON", []byte(`{"version": "https://jsonfeed.org/version/1.1", "items": [`)},
		{"other XML", []byte(`<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://x.example/</loc></url></urlset>`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.body, "https://x.example/feed")
			if !errors.Is(err, ErrNotAFeed) {
				t.Fatalf("Parse = %+v, %v; want an error wrapping ErrNotAFeed", f, err)
			}
		})
	}
}

// TestParseFeedLongSummary cuts a description of about 15,000 characters full of links, entities
// and non-ASCII letters.
func TestParseFeedLongSummary(t *testing.T) {
	f, err := Parse(readFixture(t, "rss_long.xml"), "https://long.example/feed.xml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Items) != 1 {
		t.Fatalf("%d items", len(f.Items))
	}
	s := f.Items[0].Summary
	checkCut(t, s, MaxSummaryRunes)
	if !strings.HasSuffix(s, "détails. …") {
		t.Errorf("summary does not end at a sentence end: ...%q", s[len(s)-80:])
	}
	if n := utf8.RuneCountInString(s); n < MaxSummaryRunes*3/4 {
		t.Errorf("summary cut too short: %d runes", n)
	}
	if links := strings.Count(s, "](https://long.example/changes/"); strings.Count(s, "[") != links || strings.Count(s, ")") != links {
		t.Errorf("%d links but %d [ and %d )", links, strings.Count(s, "["), strings.Count(s, ")"))
	}
	if strings.Contains(s, "&#") || strings.Contains(s, "&amp;") {
		t.Errorf("summary holds undecoded entities")
	}
	if !strings.Contains(s, "[the change log for update 1](https://long.example/changes/1?from=rss&lang=en)") {
		t.Errorf("first link missing or not absolute: %q", s[:300])
	}
}

// partialEntity matches the start of an entity cut off at the end of a text.
var partialEntity = regexp.MustCompile(`&[#A-Za-z0-9]{0,32}$`)

// checkCut checks the invariants of a cut summary.
func checkCut(t *testing.T, s string, max int) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("invalid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		t.Fatalf("%d runes, more than %d", n, max)
	}
	if !strings.HasSuffix(s, "…") {
		t.Errorf("no ellipsis at the end: %q", s)
	}
	// Every link that opens is closed.
	opens, complete := 0, 0
	for _, sp := range markdownSpans(s) {
		if sp.kind == spanLink {
			complete++
		}
	}
	opens = strings.Count(s, "](")
	if opens != complete {
		t.Errorf("%d link openings but %d complete links in %q", opens, complete, s)
	}
	text := strings.TrimSuffix(strings.TrimSuffix(s, "…"), " ")
	if m := partialEntity.FindString(text); m != "" {
		t.Errorf("ends inside an entity: %q", m)
	}
}

// TestFeedSummaryCut checks where summaries are cut.
func TestFeedSummaryCut(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short enough", "Short text. Nothing to cut.", 40, "Short text. Nothing to cut."},
		{"at the last sentence end", "One two three. Four five six seven. Eight nine ten eleven twelve.", 40,
			"One two three. Four five six seven. …"},
		{"word boundary when no sentence ends in the last quarter", "One two three. Four five six seven eight nine ten eleven", 40,
			"One two three. Four five six seven…"},
		{"never inside a link", "Intro words here. See [the full release notes](https://example.com/notes) now.", 40,
			"Intro words here. See…"},
		{"never inside an entity", "abcdefghijklmnopqrstuvwxyz&amp;abcdefghijklmnop", 30,
			"abcdefghijklmnopqrstuvwxyz…"},
		{"full-width sentence ends", "これは最初の文です。これは二番目の文です。これは三番目の文です。", 25,
			"これは最初の文です。これは二番目の文です。 …"},
		{"a list number is not a sentence end", "Do these steps in this order:\n1. Open\n2. Tap the icon", 40,
			"Do these steps in this order:\n1. Open…"},
		{"never inside a code block", "Intro.\n\n```\ncode line one\ncode line two\ncode line three\n```\nAfter.", 40,
			"Intro. …"},
		{"a link longer than the allowance keeps its text", "[" + strings.Repeat("word ", 12) + "end](https://example.com/x) tail", 30,
			"word word word word word word…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cutSummary(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("cutSummary(%q, %d)\n got  %q\n want %q", tc.in, tc.max, got, tc.want)
			}
			if utf8.RuneCountInString(got) > tc.max || !utf8.ValidString(got) {
				t.Errorf("%q: too long or invalid", got)
			}
		})
	}
}

// TestFeedTitlePlainText checks the cleaning of titles.
func TestFeedTitlePlainText(t *testing.T) {
	long := strings.Repeat("lorem ipsum ", 40)
	tests := []struct{ in, want string }{
		{"<b>Bold</b> &amp; <i>italic</i>", "Bold & italic"},
		{"List<T> and Map<K, V>", "List<T> and Map<K, V>"},
		{"  Multi \n\t line\u00a0 title ", "Multi line title"},
		{"AT&amp;T &#8217;s", "AT&T ’s"},
		{"before<script>alert(1)</script>after", "beforeafter"},
		{"one<br>two", "one two"},
	}
	for _, tc := range tests {
		got := plainText(tc.in, MaxTitleRunes)
		if got != tc.want {
			t.Errorf("plainText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if utf8.RuneCountInString(got) > MaxTitleRunes {
			t.Errorf("plainText(%q): %d runes", tc.in, utf8.RuneCountInString(got))
		}
	}
	got := plainText(long, MaxTitleRunes)
	if n := utf8.RuneCountInString(got); n > MaxTitleRunes || n < MaxTitleRunes*2/3 {
		t.Errorf("long title cut to %d runes", n)
	}
	if !strings.HasSuffix(got, "ipsum…") && !strings.HasSuffix(got, "lorem…") {
		t.Errorf("long title not cut at a word: %q", got)
	}
}

// TestParseFeedOrderWithoutDates checks that undated items keep the document's order reversed.
func TestParseFeedOrderWithoutDates(t *testing.T) {
	rss := func(items ...string) []byte {
		var b strings.Builder
		b.WriteString(`<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://o.example/</link>`)
		for _, it := range items {
			b.WriteString(it)
		}
		b.WriteString(`</channel></rss>`)
		return []byte(b.String())
	}
	item := func(id, date string) string {
		s := `<item><title>` + id + `</title><guid>` + id + `</guid>`
		if date != "" {
			s += `<pubDate>` + date + `</pubDate>`
		}
		return s + `</item>`
	}
	tests := []struct {
		name string
		body []byte
		want []string
	}{
		{"no dates", rss(item("c", ""), item("b", ""), item("a", "")), []string{"id:a", "id:b", "id:c"}},
		{"dates out of order", rss(item("x", "Mon, 02 Jun 2025 10:00:00 GMT"), item("y", "Wed, 04 Jun 2025 10:00:00 GMT"), item("z", "Sun, 01 Jun 2025 10:00:00 GMT")),
			[]string{"id:z", "id:x", "id:y"}},
		{"mixed", rss(item("n1", "Thu, 05 Jun 2025 10:00:00 GMT"), item("u1", ""), item("n2", "Tue, 03 Jun 2025 10:00:00 GMT"), item("u2", "")),
			[]string{"id:u2", "id:n2", "id:u1", "id:n1"}},
		{"same date keeps reversed order", rss(item("second", "Mon, 02 Jun 2025 10:00:00 GMT"), item("first", "Mon, 02 Jun 2025 10:00:00 GMT")),
			[]string{"id:first", "id:second"}},
		{"repeated key kept once", rss(item("d", "Mon, 02 Jun 2025 10:00:00 GMT"), item("d", "Mon, 02 Jun 2025 09:00:00 GMT")),
			[]string{"id:d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.body, "https://o.example/rss")
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, it := range f.Items {
				keys = append(keys, it.Key)
			}
			if !reflect.DeepEqual(keys, tc.want) {
				t.Errorf("order %q, want %q", keys, tc.want)
			}
		})
	}
}

// TestFeedItemJSON checks the payload shape: zero dates and empty fields are left out.
func TestFeedItemJSON(t *testing.T) {
	b, err := json.Marshal(Item{Key: "id:1", Title: "T", Published: at(t, "2025-06-01T10:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key":"id:1","title":"T","published":"2025-06-01T10:00:00Z"}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

// TestParsePushFeed parses pushed bodies: single JSON Feed items, arrays, whole documents.
func TestParsePushFeed(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		want    []Item
		wantLen int
		wantErr error
	}{
		{
			name: "single JSON Feed item",
			body: []byte(`{"id": "push-1", "url": "https://brand.example/news/1", "title": "Big &amp; news",
				"content_html": "<p>Hello <b>world</b>. <a href=\"https://brand.example/more\">More</a>.</p><img src=\"https://brand.example/inline.png\">",
				"image": "https://brand.example/cover.png", "date_published": "2025-06-05T10:00:00+02:00",
				"authors": [{"name": "PR Team"}]}`),
			want: []Item{{
				Key: "id:push-1", Title: "Big & news", URL: "https://brand.example/news/1",
				Summary:  "Hello **world**. [More](https://brand.example/more).",
				ImageURL: "https://brand.example/cover.png", Author: "PR Team", Published: at(t, "2025-06-05T08:00:00Z"),
			}},
		},
		{
			name: "single item with a numeric id, a summary and a relative url",
			body: []byte(`{"id": 42, "url": "/news/42", "title": "Relative", "summary": "Short and plain."}`),
			want: []Item{{Key: "id:42", Title: "Relative", Summary: "Short and plain."}},
		},
		{
			name: "array of items",
			body: []byte(`[{"id": "a", "title": "A", "url": "https://brand.example/a"}, {"id": "b", "title": "B", "content_text": "Text"}]`),
			want: []Item{
				{Key: "id:b", Title: "B", Summary: "Text"},
				{Key: "id:a", Title: "A", URL: "https://brand.example/a"},
			},
		},
		{name: "whole RSS document", body: readFixture(t, "rss_dates.xml"), wantLen: 5},
		{name: "whole JSON Feed", body: readFixture(t, "jsonfeed.json"), wantLen: 2},
		{name: "whole Atom document", body: readFixture(t, "atom_github_releases.xml"), wantLen: 2},
		{name: "item without title or url", body: []byte(`{"id": "x", "content_text": "No title"}`), wantErr: ErrInvalidItem},
		{name: "not JSON", body: []byte(`{"id": `), wantErr: ErrNotAFeed},
		{name: "HTML", body: readFixture(t, "not_a_feed.html"), wantErr: ErrNotAFeed},
		{name: "plain text", body: []byte("hello"), wantErr: ErrNotAFeed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePush(tc.body)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ParsePush = %+v, %v; want an error wrapping %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got  %#v\n want %#v", got, tc.want)
			}
			if tc.wantLen != 0 && len(got) != tc.wantLen {
				t.Errorf("%d items, want %d", len(got), tc.wantLen)
			}
		})
	}
}
