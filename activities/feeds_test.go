package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
)

const feedTestRSS = `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Blog</title><link>/</link><description>d</description>
<item><title>Second</title><link>posts/2</link><pubDate>Tue, 03 Jun 2025 10:00:00 GMT</pubDate><description>&lt;p&gt;Two.&lt;/p&gt;</description></item>
<item><title>First</title><link>/posts/1</link><pubDate>Mon, 02 Jun 2025 10:00:00 GMT</pubDate></item>
<item><description>No title, no link.</description></item>
</channel></rss>`

// syncBuffer is a log sink safe for the server's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestFeeds returns feed activities over client whose logs go to the returned buffer.
func newTestFeeds(client *http.Client) (*Feeds, *syncBuffer) {
	logs := &syncBuffer{}
	return NewFeeds(client, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))), logs
}

func feedServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// feedAppError returns err as an ApplicationError, failing the test if it is not one.
func feedAppError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v (%T) is not an ApplicationError", err, err)
	}
	return appErr
}

func TestFetchFeedParsesTheDocument(t *testing.T) {
	var gotUA, gotAccept string
	srv := feedServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotUA, gotAccept = r.Header.Get("User-Agent"), r.Header.Get("Accept")
		w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Tue, 03 Jun 2025 10:00:00 GMT")
		_, _ = io.WriteString(w, feedTestRSS)
	})
	f, logs := newTestFeeds(nil)
	res, err := f.FetchFeed(context.Background(), FetchFeedInput{Source: "blog", URL: srv.URL + "/blog/feed.xml"})
	if err != nil {
		t.Fatal(err)
	}
	if gotUA != "flexcord-feeds/1 (+https://github.com/flexcord/flexcord)" {
		t.Errorf("User-Agent %q", gotUA)
	}
	if gotAccept != "application/rss+xml, application/atom+xml, application/feed+json, application/json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5" {
		t.Errorf("Accept %q", gotAccept)
	}
	if res.Status != 200 || res.NotModified || res.ETag != `"v1"` || res.LastModified != "Tue, 03 Jun 2025 10:00:00 GMT" {
		t.Errorf("status/validators: %+v", res)
	}
	if res.Title != "Blog" || res.Link != srv.URL+"/" || res.Bytes != int64(len(feedTestRSS)) {
		t.Errorf("title %q link %q bytes %d", res.Title, res.Link, res.Bytes)
	}
	if len(res.Items) != 2 {
		t.Fatalf("items: %+v", res.Items)
	}
	first, second := res.Items[0], res.Items[1]
	if first.Title != "First" || first.URL != srv.URL+"/posts/1" || first.Key != "link:"+srv.URL+"/posts/1" {
		t.Errorf("first item %+v", first)
	}
	if second.Title != "Second" || second.URL != srv.URL+"/blog/posts/2" || second.Summary != "Two." {
		t.Errorf("second item %+v", second)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "neither title nor link") {
		t.Errorf("warnings %q", res.Warnings)
	}
	if !strings.Contains(logs.String(), "feed fetched") {
		t.Errorf("no log of the fetch: %s", logs)
	}
}

