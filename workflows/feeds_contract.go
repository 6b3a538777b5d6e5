package workflows

import (
	"regexp"
	"strings"
	"time"

	"github.com/flexcord/flexcord/activities"
)

// This file is the contract of #announcements: a Feed workflow per source (id feed:<name>) keeps
// what the source posted and posts what is new; a Temporal Schedule per source (id feed:<name>)
// starts a short Announcements workflow (id announcements:<name>-<time>) that asks the Feed to
// fetch and waits for the answer; ingress signals pushed items to the Feed.

const (
	feedIDPrefix          = "feed:"
	announcementsIDPrefix = "announcements:"
)

// FeedWorkflowID is the id of the Feed workflow of the source name.
func FeedWorkflowID(name string) string { return feedIDPrefix + name }

// FeedNameFromWorkflowID returns the source name of a Feed workflow id.
func FeedNameFromWorkflowID(workflowID string) (string, bool) {
	name, ok := strings.CutPrefix(workflowID, feedIDPrefix)
	return name, ok && name != ""
}

// FeedScheduleID is the id of the Schedule that polls the source name.
func FeedScheduleID(name string) string { return feedIDPrefix + name }

// AnnouncementsWorkflowID is the id of the Announcements workflows started for the source name;
// a Schedule appends the scheduled time to it.
func AnnouncementsWorkflowID(name string) string { return announcementsIDPrefix + name }

var feedNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)

// ValidFeedName reports whether name can name a source: 1 to 48 lower-case letters, digits, '-'
// and '_', starting with a letter or digit. It appears in workflow ids, the push route and
// environment variable names.
func ValidFeedName(name string) bool { return feedNameRE.MatchString(name) }

// Feed signal and update names.
const (
	// SignalFeedPoll asks a Feed to fetch its source now (from an Announcements run).
	SignalFeedPoll = "FeedPoll"
	// SignalFeedPollDone answers a FeedPoll, to the workflow that asked.
	SignalFeedPollDone = "FeedPollDone"
	// SignalFeedPush hands a Feed items pushed to ingress's POST /announcements/{source}.
	SignalFeedPush = "FeedPush"
	// UpdateConfigureFeed sets a Feed's configuration (feeds add, the feeds file); it is sent
	// with update-with-start, so it also creates the Feed.
	UpdateConfigureFeed = "ConfigureFeed"
	// UpdateRemoveFeed ends a Feed: nothing queued is posted any more.
	UpdateRemoveFeed = "RemoveFeed"
)

// Feed defaults.
const (
	// DefaultFeedEvery is how often a source is fetched when its configuration does not say.
	DefaultFeedEvery = 10 * time.Minute
	// DefaultFeedBackfill is how many items the first fetch of a new source posts: its newest.
	DefaultFeedBackfill = 1
	// DefaultFeedMaxPerRun caps the items one fetch or push posts, so that a feed whose ids all
	// change at once cannot flood the channel.
	DefaultFeedMaxPerRun = 10
	// feedKnownMax bounds the item keys a Feed remembers beyond those in its latest fetch.
	feedKnownMax = 1000
)

