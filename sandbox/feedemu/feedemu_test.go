package feedemu_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/flexcord/flexcord/sandbox/feedemu"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var start = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// env is a feed server mounted the way `flexcord dev` mounts it.
type env struct {
	srv   *feedemu.Server
	clock *clock
	URL   string // the server's origin
	base  string // URL + the prefix
}

func newEnv(t *testing.T, opts feedemu.Options) *env {
	t.Helper()
	c := &clock{t: start}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	srv := feedemu.New(opts)
	mux := http.NewServeMux()
	prefix := strings.TrimRight(opts.Prefix, "/")
	if prefix == "" {
		prefix = feedemu.DefaultPrefix
	}
	mux.Handle(prefix+"/", srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return &env{srv: srv, clock: c, URL: ts.URL, base: ts.URL + prefix}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, method, path string, body string, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) publish(t *testing.T, in map[string]any) feedemu.Item {
	t.Helper()
	b, _ := json.Marshal(in)
	res := e.do(t, http.MethodPost, "/sample/items", string(b), map[string]string{"Content-Type": "application/json"})
	if res.status != http.StatusCreated {
		t.Fatalf("POST /sample/items = %d %s, want 201", res.status, res.body)
	}
	var it feedemu.Item
	if err := json.Unmarshal(res.body, &it); err != nil {
		t.Fatalf("decode item: %v", err)
	}
	return it
}

func (e *env) listItems(t *testing.T) []feedemu.Item {
	t.Helper()
	res := e.do(t, http.MethodGet, "/sample/items", "", nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET /sample/items = %d %s", res.status, res.body)
	}
	var out struct {
		Feed  string         `json:"feed"`
		Items []feedemu.Item `json:"items"`
	}
	if err := json.Unmarshal(res.body, &out); err != nil {
		t.Fatalf("decode items: %v", err)
	}
	if out.Feed != "sample" {
		t.Errorf("items of feed %q, want sample", out.Feed)
	}
	return out.Items
}

func parseFeed(t *testing.T, body []byte) *gofeed.Feed {
	t.Helper()
	f, err := gofeed.NewParser().Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("gofeed cannot parse the feed: %v\n%s", err, body)
	}
	return f
}

// rawRSS is the part of the RSS document that gofeed normalizes away.
type rawRSS struct {
	Version string `xml:"version,attr"`
	Items   []struct {
		GUID struct {
			IsPermaLink string `xml:"isPermaLink,attr"`
			Value       string `xml:",chardata"`
		} `xml:"guid"`
		PubDate   string `xml:"pubDate"`
		Enclosure *struct {
			URL  string `xml:"url,attr"`
			Type string `xml:"type,attr"`
		} `xml:"enclosure"`
		Thumbnail *struct {
			URL string `xml:"url,attr"`
		} `xml:"http://search.yahoo.com/mrss/ thumbnail"`
	} `xml:"channel>item"`
}

