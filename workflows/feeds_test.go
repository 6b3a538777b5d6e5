package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/flexcord/flexcord/activities"
)

// feedFixture runs one Feed in a test environment against a scripted source and a recording
// Discord.
type feedFixture struct {
	t       *testing.T
	env     *testsuite.TestWorkflowEnvironment
	mu      sync.Mutex
	docs    []activities.FetchFeedResult // what each fetch returns; the last repeats
	errs    map[int]error                // fetch number (1-based) → error
	fetches int
	posts   []activities.PostAnnouncementInput
	failAll bool
	answers []FeedPollDoneSignal
}

func newFeedFixture(t *testing.T) *feedFixture {
	f := &feedFixture{t: t, errs: map[int]error{}}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger())
	f.env = s.NewTestWorkflowEnvironment()
	f.env.SetStartTime(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	f.env.SetTestTimeout(10 * time.Second)
	f.env.RegisterWorkflow(Feed)
	f.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: FeedWorkflowID("blog"), TaskQueue: TaskQueue})
	f.env.RegisterActivityWithOptions(f.fetch, activity.RegisterOptions{Name: "FetchFeed"})
	f.env.RegisterActivityWithOptions(f.post, activity.RegisterOptions{Name: "PostAnnouncement"})
	f.env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, SignalFeedPollDone, mock.Anything).Return(
		func(namespace, workflowID, runID, signalName string, arg any) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.answers = append(f.answers, arg.(FeedPollDoneSignal))
			return nil
		})
	return f
}

func (f *feedFixture) fetch(ctx context.Context, in activities.FetchFeedInput) (activities.FetchFeedResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	if err := f.errs[f.fetches]; err != nil {
		return activities.FetchFeedResult{}, err
	}
	doc := f.docs[min(f.fetches, len(f.docs))-1]
	if in.ETag != "" && in.ETag == doc.ETag {
		return activities.FetchFeedResult{NotModified: true, ETag: doc.ETag, Status: 304}, nil
	}
	return doc, nil
}

func (f *feedFixture) post(ctx context.Context, in activities.PostAnnouncementInput) (activities.PostAnnouncementResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll {
		return activities.PostAnnouncementResult{}, temporal.NewNonRetryableApplicationError("discord 50001: missing access", "DiscordMissingAccess", nil)
	}
	for i, p := range f.posts {
		if p.Nonce == in.Nonce {
			return activities.PostAnnouncementResult{MessageID: fmt.Sprint(i + 1), Recovered: true}, nil
		}
	}
	f.posts = append(f.posts, in)
	return activities.PostAnnouncementResult{MessageID: fmt.Sprint(len(f.posts))}, nil
}

func (f *feedFixture) titles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.posts {
		out = append(out, p.Title)
	}
	return out
}

// doc builds a document version with items "Post n" for each n, published n hours after a base.
func doc(etag string, ns ...int) activities.FetchFeedResult {
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	r := activities.FetchFeedResult{ETag: etag, Title: "The Blog", Status: 200}
	for _, n := range ns {
		r.Items = append(r.Items, activities.FeedItem{
			Key: fmt.Sprintf("id:%d", n), Title: fmt.Sprintf("Post %d", n), URL: fmt.Sprintf("https://blog.example/%d", n),
			Published: base.Add(time.Duration(n) * time.Hour),
		})
	}
	return r
}

func (f *feedFixture) poll(at time.Duration, id string) {
	f.env.RegisterDelayedCallback(func() {
		f.env.SignalWorkflow(SignalFeedPoll, FeedPollSignal{RequestID: id, ReplyTo: "announcements:blog-" + id})
	}, at)
}

func (f *feedFixture) at(d time.Duration, fn func()) { f.env.RegisterDelayedCallback(fn, d) }

func (f *feedFixture) query() FeedStatus {
	v, err := f.env.QueryWorkflow(QueryStatus)
	if err != nil {
		f.t.Fatalf("query: %v", err)
	}
	var st FeedStatus
	if err := v.Get(&st); err != nil {
		f.t.Fatalf("status: %v", err)
	}
	return st
}

func (f *feedFixture) removeAt(d time.Duration) {
	f.at(d, func() {
		f.env.UpdateWorkflow(UpdateRemoveFeed, "remove", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { f.t.Errorf("remove rejected: %v", err) }, OnComplete: func(any, error) {},
		}, RemoveFeedRequest{})
	})
}

func (f *feedFixture) run(cfg FeedConfig) FeedStatus {
	f.env.ExecuteWorkflow(Feed, FeedInput{Config: cfg, Delivery: DeliveryPolicy{MaxAttempts: 2, InitialInterval: time.Second}})
	if err := f.env.GetWorkflowError(); err != nil {
		f.t.Fatalf("the Feed failed: %v", err)
	}
	var st FeedStatus
	if err := f.env.GetWorkflowResult(&st); err != nil {
		f.t.Fatal(err)
	}
	return st
}

