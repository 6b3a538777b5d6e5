// Package telemetry sets up OpenTelemetry once per process: a meter provider exposed in Prometheus
// format (for GET /metrics) and, when OTEL_EXPORTER_OTLP_ENDPOINT is set, OTLP exporters for traces
// and metrics. It also builds the slog logger every flexcord command uses.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry holds the process's providers.
type Telemetry struct {
	Meter          metric.Meter
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// MetricsHandler serves the Prometheus exposition of every metric.
	MetricsHandler http.Handler

	shutdown []func(context.Context) error
}

// Setup creates the providers for service and installs them as the OpenTelemetry globals.
func Setup(ctx context.Context, service, version string) (*Telemetry, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(service), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	registry := prometheus.NewRegistry()
	promExporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	t := &Telemetry{MetricsHandler: promhttp.HandlerFor(registry, promhttp.HandlerOpts{})}
	readers := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExporter), sdkmetric.WithView(view)}
	traceOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}

	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
		traceExp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT): %w", err)
		}
		traceOpts = append(traceOpts, sdktrace.WithBatcher(traceExp))
		metricExp, err := otlpmetricgrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTLP metric exporter (OTEL_EXPORTER_OTLP_ENDPOINT): %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metricExp, sdkmetric.WithInterval(15*time.Second))))
	}
	mp := sdkmetric.NewMeterProvider(readers...)
	tp := sdktrace.NewTracerProvider(traceOpts...)
	t.shutdown = append(t.shutdown, tp.Shutdown, mp.Shutdown)
	t.MeterProvider, t.TracerProvider = mp, tp
	t.Meter = mp.Meter("github.com/flexcord/flexcord")
	otel.SetMeterProvider(mp)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return t, nil
}

// Shutdown flushes and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// NewLogger returns a slog logger writing JSON (format "json", the default) or text lines.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(orDefault(level, "info")))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want json or text", format)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
