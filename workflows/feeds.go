package workflows

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
)

var feedActs *activities.Feeds

// FeedInput starts a Feed. State is set only by continue-as-new.
type FeedInput struct {
	Config FeedConfig `json:"config"`
	// ContinueAsNewAfter is the number of signals and fetches after which a run continues as
	// new (default 500).
	ContinueAsNewAfter int            `json:"continue_as_new_after,omitempty"`
	Delivery           DeliveryPolicy `json:"delivery,omitempty"`
	State              *FeedState     `json:"state,omitempty"`
}

// FeedState is the whole state of a Feed, carried through continue-as-new.
type FeedState struct {
	Config    FeedConfig `json:"config"`
	FeedTitle string     `json:"feed_title,omitempty"`
	// ETag and LastModified are the validators of the latest document, sent with the next fetch.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Initialized is set by the first fetch that worked: from then on every new item is posted.
	// Before it, the document's items published before AddedAt are its archive: only the
	// newest Backfill of them are posted.
	Initialized bool      `json:"initialized,omitempty"`
	AddedAt     time.Time `json:"added_at"`
	// Known are the keys of the items seen, oldest first, bounded (see rememberKeys).
	Known []string `json:"known,omitempty"`
	// Ledger holds the posts not yet made (and those that failed).
	Ledger Ledger  `json:"ledger"`
	Seen   SeenSet `json:"seen"`
	// Waiting are polls not yet started; Runs are fetches whose posts are not all settled.
	Waiting       []FeedPollSignal `json:"waiting,omitempty"`
	Runs          []feedRun        `json:"runs,omitempty"`
	LastFetch     *FeedRunResult   `json:"last_fetch,omitempty"`
	LastSuccess   time.Time        `json:"last_success,omitempty"`
	Failures      int              `json:"failures,omitempty"`
	TotalFailures int              `json:"total_failures,omitempty"`
	LastError     string           `json:"last_error,omitempty"`
	LastPosted    *PostedItem      `json:"last_posted,omitempty"`
	Removed       bool             `json:"removed,omitempty"`
}

// feedRun is a fetch whose answer waits for its posts to be made.
type feedRun struct {
	Requests []FeedPollSignal `json:"requests,omitempty"`
	Result   FeedRunResult    `json:"result"`
	Seqs     []int64          `json:"seqs,omitempty"`
}

// Feed is the workflow of one #announcements source, id feed:<name>: it fetches the source when
// asked (by an Announcements run), posts each item it has not seen, oldest first, and remembers
// what it saw. Items pushed to ingress arrive as signals and are posted the same way. Posts go
// through the delivery ledger: one at a time, in order, idempotent, failed ones kept for a retry.
func Feed(ctx workflow.Context, in FeedInput) (FeedStatus, error) {
	f, err := newFeed(ctx, in)
	if err != nil {
		return FeedStatus{}, err
	}
	return f.run(ctx)
}

type feedWF struct {
	s        FeedState
	in       FeedInput
	out      outbox
	sel      workflow.Selector
	wake     waker
	polls    workflow.ReceiveChannel
	pushes   workflow.ReceiveChannel
	fetching bool
	// answering counts answers being signalled: a run waits for them before it ends.
	answering int
	events    int
	// published is what the search attributes and details last showed.
	published string
}