func testFeedConfig() FeedConfig {
	return FeedConfig{Name: "blog", URL: "https://blog.example/feed.xml", ChannelID: "1100000000000000014"}
}

func TestFeedFirstRunPostsOnlyTheNewestThenEveryNewItemInOrder(t *testing.T) {
	f := newFeedFixture(t)
	f.docs = []activities.FetchFeedResult{
		doc(`"1"`, 3, 2, 1), // an archive of three, newest first as feeds list them
		doc(`"1"`, 3, 2, 1), // unchanged: 304
		doc(`"2"`, 6, 5, 4, 3, 2),
		doc(`"3"`, 7, 6, 5, 4, 3), // item 2 removed: not an error
	}
	f.poll(time.Minute, "p1")
	f.poll(11*time.Minute, "p2")
	f.poll(21*time.Minute, "p3")
	f.poll(31*time.Minute, "p4")
	f.removeAt(time.Hour)
	st := f.run(testFeedConfig())
	if got, want := strings.Join(f.titles(), ","), "Post 3,Post 4,Post 5,Post 6,Post 7"; got != want {
		t.Errorf("posts: %s, want %s", got, want)
	}
	if len(f.answers) != 4 {
		t.Fatalf("%d answers, want 4", len(f.answers))
	}
	first, second, third := f.answers[0].Result, f.answers[1].Result, f.answers[2].Result
	if first.Items != 3 || first.New != 3 || first.Posted != 1 || first.Skipped != 2 {
		t.Errorf("first run: %+v, want 3 items, 3 new, 1 posted, 2 skipped", first)
	}
	if !second.NotModified {
		t.Errorf("second run: %+v, want not modified", second)
	}
	if third.New != 3 || third.Posted != 3 {
		t.Errorf("third run: %+v, want 3 new, 3 posted", third)
	}
	if st.Posted != 5 || st.LastPosted == nil || st.LastPosted.Title != "Post 7" {
		t.Errorf("status: posted %d, last %+v", st.Posted, st.LastPosted)
	}
	for _, p := range f.posts {
		if p.Source != "The Blog" || p.ChannelID != "1100000000000000014" || !p.Crosspost || p.Nonce == "" {
			t.Errorf("post %q: source %q channel %q crosspost %v nonce %q", p.Title, p.Source, p.ChannelID, p.Crosspost, p.Nonce)
		}
	}
}

func TestFeedBackfillSetting(t *testing.T) {
	for _, backfill := range []int{0, 2} {
		t.Run(fmt.Sprint(backfill), func(t *testing.T) {
			f := newFeedFixture(t)
			f.docs = []activities.FetchFeedResult{doc(`"1"`, 4, 3, 2, 1)}
			f.poll(time.Minute, "p1")
			f.removeAt(time.Hour)
			cfg := testFeedConfig()
			cfg.Backfill = &backfill
			f.run(cfg)
			want := map[int]string{0: "", 2: "Post 3,Post 4"}[backfill]
			if got := strings.Join(f.titles(), ","); got != want {
				t.Errorf("posts %q, want %q", got, want)
			}
		})
	}
}

func TestFeedEditedItemIsNotPostedAgain(t *testing.T) {
	f := newFeedFixture(t)
	edited := doc(`"2"`, 2, 1)
	edited.Items[0].Title = "Post 2 (corrected)"
	edited.Items[0].Summary = "new text"
	f.docs = []activities.FetchFeedResult{doc(`"1"`, 2, 1), edited}
	f.poll(time.Minute, "p1")
	f.poll(11*time.Minute, "p2")
	f.removeAt(time.Hour)
	f.run(testFeedConfig())
	if got := strings.Join(f.titles(), ","); got != "Post 2" {
		t.Errorf("posts %q, want only Post 2", got)
	}
}

func TestFeedCapsPostsPerRun(t *testing.T) {
	f := newFeedFixture(t)
	ns := []int{}
	for n := 30; n >= 1; n-- {
		ns = append(ns, n)
	}
	f.docs = []activities.FetchFeedResult{doc(`"1"`, 1), doc(`"2"`, ns...)}
	f.poll(time.Minute, "p1")
	f.poll(11*time.Minute, "p2")
	f.removeAt(time.Hour)
	cfg := testFeedConfig()
	cfg.MaxPerRun = 5
	f.run(cfg)
	if got, want := strings.Join(f.titles(), ","), "Post 1,Post 26,Post 27,Post 28,Post 29,Post 30"; got != want {
		t.Errorf("posts %s, want %s", got, want)
	}
	if r := f.answers[1].Result; r.New != 29 || r.Posted != 5 || r.Skipped != 24 {
		t.Errorf("second run %+v: want 29 new, 5 posted, 24 skipped", r)
	}
}

