package feed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/mmcdole/gofeed"
	"github.com/mmcdole/gofeed/atom"
	ext "github.com/mmcdole/gofeed/extensions"
	jsonfeed "github.com/mmcdole/gofeed/json"
	"github.com/mmcdole/gofeed/rss"
)

// Limits of the normalized fields.
const (
	// MaxKeyBytes is the longest Item.Key; longer ones are replaced by a digest.
	MaxKeyBytes = 200
	// MaxTitleRunes is the longest Item.Title and Item.Author, Discord's embed title limit.
	MaxTitleRunes = 256
	// MaxSummaryRunes is the longest Item.Summary, Discord's embed description limit.
	MaxSummaryRunes = 4096
)

// normalized is the result of normalize, with what ParsePush needs to know.
type normalized struct {
	feed    *Feed
	skipped int // items with neither title nor link
}

// normalize turns gofeed's universal feed into ours.
func normalize(gf *gofeed.Feed, baseURL string) normalized {
	base := absoluteBase(baseURL)
	out := &Feed{Title: plainText(gf.Title, MaxTitleRunes)}
	if link := absoluteURL(gf.Link, base); link != "" {
		out.Link = link
		if base == nil {
			// A pushed document has no URL of its own; its site link is the next best base.
			base = absoluteBase(link)
		}
	}

	var (
		items                  []Item
		dated                  []bool
		hashed, skipped, dupes int
		badDates               []string
		seen                   = make(map[string]bool)
	)
	for i, gi := range gf.Items {
		if gi == nil {
			continue
		}
		it, info := normalizeItem(gi, originalOf(gf, i), base)
		if it.Title == "" && it.URL == "" && info.rawLink == "" {
			skipped++
			continue
		}
		if info.hashed {
			hashed++
		}
		if info.badDate != "" {
			badDates = append(badDates, info.badDate)
		}
		if seen[it.Key] {
			dupes++
			continue
		}
		seen[it.Key] = true
		items = append(items, it)
		dated = append(dated, !it.Published.IsZero() || !it.Updated.IsZero())
	}
	out.Items = oldestFirst(items, dated)

	if hashed > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%s had no id or link; keyed by title and date", countItems(hashed)))
	}
	if skipped > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%s had neither title nor link; skipped", countItems(skipped)))
	}
	if dupes > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%s repeated the key of an earlier item; dropped", countItems(dupes)))
	}
	if len(badDates) > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%s had a date that did not parse (e.g. %q); kept without it",
			countItems(len(badDates)), truncateRunes(badDates[0], 64)))
	}
	return normalized{feed: out, skipped: skipped}
}

// itemInfo is what normalizeItem noticed beyond the item itself.
type itemInfo struct {
	hashed  bool   // keyed by title and date
	badDate string // a date the feed gave that did not parse
	rawLink string // the link as given, when it could not be made absolute
}

// original is the source entry of one gofeed item, when gofeed kept it.
type original struct {
	rss  *rss.Item
	atom *atom.Entry
	json *jsonfeed.Item
}

// originalOf returns the source entry of gf.Items[i]; gofeed translates entries one to one, in order.
func originalOf(gf *gofeed.Feed, i int) original {
	switch f := gf.OriginalFeed().(type) {
	case *rss.Feed:
		if i < len(f.Items) && len(f.Items) == len(gf.Items) {
			return original{rss: f.Items[i]}
		}
	case *atom.Feed:
		if i < len(f.Entries) && len(f.Entries) == len(gf.Items) {
			return original{atom: f.Entries[i]}
		}
	case *jsonfeed.Feed:
		if i < len(f.Items) && len(f.Items) == len(gf.Items) {
			return original{json: f.Items[i]}
		}
	}
	return original{}
}

