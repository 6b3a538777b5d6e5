package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"golang.org/x/time/rate"

	"github.com/flexcord/flexcord/workflows"
)

// Admission defaults and bounds.
const (
	// DefaultBacklogPollInterval is how often the backlog monitor reads the task queue's stats
	// while signals come in.
	DefaultBacklogPollInterval = 500 * time.Millisecond
	// minRetryAfter and maxRetryAfter bound the Retry-After ingress answers: a whole second at
	// least (the header counts seconds), and never so long that a provider gives up on us.
	minRetryAfter = time.Second
	maxRetryAfter = 30 * time.Second
	// backlogStatsTimeout bounds one stats call; a call that takes longer counts as failed.
	backlogStatsTimeout = 2 * time.Second
	// backlogIdleStop is how long the monitor keeps polling after the last conversation signal.
	// Polling follows demand, so a Server nobody sends signals through never calls Temporal for
	// stats, and one whose traffic stopped stops calling.
	backlogIdleStop = time.Minute
)

// BusyError is the error admission control returns when it turns a signal away before sending
// it: ingress already has MaxInFlight signals under way, or the workers are too far behind (see
// Config.MaxBacklogAge). errors.Is(err, ErrBusy) holds for it. RetryAfter is how long the caller
// should tell the provider to wait before sending again.
type BusyError struct {
	// Reason says which bound turned the signal away, for logs.
	Reason string
	// RetryAfter is between one and thirty seconds.
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s: %s; send again in %ds", ErrBusy.Error(), e.Reason, retryAfterSeconds(e.RetryAfter))
}

// Unwrap makes errors.Is(err, ErrBusy) hold.
func (e *BusyError) Unwrap() error { return ErrBusy }

// RetryAfter returns how long a provider should wait before sending again a request that failed
// with err: the BusyError's RetryAfter, one second for any other busy refusal, zero when err is
// not a busy refusal.
func RetryAfter(err error) time.Duration {
	if be, ok := errors.AsType[*BusyError](err); ok {
		return clampRetryAfter(be.RetryAfter)
	}
	if errors.Is(err, ErrBusy) {
		return minRetryAfter
	}
	return 0
}

// clampRetryAfter bounds d to one to thirty seconds.
func clampRetryAfter(d time.Duration) time.Duration {
	return min(max(d, minRetryAfter), maxRetryAfter)
}

// retryAfterSeconds is d in whole seconds, rounded up, from one to thirty.
func retryAfterSeconds(d time.Duration) int64 {
	return int64(math.Ceil(clampRetryAfter(d).Seconds()))
}

// setRetryAfter sets the Retry-After header to d in whole seconds (see retryAfterSeconds).
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(d), 10))
}

// WriteBusyError answers 503 for a signal admission control turned away, with the Retry-After
// err carries (one second when it carries none).
func WriteBusyError(w http.ResponseWriter, err error) {
	setRetryAfter(w, RetryAfter(err))
	http.Error(w, ErrBusy.Error(), http.StatusServiceUnavailable)
}

// backlogMonitor decides whether the workers keep up, from the stats the Temporal server keeps
// for the workflow task queue of the conversations (workflows.TaskQueue): the age of the oldest
// workflow task waiting for a worker, how many wait, and how fast workers take them.
//
// While the last stats read show a backlog older than maxAge, every agent's message (see admit) is
// turned away with a BusyError; the first read that shows it at or below maxAge admits them
// again. There is no separate hysteresis band: the server recomputes the stats only every few
// seconds (matching.TaskQueueInfoByBuildIdTTL, 5 s by default) and the rates are averages over
// 30 s, so the decision cannot flap faster than that, and a band would only keep members waiting
// longer after the workers have caught up. Refused signals add no task, so the backlog drains
// while ingress refuses.
//
// When the stats cannot be read (Temporal unreachable, a server too old to report them, a wrong
// namespace), the monitor admits everything and the in-flight bound alone applies; it logs that
// once, and once again when the stats come back.
//
// The monitor polls only while signals come in: the first conversation signal starts it, and it
// stops (forgetting what it measured) after backlogIdleStop without one. Signals that arrive
// before its first read are admitted.
type backlogMonitor struct {
	tc        client.Client
	namespace string
	maxAge    time.Duration
	interval  time.Duration
	log       *slog.Logger

	running atomic.Bool
	lastUse atomic.Int64 // time.Now().UnixNano() of the last admission check
	state   atomic.Pointer[backlogState]

	// mu guards unavailable, which only the polling goroutine uses (one at a time).
	mu          sync.Mutex
	unavailable bool // the last read failed, and that was logged
}

// backlogState is what the last successful read found.
type backlogState struct {
	busy       bool
	age        time.Duration
	count      int64
	retryAfter time.Duration
}

func newBacklogMonitor(tc client.Client, namespace string, maxAge, interval time.Duration, log *slog.Logger) *backlogMonitor {
	if namespace == "" {
		namespace = client.DefaultNamespace
	}
	if interval <= 0 {
		interval = DefaultBacklogPollInterval
	}
	return &backlogMonitor{tc: tc, namespace: namespace, maxAge: maxAge, interval: interval, log: log}
}

