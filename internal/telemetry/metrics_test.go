package telemetry_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/telemetry/telemetrytest"
	"github.com/flexcord/flexcord/internal/temporalclient"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

// TestMetricsExposition records what ingress, the workflows and the Temporal SDK record (the
// last two through the SDK's OpenTelemetry bridge, as the worker does) and checks the names,
// types, help texts and buckets /metrics serves.
func TestMetricsExposition(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, "flexcord-test", "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })

	// Ingress records through the OpenTelemetry API.
	latency, err := tel.Meter.Float64Histogram(telemetry.MetricIngressRequestDuration, metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	latency.Record(ctx, 0.3, metric.WithAttributes(attribute.String("route", "/twilio/taskrouter")))

	// Workflows and the SDK record through the SDK's metrics handler.
	h := temporalclient.MetricsHandler(tel).WithTags(map[string]string{"workflow_type": "Conversation"})
	h.Timer(workflows.MetricCaseRating).Record(4 * time.Second) // a rating of 4, as workflows record it
	h.Timer(workflows.MetricCaseRating).Record(5 * time.Second)
	h.Timer(workflows.MetricQueueWait).Record(90 * time.Second)
	h.WithTags(map[string]string{"handover": "first"}).Counter(workflows.MetricHandovers).Inc(1)
	h.WithTags(map[string]string{"destination": "member", "error_type": "DiscordCannotMessageUser"}).Counter(workflows.MetricDeliveriesFailed).Inc(1)
	h.WithTags(map[string]string{"activity_type": "SendDirectMessage", "outcome": worker.OutcomeRetried}).Counter(worker.MetricDeliveries).Inc(1)
	h.Timer("temporal_workflow_task_execution_latency").Record(40 * time.Millisecond) // one of the SDK's own

	m := telemetrytest.Scrape(t, tel.MetricsHandler)

	for _, c := range []struct{ name, typ string }{
		{"flexcord_case_rating", "histogram"},
		{"flexcord_queue_wait_seconds", "histogram"},
		{"flexcord_ingress_request_duration_seconds", "histogram"},
		{"flexcord_handovers_total", "counter"},
		{"flexcord_deliveries_failed_total", "counter"},
		{"flexcord_deliveries_total", "counter"},
		{"temporal_workflow_task_execution_latency_seconds", "histogram"},
	} {
		if got := m.Type(c.name); got != c.typ {
			t.Errorf("# TYPE %s = %q, want %q", c.name, got, c.typ)
		}
	}
	help, ok := m.Help("flexcord_case_rating")
	if !ok || !strings.Contains(help, "Ratings (1 to 5)") {
		t.Errorf("# HELP flexcord_case_rating = %q, %v", help, ok)
	}
	for _, name := range []string{"flexcord_queue_wait_seconds", "flexcord_handovers_total", "flexcord_deliveries_failed_total", "flexcord_deliveries_total"} {
		if help, _ := m.Help(name); help == "" {
			t.Errorf("%s has no help text", name)
		}
	}

	// Ratings: one bucket per star, the value a plain number.
	want := map[string]float64{"1": 0, "2": 0, "3": 0, "4": 1, "5": 2, "+Inf": 2}
	for le, n := range want {
		if got, found := m.Value("flexcord_case_rating_bucket", "le", le); found != 1 || got != n {
			t.Errorf(`flexcord_case_rating_bucket{le=%q} = %v (%d series), want %v`, le, got, found, n)
		}
	}
	if sum, _ := m.Value("flexcord_case_rating_sum"); sum != 9 {
		t.Errorf("flexcord_case_rating_sum = %v, want 9", sum)
	}
	// Seconds: second-scale buckets, for flexcord's own histograms and the SDK's timers alike.
	for _, name := range []string{"flexcord_ingress_request_duration_seconds_bucket", "temporal_workflow_task_execution_latency_seconds_bucket"} {
		for _, le := range []string{"0.005", "0.1", "1", "5", "10", "+Inf"} {
			if _, found := m.Value(name, "le", le); found != 1 {
				t.Errorf(`%s has no bucket le=%q`, name, le)
			}
		}
		if _, found := m.Value(name, "le", "10000"); found != 0 {
			t.Errorf(`%s still has the millisecond-scale bucket le="10000"`, name)
		}
	}
	if got, _ := m.Value("flexcord_ingress_request_duration_seconds_bucket", "le", "0.25"); got != 0 {
		t.Errorf(`0.3 s counted in le="0.25"`)
	}
	if got, _ := m.Value("flexcord_ingress_request_duration_seconds_bucket", "le", "0.5", "route", "/twilio/taskrouter"); got != 1 {
		t.Errorf(`0.3 s not counted in le="0.5"`)
	}
	if got, _ := m.Value("flexcord_queue_wait_seconds_bucket", "le", "120"); got != 1 {
		t.Errorf(`90 s queue wait not in le="120"`)
	}
	if got, _ := m.Value("flexcord_queue_wait_seconds_bucket", "le", "60"); got != 0 {
		t.Errorf(`90 s queue wait counted in le="60"`)
	}
	if got, _ := m.Value("flexcord_deliveries_failed_total", "destination", "member", "workflow_type", "Conversation"); got != 1 {
		t.Errorf("flexcord_deliveries_failed_total{destination=member} = %v, want 1", got)
	}
}

// TestEveryMetricIsDescribed checks that every metric the workflows and the worker emit (they
// cannot import telemetry) has an entry, with help text, in telemetry.Metrics.
func TestEveryMetricIsDescribed(t *testing.T) {
	names := append(workflows.MetricNames(), worker.MetricDeliveries)
	for _, name := range names {
		m, ok := telemetry.Lookup(name)
		if !ok || m.Help == "" {
			t.Errorf("metric %s has no entry with help text in telemetry.Metrics", name)
		}
	}
	for _, m := range telemetry.Metrics {
		if !strings.HasPrefix(m.Name, "flexcord_") {
			t.Errorf("metric %s is not named flexcord_…", m.Name)
		}
		if m.Type == "histogram" && len(m.Buckets) == 0 {
			t.Errorf("histogram %s has no buckets", m.Name)
		}
		if !slices.IsSorted(m.Buckets) {
			t.Errorf("buckets of %s are not sorted", m.Name)
		}
	}
}