func newFeed(ctx workflow.Context, in FeedInput) (*feedWF, error) {
	f := &feedWF{in: in, sel: workflow.NewSelector(ctx)}
	f.wake = newWaker(ctx, f.sel)
	if in.State != nil {
		f.s = *in.State
		f.s.Ledger.resetInFlight()
	} else {
		if err := ValidateFeedConfig(in.Config); err != nil {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
		}
		f.s = FeedState{
			Config:  in.Config,
			Ledger:  Ledger{KeyPrefix: keyPrefix(workflow.GetInfo(ctx).WorkflowExecution.RunID)},
			Seen:    SeenSet{Max: 256},
			AddedAt: workflow.Now(ctx),
		}
	}
	if f.in.ContinueAsNewAfter <= 0 {
		f.in.ContinueAsNewAfter = 500
	}
	f.out = outbox{
		ledger:   &f.s.Ledger,
		policy:   in.Delivery.withDefaults(),
		flexLink: func(string) (activities.FlexInteraction, bool) { return activities.FlexInteraction{}, false },
		summary: func(d Delivery) string {
			return "Post to #announcements: " + truncate(d.Label, 80)
		},
		onDelivered: func(ctx workflow.Context, d Delivery, res deliveryResult) {
			p := &PostedItem{Key: d.Ref, Title: d.Label, At: workflow.Now(ctx)}
			if d.Announcement != nil {
				p.URL = d.Announcement.URL
			}
			if len(res.MessageIDs) > 0 {
				p.MessageID = res.MessageIDs[0]
			}
			f.s.LastPosted = p
		},
		onFailed: func(ctx workflow.Context, d Delivery) {
			workflow.GetLogger(ctx).Warn("announcement post failed", "source", f.s.Config.Name, "item", d.Label, "error", d.Error)
		},
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (FeedStatus, error) { return f.status(), nil }); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateConfigureFeed,
		func(ctx workflow.Context, cfg FeedConfig) (FeedStatus, error) {
			f.configure(ctx, cfg)
			f.wake.wake()
			return f.status(), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, cfg FeedConfig) error {
			if f.s.Removed {
				return fmt.Errorf("source %q is being removed", f.s.Config.Name)
			}
			if cfg.Name != f.s.Config.Name {
				return fmt.Errorf("this is the Feed of source %q, not %q", f.s.Config.Name, cfg.Name)
			}
			return ValidateFeedConfig(cfg)
		}}); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateRetryDeliveries,
		func(ctx workflow.Context, req RetryDeliveriesRequest) (RetryDeliveriesResult, error) {
			requeued := f.out.retry(ctx)
			f.wake.wake()
			return RetryDeliveriesResult{Requeued: requeued}, nil
		}); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateRemoveFeed,
		func(ctx workflow.Context, req RemoveFeedRequest) (FeedStatus, error) {
			f.remove(ctx)
			f.wake.wake()
			return f.status(), nil
		}); err != nil {
		return nil, err
	}
	return f, nil
}

// ValidateFeedConfig checks a source's configuration: the Feed rejects what it rejects.
func ValidateFeedConfig(c FeedConfig) error {
	if !ValidFeedName(c.Name) {
		return fmt.Errorf("invalid source name %q: use 1 to 48 lower-case letters, digits, '-' or '_'", c.Name)
	}
	if !validSnowflake(c.ChannelID) {
		return fmt.Errorf("source %q: invalid Discord channel id %q", c.Name, c.ChannelID)
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("source %q: the URL must be an absolute http or https URL", c.Name)
		}
	}
	if c.Every != 0 && c.Every < time.Minute {
		return fmt.Errorf("source %q: fetching more often than every minute is not allowed (every %s)", c.Name, c.Every)
	}
	if c.Backfill != nil && *c.Backfill < 0 {
		return fmt.Errorf("source %q: backfill must be 0 or more", c.Name)
	}
	return nil
}

