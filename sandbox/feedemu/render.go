package feedemu

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"html/template"
	"mime"
	"path"
	"strings"
	"time"
)

// The RSS 2.0 document. encoding/xml escapes every text and attribute; the
// namespace prefixes are written as part of the names.
type rssDoc struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	AtomNS  string     `xml:"xmlns:atom,attr"`
	MediaNS string     `xml:"xmlns:media,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title         string    `xml:"title"`
	Link          string    `xml:"link"`
	Description   string    `xml:"description"`
	Language      string    `xml:"language"`
	Generator     string    `xml:"generator"`
	LastBuildDate string    `xml:"lastBuildDate"`
	Self          rssLink   `xml:"atom:link"`
	Items         []rssItem `xml:"item"`
}

type rssLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr"`
}

type rssItem struct {
	Title       string        `xml:"title"`
	Link        string        `xml:"link"`
	Description string        `xml:"description"`
	GUID        rssGUID       `xml:"guid"`
	PubDate     string        `xml:"pubDate"`
	Enclosure   *rssEnclosure `xml:"enclosure,omitempty"`
	Thumbnail   *rssThumbnail `xml:"media:thumbnail,omitempty"`
}

type rssGUID struct {
	IsPermaLink string `xml:"isPermaLink,attr"`
	Value       string `xml:",chardata"`
}

type rssEnclosure struct {
	URL    string `xml:"url,attr"`
	Length string `xml:"length,attr"`
	Type   string `xml:"type,attr"`
}

type rssThumbnail struct {
	URL string `xml:"url,attr"`
}

const generator = "flexcord sandbox feedemu"

// renderRSS writes a feed as RSS 2.0, newest item first.
func renderRSS(f snapshot, base string) ([]byte, error) {
	doc := rssDoc{
		Version: "2.0",
		AtomNS:  "http://www.w3.org/2005/Atom",
		MediaNS: "http://search.yahoo.com/mrss/",
		Channel: rssChannel{
			Title: f.title, Link: f.site(base), Description: f.description, Language: "en",
			Generator: generator, LastBuildDate: f.modified.UTC().Format(time.RFC1123Z),
			Self:  rssLink{Href: base + "/" + f.name + ".xml", Rel: "self", Type: "application/rss+xml"},
			Items: []rssItem{},
		},
	}
	if doc.Channel.Description == "" {
		doc.Channel.Description = f.title
	}
	for _, raw := range f.items {
		it := resolve(f, raw, base)
		ri := rssItem{
			Title: it.Title, Link: it.Link, Description: it.HTML,
			GUID:    rssGUID{IsPermaLink: "false", Value: it.GUID},
			PubDate: it.Published.UTC().Format(time.RFC1123Z),
		}
		if it.ImageURL != "" {
			// The length of a remote picture is unknown; 0 is the customary value then.
			ri.Enclosure = &rssEnclosure{URL: it.ImageURL, Length: "0", Type: imageType(it.ImageURL)}
			ri.Thumbnail = &rssThumbnail{URL: it.ImageURL}
		}
		doc.Channel.Items = append(doc.Channel.Items, ri)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// imageType guesses a picture's media type from its URL; PNG when unsure.
func imageType(rawURL string) string {
	p := rawURL
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(p))); strings.HasPrefix(t, "image/") {
		return t
	}
	return "image/png"
}

// The JSON Feed 1.1 document (https://www.jsonfeed.org/version/1.1/).
type jsonFeed struct {
	Version     string         `json:"version"`
	Title       string         `json:"title"`
	HomePageURL string         `json:"home_page_url"`
	FeedURL     string         `json:"feed_url"`
	Description string         `json:"description,omitempty"`
	Language    string         `json:"language"`
	Items       []jsonFeedItem `json:"items"`
}

type jsonFeedItem struct {
	ID            string `json:"id"`
	URL           string `json:"url"`
	Title         string `json:"title"`
	ContentHTML   string `json:"content_html"`
	Image         string `json:"image,omitempty"`
	DatePublished string `json:"date_published"`
}