func TestFetchFeedConditionalGet(t *testing.T) {
	const etag, lastModified = `"abc123"`, "Mon, 02 Jun 2025 10:00:00 GMT"
	var requests []http.Header
	var mu sync.Mutex
	srv := feedServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Header.Clone())
		mu.Unlock()
		if r.Header.Get("If-None-Match") == etag || r.Header.Get("If-Modified-Since") == lastModified {
			if r.URL.Query().Get("bare") == "" {
				w.Header().Set("ETag", etag)
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", lastModified)
		_, _ = io.WriteString(w, feedTestRSS)
	})
	f, _ := newTestFeeds(nil)
	ctx := context.Background()

	first, err := f.FetchFeed(ctx, FetchFeedInput{Source: "blog", URL: srv.URL})
	if err != nil || first.NotModified || first.ETag != etag || first.LastModified != lastModified || len(first.Items) == 0 {
		t.Fatalf("first fetch: %+v, %v", first, err)
	}
	tests := []struct {
		name string
		in   FetchFeedInput
		want FetchFeedResult
	}{
		{"If-None-Match", FetchFeedInput{Source: "blog", URL: srv.URL, ETag: first.ETag, LastModified: first.LastModified},
			FetchFeedResult{NotModified: true, ETag: etag, LastModified: lastModified, Status: 304}},
		{"If-Modified-Since alone", FetchFeedInput{Source: "blog", URL: srv.URL, LastModified: lastModified},
			FetchFeedResult{NotModified: true, ETag: etag, LastModified: lastModified, Status: 304}},
		{"304 without validators keeps the ones sent", FetchFeedInput{Source: "blog", URL: srv.URL + "?bare=1", ETag: etag},
			FetchFeedResult{NotModified: true, ETag: etag, Status: 304}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.FetchFeed(ctx, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.NotModified != tc.want.NotModified || got.ETag != tc.want.ETag || got.LastModified != tc.want.LastModified ||
				got.Status != tc.want.Status || len(got.Items) != 0 || got.Title != "" || got.Bytes != 0 {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if h := requests[0]; h.Get("If-None-Match") != "" || h.Get("If-Modified-Since") != "" {
		t.Errorf("first fetch sent validators: %v", h)
	}
	if h := requests[1]; h.Get("If-None-Match") != etag || h.Get("If-Modified-Since") != lastModified {
		t.Errorf("second fetch sent If-None-Match %q, If-Modified-Since %q", h.Get("If-None-Match"), h.Get("If-Modified-Since"))
	}
}

func TestFetchFeedErrors(t *testing.T) {
	now := time.Date(2025, 6, 5, 12, 0, 0, 0, time.UTC)
	big := strings.Repeat("x", 4000)
	srv := feedServer(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if ra := q.Get("retry_after"); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		switch q.Get("case") {
		case "status":
			code, _ := strconv.Atoi(q.Get("code"))
			w.WriteHeader(code)
		case "html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><body>Hello</body></html>")
		case "chunked":
			// Flushing first sends the body chunked: no Content-Length to go by.
			w.Header().Set("Content-Type", "application/rss+xml")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, big)
		case "length":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = io.WriteString(w, big)
		}
	})
	tests := []struct {
		name         string
		url          string
		maxBytes     int64
		wantType     string
		nonRetryable bool
		wantDelay    time.Duration
		wantMsg      string
	}{
		{"404", srv.URL + "/feed.xml?case=status&code=404", 0, ErrFeedRejected, true, 0,
			`feed "blog" (` + srv.URL + `/feed.xml?case=REDACTED&code=REDACTED): answered 404 Not Found`},
		{"410", srv.URL + "?case=status&code=410", 0, ErrFeedRejected, true, 0, "answered 410 Gone"},
		{"401", srv.URL + "?case=status&code=401", 0, ErrFeedRejected, true, 0, "answered 401 Unauthorized"},
		{"503", srv.URL + "?case=status&code=503", 0, ErrFeedUnavailable, false, 0, "answered 503 Service Unavailable"},
		{"500", srv.URL + "?case=status&code=500", 0, ErrFeedUnavailable, false, 0, "answered 500 Internal Server Error"},
		{"503 with Retry-After", srv.URL + "?case=status&code=503&retry_after=7", 0, ErrFeedUnavailable, false, 7 * time.Second, "retry after 7s"},
		{"408", srv.URL + "?case=status&code=408", 0, ErrFeedUnavailable, false, 0, "answered 408 Request Timeout"},
		{"429 without Retry-After", srv.URL + "?case=status&code=429", 0, ErrFeedUnavailable, false, 0, "answered 429 Too Many Requests"},
		{"429 with Retry-After in seconds", srv.URL + "?case=status&code=429&retry_after=120", 0, ErrFeedUnavailable, false, 2 * time.Minute, "retry after 2m0s"},
		{"429 with Retry-After as a date", srv.URL + "?case=status&code=429&retry_after=" + strings.ReplaceAll(now.Add(90*time.Second).Format(http.TimeFormat), " ", "%20"),
			0, ErrFeedUnavailable, false, 90 * time.Second, "retry after 1m30s"},
		{"429 with a Retry-After of days is capped", srv.URL + "?case=status&code=429&retry_after=864000", 0, ErrFeedUnavailable, false, time.Hour, "retry after 1h0m0s"},
		{"an HTML page", srv.URL + "?case=html", 0, ErrFeedNotAFeed, true, 0, "answered text/html, not a feed"},
		{"body over the cap, chunked", srv.URL + "?case=chunked", 1024, ErrFeedTooLarge, true, 0, "the body is larger than 1024 bytes"},
		{"body over the cap, by Content-Length", srv.URL + "?case=length", 1024, ErrFeedTooLarge, true, 0, "the body is 4000 bytes, more than 1024"},
		{"not http", "ftp://files.example/feed.xml", 0, ErrFeedRejected, true, 0, `feed "blog" (ftp://files.example/feed.xml): not an http(s) URL`},
		{"no host", "https:///feed.xml", 0, ErrFeedRejected, true, 0, "not an http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newTestFeeds(nil)
			f.now = func() time.Time { return now }
			res, err := f.FetchFeed(context.Background(), FetchFeedInput{Source: "blog", URL: tc.url, MaxBytes: tc.maxBytes})
			if err == nil {
				t.Fatalf("no error: %+v", res)
			}
			appErr := feedAppError(t, err)
			if appErr.Type() != tc.wantType || appErr.NonRetryable() != tc.nonRetryable {
				t.Errorf("type %q non-retryable %v, want %q %v (%v)", appErr.Type(), appErr.NonRetryable(), tc.wantType, tc.nonRetryable, err)
			}
			if d := appErr.NextRetryDelay(); d != tc.wantDelay {
				t.Errorf("NextRetryDelay %s, want %s", d, tc.wantDelay)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("message %q does not contain %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

func TestFetchFeedRedirects(t *testing.T) {
	srv := feedServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/to-ftp":
			http.Redirect(w, r, "ftp://files.example/feed.xml?key=s3cret", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/hop/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
			if n > 0 {
				http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusMovedPermanently)
				return
			}
			_, _ = io.WriteString(w, feedTestRSS)
		default:
			http.NotFound(w, r)
		}
	})
	// A caller's client that would follow anything: FetchFeed still limits redirects, on its
	// own copy.
	permissive := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	f, _ := newTestFeeds(permissive)
	ctx := context.Background()

	res, err := f.FetchFeed(ctx, FetchFeedInput{Source: "blog", URL: srv.URL + "/hop/5"})
	if err != nil {
		t.Fatalf("5 redirects: %v", err)
	}
	// Relative links resolve against the final URL.
	if res.Status != 200 || len(res.Items) != 2 || res.Items[1].URL != srv.URL+"/hop/posts/2" {
		t.Errorf("after 5 redirects: %+v", res)
	}

	tests := []struct {
		name, url, wantMsg string
	}{
		{"6 redirects", srv.URL + "/hop/6", "more than 5 redirects"},
		{"to ftp", srv.URL + "/to-ftp", "redirected to ftp://files.example/feed.xml?key=REDACTED, which is not an http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.FetchFeed(ctx, FetchFeedInput{Source: "blog", URL: tc.url})
			appErr := feedAppError(t, err)
			if appErr.Type() != ErrFeedRejected || !appErr.NonRetryable() {
				t.Errorf("type %q non-retryable %v", appErr.Type(), appErr.NonRetryable())
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("message %q, want it to contain %q", err.Error(), tc.wantMsg)
			}
		})
	}
	if permissive.CheckRedirect == nil || permissive.CheckRedirect(nil, make([]*http.Request, 10)) != nil {
		t.Error("the caller's client was changed")
	}
}

func TestFetchFeedTimeoutAndConnectionErrors(t *testing.T) {
	release := make(chan struct{})
	slow := feedServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // runs before slow.Close, which waits for the handler

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	f, logs := newTestFeeds(&http.Client{Timeout: 100 * time.Millisecond})
	tests := []struct {
		name, url, wantMsg string
	}{
		{"timeout", slow.URL + "/feed?token=s3cret", "timed out"},
		{"connection refused", closedURL + "/feed?token=s3cret", "request failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.FetchFeed(context.Background(), FetchFeedInput{Source: "blog", URL: tc.url})
			appErr := feedAppError(t, err)
			if appErr.Type() != ErrFeedUnavailable || appErr.NonRetryable() {
				t.Errorf("type %q non-retryable %v: %v", appErr.Type(), appErr.NonRetryable(), err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.Contains(err.Error(), "token=REDACTED") {
				t.Errorf("message %q, want it to contain %q and the redacted URL", err.Error(), tc.wantMsg)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the secret leaked into the error: %q", err.Error())
			}
		})
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the secret leaked into the logs: %s", logs)
	}
}

func TestFetchFeedLimitsItems(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><rss version="2.0"><channel><title>Many</title><link>https://many.example/</link>`)
	for i := 5; i >= 1; i-- {
		fmt.Fprintf(&b, `<item><title>Item %d</title><guid>item-%d</guid><pubDate>%s</pubDate></item>`,
			i, i, time.Date(2025, 6, i, 10, 0, 0, 0, time.UTC).Format(time.RFC1123))
	}
	b.WriteString(`</channel></rss>`)
	srv := feedServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, b.String()) })
	f, _ := newTestFeeds(nil)
	res, err := f.FetchFeed(context.Background(), FetchFeedInput{Source: "many", URL: srv.URL, MaxItems: 3})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range res.Items {
		keys = append(keys, it.Key)
	}
	if strings.Join(keys, ",") != "id:item-3,id:item-4,id:item-5" {
		t.Errorf("kept %v, want the 3 newest, oldest first", keys)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "2 older items left out") {
		t.Errorf("warnings %q", res.Warnings)
	}

	items := make([]FeedItem, 10)
	for i := range items {
		items[i] = FeedItem{Key: fmt.Sprintf("id:%d", i), Summary: strings.Repeat("y", 1000)}
	}
	kept, warnings := limitFeedItems(items, 100, 3*1300)
	if len(kept) != 3 || kept[2].Key != "id:9" || len(warnings) != 1 {
		t.Errorf("byte budget kept %d items (last %q), warnings %q", len(kept), kept[len(kept)-1].Key, warnings)
	}
}

func TestNewFeedsDefaultClient(t *testing.T) {
	f := NewFeeds(nil, nil)
	if f.client.Timeout != 30*time.Second || f.client.CheckRedirect == nil {
		t.Errorf("default client: timeout %s, CheckRedirect set %v", f.client.Timeout, f.client.CheckRedirect != nil)
	}
}

func TestRedactFeedURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://x.example/feed.xml", "https://x.example/feed.xml"},
		{"https://x.example/feed.xml?token=abc&format=rss", "https://x.example/feed.xml?token=REDACTED&format=REDACTED"},
		{"https://user:pass@x.example/feed?rss", "https://REDACTED@x.example/feed?rss"},
		{"https://x.example/feed?0123456789abcdef0123", "https://x.example/feed?REDACTED"},
		{"https://x.example/feed#frag", "https://x.example/feed"},
		{"mailto:someone@x.example", "mailto:REDACTED"},
		{"http://[::1:bad", "an unparseable URL"},
	}
	for _, tc := range tests {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