func TestSampleFeedAsRSS(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	res := e.do(t, http.MethodGet, "/sample.xml", "", nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET /sample.xml = %d %s", res.status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/rss+xml; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	etag := res.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
		t.Errorf("ETag = %q, want a strong entity tag", etag)
	}
	if lm := res.header.Get("Last-Modified"); lm != start.Truncate(time.Second).Format(http.TimeFormat) {
		t.Errorf("Last-Modified = %q, want the server's start %s", lm, start.Format(http.TimeFormat))
	}

	f := parseFeed(t, res.body)
	if f.FeedType != "rss" || f.FeedVersion != "2.0" {
		t.Errorf("feed type %s %s, want rss 2.0", f.FeedType, f.FeedVersion)
	}
	if f.Title != "Sample blog" || f.Link != e.base+"/sample" {
		t.Errorf("channel title %q link %q", f.Title, f.Link)
	}
	if len(f.Items) != 3 {
		t.Fatalf("sample feed has %d items, want 3", len(f.Items))
	}
	for i, it := range f.Items {
		if it.PublishedParsed == nil || !it.PublishedParsed.Before(start) {
			t.Errorf("item %d published %v, want a date in the past", i, it.PublishedParsed)
		}
		if i > 0 && !it.PublishedParsed.Before(*f.Items[i-1].PublishedParsed) {
			t.Errorf("item %d is not older than item %d: newest must come first", i, i-1)
		}
		if !strings.HasPrefix(it.Link, e.base+"/sample/posts/") || it.GUID == "" || it.Description == "" {
			t.Errorf("item %d: link %q guid %q description %q", i, it.Link, it.GUID, it.Description)
		}
	}
	if got := f.Items[0].Title; got != "Scheduled maintenance on Saturday" {
		t.Errorf("newest item %q", got)
	}
	if d := f.Items[1].Description; !strings.Contains(d, "<em>twice</em>") || !strings.Contains(d, "<li>") {
		t.Errorf("description %q, want a little HTML", d)
	}
	if len(f.Items[1].Enclosures) != 1 || f.Items[1].Enclosures[0].Type != "image/png" ||
		f.Items[1].Enclosures[0].URL != e.base+"/sample/images/release-2-4.png" {
		t.Errorf("enclosures %+v, want the release banner", f.Items[1].Enclosures)
	}

	var raw rawRSS
	if err := xml.Unmarshal(res.body, &raw); err != nil {
		t.Fatalf("decode RSS: %v", err)
	}
	if raw.Version != "2.0" || len(raw.Items) != 3 {
		t.Fatalf("rss version %q with %d items", raw.Version, len(raw.Items))
	}
	for i, it := range raw.Items {
		if it.GUID.IsPermaLink != "false" {
			t.Errorf("item %d guid isPermaLink=%q, want false", i, it.GUID.IsPermaLink)
		}
		if _, err := time.Parse(time.RFC1123Z, it.PubDate); err != nil {
			t.Errorf("item %d pubDate %q is not RFC 1123Z: %v", i, it.PubDate, err)
		}
	}
	if th := raw.Items[1].Thumbnail; th == nil || th.URL != e.base+"/sample/images/release-2-4.png" {
		t.Errorf("media:thumbnail %+v", th)
	}
	if raw.Items[0].Enclosure != nil {
		t.Errorf("an item without a picture has an enclosure: %+v", raw.Items[0].Enclosure)
	}
}

func TestSampleFeedAsJSONFeed(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	res := e.do(t, http.MethodGet, "/sample.json", "", nil)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/feed+json; charset=utf-8" {
		t.Fatalf("GET /sample.json = %d %q", res.status, res.header.Get("Content-Type"))
	}
	var doc struct {
		Version string `json:"version"`
		FeedURL string `json:"feed_url"`
		Items   []struct {
			ID, URL, Title, ContentHTML, Image, DatePublished string
		} `json:"items"`
	}
	if err := json.Unmarshal(res.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "https://jsonfeed.org/version/1.1" || doc.FeedURL != e.base+"/sample.json" {
		t.Errorf("version %q feed_url %q", doc.Version, doc.FeedURL)
	}
	f := parseFeed(t, res.body)
	rss := parseFeed(t, e.do(t, http.MethodGet, "/sample.xml", "", nil).body)
	if f.FeedType != "json" || len(f.Items) != len(rss.Items) {
		t.Fatalf("JSON Feed %s with %d items, want json with %d", f.FeedType, len(f.Items), len(rss.Items))
	}
	for i := range f.Items {
		j, r := f.Items[i], rss.Items[i]
		if j.GUID != r.GUID || j.Title != r.Title || j.Link != r.Link || !j.PublishedParsed.Equal(*r.PublishedParsed) {
			t.Errorf("item %d differs: JSON %q %q %q %v, RSS %q %q %q %v", i, j.GUID, j.Title, j.Link, j.PublishedParsed, r.GUID, r.Title, r.Link, r.PublishedParsed)
		}
	}
	if f.Items[1].Image == nil || f.Items[1].Image.URL != e.base+"/sample/images/release-2-4.png" {
		t.Errorf("JSON Feed image %+v", f.Items[1].Image)
	}
}