func TestFeedFailingSourceIsRecordedAndRecovers(t *testing.T) {
	f := newFeedFixture(t)
	f.docs = []activities.FetchFeedResult{doc(`"1"`, 1), doc(`"1"`, 1), doc(`"1"`, 1), doc(`"2"`, 2, 1)}
	notFound := temporal.NewNonRetryableApplicationError(`feed "blog" (https://blog.example/feed.xml): answered 404 Not Found`, "FeedRejected", nil)
	f.errs[2], f.errs[3] = notFound, notFound
	f.poll(time.Minute, "p1")
	f.poll(11*time.Minute, "p2")
	f.poll(21*time.Minute, "p3")
	var failing FeedStatus
	f.at(25*time.Minute, func() { failing = f.query() })
	f.poll(31*time.Minute, "p4")
	var recovered FeedStatus
	f.at(35*time.Minute, func() { recovered = f.query() })
	f.removeAt(time.Hour)
	f.run(testFeedConfig())
	if failing.Failures != 2 || !strings.Contains(failing.LastError, "404") || failing.LastFetch == nil || failing.LastFetch.Error == "" {
		t.Errorf("while failing: failures %d, last error %q, last fetch %+v", failing.Failures, failing.LastError, failing.LastFetch)
	}
	if recovered.Failures != 0 || recovered.TotalFailures != 2 || recovered.LastError != "" {
		t.Errorf("after recovery: failures %d (total %d), last error %q", recovered.Failures, recovered.TotalFailures, recovered.LastError)
	}
	if got := strings.Join(f.titles(), ","); got != "Post 1,Post 2" {
		t.Errorf("posts %q", got)
	}
	if e := f.answers[1].Result.Error; !strings.Contains(e, "404") {
		t.Errorf("the failed run's answer says %q", e)
	}
}

func TestFeedFailedPostIsKeptAndRetried(t *testing.T) {
	f := newFeedFixture(t)
	f.docs = []activities.FetchFeedResult{doc(`"1"`, 1), doc(`"2"`, 3, 2, 1)}
	f.poll(time.Minute, "p1")
	f.at(5*time.Minute, func() { f.mu.Lock(); f.failAll = true; f.mu.Unlock() })
	f.poll(11*time.Minute, "p2")
	var failed FeedStatus
	f.at(20*time.Minute, func() { failed = f.query() })
	f.at(21*time.Minute, func() {
		f.mu.Lock()
		f.failAll = false
		f.mu.Unlock()
		f.env.UpdateWorkflow(UpdateRetryDeliveries, "retry", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("retry rejected: %v", err) }, OnComplete: func(any, error) {},
		}, RetryDeliveriesRequest{})
	})
	f.removeAt(time.Hour)
	st := f.run(testFeedConfig())
	if len(failed.Failed) != 1 || len(failed.Pending) != 1 {
		t.Errorf("before the retry: %d failed, %d pending; want 1 failed and 1 held behind it", len(failed.Failed), len(failed.Pending))
	}
	if r := f.answers[1].Result; r.Failed != 2 || !strings.Contains(r.Error, "deliveries retry feed:blog") {
		t.Errorf("the answer of the failed run: %+v", r)
	}
	if got := strings.Join(f.titles(), ","); got != "Post 1,Post 2,Post 3" {
		t.Errorf("posts %q", got)
	}
	if st.Posted != 3 {
		t.Errorf("posted %d", st.Posted)
	}
}

func TestFeedPushIsPostedOnceEvenWhenTheFeedShowsItToo(t *testing.T) {
	f := newFeedFixture(t)
	f.docs = []activities.FetchFeedResult{doc(`"1"`, 1), doc(`"2"`, 2, 1)}
	f.poll(time.Minute, "p1")
	pushed := doc("", 2).Items
	f.at(5*time.Minute, func() { f.env.SignalWorkflow(SignalFeedPush, FeedPushSignal{EventID: "e1", Items: pushed}) })
	f.at(6*time.Minute, func() { f.env.SignalWorkflow(SignalFeedPush, FeedPushSignal{EventID: "e1", Items: pushed}) })
	f.poll(11*time.Minute, "p2")
	f.removeAt(time.Hour)
	f.run(testFeedConfig())
	if got := strings.Join(f.titles(), ","); got != "Post 1,Post 2" {
		t.Errorf("posts %q, want Post 1 then Post 2 once", got)
	}
}

