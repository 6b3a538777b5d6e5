// Package feed parses a brand's feeds (RSS 2.0, RSS 1.0, Atom, JSON Feed) into normalized items
// that are ready to post in #announcements: a stable key per entry, a plain-text title, absolute
// http(s) links, a Markdown summary that fits a Discord embed, an image, and dates.
//
// Parsing is done by github.com/mmcdole/gofeed and HTML is turned into Markdown by
// github.com/JohannesKaufmann/html-to-markdown; this package decides what of it to keep and how
// to shape it. It does no I/O: the FetchFeed activity fetches, and ingress receives pushed items.
package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mmcdole/gofeed"
)

// Item is one normalized feed entry, ready to post. JSON-tagged: it travels in Temporal payloads.
type Item struct {
	// Key identifies the item across fetches: "id:<guid or id>", else "link:<absolute link>", else
	// "hash:<first 32 hex chars of sha256(title + "\x00" + date as RFC3339 or raw)>". At most 200
	// bytes: longer keys become "<prefix>sha256:<hex>". Stable: the same entry always gives the same key.
	Key string `json:"key"`
	// Title is plain text, entities decoded, whitespace collapsed, at most 256 characters (the
	// Discord embed title limit). It may be empty for an entry that has a link but no title.
	Title string `json:"title"`
	// URL is the entry's absolute http(s) link (relative links resolved against the item or feed
	// base), else empty.
	URL string `json:"url,omitempty"`
	// Summary is Markdown converted from the HTML description or content, cut at a sentence end,
	// at most 4096 characters, with no broken entity, tag or Markdown link.
	Summary string `json:"summary,omitempty"`
	// ImageURL is an absolute http(s) image: the item's image, an enclosure of an image type,
	// media:thumbnail or media:content, or the first <img> of the content.
	ImageURL string `json:"image_url,omitempty"`
	// Author is the names of the entry's authors, plain text, at most 256 characters.
	Author string `json:"author,omitempty"`
	// Published is when the entry was published, in UTC; zero when the feed gives no date that
	// parses.
	Published time.Time `json:"published,omitempty,omitzero"`
	// Updated is when the entry was last changed, in UTC; zero when the feed gives none.
	Updated time.Time `json:"updated,omitempty,omitzero"`
}

// Feed is a parsed document.
type Feed struct {
	// Title is the feed's title, plain text.
	Title string `json:"title"`
	// Link is the site's absolute link.
	Link string `json:"link,omitempty"`
	// Items are oldest first: by Published (else Updated); items without dates keep the
	// document's order reversed (feeds list newest first), and the sort is stable.
	Items []Item `json:"items"`
	// Warnings say what was odd about the document, for operators, e.g. "3 items had no id or
	// link; keyed by title and date" or "1 item had neither title nor link; skipped".
	Warnings []string `json:"warnings,omitempty"`
}

// ErrNotAFeed is wrapped by the error of Parse and ParsePush for a body that is not a feed (an
// HTML page, an unrelated JSON or XML document, a broken document).
var ErrNotAFeed = errors.New("not an RSS, Atom or JSON feed")

// ErrInvalidItem is wrapped by the error of ParsePush for a pushed item that cannot be posted:
// one with neither a title nor a URL.
var ErrInvalidItem = errors.New("item has neither title nor url")

// jsonFeedVersion is the version a single pushed item is wrapped in.
const jsonFeedVersion = "https://jsonfeed.org/version/1.1"

// Parse parses an RSS 2.0 / RSS 1.0 / Atom / JSON Feed document. baseURL (the URL it was fetched
// from) resolves relative links. A body that is not a feed returns an error wrapping ErrNotAFeed.
// A feed with no items is not an error.
func Parse(body []byte, baseURL string) (*Feed, error) {
	n, err := parse(body, baseURL)
	if err != nil {
		return nil, err
	}
	return n.feed, nil
}