func TestConditionalGET(t *testing.T) {
	for _, doc := range []string{"/sample.xml", "/sample.json"} {
		t.Run(doc, func(t *testing.T) {
			e := newEnv(t, feedemu.Options{})
			first := e.do(t, http.MethodGet, doc, "", nil)
			etag, lm := first.header.Get("ETag"), first.header.Get("Last-Modified")
			older := start.Add(-time.Hour).Format(http.TimeFormat)
			tests := []struct {
				name   string
				header map[string]string
				want   int
			}{
				{"matching etag", map[string]string{"If-None-Match": etag}, http.StatusNotModified},
				{"one of several etags", map[string]string{"If-None-Match": `"nope", ` + etag}, http.StatusNotModified},
				{"other etag", map[string]string{"If-None-Match": `"nope"`}, http.StatusOK},
				{"weak form of the etag", map[string]string{"If-None-Match": "W/" + etag}, http.StatusNotModified}, // weak comparison, RFC 9110 13.1.2
				{"not modified since", map[string]string{"If-Modified-Since": lm}, http.StatusNotModified},
				{"modified since", map[string]string{"If-Modified-Since": older}, http.StatusOK},
				{"etag wins over date", map[string]string{"If-None-Match": `"nope"`, "If-Modified-Since": lm}, http.StatusOK},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					res := e.do(t, http.MethodGet, doc, "", tt.header)
					if res.status != tt.want {
						t.Fatalf("status %d, want %d", res.status, tt.want)
					}
					if tt.want == http.StatusNotModified && len(res.body) != 0 {
						t.Errorf("304 with a body of %d bytes", len(res.body))
					}
					if tt.want == http.StatusOK && !bytes.Equal(res.body, first.body) {
						t.Errorf("body differs from the first answer")
					}
				})
			}

			// A post published in the same second: a new ETag and a later
			// Last-Modified, so both kinds of validator see the change.
			e.publish(t, map[string]any{"title": "Same second"})
			for _, h := range []map[string]string{{"If-None-Match": etag}, {"If-Modified-Since": lm}} {
				res := e.do(t, http.MethodGet, doc, "", h)
				if res.status != http.StatusOK {
					t.Fatalf("after a publish, %v = %d, want 200", h, res.status)
				}
				if res.header.Get("ETag") == etag {
					t.Errorf("ETag unchanged after a publish")
				}
				if res.header.Get("Last-Modified") == lm {
					t.Errorf("Last-Modified unchanged after a publish")
				}
			}
			res := e.do(t, http.MethodGet, doc, "", nil)
			if again := e.do(t, http.MethodGet, doc, "", map[string]string{"If-None-Match": res.header.Get("ETag")}); again.status != http.StatusNotModified {
				t.Errorf("the new ETag = %d, want 304", again.status)
			}
		})
	}
}

func TestPublish(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	e.clock.Advance(time.Minute)
	title := `Big <news> & "more"`
	it := e.publish(t, map[string]any{"title": "  Big <news>\n & \"more\"  ", "html": "<p>Hello <b>there</b></p>"})
	if it.ID != "4" || it.Title != title || it.HTML != "<p>Hello <b>there</b></p>" {
		t.Errorf("item = %+v", it)
	}
	if it.Link != e.base+"/sample/posts/4" {
		t.Errorf("default link %q, want the site's /posts/4", it.Link)
	}
	if !it.Published.Equal(start.Add(time.Minute)) {
		t.Errorf("published %v, want now", it.Published)
	}
	second := e.publish(t, map[string]any{"title": "With picture", "link": "https://blog.example.com/p/2", "image_url": "https://cdn.example.com/a.jpg"})
	if second.ID != "5" || second.GUID == it.GUID || second.Link != "https://blog.example.com/p/2" || second.ImageURL != "https://cdn.example.com/a.jpg" {
		t.Errorf("second item = %+v", second)
	}

	items := e.listItems(t)
	if len(items) != 5 || items[0].ID != "5" || items[1].ID != "4" || items[4].ID != "1" {
		t.Fatalf("items = %+v, want 5 newest first", items)
	}
	f := parseFeed(t, e.do(t, http.MethodGet, "/sample.xml", "", nil).body)
	if f.Items[1].Title != title || f.Items[1].Description != it.HTML || f.Items[1].GUID != it.GUID {
		t.Errorf("RSS item %q %q %q, want %q %q %q", f.Items[1].Title, f.Items[1].Description, f.Items[1].GUID, title, it.HTML, it.GUID)
	}
	if enc := f.Items[0].Enclosures; len(enc) != 1 || enc[0].Type != "image/jpeg" {
		t.Errorf("enclosure of a .jpg: %+v", enc)
	}

	one := e.do(t, http.MethodGet, "/sample/items/4", "", nil)
	var got feedemu.Item
	if err := json.Unmarshal(one.body, &got); one.status != http.StatusOK || err != nil || got.GUID != it.GUID {
		t.Errorf("GET /sample/items/4 = %d %s", one.status, one.body)
	}
	if e.do(t, http.MethodGet, "/sample/items/99", "", nil).status != http.StatusNotFound {
		t.Errorf("GET of an unknown item is not 404")
	}
}