// renderJSONFeed writes a feed as JSON Feed 1.1, newest item first.
func renderJSONFeed(f snapshot, base string) ([]byte, error) {
	doc := jsonFeed{
		Version: "https://jsonfeed.org/version/1.1", Title: f.title, HomePageURL: f.site(base),
		FeedURL: base + "/" + f.name + ".json", Description: f.description, Language: "en",
		Items: []jsonFeedItem{},
	}
	for _, raw := range f.items {
		it := resolve(f, raw, base)
		doc.Items = append(doc.Items, jsonFeedItem{
			ID: it.GUID, URL: it.Link, Title: it.Title, ContentHTML: it.HTML, Image: it.ImageURL,
			DatePublished: it.Published.UTC().Format(time.RFC3339),
		})
	}
	// HTML stays readable: a JSON Feed is never embedded in a page.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// The blog's pages. Titles and links are escaped by html/template; a
// post's body is the HTML it was published with, so both pages are served
// sandboxed (see sandboxed): no script in them runs.
var pages = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1f2328; }
header a { color: inherit; text-decoration: none; font-weight: 700; }
time, .feeds { color: #5c6370; font-size: .9rem; }
img { max-width: 100%; height: auto; border-radius: 8px; }
li { margin: .6rem 0; }
</style>
</head>
<body>
<header><a href="{{.Home}}">{{.Feed}}</a></header>
{{if .Post}}{{with .Post}}<article>
<h1>{{.Title}}</h1>
<p><time datetime="{{.ISO}}">{{.Date}}</time></p>
{{if .Image}}<p><img src="{{.Image}}" alt=""></p>{{end}}
{{.Body}}
</article>{{end}}{{else}}<h1>{{.Feed}}</h1>
<p>{{.Description}}</p>
<ul>{{range .Posts}}
<li><a href="{{.Link}}">{{.Title}}</a> <time datetime="{{.ISO}}">{{.Date}}</time></li>{{else}}
<li>No posts yet.</li>{{end}}
</ul>{{end}}
<p class="feeds">Subscribe: <a href="{{.RSS}}">RSS</a> · <a href="{{.JSON}}">JSON Feed</a></p>
</body>
</html>
`))

type pageData struct {
	Title, Feed, Description, Home, RSS, JSON string
	Post                                      *pagePost
	Posts                                     []pagePost
}

type pagePost struct {
	Title, Link, Image, ISO, Date string
	Body                          template.HTML // the post's own HTML; the page is sandboxed
}

func newPageData(f snapshot, base string) pageData {
	return pageData{
		Title: f.title, Feed: f.title, Description: f.description, Home: f.site(base),
		RSS: base + "/" + f.name + ".xml", JSON: base + "/" + f.name + ".json",
	}
}

func newPagePost(it Item) pagePost {
	return pagePost{
		Title: it.Title, Link: it.Link, Image: it.ImageURL,
		ISO: it.Published.UTC().Format(time.RFC3339), Date: it.Published.UTC().Format("2 January 2006, 15:04 UTC"),
		Body: template.HTML(it.HTML), // shown only in a sandboxed page
	}
}

// renderHome writes the blog's home page: its posts, newest first.
func renderHome(f snapshot, base string) ([]byte, error) {
	data := newPageData(f, base)
	for _, raw := range f.items {
		data.Posts = append(data.Posts, newPagePost(resolve(f, raw, base)))
	}
	var buf bytes.Buffer
	err := pages.Execute(&buf, data)
	return buf.Bytes(), err
}

// renderPost writes one post's page.
func renderPost(f snapshot, it Item, base string) ([]byte, error) {
	data := newPageData(f, base)
	data.Title = it.Title + " · " + f.title
	post := newPagePost(it)
	data.Post = &post
	var buf bytes.Buffer
	err := pages.Execute(&buf, data)
	return buf.Bytes(), err
}
