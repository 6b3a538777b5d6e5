// Package feedemu is the sandbox's sample blog: a local feed server that
// flexcord's announcements can poll in `flexcord dev`, and that a visitor of
// the sandbox page can publish posts on.
//
// A Server holds named feeds of items in memory. One feed, SampleFeed,
// exists from the start with three posts dated in the past, so that the
// first poll finds an archive (which flexcord must not flood the
// #announcements channel with) and later polls find only what was
// published since. Mount the server under its prefix without stripping it:
//
//	feeds := feedemu.New(feedemu.Options{})
//	mux.Handle(feedemu.DefaultPrefix+"/", feeds)
//
// Routes, under the prefix (default /_emu/feeds):
//
//	GET    /                        the feeds, as JSON
//	GET    /{name}.xml              RSS 2.0, newest first, with ETag and Last-Modified (304 on a match)
//	GET    /{name}.json             the same items as JSON Feed 1.1, with the same validators
//	GET    /{name}                  the blog's home page (HTML), the default site of the feed
//	GET    /{name}/posts/{id}       one post's page (HTML, sandboxed: no scripts run)
//	GET    /{name}/images/{key}.png a generated banner image, for posts that have a picture
//	GET    /{name}/items            {"feed": name, "items": [...]}, newest first
//	POST   /{name}/items            publish {"title", "html", "link", "image_url"}: 201 and the item
//	GET    /{name}/items/{id}       one item
//	DELETE /{name}/items/{id}       remove an item: 204
//
// The routes answer errors with a JSON object {"error": "...", "field":
// "..."} (field only for validation errors: 400; an unknown feed or item:
// 404; a body over 256 KB: 413); paths and methods outside the table get
// net/http's plain 404 and 405. Absolute URLs in documents are built from
// Options.BaseURL or, when it is empty, from each request's scheme and Host,
// so a feed fetched as http://127.0.0.1:8080/_emu/feeds/sample.xml links to
// http://127.0.0.1:8080/_emu/feeds/sample/posts/1.
package feedemu

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// DefaultPrefix is the path `flexcord dev` mounts the server under, on
// ingress's address.
const DefaultPrefix = "/_emu/feeds"

// SampleFeed is the name of the feed that exists from the start.
const SampleFeed = "sample"

// Limits on what can be published.
const (
	// MaxTitleRunes is the longest title of an item, in characters.
	MaxTitleRunes = 300
	// MaxHTMLBytes is the largest HTML body of an item (20 KB).
	MaxHTMLBytes = 20 << 10
	// MaxURLBytes is the longest link or image URL of an item.
	MaxURLBytes = 2048
	// maxBodyBytes bounds a POST body; it leaves room for an HTML body of
	// MaxHTMLBytes written with JSON escapes.
	maxBodyBytes = 256 << 10
)

// Options configures a Server. Every field is optional.
type Options struct {
	// Title is the sample feed's title. Default: "Sample blog".
	Title string
	// SiteURL is the sample blog's home page: the feed's <link>, and the
	// base of items' default links (SiteURL + "/posts/<id>"). Default: the
	// server's own pages for the feed, {base}/sample, which it serves.
	SiteURL string
	// BaseURL is the absolute URL the prefix is reached at, for example
	// "http://127.0.0.1:8080/_emu/feeds". Default: each request's scheme and
	// Host followed by Prefix.
	BaseURL string
	// Prefix is the path the server is mounted under. Default: DefaultPrefix.
	Prefix string
	// Now returns the current time: the date of new items and of the seed
	// items (one, two and three days before the server was created).
	// Default: time.Now.
	Now func() time.Time
}

// Item is one post of a feed, as the JSON routes return it. Link and
// ImageURL are absolute URLs when the item is returned over HTTP or the
// server has a BaseURL; otherwise those the server serves itself are paths.
type Item struct {
	// ID numbers the items of a feed: "1", "2", ... (never reused).
	ID string `json:"id"`
	// GUID is the item's <guid> (isPermaLink="false") and JSON Feed id.
	GUID string `json:"guid"`
	// Title is the post's title, one line.
	Title string `json:"title"`
	// HTML is the post's body, a little HTML.
	HTML string `json:"html"`
	// Link is the post's page.
	Link string `json:"link"`
	// ImageURL is the post's picture, if it has one.
	ImageURL string `json:"image_url,omitempty"`
	// Published is when the post was published.
	Published time.Time `json:"published"`
}

// NewItem is what a visitor publishes: POST /{name}/items takes it as JSON.
type NewItem struct {
	// Title is required, at most MaxTitleRunes characters; runs of white
	// space (new lines too) become one space.
	Title string `json:"title"`
	// HTML is the body, at most MaxHTMLBytes.
	HTML string `json:"html"`
	// Link is the post's page, an absolute http(s) URL. Default: the site's
	// /posts/<id>.
	Link string `json:"link"`
	// ImageURL is an absolute http(s) URL of the post's picture, if any.
	ImageURL string `json:"image_url"`
}