func TestPublishLocation(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	res := e.do(t, http.MethodPost, "/sample/items", `{"title":"x"}`, nil)
	if res.status != http.StatusCreated || res.header.Get("Location") != e.base+"/sample/items/4" {
		t.Errorf("POST = %d, Location %q", res.status, res.header.Get("Location"))
	}
}

func TestPublishValidation(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	big := strings.Repeat("x", feedemu.MaxHTMLBytes+1)
	tests := []struct {
		name, body string
		status     int
		field      string
		contains   string
	}{
		{"no title", `{"html":"<p>x</p>"}`, 400, "title", "title is required"},
		{"blank title", `{"title":" \n\t "}`, 400, "title", "title is required"},
		{"long title", fmt.Sprintf(`{"title":%q}`, strings.Repeat("é", 301)), 400, "title", "301 characters; at most 300"},
		{"long html", fmt.Sprintf(`{"title":"t","html":%q}`, big), 400, "html", "at most 20480"},
		{"script link", `{"title":"t","link":"javascript:alert(1)"}`, 400, "link", "absolute http"},
		{"relative image", `{"title":"t","image_url":"/a.png"}`, 400, "image_url", "absolute http"},
		{"unknown field", `{"title":"t","body":"x"}`, 400, "", `unknown field "body"`},
		{"not JSON", `title=t`, 400, "", "not a valid item"},
		{"empty body", ``, 400, "", "must be a JSON object"},
		{"two objects", `{"title":"a"}{"title":"b"}`, 400, "", "more than one JSON value"},
		{"array", `[{"title":"a"}]`, 400, "", "not a valid item"},
		{"huge body", fmt.Sprintf(`{"title":"t","html":%q}`, strings.Repeat("x", 300<<10)), 413, "", "larger than 256 KB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, http.MethodPost, "/sample/items", tt.body, map[string]string{"Content-Type": "application/json"})
			if res.status != tt.status {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tt.status)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			var out struct{ Error, Field string }
			if err := json.Unmarshal(res.body, &out); err != nil {
				t.Fatalf("error body %s: %v", res.body, err)
			}
			if out.Field != tt.field || !strings.Contains(out.Error, tt.contains) {
				t.Errorf("error %q field %q, want %q in field %q", out.Error, out.Field, tt.contains, tt.field)
			}
		})
	}
	// A title of exactly 300 characters is fine.
	e.publish(t, map[string]any{"title": strings.Repeat("é", 300), "html": strings.Repeat("x", feedemu.MaxHTMLBytes)})
	if n := len(e.listItems(t)); n != 4 {
		t.Errorf("%d items after one valid publish among rejected ones, want 4", n)
	}
}

func TestRemove(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	before := e.do(t, http.MethodGet, "/sample.xml", "", nil)
	if res := e.do(t, http.MethodDelete, "/sample/items/2", "", nil); res.status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", res.status, res.body)
	}
	items := e.listItems(t)
	if len(items) != 2 || items[0].ID != "3" || items[1].ID != "1" {
		t.Errorf("items after DELETE = %+v", items)
	}
	if res := e.do(t, http.MethodGet, "/sample.xml", "", map[string]string{"If-None-Match": before.header.Get("ETag")}); res.status != http.StatusOK {
		t.Errorf("feed unchanged after a removal: %d", res.status)
	}
	if res := e.do(t, http.MethodDelete, "/sample/items/2", "", nil); res.status != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", res.status)
	}
	if it := e.publish(t, map[string]any{"title": "next"}); it.ID != "4" {
		t.Errorf("id after a removal = %q, want 4 (ids are never reused)", it.ID)
	}
}