func validSnowflake(s string) bool {
	if len(s) < 15 || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (f *feedWF) run(ctx workflow.Context) (FeedStatus, error) {
	f.polls = workflow.GetSignalChannel(ctx, SignalFeedPoll)
	f.pushes = workflow.GetSignalChannel(ctx, SignalFeedPush)
	f.sel.AddReceive(f.polls, func(ch workflow.ReceiveChannel, more bool) {
		var p FeedPollSignal
		ch.Receive(ctx, &p)
		f.onPoll(ctx, p)
	})
	f.sel.AddReceive(f.pushes, func(ch workflow.ReceiveChannel, more bool) {
		var p FeedPushSignal
		ch.Receive(ctx, &p)
		f.onPush(ctx, p)
	})
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttrFeed.ValueSet(f.s.Config.Name)); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
	for {
		f.out.pump(ctx, f.sel)
		f.startFetch(ctx)
		f.answerSettled(ctx)
		f.publish(ctx)
		if f.s.Removed && f.out.inFlight == 0 && !f.fetching && f.answering == 0 {
			// Polls that arrived meanwhile hear that the source is gone; pushes are dropped.
			if f.polls.Len() > 0 || f.pushes.Len() > 0 {
				f.sel.Select(ctx)
				continue
			}
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return FeedStatus{}, err
			}
			return f.status(), nil
		}
		if f.events >= f.in.ContinueAsNewAfter || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return FeedStatus{}, f.continueAsNew(ctx)
		}
		f.sel.Select(ctx)
	}
}

func (f *feedWF) continueAsNew(ctx workflow.Context) error {
	f.out.paused = true
	for f.out.inFlight > 0 || f.fetching || f.answering > 0 {
		f.sel.Select(ctx)
	}
	// Signals that arrived meanwhile are handled here; the polls among them are carried in
	// Waiting, and the pushes' posts in the ledger.
	for f.polls.Len() > 0 || f.pushes.Len() > 0 || f.answering > 0 {
		f.sel.Select(ctx)
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	state := f.s
	next := f.in
	next.State = &state
	return workflow.NewContinueAsNewError(ctx, Feed, next)
}

func (f *feedWF) configure(ctx workflow.Context, cfg FeedConfig) {
	if cfg.URL != f.s.Config.URL {
		// A new document: its validators do not apply, and its archive is not posted.
		f.s.ETag, f.s.LastModified, f.s.Initialized, f.s.AddedAt = "", "", false, workflow.Now(ctx)
	}
	f.s.Config = cfg
}

func (f *feedWF) remove(ctx workflow.Context) {
	if f.s.Removed {
		return
	}
	f.s.Removed = true
	dropped := 0
	kept := f.s.Ledger.Queue[:0]
	for _, d := range f.s.Ledger.Queue {
		if d.Status == DeliveryInFlight {
			kept = append(kept, d)
			continue
		}
		dropped++
	}
	f.s.Ledger.Queue = kept
	workflow.GetLogger(ctx).Info("feed removed", "source", f.s.Config.Name, "posts_dropped", dropped)
	for _, p := range f.s.Waiting {
		f.answer(ctx, p, FeedRunResult{Source: f.s.Config.Name, Error: "the source was removed"})
	}
	f.s.Waiting = nil
	for _, r := range f.s.Runs {
		r.Result.Error = "the source was removed before every new item was posted"
		for _, p := range r.Requests {
			f.answer(ctx, p, r.Result)
		}
	}
	f.s.Runs = nil
}

func (f *feedWF) onPoll(ctx workflow.Context, p FeedPollSignal) {
	f.events++
	if !f.s.Seen.Add("poll:" + p.RequestID) {
		return
	}
	switch {
	case f.s.Removed:
		f.answer(ctx, p, FeedRunResult{Source: f.s.Config.Name, FetchedAt: workflow.Now(ctx), Error: "the source was removed"})
	case f.s.Config.URL == "":
		f.answer(ctx, p, FeedRunResult{Source: f.s.Config.Name, FetchedAt: workflow.Now(ctx), Error: "the source has no URL: it only takes pushed items"})
	default:
		// Polls that arrive while a fetch runs wait for the next one: the running fetch may have
		// started before what they were asked to see was published.
		f.s.Waiting = append(f.s.Waiting, p)
	}
}

// startFetch starts a fetch for the waiting polls when none runs.
func (f *feedWF) startFetch(ctx workflow.Context) {
	if f.fetching || f.out.paused || len(f.s.Waiting) == 0 || f.s.Removed {
		return
	}
	requests := f.s.Waiting
	f.s.Waiting = nil
	f.fetching = true
	f.events++
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		Summary:             "Fetch " + redactURL(f.s.Config.URL),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 3,
		},
	})
	fut := workflow.ExecuteActivity(actx, feedActs.FetchFeed, activities.FetchFeedInput{
		Source: f.s.Config.Name, URL: f.s.Config.URL, ETag: f.s.ETag, LastModified: f.s.LastModified, MaxBytes: f.s.Config.MaxBytes,
	})
	fetchedURL := f.s.Config.URL
	f.sel.AddFuture(fut, func(fut workflow.Future) {
		f.fetching = false
		var res activities.FetchFeedResult
		err := fut.Get(ctx, &res)
		if fetchedURL != f.s.Config.URL && err == nil {
			// Reconfigured to another document meanwhile: what this fetch found is not its.
			f.s.Waiting = append(requests, f.s.Waiting...)
			return
		}
		f.onFetched(ctx, requests, res, err)
	})
}