// ValidationError says which field of a NewItem is wrong and why.
type ValidationError struct {
	// Field is the JSON name of the field ("title", "html", "link", "image_url").
	Field string
	// Reason says what is wrong, for a person.
	Reason string
}

// Error returns the field and the reason, as "title: a title is required".
func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// ErrNoFeed is returned (wrapped) for a feed name the server does not know.
var ErrNoFeed = errors.New("no such feed")

// ErrNoItem is returned (wrapped) for an item id a feed does not have.
var ErrNoItem = errors.New("no such item")

// validFeedName is what a feed may be called: it is a path segment and a file name.
var validFeedName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// Server serves feeds; it is safe for concurrent use.
type Server struct {
	opts     Options
	prefix   string
	instance string // tells this run's GUIDs from those of an earlier run
	routes   *http.ServeMux
	images   imageCache

	mu    sync.Mutex
	feeds map[string]*feed
}

// feed is one feed's state; guarded by Server.mu.
type feed struct {
	name, title, description string
	siteURL                  string  // "" means the server's own pages
	items                    []*item // oldest first
	next                     int     // id of the next item
	modified                 time.Time
}

// item is stored with its links as given; "" and relative references are
// resolved against the feed's base when rendered.
type item struct {
	id, guid, title, html string
	link, image           string
	published             time.Time
}

// New returns a server with the sample feed and its three past posts.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Title == "" {
		opts.Title = "Sample blog"
	}
	prefix := strings.TrimRight(opts.Prefix, "/")
	if opts.Prefix == "" {
		prefix = DefaultPrefix
	}
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	opts.SiteURL = strings.TrimRight(opts.SiteURL, "/")
	s := &Server{opts: opts, prefix: prefix, instance: instanceID(), feeds: map[string]*feed{}}
	s.routes = s.newRoutes()

	now := opts.Now().UTC()
	f := &feed{
		name: SampleFeed, title: opts.Title, siteURL: opts.SiteURL, next: 1, modified: now.Truncate(time.Second),
		description: "News from the sample brand. Publish a post from the sandbox page and flexcord mirrors it into #announcements.",
	}
	day := 24 * time.Hour
	for _, seed := range []struct {
		key, title, html, image string
		age                     time.Duration
	}{
		{"welcome", "Welcome to our community on Discord",
			"<p>Our Discord server is now the quickest way to reach us. Use <strong>/helpme</strong> in any channel " +
				"and our bot answers right away, or hands you to a person on the support team.</p>", "", 3 * day},
		{"release-2-4", "Release 2.4: dark mode and faster sync",
			"<p>Dark mode is here, and sync is <em>twice</em> as fast on large accounts.</p>" +
				"<ul><li>Dark mode follows your system setting</li><li>Sync resumes where it stopped</li></ul>" +
				`<p>Read the <a href="https://example.com/changelog">full changelog</a>.</p>`,
			"images/release-2-4.png", 2 * day},
		{"maintenance", "Scheduled maintenance on Saturday",
			"<p>On Saturday from 02:00 to 04:00 UTC sign-in may be slow while we upgrade our databases. " +
				"Nothing needs doing on your side.</p>", "", day},
	} {
		f.items = append(f.items, &item{
			id: strconv.Itoa(f.next), guid: "urn:flexcord:sandbox:" + SampleFeed + ":" + seed.key,
			title: seed.title, html: seed.html, image: seed.image,
			published: now.Add(-seed.age).Truncate(time.Minute),
		})
		f.next++
	}
	s.feeds[f.name] = f
	return s
}