func TestUnknownFeedAndRoutes(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/nope.xml", 404},
		{http.MethodGet, "/nope.json", 404},
		{http.MethodGet, "/sample.txt", 404},
		{http.MethodGet, "/nope/items", 404},
		{http.MethodPost, "/nope/items", 404},
		{http.MethodDelete, "/nope/items/1", 404},
		{http.MethodGet, "/nope/posts/1", 404},
		{http.MethodGet, "/sample/posts/99", 404},
		{http.MethodGet, "/sample/images/../x.png", 404},
		{http.MethodGet, "/sample/images/UPPER.png", 404},
		{http.MethodPut, "/sample/items", 405},
		{http.MethodPost, "/sample.xml", 405},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			body := ""
			if tt.method == http.MethodPost {
				body = `{"title":"x"}`
			}
			if got := e.do(t, tt.method, tt.path, body, nil).status; got != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, got, tt.want)
			}
		})
	}
	if n := len(e.srv.Items("sample")); n != 3 {
		t.Errorf("sample has %d items after rejected requests, want 3", n)
	}
}

func TestIndex(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	if err := e.srv.AddFeed("changelog", "Changelog"); err != nil {
		t.Fatal(err)
	}
	res := e.do(t, http.MethodGet, "/", "", nil)
	var out struct {
		Feeds []struct {
			Name, Title string
			Items       int
			RSSURL      string `json:"rss_url"`
		}
	}
	if err := json.Unmarshal(res.body, &out); err != nil || res.status != 200 {
		t.Fatalf("GET / = %d %s", res.status, res.body)
	}
	if len(out.Feeds) != 2 || out.Feeds[0].Name != "changelog" || out.Feeds[1].Name != "sample" ||
		out.Feeds[1].Items != 3 || out.Feeds[1].RSSURL != e.base+"/sample.xml" {
		t.Errorf("index = %+v", out.Feeds)
	}
	f := parseFeed(t, e.do(t, http.MethodGet, "/changelog.xml", "", nil).body)
	if f.Title != "Changelog" || len(f.Items) != 0 {
		t.Errorf("new feed %q with %d items", f.Title, len(f.Items))
	}
}

func TestPagesAndImages(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	e.publish(t, map[string]any{"title": "Hi <there>", "html": `<p>Body</p><script>alert(1)</script>`})

	home := e.do(t, http.MethodGet, "/sample", "", nil)
	if home.status != 200 || !strings.Contains(string(home.body), "Hi &lt;there&gt;") || !strings.Contains(string(home.body), `href="`+e.base+`/sample/posts/4"`) {
		t.Errorf("home page = %d:\n%s", home.status, home.body)
	}
	post := e.do(t, http.MethodGet, "/sample/posts/4", "", nil)
	if post.status != 200 || !strings.Contains(string(post.body), "<h1>Hi &lt;there&gt;</h1>") || !strings.Contains(string(post.body), "<p>Body</p>") {
		t.Errorf("post page = %d:\n%s", post.status, post.body)
	}
	for _, res := range []response{home, post} {
		if csp := res.header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox;") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("page CSP %q: posted HTML must not run", csp)
		}
	}
	withImage := e.do(t, http.MethodGet, "/sample/posts/2", "", nil)
	if !strings.Contains(string(withImage.body), `src="`+e.base+`/sample/images/release-2-4.png"`) {
		t.Errorf("post with a picture does not show it:\n%s", withImage.body)
	}

	img := e.do(t, http.MethodGet, "/sample/images/release-2-4.png", "", nil)
	if img.status != 200 || img.header.Get("Content-Type") != "image/png" {
		t.Fatalf("image = %d %q", img.status, img.header.Get("Content-Type"))
	}
	decoded, err := png.Decode(bytes.NewReader(img.body))
	if err != nil {
		t.Fatal(err)
	}
	if b := decoded.Bounds(); b.Dx() != 640 || b.Dy() != 320 {
		t.Errorf("image is %v, want 640×320", b)
	}
	again := e.do(t, http.MethodGet, "/sample/images/release-2-4.png", "", nil)
	other := e.do(t, http.MethodGet, "/sample/images/other.png", "", nil)
	if !bytes.Equal(img.body, again.body) || bytes.Equal(img.body, other.body) {
		t.Errorf("a name must always draw the same picture, and different names different ones")
	}
	if res := e.do(t, http.MethodGet, "/sample/images/release-2-4.png", "", map[string]string{"If-None-Match": img.header.Get("ETag")}); res.status != http.StatusNotModified {
		t.Errorf("image revalidation = %d, want 304", res.status)
	}
}