// parse is Parse, with what normalize noticed.
func parse(body []byte, baseURL string) (normalized, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if first := firstByte(body); first == '{' || first == '[' {
		fixed, err := prepareJSONFeed(body)
		if err != nil {
			return normalized{}, err
		}
		body = fixed
	}
	p := gofeed.NewParser()
	p.KeepOriginalFeed = true
	// Images in the content are looked for by this package, which skips tracking pixels and
	// resolves relative sources.
	p.RSSTranslator = &gofeed.DefaultRSSTranslator{DisableContentImageScan: true}
	gf, err := p.Parse(bytes.NewReader(body))
	if err != nil {
		if errors.Is(err, gofeed.ErrFeedTypeNotDetected) {
			return normalized{}, fmt.Errorf("%w (%s)", ErrNotAFeed, describeBody(body))
		}
		return normalized{}, fmt.Errorf("%w: %v", ErrNotAFeed, err)
	}
	return normalize(gf, baseURL), nil
}

// ParsePush parses the body of a push (POST /announcements/{source}): either a whole feed document
// (any format Parse takes) or a single JSON Feed item object ({"id":..., "url":..., "title":...,
// "content_html"|"content_text"|"summary":..., "image":..., "date_published":...,
// "authors":[{"name":...}]}), or a JSON array of such objects. Pushed documents have no base
// URL: relative links resolve against the feed's own link when it has one, and are dropped
// otherwise. A single item (or array) with an unusable entry returns an error wrapping
// ErrInvalidItem; a body that is neither returns one wrapping ErrNotAFeed.
func ParsePush(body []byte) ([]Item, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	var wrapped int // how many single items were wrapped into a feed
	switch firstByte(body) {
	case '{':
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(body, &probe); err != nil {
			return nil, fmt.Errorf("%w: invalid JSON: %v", ErrNotAFeed, err)
		}
		_, hasItems := probe["items"]
		_, hasVersion := probe["version"]
		if !hasItems && !hasVersion {
			body = wrapItems([]byte("[" + string(body) + "]"))
			wrapped = 1
		}
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("%w: invalid JSON: %v", ErrNotAFeed, err)
		}
		wrapped = len(items)
		body = wrapItems(body)
	}
	n, err := parse(body, "")
	if err != nil {
		return nil, err
	}
	if wrapped > 0 && n.skipped > 0 {
		return nil, fmt.Errorf("%w (%d of %d pushed items)", ErrInvalidItem, n.skipped, wrapped)
	}
	return n.feed.Items, nil
}

// wrapItems makes a JSON Feed document of a JSON array of items.
func wrapItems(items []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":"` + jsonFeedVersion + `","title":"","items":`)
	b.Write(items)
	b.WriteString("}")
	return b.Bytes()
}

// prepareJSONFeed checks that a JSON body is a JSON Feed (a "version" naming jsonfeed.org, or an
// "items" array) and coerces what gofeed would choke on: item ids given as numbers, which the
// JSON Feed spec says a reader must take as strings.
func prepareJSONFeed(body []byte) ([]byte, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: invalid JSON: %v", ErrNotAFeed, err)
	}
	version, _ := doc["version"].(string)
	rawItems, hasItems := doc["items"]
	items, isArray := rawItems.([]any)
	if !strings.Contains(version, "jsonfeed.org") && !(hasItems && isArray) {
		return nil, fmt.Errorf("%w (a JSON document that is not a JSON Feed)", ErrNotAFeed)
	}
	if hasItems && !isArray {
		if rawItems != nil {
			return nil, fmt.Errorf("%w: JSON Feed \"items\" is not an array", ErrNotAFeed)
		}
		delete(doc, "items")
	}
	changed := false
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			continue
		}
		if n, ok := m["id"].(json.Number); ok {
			m["id"] = n.String()
			changed = true
		}
	}
	if !changed {
		return body, nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAFeed, err)
	}
	return out, nil
}

// firstByte returns the first byte of b that is not white space, or 0.
func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// describeBody says in a few words what a body that is not a feed looks like.
func describeBody(b []byte) string {
	t := bytes.TrimLeft(b, " \t\r\n")
	lower := bytes.ToLower(t[:min(len(t), 512)])
	switch {
	case len(t) == 0:
		return "the body is empty"
	case bytes.HasPrefix(lower, []byte("<!doctype html")) || bytes.Contains(lower, []byte("<html")):
		return "the body is an HTML page"
	case t[0] == '<':
		return "the body is an XML document of another kind"
	default:
		return "the body is not XML or JSON"
	}
}