func (f *feedWF) onFetched(ctx workflow.Context, requests []FeedPollSignal, res activities.FetchFeedResult, err error) {
	now := workflow.Now(ctx)
	result := FeedRunResult{Source: f.s.Config.Name, FetchedAt: now}
	if err != nil {
		result.Error = rootMessage(err)
		f.s.Failures++
		f.s.TotalFailures++
		f.s.LastError = result.Error
		f.s.LastFetch = &result
		workflow.GetLogger(ctx).Warn("feed fetch failed", "source", f.s.Config.Name, "failures_in_a_row", f.s.Failures, "error", result.Error)
		for _, p := range requests {
			f.answer(ctx, p, result)
		}
		return
	}
	f.s.Failures, f.s.LastError, f.s.LastSuccess = 0, "", now
	if res.ETag != "" || res.LastModified != "" || !res.NotModified {
		f.s.ETag, f.s.LastModified = res.ETag, res.LastModified
	}
	if res.NotModified {
		result.NotModified = true
		f.s.LastFetch = &result
		for _, p := range requests {
			f.answer(ctx, p, result)
		}
		return
	}
	if res.Title != "" {
		f.s.FeedTitle = res.Title
	}
	result.Items, result.Warnings = len(res.Items), res.Warnings
	// Oldest first, whatever order the document listed them in (items without dates keep theirs).
	items := slices.Clone(res.Items)
	slices.SortStableFunc(items, func(a, b activities.FeedItem) int { return itemTime(a).Compare(itemTime(b)) })
	fresh := f.unknown(items)
	result.New = len(fresh)
	post := fresh
	if !f.s.Initialized {
		// A new source: its archive is not news. Only its newest items are posted, and those
		// published since it was added.
		var archive, since []activities.FeedItem
		for _, it := range fresh {
			if t := itemTime(it); !t.IsZero() && t.After(f.s.AddedAt) {
				since = append(since, it)
			} else {
				archive = append(archive, it)
			}
		}
		if n := f.s.Config.BackfillOrDefault(); len(archive) > n {
			result.Skipped += len(archive) - n
			archive = archive[len(archive)-n:]
		}
		post = append(archive, since...)
		f.s.Initialized = true
	}
	if limit := f.s.Config.maxPerRun(); len(post) > limit {
		result.Skipped += len(post) - limit
		post = post[len(post)-limit:]
	}
	run := feedRun{Requests: requests, Result: result}
	for _, it := range post {
		run.Seqs = append(run.Seqs, f.enqueue(now, it))
	}
	f.rememberKeys(items)
	f.s.LastFetch = &run.Result
	f.s.Runs = append(f.s.Runs, run)
}