func TestOptions(t *testing.T) {
	e := newEnv(t, feedemu.Options{
		Title: "Acme news", SiteURL: "https://acme.example/blog/", BaseURL: "https://feeds.acme.example/f/", Prefix: "/feeds/",
	})
	it := e.publish(t, map[string]any{"title": "Launch"})
	if it.Link != "https://acme.example/blog/posts/4" {
		t.Errorf("link %q, want SiteURL/posts/4", it.Link)
	}
	f := parseFeed(t, e.do(t, http.MethodGet, "/sample.xml", "", nil).body)
	if f.Title != "Acme news" || f.Link != "https://acme.example/blog" {
		t.Errorf("title %q link %q", f.Title, f.Link)
	}
	if len(f.Items) != 4 || len(f.Items[2].Enclosures) != 1 {
		t.Fatalf("feed items %+v", f.Items)
	}
	if got := f.Items[2].Enclosures[0].URL; got != "https://feeds.acme.example/f/sample/images/release-2-4.png" {
		t.Errorf("picture URL %q, want it under BaseURL", got)
	}
}

func TestGoAPI(t *testing.T) {
	c := &clock{t: start}
	srv := feedemu.New(feedemu.Options{Now: c.Now})
	it, err := srv.Publish("sample", feedemu.NewItem{Title: "From Go"})
	if err != nil {
		t.Fatal(err)
	}
	if it.ID != "4" || it.Link != feedemu.DefaultPrefix+"/sample/posts/4" {
		t.Errorf("item %+v: without a BaseURL links are paths", it)
	}
	var invalid *feedemu.ValidationError
	if _, err := srv.Publish("sample", feedemu.NewItem{}); !errors.As(err, &invalid) || invalid.Field != "title" {
		t.Errorf("publish without title: %v", err)
	}
	if _, err := srv.Publish("nope", feedemu.NewItem{Title: "x"}); !errors.Is(err, feedemu.ErrNoFeed) {
		t.Errorf("publish to an unknown feed: %v", err)
	}
	if err := srv.Remove("sample", "77"); !errors.Is(err, feedemu.ErrNoItem) {
		t.Errorf("remove an unknown item: %v", err)
	}
	if srv.Items("nope") != nil {
		t.Errorf("items of an unknown feed are not nil")
	}
	for _, bad := range []string{"", "Sample", "a/b", "with space", strings.Repeat("a", 41)} {
		if err := srv.AddFeed(bad, ""); err == nil {
			t.Errorf("AddFeed(%q) accepted", bad)
		}
	}
	if err := srv.AddFeed("sample", ""); err == nil {
		t.Errorf("AddFeed of an existing feed accepted")
	}
	seeds := srv.Items("sample")
	if len(seeds) != 4 || seeds[3].Published.After(start.Add(-72*time.Hour)) {
		t.Errorf("oldest seed published %v, want three days before the start", seeds[3].Published)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, feedemu.Options{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if _, err := e.srv.Publish("sample", feedemu.NewItem{Title: fmt.Sprintf("post %d", i)}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			res, err := http.Get(e.base + "/sample.xml")
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
		})
	}
	wg.Wait()
	items := e.listItems(t)
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it.ID] || seen[it.GUID] {
			t.Errorf("duplicate id or guid %q %q", it.ID, it.GUID)
		}
		seen[it.ID], seen[it.GUID] = true, true
	}
	if len(items) != 19 {
		t.Errorf("%d items, want 19", len(items))
	}
}
