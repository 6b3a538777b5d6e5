package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/feed"
)

// Error types of feed failures. FeedRejected, FeedNotAFeed and FeedTooLarge are non-retryable:
// the same request would fail the same way until the brand fixes its feed or the configuration
// is changed. FeedUnavailable is retried.
const (
	// ErrFeedRejected: the URL is not http(s), the server answered a 4xx other than 408 and
	// 429, or the redirects went too far (more than 5, or to a URL that is not http(s)).
	ErrFeedRejected = "FeedRejected"
	// ErrFeedNotAFeed: the body is not an RSS, Atom or JSON feed.
	ErrFeedNotAFeed = "FeedNotAFeed"
	// ErrFeedTooLarge: the body is larger than FetchFeedInput.MaxBytes.
	ErrFeedTooLarge = "FeedTooLarge"
	// ErrFeedUnavailable: 408, 429, a 5xx, a timeout or a network error; retried, after the
	// server's Retry-After when it gives one.
	ErrFeedUnavailable = "FeedUnavailable"
)

// Limits of FetchFeed.
const (
	// DefaultFeedMaxBytes is the body cap when FetchFeedInput.MaxBytes is 0.
	DefaultFeedMaxBytes = 5 << 20
	// DefaultFeedMaxItems is how many items (the newest) FetchFeed returns when
	// FetchFeedInput.MaxItems is 0.
	DefaultFeedMaxItems = 100
	// feedMaxResultBytes bounds the items' size in the result, well under Temporal's payload
	// limit; the oldest items are left out past it.
	feedMaxResultBytes = 1 << 20
	// feedMaxRedirects is how many redirects a fetch follows.
	feedMaxRedirects = 5
	// feedMaxRetryAfter caps the wait a Retry-After header can impose on the next attempt.
	feedMaxRetryAfter = time.Hour
	// feedTimeout is the timeout of the default HTTP client.
	feedTimeout = 30 * time.Second
)