func (f *feedWF) onPush(ctx workflow.Context, p FeedPushSignal) {
	f.events++
	if !f.s.Seen.Add("push:"+p.EventID) || f.s.Removed {
		return
	}
	items := slices.Clone(p.Items)
	slices.SortStableFunc(items, func(a, b activities.FeedItem) int { return itemTime(a).Compare(itemTime(b)) })
	fresh := f.unknown(items)
	if n := f.s.Config.maxPerRun(); len(fresh) > n {
		workflow.GetLogger(ctx).Warn("pushed items over the per-run cap; posting the newest", "source", f.s.Config.Name, "new", len(fresh), "cap", n)
		fresh = fresh[len(fresh)-n:]
	}
	now := workflow.Now(ctx)
	for _, it := range fresh {
		f.enqueue(now, it)
	}
	f.rememberKeys(items)
}

// itemTime orders items by publication, else by update; items without either sort first.
func itemTime(it activities.FeedItem) time.Time {
	if !it.Published.IsZero() {
		return it.Published
	}
	return it.Updated
}

// unknown returns the items whose keys are not known, in order, each key once.
func (f *feedWF) unknown(items []activities.FeedItem) []activities.FeedItem {
	known := make(map[string]bool, len(f.s.Known))
	for _, k := range f.s.Known {
		known[k] = true
	}
	var out []activities.FeedItem
	for _, it := range items {
		if it.Key == "" || known[it.Key] {
			continue
		}
		known[it.Key] = true
		out = append(out, it)
	}
	return out
}

// rememberKeys adds the keys of items to Known. Known stays bounded: beyond feedKnownMax, the
// oldest keys go first, except those still in items (the latest document), which must never be
// posted again.
func (f *feedWF) rememberKeys(items []activities.FeedItem) {
	current := make(map[string]bool, len(items))
	for _, it := range items {
		if it.Key != "" {
			current[it.Key] = true
		}
	}
	have := make(map[string]bool, len(f.s.Known))
	for _, k := range f.s.Known {
		have[k] = true
	}
	for _, it := range items {
		if it.Key != "" && !have[it.Key] {
			have[it.Key] = true
			f.s.Known = append(f.s.Known, it.Key)
		}
	}
	excess := len(f.s.Known) - max(feedKnownMax, len(current))
	if excess <= 0 {
		return
	}
	kept := f.s.Known[:0:0]
	for _, k := range f.s.Known {
		if excess > 0 && !current[k] {
			excess--
			continue
		}
		kept = append(kept, k)
	}
	f.s.Known = kept
}

func (f *feedWF) enqueue(now time.Time, it activities.FeedItem) int64 {
	source := f.s.Config.Title
	if source == "" {
		source = f.s.FeedTitle
	}
	if source == "" {
		source = f.s.Config.Name
	}
	title := it.Title
	if title == "" {
		title = "New post on " + source
	}
	published := it.Published
	if published.IsZero() {
		published = it.Updated
	}
	seq := f.s.Ledger.Enqueue(now, Destination{DestAnnouncement, f.s.Config.ChannelID}, title, activities.Message{})
	d, _ := f.s.Ledger.Get(seq)
	d.Ref = it.Key
	d.Announcement = &activities.PostAnnouncementInput{
		ChannelID: f.s.Config.ChannelID, Source: source, Title: title, URL: it.URL, Summary: it.Summary,
		ImageURL: it.ImageURL, Author: it.Author, Published: published, Crosspost: !f.s.Config.NoCrosspost,
	}
	return seq
}