// instanceID returns a short random id, so that items published in this run
// never share a GUID with items of an earlier run that flexcord remembers.
func instanceID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// AddFeed adds an empty feed; name is lower-case letters, digits and
// dashes (at most 40). Adding a feed that exists is an error.
func (s *Server) AddFeed(name, title string) error {
	if !validFeedName.MatchString(name) {
		return fmt.Errorf("feed name %q: use 1 to 40 lower-case letters, digits and dashes", name)
	}
	if strings.TrimSpace(title) == "" {
		title = name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.feeds[name]; exists {
		return fmt.Errorf("feed %q exists", name)
	}
	s.feeds[name] = &feed{name: name, title: title, next: 1, modified: s.opts.Now().UTC().Truncate(time.Second)}
	return nil
}

// Publish adds an item to a feed and returns it. The error is a
// *ValidationError when in is not acceptable, and wraps ErrNoFeed for an
// unknown feed.
func (s *Server) Publish(feedName string, in NewItem) (Item, error) {
	it, snap, err := s.publish(feedName, in)
	if err != nil {
		return Item{}, err
	}
	return resolve(snap, it, s.staticBase()), nil
}

// publish adds an item and returns it with the feed's site, to resolve it.
func (s *Server) publish(name string, in NewItem) (item, snapshot, error) {
	clean, err := validate(in)
	if err != nil {
		return item{}, snapshot{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.feedLocked(name)
	if err != nil {
		return item{}, snapshot{}, err
	}
	now := s.opts.Now().UTC()
	it := &item{
		id: strconv.Itoa(f.next), title: clean.Title, html: clean.HTML, link: clean.Link, image: clean.ImageURL,
		published: now,
	}
	it.guid = "urn:flexcord:sandbox:" + s.instance + ":" + f.name + ":" + it.id
	f.next++
	f.items = append(f.items, it)
	f.touch(now)
	return *it, snapshot{name: f.name, siteURL: f.siteURL}, nil
}

// Items returns a feed's items, newest first, or nil for an unknown feed.
func (s *Server) Items(feedName string) []Item {
	items, _ := s.items(feedName, s.staticBase())
	return items
}

func (s *Server) items(name, base string) ([]Item, error) {
	snap, err := s.snapshot(name)
	if err != nil {
		return nil, err
	}
	out := make([]Item, 0, len(snap.items))
	for _, it := range snap.items {
		out = append(out, resolve(snap, it, base))
	}
	return out, nil
}

// Remove deletes an item from a feed, as when a post is unpublished.
func (s *Server) Remove(feedName, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.feedLocked(feedName)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(f.items, func(it *item) bool { return it.id == id })
	if i < 0 {
		return fmt.Errorf("feed %q item %q: %w", feedName, id, ErrNoItem)
	}
	f.items = slices.Delete(f.items, i, i+1)
	f.touch(s.opts.Now().UTC())
	return nil
}

func (s *Server) feedLocked(name string) (*feed, error) {
	f := s.feeds[name]
	if f == nil {
		return nil, fmt.Errorf("feed %q: %w", name, ErrNoFeed)
	}
	return f, nil
}

// touch records a change. Last-Modified has whole seconds, so the time
// moves on by at least a second per change: a client that saw the feed
// earlier in the same second must not be told it is unchanged.
func (f *feed) touch(now time.Time) {
	t := now.Truncate(time.Second)
	if !t.After(f.modified) {
		t = f.modified.Add(time.Second)
	}
	f.modified = t
}

// staticBase is the base for URLs outside a request: BaseURL, else the
// prefix as a path.
func (s *Server) staticBase() string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	return s.prefix
}

// requestBase is the base for URLs in an answer to r.
func (s *Server) requestBase(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + s.prefix
}

// resolve returns it with its links resolved: the default link on the
// feed's site, a picture the server draws under base.
func resolve(snap snapshot, it item, base string) Item {
	site := snap.site(base)
	link := it.link
	if link == "" {
		link = site + "/posts/" + it.id
	}
	image := it.image
	if image != "" && !strings.Contains(image, "://") {
		image = base + "/" + snap.name + "/" + image
	}
	return Item{
		ID: it.id, GUID: it.guid, Title: it.title, HTML: it.html, Link: link, ImageURL: image,
		Published: it.published,
	}
}

// snapshot is a copy of a feed, to render without holding the lock.
type snapshot struct {
	name, title, description, siteURL string
	modified                          time.Time
	items                             []item // newest first
}

// site is the feed's home page, given the server's base.
func (f snapshot) site(base string) string {
	if f.siteURL != "" {
		return f.siteURL
	}
	return base + "/" + f.name
}

// snapshot copies a feed.
func (s *Server) snapshot(name string) (snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.feedLocked(name)
	if err != nil {
		return snapshot{}, err
	}
	snap := snapshot{name: f.name, title: f.title, description: f.description, siteURL: f.siteURL, modified: f.modified}
	for i := len(f.items) - 1; i >= 0; i-- {
		snap.items = append(snap.items, *f.items[i])
	}
	return snap, nil
}

// validate checks and tidies a NewItem.
func validate(in NewItem) (NewItem, error) {
	in.Title = strings.Join(strings.Fields(in.Title), " ")
	switch n := utf8.RuneCountInString(in.Title); {
	case n == 0:
		return in, &ValidationError{"title", "a title is required"}
	case n > MaxTitleRunes:
		return in, &ValidationError{"title", fmt.Sprintf("the title has %d characters; at most %d are allowed", n, MaxTitleRunes)}
	}
	if len(in.HTML) > MaxHTMLBytes {
		return in, &ValidationError{"html", fmt.Sprintf("the HTML body has %d bytes; at most %d (20 KB) are allowed", len(in.HTML), MaxHTMLBytes)}
	}
	var err error
	if in.Link, err = checkURL("link", in.Link); err != nil {
		return in, err
	}
	if in.ImageURL, err = checkURL("image_url", in.ImageURL); err != nil {
		return in, err
	}
	return in, nil
}

// checkURL accepts "" or an absolute http(s) URL with a host.
func checkURL(field, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	if len(raw) > MaxURLBytes {
		return "", &ValidationError{field, fmt.Sprintf("%s is longer than %d bytes", field, MaxURLBytes)}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &ValidationError{field, field + " must be an absolute http:// or https:// URL"}
	}
	return u.String(), nil
}