// check returns a BusyError while the workers are behind, and starts the poller if it is not
// running.
func (b *backlogMonitor) check() error {
	b.lastUse.Store(time.Now().UnixNano())
	if b.running.CompareAndSwap(false, true) {
		go b.run()
	}
	if st := b.state.Load(); st != nil && st.busy {
		return &BusyError{Reason: fmt.Sprintf("the workers' backlog is %s old", st.age.Round(time.Millisecond)), RetryAfter: st.retryAfter}
	}
	return nil
}

// run reads the stats every interval until no signal has come for backlogIdleStop.
func (b *backlogMonitor) run() {
	tick := time.NewTicker(b.interval)
	defer tick.Stop()
	for {
		b.poll()
		if time.Since(time.Unix(0, b.lastUse.Load())) > backlogIdleStop {
			b.state.Store(nil)
			b.running.Store(false)
			return
		}
		<-tick.C
	}
}

// poll reads the task queue's stats once and updates the state.
func (b *backlogMonitor) poll() {
	ctx, cancel := context.WithTimeout(context.Background(), backlogStatsTimeout)
	defer cancel()
	resp, err := b.tc.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace:     b.namespace,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: workflows.TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW,
		ReportStats:   true,
	})
	if err == nil && resp.GetStats() == nil {
		err = errors.New("the Temporal server reports no task queue stats")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.state.Store(nil)
		if !b.unavailable {
			b.unavailable = true
			b.log.Warn("cannot read the workflow task queue's backlog; admission falls back to the in-flight limit until it can",
				"task_queue", workflows.TaskQueue, "namespace", b.namespace, "error", err)
		}
		return
	}
	if b.unavailable {
		b.unavailable = false
		b.log.Info("reading the workflow task queue's backlog again", "task_queue", workflows.TaskQueue)
	}
	st := b.assess(resp.GetStats())
	// A change is logged before it applies, so that the log never trails what callers see.
	prev := b.state.Load()
	switch wasBusy := prev != nil && prev.busy; {
	case st.busy && !wasBusy:
		b.log.Warn("the workers are behind: refusing agents' messages", "backlog_age", st.age, "backlog_count", st.count,
			"max_backlog_age", b.maxAge, "retry_after", st.retryAfter)
	case !st.busy && wasBusy:
		b.log.Info("the workers caught up: admitting agents' messages again", "backlog_age", st.age, "backlog_count", st.count)
	}
	b.state.Store(st)
}

// assess turns stats into an admission decision. The Retry-After is the time the workers need to
// work off the backlog at the rate they have been taking tasks (count / dispatch rate); when
// they have taken none lately (all down, or just started), it is the backlog's age, which grows
// for as long as nobody takes tasks. Either way it is clamped to one to thirty seconds.
func (b *backlogMonitor) assess(stats *taskqueuepb.TaskQueueStats) *backlogState {
	st := &backlogState{
		age:   stats.GetApproximateBacklogAge().AsDuration(),
		count: stats.GetApproximateBacklogCount(),
	}
	st.busy = st.age > b.maxAge
	wait := st.age
	if rate := stats.GetTasksDispatchRate(); rate > 0 && st.count > 0 {
		wait = time.Duration(float64(st.count) / float64(rate) * float64(time.Second))
	}
	st.retryAfter = clampRetryAfter(wait)
	return st
}

// signalRate is the token bucket of Config.MaxSignalRate. The backlog monitor sees the backlog
// only of the shared task queue, and only as often as the server recomputes it; while the
// workers are busy, the tasks of running conversations wait on the workers' own (sticky)
// queues, where it does not look. The bucket bounds what ingress accepts to what the workers
// were measured to keep up with, so that under overload the refused share grows instead of
// every conversation's wait.
type signalRate struct {
	lim *rate.Limiter
	now func() time.Time
}

func newSignalRate(perSecond float64, now func() time.Time) *signalRate {
	return &signalRate{lim: rate.NewLimiter(rate.Limit(perSecond), max(1, int(math.Ceil(perSecond)))), now: now}
}

// use counts a signal that is sent whatever the bucket holds (a member's DM): it takes a token,
// going into debt when there is none, so that the signals that can be refused wait longer. The
// debt stops at one second's worth, so that after a surge of DMs agents' messages pass again
// within about a second of it.
func (r *signalRate) use() {
	now := r.now()
	if r.lim.TokensAt(now) > -float64(r.lim.Burst()) {
		_ = r.lim.ReserveN(now, 1)
	}
}

// take admits one signal, or returns a BusyError whose Retry-After is when the next may pass.
func (r *signalRate) take() error {
	now := r.now()
	if r.lim.AllowN(now, 1) {
		return nil
	}
	res := r.lim.ReserveN(now, 1)
	wait := res.DelayFrom(now)
	res.CancelAt(now)
	return &BusyError{Reason: fmt.Sprintf("over %g relayed messages per second", float64(r.lim.Limit())), RetryAfter: wait}
}
