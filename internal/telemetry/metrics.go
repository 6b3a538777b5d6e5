package telemetry

import (
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Names of the metrics flexcord's own code emits. Workflow code cannot import this package (it
// emits through the Temporal SDK's replay-safe metrics handler), so workflows/metrics.go repeats
// its names; a test checks that both lists agree.
const (
	MetricIngressRequests        = "flexcord_ingress_requests"
	MetricIngressRequestDuration = "flexcord_ingress_request_duration_seconds"
	MetricSignals                = "flexcord_signals"
	MetricDeliveries             = "flexcord_deliveries"
	MetricDeliveriesFailed       = "flexcord_deliveries_failed"
	MetricHandovers              = "flexcord_handovers"
	MetricQueueWait              = "flexcord_queue_wait_seconds"
	MetricCaseRating             = "flexcord_case_rating"
)

// SecondsBuckets are the bucket boundaries of every histogram measured in seconds that has no
// buckets of its own below: ingress requests and the Temporal SDK's latencies (its timers). The
// OpenTelemetry defaults (0, 5, 10, 25 … 10000) are meant for milliseconds and would put almost
// every request in the first bucket.
var SecondsBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// QueueWaitBuckets are the bucket boundaries of the time members wait for an agent: seconds to
// an hour (the default queue timeout is 10 minutes, and "keep waiting" restarts it).
var QueueWaitBuckets = []float64{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600}

// RatingBuckets are the bucket boundaries of case ratings: one bucket per star.
var RatingBuckets = []float64{1, 2, 3, 4, 5}

// Metric describes one metric flexcord emits: its help text, its exported unit and its buckets.
type Metric struct {
	// Name is the instrument's name.
	Name string
	// Type is how Prometheus sees it: counter or histogram.
	Type string
	// Unit is the unit it is exported in ("s", or "" for a plain number).
	Unit string
	// Help is the description, the "# HELP" line of the Prometheus exposition.
	Help string
	// Labels are the labels worth grouping by. Metrics emitted through the Temporal SDK's
	// handler also carry the SDK's own (namespace, task_queue, workflow_type, activity_type).
	Labels []string
	// Buckets are the histogram's bucket boundaries.
	Buckets []float64
}

// Metrics lists every metric flexcord's own code emits. The meter provider's view gives each its
// help text and buckets, so that metrics emitted through the Temporal SDK's metrics handler (which
// has no descriptions and no histograms of its own) are described too.
var Metrics = []Metric{
	{Name: MetricIngressRequests, Type: "counter", Labels: []string{"route", "status"},
		Help: "HTTP requests answered by ingress, by route and status code."},
	{Name: MetricIngressRequestDuration, Type: "histogram", Unit: "s", Labels: []string{"route"}, Buckets: SecondsBuckets,
		Help: "Time ingress took to answer an HTTP request, by route."},
	{Name: MetricSignals, Type: "counter", Labels: []string{"signal", "outcome"},
		Help: "Signals ingress and the gateway sent to workflows, by signal name and outcome (ok; error: Temporal refused or did not answer; busy: not sent, admission control refused it: in-flight limit, workers' backlog or signal rate)."},
	{Name: MetricDeliveries, Type: "counter", Labels: []string{"activity_type", "outcome"},
		Help: "Delivery activity attempts (Discord messages and Flex posts), by activity type and outcome: delivered; retried (the attempt failed and Temporal tries again); failed (the attempt failed for good); deferred (a fast-path local try refused by the worker's fast-path rate before any call, sent through the provider's queue instead)."},
	{Name: MetricDeliveriesFailed, Type: "counter", Labels: []string{"workflow_type", "destination", "error_type"},
		Help: "Deliveries a conversation, case or feed recorded as failed in its ledger (operators retry them with `flexcord deliveries retry`), by destination kind and error type."},
	{Name: MetricHandovers, Type: "counter", Labels: []string{"handover"},
		Help: "Hand-overs of a member's case to a live agent in Flex: first for a new case, again when Flex lost the chat or the member asked again."},
	{Name: MetricQueueWait, Type: "histogram", Unit: "s", Buckets: QueueWaitBuckets,
		Help: "Time members waited in the queue, from the hand-over to Flex until an agent joined."},
	{Name: MetricCaseRating, Type: "histogram", Buckets: RatingBuckets,
		Help: "Ratings (1 to 5) members gave their resolved support case; bucket le=\"N\" counts the ratings of N or less."},
}

// Lookup returns the description of the metric named name.
func Lookup(name string) (Metric, bool) {
	i := slices.IndexFunc(Metrics, func(m Metric) bool { return m.Name == name })
	if i < 0 {
		return Metric{}, false
	}
	return Metrics[i], true
}

// Help returns the help text of the metric named name, for instruments created with the
// OpenTelemetry API.
func Help(name string) string {
	m, _ := Lookup(name)
	return m.Help
}

// view describes flexcord's metrics (Metrics) and gives every other histogram in seconds the
// second-scale SecondsBuckets. The Temporal SDK's OpenTelemetry bridge makes every timer a
// histogram with unit "s" and no buckets, and workflow code can emit a histogram only as such a
// timer: the case rating is recorded as a timer of N seconds for N stars, and exported here as
// the plain number it is.
func view(inst sdkmetric.Instrument) (sdkmetric.Stream, bool) {
	stream := sdkmetric.Stream{Name: inst.Name, Description: inst.Description, Unit: inst.Unit}
	m, ours := Lookup(inst.Name)
	switch {
	case ours:
		stream.Description, stream.Unit = m.Help, m.Unit
		if len(m.Buckets) > 0 && inst.Kind == sdkmetric.InstrumentKindHistogram {
			stream.Aggregation = sdkmetric.AggregationExplicitBucketHistogram{Boundaries: m.Buckets}
		}
		return stream, true
	case inst.Kind == sdkmetric.InstrumentKindHistogram && inst.Unit == "s":
		stream.Aggregation = sdkmetric.AggregationExplicitBucketHistogram{Boundaries: SecondsBuckets}
		return stream, true
	}
	return sdkmetric.Stream{}, false
}