func TestFeedOverlappingPollsFetchOnceEachAndPostOnce(t *testing.T) {
	f := newFeedFixture(t)
	f.docs = []activities.FetchFeedResult{doc(`"1"`, 1), doc(`"2"`, 2, 1)}
	// The fetch takes 30 s; two more polls land while it runs.
	f.env.OnActivity("FetchFeed", mock.Anything, mock.Anything).Return(f.fetch).After(30 * time.Second)
	f.poll(time.Minute, "p1")
	f.poll(time.Minute+10*time.Second, "p2")
	f.poll(time.Minute+20*time.Second, "p3")
	f.removeAt(time.Hour)
	f.run(testFeedConfig())
	if f.fetches != 2 {
		t.Errorf("%d fetches, want 2 (the polls that came during the first share the second)", f.fetches)
	}
	if got := strings.Join(f.titles(), ","); got != "Post 1,Post 2" {
		t.Errorf("posts %q", got)
	}
	if len(f.answers) != 3 {
		t.Errorf("%d answers, want 3", len(f.answers))
	}
}

func TestFeedNewURLStartsAsANewSource(t *testing.T) {
	f := newFeedFixture(t)
	f.docs = []activities.FetchFeedResult{doc(`"1"`, 1), doc(`"x"`, 12, 11, 10, 1)}
	f.poll(time.Minute, "p1")
	f.at(5*time.Minute, func() {
		cfg := testFeedConfig()
		cfg.URL = "https://blog.example/other.xml"
		f.env.UpdateWorkflow(UpdateConfigureFeed, "c", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("configure rejected: %v", err) }, OnComplete: func(any, error) {},
		}, cfg)
	})
	f.poll(11*time.Minute, "p2")
	f.removeAt(time.Hour)
	f.run(testFeedConfig())
	if got := strings.Join(f.titles(), ","); got != "Post 1,Post 12" {
		t.Errorf("posts %q: the new document's archive must not be posted", got)
	}
}

func TestFeedRejectsBadConfiguration(t *testing.T) {
	f := newFeedFixture(t)
	f.docs = []activities.FetchFeedResult{doc(`"1"`, 1)}
	var rejected []string
	for i, cfg := range []FeedConfig{
		{Name: "blog", URL: "ftp://x/feed", ChannelID: "1100000000000000014"},
		{Name: "blog", URL: "https://x/feed", ChannelID: "general"},
		{Name: "other", URL: "https://x/feed", ChannelID: "1100000000000000014"},
		{Name: "blog", URL: "https://x/feed", ChannelID: "1100000000000000014", Every: time.Second},
	} {
		f.at(time.Duration(i+1)*time.Minute, func() {
			f.env.UpdateWorkflow(UpdateConfigureFeed, fmt.Sprint(i), &testsuite.TestUpdateCallback{
				OnAccept: func() { t.Errorf("configuration %d accepted", i) },
				OnReject: func(err error) { rejected = append(rejected, err.Error()) }, OnComplete: func(any, error) {},
			}, cfg)
		})
	}
	f.removeAt(time.Hour)
	f.run(testFeedConfig())
	if len(rejected) != 4 {
		t.Fatalf("rejected %d of 4: %q", len(rejected), rejected)
	}
	for _, want := range []string{"http or https", "channel id", `not "other"`, "every minute"} {
		if !strings.Contains(strings.Join(rejected, "\n"), want) {
			t.Errorf("no rejection mentions %q: %q", want, rejected)
		}
	}
}

func TestAnnouncementsRunWaitsForTheFeedsAnswer(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger())
	env := s.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "announcements:blog-2026-03-01T09:00:00Z"})
	var asked FeedPollSignal
	env.OnSignalExternalWorkflow(mock.Anything, FeedWorkflowID("blog"), "", SignalFeedPoll, mock.Anything).Return(
		func(namespace, workflowID, runID, signalName string, arg any) error {
			asked = arg.(FeedPollSignal)
			env.RegisterDelayedCallback(func() {
				env.SignalWorkflow(SignalFeedPollDone, FeedPollDoneSignal{RequestID: "someone else's", Result: FeedRunResult{Error: "not mine"}})
				env.SignalWorkflow(SignalFeedPollDone, FeedPollDoneSignal{RequestID: asked.RequestID, Result: FeedRunResult{Source: "blog", Items: 3, New: 1, Posted: 1}})
			}, 20*time.Second)
			return nil
		})
	env.ExecuteWorkflow(Announcements, AnnouncementsInput{Source: "blog", Reason: "schedule"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r FeedRunResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if r.Posted != 1 || asked.ReplyTo != "announcements:blog-2026-03-01T09:00:00Z" {
		t.Errorf("result %+v, asked %+v", r, asked)
	}
}

func TestAnnouncementsRunFailsVisiblyWhenTheSourceIsGone(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger())
	env := s.NewTestWorkflowEnvironment()
	env.OnSignalExternalWorkflow(mock.Anything, FeedWorkflowID("gone"), "", SignalFeedPoll, mock.Anything).Return(errors.New("workflow not found"))
	env.ExecuteWorkflow(Announcements, AnnouncementsInput{Source: "gone"})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "removed or never added") {
		t.Fatalf("error %v", err)
	}
}