// answerSettled answers the fetches whose posts are all made, failed, or held behind a failed
// one (which waits for an operator's retry).
func (f *feedWF) answerSettled(ctx workflow.Context) {
	kept := f.s.Runs[:0]
	for _, r := range f.s.Runs {
		posted, failed, held, open := 0, 0, 0, false
		for _, seq := range r.Seqs {
			d, ok := f.s.Ledger.Get(seq)
			switch {
			case !ok:
				posted++
			case d.Status == DeliveryFailed:
				failed++
			case d.Status == DeliveryPending && f.heldBehindFailure(seq):
				held++
			default:
				open = true
			}
		}
		if open {
			kept = append(kept, r)
			continue
		}
		r.Result.Posted, r.Result.Failed = posted, failed+held
		if failed+held > 0 {
			r.Result.Error = fmt.Sprintf("%d post(s) failed or wait behind a failed one: run `flexcord deliveries retry %s`",
				failed+held, FeedWorkflowID(f.s.Config.Name))
		}
		if f.s.LastFetch != nil && f.s.LastFetch.FetchedAt.Equal(r.Result.FetchedAt) {
			res := r.Result
			f.s.LastFetch = &res
		}
		for _, p := range r.Requests {
			f.answer(ctx, p, r.Result)
		}
	}
	f.s.Runs = kept
}

func (f *feedWF) heldBehindFailure(seq int64) bool {
	for _, d := range f.s.Ledger.Queue {
		if d.Seq >= seq {
			return false
		}
		if d.Status == DeliveryFailed {
			return true
		}
	}
	return false
}

// answer tells the workflow that asked for a fetch what it did. The asker may be gone (it waits
// a bounded time): that is not an error here.
func (f *feedWF) answer(ctx workflow.Context, p FeedPollSignal, r FeedRunResult) {
	if p.ReplyTo == "" {
		return
	}
	fut := workflow.SignalExternalWorkflow(ctx, p.ReplyTo, "", SignalFeedPollDone, FeedPollDoneSignal{RequestID: p.RequestID, Result: r})
	f.answering++
	f.sel.AddFuture(fut, func(workflow.Future) { f.answering-- })
}

func (f *feedWF) status() FeedStatus {
	return FeedStatus{
		Config: f.s.Config, FeedTitle: f.s.FeedTitle, LastFetch: f.s.LastFetch, LastSuccess: f.s.LastSuccess,
		Failures: f.s.Failures, TotalFailures: f.s.TotalFailures, LastError: f.s.LastError, Fetching: f.fetching,
		LastPosted: f.s.LastPosted, Known: len(f.s.Known),
		Pending: f.s.Ledger.Views(DeliveryPending), Failed: f.s.Ledger.Views(DeliveryFailed),
		Posted: f.s.Ledger.Delivered, Removed: f.s.Removed,
	}
}

// publish keeps the search attributes and the details shown in the Temporal UI current.
func (f *feedWF) publish(ctx workflow.Context) {
	failed := f.s.Ledger.Count(DeliveryFailed)
	var b strings.Builder
	c := f.s.Config
	b.WriteString(fmt.Sprintf("**Source %s** → channel `%s`", c.Name, c.ChannelID))
	if c.URL != "" {
		b.WriteString(fmt.Sprintf(" · every %s\n\n%s\n\n", c.EveryOrDefault(), redactURL(c.URL)))
	} else {
		b.WriteString(" · pushed items only\n\n")
	}
	if f.s.Removed {
		b.WriteString("**Removed.**\n\n")
	}
	if f.fetching {
		b.WriteString("**Fetching now.**\n\n")
	}
	if lf := f.s.LastFetch; lf != nil {
		b.WriteString(fmt.Sprintf("**Last fetch:** %s — %s\n\n", lf.FetchedAt.UTC().Format("2006-01-02 15:04:05 MST"), describeRun(*lf)))
	}
	if f.s.Failures > 0 {
		b.WriteString(fmt.Sprintf("**Failed fetches in a row:** %d — %s\n\n", f.s.Failures, f.s.LastError))
	}
	if p := f.s.LastPosted; p != nil {
		b.WriteString(fmt.Sprintf("**Last posted:** %s (%s)\n\n", p.Title, p.At.UTC().Format("2006-01-02 15:04 MST")))
	}
	if n := f.s.Ledger.Count(DeliveryPending) + f.s.Ledger.Count(DeliveryInFlight); n > 0 {
		b.WriteString(fmt.Sprintf("**Posts queued:** %d\n\n", n))
	}
	if failed > 0 {
		b.WriteString(fmt.Sprintf("**Failed posts:** %d — run `flexcord deliveries retry %s`\n\n", failed, FeedWorkflowID(c.Name)))
	}
	details := b.String()
	if details == f.published {
		return
	}
	f.published = details
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttrFailedDeliveries.ValueSet(int64(failed))); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
	workflow.SetCurrentDetails(ctx, details)
}