// FeedConfig is a source of #announcements.
type FeedConfig struct {
	// Name identifies the source (see ValidFeedName).
	Name string `json:"name"`
	// URL is the RSS, Atom or JSON Feed document; empty for a source that only pushes.
	URL string `json:"url,omitempty"`
	// ChannelID is the Discord channel posts go to. An announcement channel's posts are also
	// published to the servers that follow it, unless NoCrosspost.
	ChannelID   string `json:"channel_id"`
	NoCrosspost bool   `json:"no_crosspost,omitempty"`
	// Title is the source's name shown on posts; default: the feed's own title, else Name.
	Title string `json:"title,omitempty"`
	// Every is how often the Schedule fetches the source.
	Every time.Duration `json:"every,omitempty"`
	// Backfill is how many of its newest items the first fetch posts (the rest of the archive
	// is remembered as seen, never posted). Nil: DefaultFeedBackfill.
	Backfill *int `json:"backfill,omitempty"`
	// MaxPerRun caps the items one fetch or push posts (0: DefaultFeedMaxPerRun).
	MaxPerRun int `json:"max_per_run,omitempty"`
	// MaxBytes caps the size of the feed document (0: the fetch activity's default).
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// BackfillOrDefault is Backfill, or DefaultFeedBackfill when unset.
func (c FeedConfig) BackfillOrDefault() int {
	if c.Backfill == nil {
		return DefaultFeedBackfill
	}
	return max(*c.Backfill, 0)
}

// EveryOrDefault is Every, or DefaultFeedEvery when unset.
func (c FeedConfig) EveryOrDefault() time.Duration {
	if c.Every <= 0 {
		return DefaultFeedEvery
	}
	return c.Every
}

func (c FeedConfig) maxPerRun() int {
	if c.MaxPerRun <= 0 {
		return DefaultFeedMaxPerRun
	}
	return c.MaxPerRun
}

// FeedPollSignal is the payload of SignalFeedPoll.
type FeedPollSignal struct {
	// RequestID identifies the request; the answer carries it.
	RequestID string `json:"request_id"`
	// ReplyTo is the workflow id the answer (SignalFeedPollDone) goes to; empty: no answer.
	ReplyTo string `json:"reply_to,omitempty"`
	// Reason says who asked ("schedule", "operator"), for the record.
	Reason string `json:"reason,omitempty"`
}

// FeedPollDoneSignal is the payload of SignalFeedPollDone.
type FeedPollDoneSignal struct {
	RequestID string        `json:"request_id"`
	Result    FeedRunResult `json:"result"`
}

// FeedRunResult is what one fetch of a source did.
type FeedRunResult struct {
	Source    string    `json:"source"`
	FetchedAt time.Time `json:"fetched_at"`
	// NotModified: the source answered 304 to the conditional request.
	NotModified bool `json:"not_modified,omitempty"`
	// Items is how many items the document held; New how many of them were not seen before.
	Items int `json:"items"`
	New   int `json:"new"`
	// Posted and Failed count the new items' posts; Skipped the new items not posted (the
	// archive of a new source, or beyond MaxPerRun).
	Posted  int `json:"posted"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	// Error is why the fetch failed, if it did.
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// FeedPushSignal is the payload of SignalFeedPush.
type FeedPushSignal struct {
	// EventID identifies the push (a hash of its body): a push delivered twice posts once.
	EventID string                `json:"event_id"`
	Items   []activities.FeedItem `json:"items"`
}

// RemoveFeedRequest is the argument of UpdateRemoveFeed.
type RemoveFeedRequest struct {
	Operator string `json:"operator,omitempty"`
}

// PostedItem is an item a Feed posted.
type PostedItem struct {
	Key       string    `json:"key"`
	Title     string    `json:"title"`
	URL       string    `json:"url,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	At        time.Time `json:"at"`
}

// FeedStatus is the answer of QueryStatus on a Feed.
type FeedStatus struct {
	Config FeedConfig `json:"config"`
	// FeedTitle is the title the document gives itself.
	FeedTitle string `json:"feed_title,omitempty"`
	// LastFetch is the latest fetch, whatever its outcome; LastSuccess the latest that worked.
	LastFetch   *FeedRunResult `json:"last_fetch,omitempty"`
	LastSuccess time.Time      `json:"last_success,omitempty"`
	// Failures counts the fetches that failed in a row; TotalFailures all of them.
	Failures      int    `json:"failures"`
	TotalFailures int    `json:"total_failures"`
	LastError     string `json:"last_error,omitempty"`
	// Fetching: a fetch is under way.
	Fetching   bool        `json:"fetching,omitempty"`
	LastPosted *PostedItem `json:"last_posted,omitempty"`
	// Known is how many item keys the Feed remembers.
	Known   int            `json:"known"`
	Pending []DeliveryView `json:"pending,omitempty"`
	Failed  []DeliveryView `json:"failed,omitempty"`
	Posted  int64          `json:"posted"`
	Removed bool           `json:"removed,omitempty"`
}

// AnnouncementsInput is the input of the Announcements workflow a Schedule starts.
type AnnouncementsInput struct {
	Source string `json:"source"`
	// Reason says who started it ("schedule", "operator").
	Reason string `json:"reason,omitempty"`
	// Wait bounds how long the run waits for the Feed's answer (default 10 minutes).
	Wait time.Duration `json:"wait,omitempty"`
}
