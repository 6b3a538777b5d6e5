package discordemu

import (
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Embed limits from Discord's docs ("Embed Limits"), in characters, counted
// after leading and trailing whitespace is trimmed.
const (
	maxEmbeds          = 10
	maxEmbedTitle      = 256
	maxEmbedDesc       = 4096
	maxEmbedFields     = 25
	maxEmbedFieldName  = 256
	maxEmbedFieldValue = 1024
	maxEmbedFooter     = 2048
	maxEmbedAuthor     = 256
	maxEmbedTotal      = 6000 // title, description, field names and values, footer and author text of all embeds
	maxEmbedURL        = 2048
)

// checkEmbeds applies Discord's embed limits and answers 50035 with the
// offending field, as Discord does: at most 10 embeds; title, description,
// footer.text, author.name, field names and values within their limits; at
// most 25 fields; all that text at most 6,000 characters over all embeds;
// links (url, author.url) http(s), images (image.url, thumbnail.url) http(s)
// or attachment://.
func checkEmbeds(embeds []map[string]any) error {
	if len(embeds) > maxEmbeds {
		return formError("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
	}
	total := 0
	for i, e := range embeds {
		at := func(path ...string) []string { return append([]string{"embeds", strconv.Itoa(i)}, path...) }
		texts := []embedText{
			{at("title"), str(e["title"]), maxEmbedTitle},
			{at("description"), str(e["description"]), maxEmbedDesc},
			{at("footer", "text"), str(member(e, "footer")["text"]), maxEmbedFooter},
			{at("author", "name"), str(member(e, "author")["name"]), maxEmbedAuthor},
		}
		fields, _ := e["fields"].([]any)
		if len(fields) > maxEmbedFields {
			return formErrorAt(at("fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
		}
		for j, f := range fields {
			fm, _ := f.(map[string]any)
			n := strconv.Itoa(j)
			texts = append(texts,
				embedText{at("fields", n, "name"), str(fm["name"]), maxEmbedFieldName},
				embedText{at("fields", n, "value"), str(fm["value"]), maxEmbedFieldValue})
		}
		for _, t := range texts {
			n := utf8.RuneCountInString(strings.TrimSpace(t.text))
			if n > t.limit {
				return formErrorAt(t.path, "BASE_TYPE_MAX_LENGTH", "Must be "+strconv.Itoa(t.limit)+" or fewer in length.")
			}
			total += n
		}
		links := []struct {
			path       []string
			link       any
			attachment bool
		}{
			{at("url"), e["url"], false},
			{at("author", "url"), member(e, "author")["url"], false},
			{at("image", "url"), member(e, "image")["url"], true},
			{at("thumbnail", "url"), member(e, "thumbnail")["url"], true},
		}
		for _, l := range links {
			if l.link == nil {
				continue
			}
			if !embedURL(str(l.link), l.attachment) {
				return formErrorAt(l.path, "URL_TYPE_INVALID_URL", "Not a well formed URL.")
			}
		}
	}
	if total > maxEmbedTotal {
		return formError("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
	}
	return nil
}

// embedText is one text of an embed with its limit and its place in the
// request body.
type embedText struct {
	path  []string
	text  string
	limit int
}

// str returns v if it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}

// member returns the object e[key], or an empty one.
func member(e map[string]any, key string) map[string]any {
	m, _ := e[key].(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

// embedURL reports whether s is a link an embed may hold: an absolute
// http(s) URL with a host, or for images also attachment://<file name>.
func embedURL(s string, attachment bool) bool {
	if s == "" || len(s) > maxEmbedURL {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https":
		return u.Host != ""
	case "attachment":
		return attachment && u.Host != ""
	}
	return false
}