// Request headers of a feed fetch.
const (
	feedUserAgent = "flexcord-feeds/1 (+https://github.com/flexcord/flexcord)"
	feedAccept    = "application/rss+xml, application/atom+xml, application/feed+json, application/json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)

// FeedItem is a normalized feed entry (see feed.Item).
type FeedItem = feed.Item

// Feeds fetches the brand's feeds; its method is the FetchFeed activity.
//
// Every fetch is a conditional GET when the previous one gave validators, reads at most the
// body cap, follows at most 5 redirects and only to http(s) URLs, and never logs or returns the
// values of a URL's query (they may hold tokens).
type Feeds struct {
	client *http.Client
	log    *slog.Logger
	now    func() time.Time // the clock Retry-After dates are measured against; tests replace it
}

// NewFeeds returns the feed activities. client nil: a client with a 30 s timeout. The client is
// copied and made to follow at most 5 redirects and only to http/https URLs.
func NewFeeds(client *http.Client, log *slog.Logger) *Feeds {
	c := &http.Client{Timeout: feedTimeout}
	if client != nil {
		copied := *client
		c = &copied
	}
	c.CheckRedirect = checkFeedRedirect
	if log == nil {
		log = slog.Default()
	}
	return &Feeds{client: c, log: log, now: time.Now}
}

// FetchFeedInput is the input of Feeds.FetchFeed.
type FetchFeedInput struct {
	// Source is the source's name, for errors and logs.
	Source string `json:"source"`
	// URL is the feed's http(s) URL.
	URL string `json:"url"`
	// ETag is the previous fetch's ETag, sent as If-None-Match.
	ETag string `json:"etag,omitempty"`
	// LastModified is the previous fetch's Last-Modified, sent as If-Modified-Since.
	LastModified string `json:"last_modified,omitempty"`
	// MaxBytes caps the body; 0: DefaultFeedMaxBytes (5 MiB).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// MaxItems is how many of the newest items to return; 0: DefaultFeedMaxItems (100). Older
	// items are left out with a warning, and so are old items past about 1 MiB in all, so that
	// the result always fits a Temporal payload.
	MaxItems int `json:"max_items,omitempty"`
}

// FetchFeedResult is a fetched and parsed feed, or the news that it did not change.
type FetchFeedResult struct {
	// NotModified is true when the server answered 304: nothing else is set but the validators
	// (the ones sent, unless the server gave new ones) and Status.
	NotModified bool `json:"not_modified,omitempty"`
	// ETag and LastModified are the validators to send on the next fetch.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Title and Link are the feed's title and site link.
	Title string `json:"title,omitempty"`
	Link  string `json:"link,omitempty"`
	// Items are the feed's items, oldest first (see feed.Feed.Items).
	Items []FeedItem `json:"items,omitempty"`
	// Warnings say what was odd about the feed, for operators.
	Warnings []string `json:"warnings,omitempty"`
	// Status is the HTTP status of the final response.
	Status int `json:"status"`
	// Bytes is the size of the body read.
	Bytes int64 `json:"bytes"`
}

// FetchFeed fetches a feed and parses it into normalized items.
//
// Failures are classified for Temporal: a URL that is not http(s), a 4xx other than 408/429,
// too many redirects or one to another scheme, a body that is not a feed, or one over the cap
// are non-retryable (ErrFeedRejected, ErrFeedNotAFeed, ErrFeedTooLarge); 408, 429, 5xx,
// timeouts and network errors are retryable (ErrFeedUnavailable), after the server's
// Retry-After when it sends one.
func (f *Feeds) FetchFeed(ctx context.Context, in FetchFeedInput) (FetchFeedResult, error) {
	where := fmt.Sprintf("feed %q (%s)", in.Source, redactURL(in.URL))
	target, err := url.Parse(strings.TrimSpace(in.URL))
	if err != nil || !isHTTPURL(target) {
		return FetchFeedResult{}, f.fail(in, feedRejected(where, "not an http(s) URL"))
	}
	maxBytes := in.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultFeedMaxBytes
	}
	maxBytes = min(maxBytes, math.MaxInt64-1) // one more is read to tell a body over the cap

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return FetchFeedResult{}, f.fail(in, feedRejected(where, "cannot make a request of the URL"))
	}
	req.Header.Set("User-Agent", feedUserAgent)
	req.Header.Set("Accept", feedAccept)
	if in.ETag != "" {
		req.Header.Set("If-None-Match", in.ETag)
	}
	if in.LastModified != "" {
		req.Header.Set("If-Modified-Since", in.LastModified)
	}

	resp, err := f.client.Do(req)
	if err != nil {
		return FetchFeedResult{}, f.fail(in, classifyFetchError(ctx, where, err))
	}
	defer func() { _ = resp.Body.Close() }()
	status := resp.StatusCode

	switch {
	case status == http.StatusNotModified:
		out := FetchFeedResult{NotModified: true, Status: status, ETag: in.ETag, LastModified: in.LastModified}
		if v := resp.Header.Get("ETag"); v != "" {
			out.ETag = v
		}
		if v := resp.Header.Get("Last-Modified"); v != "" {
			out.LastModified = v
		}
		f.log.Debug("feed not modified", "source", in.Source, "url", redactURL(in.URL))
		return out, nil
	case status >= 200 && status < 300:
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return FetchFeedResult{}, f.fail(in, feedUnavailable(where, "answered "+statusText(status), f.retryAfter(resp.Header.Get("Retry-After"))))
	default:
		return FetchFeedResult{}, f.fail(in, feedRejected(where, "answered "+statusText(status)))
	}

	if resp.ContentLength > maxBytes {
		return FetchFeedResult{}, f.fail(in, feedTooLarge(where, resp.ContentLength, maxBytes))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return FetchFeedResult{}, f.fail(in, classifyFetchError(ctx, where+": reading the body", err))
	}
	if int64(len(body)) > maxBytes {
		return FetchFeedResult{}, f.fail(in, feedTooLarge(where, -1, maxBytes))
	}

	parsed, err := feed.Parse(body, resp.Request.URL.String())
	if err != nil {
		msg := fmt.Sprintf("%s: answered %s, not a feed: %v", where, contentType(resp.Header.Get("Content-Type")), err)
		return FetchFeedResult{}, f.fail(in, temporal.NewNonRetryableApplicationError(msg, ErrFeedNotAFeed, nil))
	}
	maxItems := in.MaxItems
	if maxItems <= 0 {
		maxItems = DefaultFeedMaxItems
	}
	items, warnings := limitFeedItems(parsed.Items, maxItems, feedMaxResultBytes)
	out := FetchFeedResult{
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		Title:        parsed.Title,
		Link:         parsed.Link,
		Items:        items,
		Warnings:     append(parsed.Warnings, warnings...),
		Status:       status,
		Bytes:        int64(len(body)),
	}
	f.log.Info("feed fetched", "source", in.Source, "url", redactURL(in.URL), "status", status,
		"bytes", out.Bytes, "items", len(out.Items), "warnings", len(out.Warnings))
	return out, nil
}

// fail logs a classified fetch failure and returns it.
func (f *Feeds) fail(in FetchFeedInput, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		f.log.Warn("feed fetch failed for good", "source", in.Source, "url", redactURL(in.URL),
			"error_type", appErr.Type(), "error", err.Error())
	} else {
		f.log.Info("feed fetch failed, will retry", "source", in.Source, "url", redactURL(in.URL), "error", err.Error())
	}
	return err
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date; 0 when there is none.
// The wait is capped at feedMaxRetryAfter.
func (f *Feeds) retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		d = time.Duration(min(secs, int64(feedMaxRetryAfter/time.Second))) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(f.now())
	}
	return min(max(d, 0), feedMaxRetryAfter)
}

