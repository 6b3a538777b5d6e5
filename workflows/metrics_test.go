package workflows

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/flexcord/flexcord/activities"
)

// capturedMetrics is a Temporal SDK metrics handler that keeps what the workflows emit.
type capturedMetrics struct {
	mu       *sync.Mutex
	tags     map[string]string
	counters map[string]int64           // by series (name and tags)
	timers   map[string][]time.Duration // by series
}

func newCapturedMetrics() *capturedMetrics {
	return &capturedMetrics{mu: new(sync.Mutex), tags: map[string]string{}, counters: map[string]int64{}, timers: map[string][]time.Duration{}}
}

// series names a metric with the tags given (key, value …) as "name{k=v,…}", keys sorted.
func series(name string, tags map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		parts = append(parts, k+"="+tags[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func (m *capturedMetrics) WithTags(tags map[string]string) client.MetricsHandler {
	n := *m
	n.tags = maps.Clone(m.tags)
	maps.Copy(n.tags, tags)
	return &n
}

func (m *capturedMetrics) Counter(name string) client.MetricsCounter {
	key := series(name, m.tags)
	return counterFunc(func(d int64) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.counters[key] += d
	})
}

func (m *capturedMetrics) Gauge(name string) client.MetricsGauge {
	return client.MetricsNopHandler.Gauge(name)
}

func (m *capturedMetrics) Timer(name string) client.MetricsTimer {
	key := series(name, m.tags)
	return timerFunc(func(d time.Duration) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.timers[key] = append(m.timers[key], d)
	})
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

// counter sums the counter name over the series whose tags include want (key, value …).
func (m *capturedMetrics) counter(name string, want ...string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for key, v := range m.counters {
		if matches(key, name, want) {
			n += v
		}
	}
	return n
}

// timer returns the values recorded in the timer name over the series whose tags include want.
func (m *capturedMetrics) timer(name string, want ...string) []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []time.Duration
	for key, v := range m.timers {
		if matches(key, name, want) {
			out = append(out, v...)
		}
	}
	return out
}

func matches(key, name string, want []string) bool {
	if !strings.HasPrefix(key, name+"{") {
		return false
	}
	for i := 0; i+1 < len(want); i += 2 {
		if !strings.Contains(key, want[i]+"="+want[i+1]) {
			return false
		}
	}
	return true
}

// newMetricsConvTest is newConvTest with the workflows' metrics captured.
func newMetricsConvTest(t *testing.T) (*convTest, *capturedMetrics) {
	t.Helper()
	metrics := newCapturedMetrics()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger())
	s.SetMetricsHandler(metrics)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Conversation)
	env.RegisterWorkflow(Case)
	fakes := newFakeProviders()
	fakes.register(env)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ConversationWorkflowID(testUser), TaskQueue: TaskQueue})
	return &convTest{t: t, env: env, fakes: fakes}, metrics
}

func TestConversationMetrics(t *testing.T) {
	c, m := newMetricsConvTest(t)
	c.signal(SignalUserMessage, ask("m1", "I want to talk to a human"))
	// The agent accepts about 90 s after the hand-over.
	c.after(90*time.Second, func() {
		c.env.SignalWorkflow(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	})
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"}) // a duplicate
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i3", ActionRate, 4))
	res := c.run(ConversationOptions{})
	if res.ClosedReason != ReasonRated {
		t.Fatalf("result = %+v", res)
	}

	if got := m.timer(MetricCaseRating); len(got) != 1 || got[0] != 4*time.Second {
		t.Errorf("%s = %v, want one rating of 4 (recorded as 4 s)", MetricCaseRating, got)
	}
	if got := m.counter(MetricHandovers, "handover", "first"); got != 1 {
		t.Errorf("%s{handover=first} = %d, want 1", MetricHandovers, got)
	}
	if got := m.counter(MetricHandovers, "handover", "again"); got != 0 {
		t.Errorf("%s{handover=again} = %d, want 0", MetricHandovers, got)
	}
	waits := m.timer(MetricQueueWait)
	if len(waits) != 1 || waits[0] < 85*time.Second || waits[0] > 95*time.Second {
		t.Errorf("%s = %v, want one wait of about 90 s", MetricQueueWait, waits)
	}
	if got := m.counter(MetricDeliveriesFailed); got != 0 {
		t.Errorf("%s = %d, want 0", MetricDeliveriesFailed, got)
	}
}

func TestFailedDeliveryMetric(t *testing.T) {
	c, m := newMetricsConvTest(t)
	c.signal(SignalUserAction, action("i1", ActionTalkToHuman, 0))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.after(time.Second, func() { c.fakes.setDMsClosed(true) })
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM1", Text: "first"})
	c.after(time.Second, func() { c.fakes.setDMsClosed(false) })
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.after(time.Hour, func() {
		c.env.SignalWorkflow(SignalUserAction, action("i2", ActionRate, 5))
	})
	c.run(ConversationOptions{})

	got := m.counter(MetricDeliveriesFailed, "destination", string(DestMember),
		"error_type", activities.ErrCannotMessageUser)
	if got != 1 {
		t.Errorf("%s{destination=member,error_type=%s} = %d, want 1 (captured: %v)", MetricDeliveriesFailed, activities.ErrCannotMessageUser, got, m.counters)
	}
}