// normalizeItem turns one gofeed item into ours.
func normalizeItem(gi *gofeed.Item, orig original, base *url.URL) (Item, itemInfo) {
	var info itemInfo
	it := Item{Title: plainText(gi.Title, MaxTitleRunes)}

	// Link: the item's link, else (RSS) a guid that is a permalink, else another link it lists.
	rawLink := strings.TrimSpace(gi.Link)
	if rawLink == "" && orig.rss != nil && orig.rss.GUID != nil && !strings.EqualFold(strings.TrimSpace(orig.rss.GUID.IsPermalink), "false") {
		if u := absoluteURL(orig.rss.GUID.Value, nil); u != "" {
			rawLink = u
		}
	}
	if rawLink == "" && orig.atom == nil {
		for _, l := range gi.Links {
			if l = strings.TrimSpace(l); l != "" {
				rawLink = l
				break
			}
		}
	}
	it.URL = absoluteURL(rawLink, base)
	if it.URL == "" {
		info.rawLink = rawLink
	}

	// Dates. gofeed gives an Atom entry without <published> its <updated> as published; keep
	// them apart so that Published is only ever a publication date.
	published, updated := gi.PublishedParsed, gi.UpdatedParsed
	rawPublished, rawUpdated := strings.TrimSpace(gi.Published), strings.TrimSpace(gi.Updated)
	if orig.atom != nil {
		published, rawPublished = orig.atom.PublishedParsed, strings.TrimSpace(orig.atom.Published)
	}
	if published != nil {
		it.Published = published.UTC()
	} else if rawPublished != "" {
		info.badDate = rawPublished
	}
	if updated != nil {
		it.Updated = updated.UTC()
	} else if rawUpdated != "" && info.badDate == "" {
		info.badDate = rawUpdated
	}

	// Key.
	switch guid := strings.TrimSpace(gi.GUID); {
	case guid != "":
		it.Key = boundKey("id:", guid)
	case rawLink != "":
		link := it.URL
		if link == "" {
			link = rawLink
		}
		it.Key = boundKey("link:", link)
	default:
		date := rawPublished
		switch {
		case !it.Published.IsZero():
			date = it.Published.Format(time.RFC3339)
		case date == "" && !it.Updated.IsZero():
			date = it.Updated.Format(time.RFC3339)
		case date == "":
			date = rawUpdated
		}
		sum := sha256.Sum256([]byte(it.Title + "\x00" + date))
		it.Key = "hash:" + hex.EncodeToString(sum[:])[:32]
		info.hashed = true
	}

	// Summary and image.
	description, content := gi.Description, gi.Content
	descIsText, contentIsText := false, false
	if orig.json != nil {
		// JSON Feed: summary and content_text are plain text; only content_html is HTML.
		descIsText = true
		contentIsText = orig.json.ContentHTML == ""
	}
	// Relative links in the content are taken relative to the entry's own page, where the
	// content comes from, and to the feed's base when the entry has no link.
	contentBase := base
	if it.URL != "" {
		contentBase, _ = url.Parse(it.URL)
	}
	var firstImage string
	for _, src := range []struct {
		text   string
		isText bool
	}{{description, descIsText}, {content, contentIsText}} {
		if strings.TrimSpace(src.text) == "" {
			continue
		}
		var md, img string
		if src.isText {
			md = textSummary(src.text)
		} else {
			md, img = htmlSummary(src.text, contentBase)
		}
		if firstImage == "" {
			firstImage = img
		}
		if it.Summary == "" && md != "" {
			it.Summary = md
		}
	}
	it.Summary = cutSummary(it.Summary, MaxSummaryRunes)
	it.ImageURL = pickImage(gi, contentBase, firstImage)

	it.Author = authorNames(gi)
	return it, info
}

// boundKey returns prefix+value, or prefix+"sha256:"+hex digest of value when that is longer than
// MaxKeyBytes.
func boundKey(prefix, value string) string {
	if len(prefix)+len(value) <= MaxKeyBytes {
		return prefix + value
	}
	sum := sha256.Sum256([]byte(value))
	return prefix + "sha256:" + hex.EncodeToString(sum[:])
}