// redirectError is why a redirect was not followed.
type redirectError struct{ reason string }

func (e *redirectError) Error() string { return e.reason }

// checkFeedRedirect follows at most feedMaxRedirects redirects, and only to http(s) URLs.
func checkFeedRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > feedMaxRedirects {
		return &redirectError{fmt.Sprintf("more than %d redirects", feedMaxRedirects)}
	}
	if !isHTTPURL(req.URL) {
		return &redirectError{"redirected to " + redactURL(req.URL.String()) + ", which is not an http(s) URL"}
	}
	return nil
}

// classifyFetchError classifies an error of the HTTP exchange. Its message never holds the
// request URL: url.Error's own text would show the query.
func classifyFetchError(ctx context.Context, where string, err error) error {
	var (
		re *redirectError
		ue *url.Error
	)
	switch {
	case errors.As(err, &re):
		return feedRejected(where, re.reason)
	case ctx.Err() != nil:
		return feedUnavailable(where, "the request was cancelled or ran out of time", 0)
	case errors.As(err, &ue) && ue.Timeout():
		return feedUnavailable(where, "timed out", 0)
	case errors.As(err, &ue):
		return feedUnavailable(where, "request failed: "+ue.Err.Error(), 0)
	default:
		return feedUnavailable(where, err.Error(), 0)
	}
}

// feedRejected is a non-retryable ErrFeedRejected.
func feedRejected(where, reason string) error {
	return temporal.NewNonRetryableApplicationError(where+": "+reason, ErrFeedRejected, nil)
}

// feedUnavailable is a retryable ErrFeedUnavailable, retried after retryAfter when it is set.
func feedUnavailable(where, reason string, retryAfter time.Duration) error {
	if retryAfter > 0 {
		return temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("%s: %s, retry after %s", where, reason, retryAfter), ErrFeedUnavailable,
			temporal.ApplicationErrorOptions{NextRetryDelay: retryAfter})
	}
	return temporal.NewApplicationError(where+": "+reason, ErrFeedUnavailable)
}

// feedTooLarge is a non-retryable ErrFeedTooLarge; size is -1 when only reading found out.
func feedTooLarge(where string, size, maxBytes int64) error {
	msg := fmt.Sprintf("%s: the body is larger than %d bytes", where, maxBytes)
	if size >= 0 {
		msg = fmt.Sprintf("%s: the body is %d bytes, more than %d", where, size, maxBytes)
	}
	return temporal.NewNonRetryableApplicationError(msg, ErrFeedTooLarge, nil)
}

// limitFeedItems keeps the newest maxItems items (items are oldest first), and of those the
// newest that fit in maxBytes, saying what was left out.
func limitFeedItems(items []FeedItem, maxItems, maxBytes int) ([]FeedItem, []string) {
	var warnings []string
	if len(items) > maxItems {
		warnings = append(warnings, fmt.Sprintf("%d older items left out (at most %d are kept)", len(items)-maxItems, maxItems))
		items = items[len(items)-maxItems:]
	}
	total, first := 0, len(items)
	for first > 0 {
		size := approxItemSize(items[first-1])
		if total+size > maxBytes {
			break
		}
		total += size
		first--
	}
	if first > 0 {
		warnings = append(warnings, fmt.Sprintf("%d older items left out (at most %d bytes of items are kept)", first, maxBytes))
		items = items[first:]
	}
	return items, warnings
}

// approxItemSize estimates the size of an item in a JSON payload.
func approxItemSize(it FeedItem) int {
	return 200 + len(it.Key) + len(it.Title) + len(it.URL) + len(it.Summary) + len(it.ImageURL) + len(it.Author)
}

// isHTTPURL reports whether u is an absolute http(s) URL with a host.
func isHTTPURL(u *url.URL) bool {
	return u != nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// redactURL returns a URL fit for logs and errors: the values of its query and any user
// information replaced by "REDACTED", its fragment dropped.
func redactURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "an unparseable URL"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			if k, v, ok := strings.Cut(p, "="); ok && v != "" {
				parts[i] = k + "=REDACTED"
			} else if !ok && p != "" && !looksLikeQueryKey(p) {
				parts[i] = "REDACTED"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	u.Fragment, u.RawFragment = "", ""
	if u.Opaque != "" {
		return u.Scheme + ":REDACTED"
	}
	return u.String()
}

// looksLikeQueryKey reports a bare query word short and plain enough to be a flag ("?rss"),
// not a token.
func looksLikeQueryKey(s string) bool {
	if len(s) > 16 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// statusText says an HTTP status as "404 Not Found".
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return strconv.Itoa(code)
}

// contentType names the media type of a response for an error message.
func contentType(v string) string {
	if v == "" {
		return "without a Content-Type"
	}
	if mt, _, err := mime.ParseMediaType(v); err == nil {
		return mt
	}
	return "an unreadable Content-Type"
}