// describeRun says in a few words what a fetch did.
func describeRun(r FeedRunResult) string {
	switch {
	case r.Error != "" && r.Items == 0 && !r.NotModified:
		return "failed: " + r.Error
	case r.NotModified:
		return "not modified"
	}
	s := fmt.Sprintf("%d item(s), %d new, %d posted", r.Items, r.New, r.Posted)
	if r.Skipped > 0 {
		s += fmt.Sprintf(", %d not posted (archive or over the per-run cap)", r.Skipped)
	}
	if r.Failed > 0 {
		s += fmt.Sprintf(", %d failed", r.Failed)
	}
	return s
}

// redactURL hides the values of a URL's query (feeds may carry tokens there) and any user info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			if k, _, ok := strings.Cut(p, "="); ok {
				parts[i] = k + "=…"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}

// Announcements is the short workflow a source's Schedule starts: it asks the source's Feed to
// fetch, waits for the answer and ends with what the fetch did, so each run shows in the
// Temporal UI. The Schedule skips a run while the previous one still waits.
func Announcements(ctx workflow.Context, in AnnouncementsInput) (FeedRunResult, error) {
	info := workflow.GetInfo(ctx)
	wait := in.Wait
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	feedID := FeedWorkflowID(in.Source)
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Asked **%s** to fetch; waiting for its answer (at most %s).", feedID, wait))
	// The request id is drawn once and kept in history, so that an answer is recognized however
	// the run is replayed.
	var requestID string
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return rand.Text() }).Get(&requestID); err != nil {
		return FeedRunResult{}, err
	}
	req := FeedPollSignal{RequestID: requestID, ReplyTo: info.WorkflowExecution.ID, Reason: in.Reason}
	if err := workflow.SignalExternalWorkflow(ctx, feedID, "", SignalFeedPoll, req).Get(ctx, nil); err != nil {
		return FeedRunResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("source %q has no running Feed workflow (%s): it was removed or never added", in.Source, feedID), "FeedNotFound", err)
	}
	done := workflow.GetSignalChannel(ctx, SignalFeedPollDone)
	// The timer is left to end with the run: cancelling it in a deferred call would issue a
	// command after the workflow completed, which does not replay.
	timer := workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: "Give up waiting for the Feed"})
	for {
		var answer FeedPollDoneSignal
		timedOut := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(done, func(ch workflow.ReceiveChannel, more bool) { ch.Receive(ctx, &answer) })
		sel.AddFuture(timer, func(workflow.Future) { timedOut = true })
		sel.Select(ctx)
		if timedOut {
			msg := fmt.Sprintf("%s did not answer within %s: it may still be fetching or posting (see `flexcord feeds list`)", feedID, wait)
			workflow.SetCurrentDetails(ctx, msg)
			return FeedRunResult{}, temporal.NewNonRetryableApplicationError(msg, "FeedBusy", nil)
		}
		if answer.RequestID != req.RequestID {
			continue // an answer meant for an earlier run of the same id
		}
		r := answer.Result
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s**: %s", feedID, describeRun(r)))
		if r.Error != "" {
			return r, temporal.NewNonRetryableApplicationError(fmt.Sprintf("source %q: %s", in.Source, r.Error), "FeedRunFailed", errors.New(r.Error), r)
		}
		return r, nil
	}
}