// authorNames joins the names of the item's authors.
func authorNames(gi *gofeed.Item) string {
	var names []string
	seen := make(map[string]bool)
	people := gi.Authors
	if len(people) == 0 && gi.Author != nil {
		people = []*gofeed.Person{gi.Author}
	}
	for _, p := range people {
		if p == nil {
			continue
		}
		name := plainText(p.Name, MaxTitleRunes)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	if len(names) == 0 && gi.DublinCoreExt != nil {
		for _, c := range gi.DublinCoreExt.Creator {
			if name := plainText(c, MaxTitleRunes); name != "" && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	return truncateRunes(strings.Join(names, ", "), MaxTitleRunes)
}

// pickImage returns the item's image as an absolute http(s) URL: the item's own image, an
// enclosure of an image type, media:thumbnail or media:content (also inside media:group), else
// the first image of its content.
func pickImage(gi *gofeed.Item, base *url.URL, fromContent string) string {
	var candidates []string
	if gi.Image != nil {
		candidates = append(candidates, gi.Image.URL)
	}
	for _, e := range gi.Enclosures {
		if e != nil && strings.HasPrefix(strings.ToLower(strings.TrimSpace(e.Type)), "image/") {
			candidates = append(candidates, e.URL)
		}
	}
	candidates = append(candidates, mediaImages(gi.Extensions)...)
	candidates = append(candidates, fromContent)
	for _, c := range candidates {
		if u := absoluteURL(c, base); u != "" {
			return u
		}
	}
	return ""
}

// mediaImages lists the Media RSS images of an item: thumbnails first, then image contents, at
// the item's level and then inside media:group.
func mediaImages(exts ext.Extensions) []string {
	media := exts["media"]
	if media == nil {
		return nil
	}
	var out []string
	collect := func(m map[string][]ext.Extension) {
		for _, t := range m["thumbnail"] {
			out = append(out, t.Attrs["url"])
		}
		for _, c := range m["content"] {
			typ, medium := strings.ToLower(c.Attrs["type"]), strings.ToLower(c.Attrs["medium"])
			if strings.HasPrefix(typ, "image/") || medium == "image" {
				out = append(out, c.Attrs["url"])
			}
			for _, t := range c.Children["thumbnail"] {
				out = append(out, t.Attrs["url"])
			}
		}
	}
	collect(media)
	for _, g := range media["group"] {
		collect(g.Children)
	}
	return out
}

// oldestFirst orders items oldest first by Published, else Updated. Undated items keep the
// document's order reversed: each takes the date of the item before it in that order (the
// next older one in the document), so it stays where the document put it.
func oldestFirst(items []Item, dated []bool) []Item {
	n := len(items)
	type entry struct {
		item Item
		at   time.Time
	}
	entries := make([]entry, 0, n)
	var last time.Time
	for i := n - 1; i >= 0; i-- {
		it := items[i]
		at := it.Published
		if at.IsZero() {
			at = it.Updated
		}
		if !dated[i] {
			at = last
		}
		last = at
		entries = append(entries, entry{item: it, at: at})
	}
	sort.SliceStable(entries, func(a, b int) bool { return entries[a].at.Before(entries[b].at) })
	out := make([]Item, n)
	for i, e := range entries {
		out[i] = e.item
	}
	return out
}

// absoluteBase parses a base URL, returning nil unless it is an absolute http(s) URL. Its user
// information, query and fragment are dropped: a feed URL may carry credentials or a token, and
// an empty or fragment-only reference would otherwise copy them into the links that get posted.
func absoluteBase(s string) *url.URL {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || !isHTTP(u) {
		return nil
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u
}

// absoluteURL resolves s against base and returns it if the result is an absolute http(s) URL,
// else "". A protocol-relative URL without a base is taken as https.
func absoluteURL(s string, base *url.URL) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	switch {
	case u.IsAbs():
	case base != nil:
		u = base.ResolveReference(u)
	case strings.HasPrefix(s, "//"):
		u.Scheme = "https"
	}
	if !isHTTP(u) {
		return ""
	}
	return u.String()
}

// isHTTP reports whether u is an absolute http(s) URL with a host.
func isHTTP(u *url.URL) bool {
	scheme := strings.ToLower(u.Scheme)
	return (scheme == "http" || scheme == "https") && u.Host != ""
}

// countItems says "1 item" or "n items".
func countItems(n int) string {
	if n == 1 {
		return "1 item"
	}
	return fmt.Sprintf("%d items", n)
}
