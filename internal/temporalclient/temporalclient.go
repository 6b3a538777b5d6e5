// Package temporalclient dials the Temporal cluster the environment names, with flexcord's
// tracing and metrics wired in, and payload encryption when keys are configured. One client per
// process.
package temporalclient

import (
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"

	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/internal/telemetry"
)

// Options override what the environment says.
type Options struct {
	// HostPort overrides TEMPORAL_ADDRESS (the embedded dev server sets it).
	HostPort string
	// Namespace overrides TEMPORAL_NAMESPACE.
	Namespace string
	Logger    *slog.Logger
	Telemetry *telemetry.Telemetry
	// IgnoreEnv leaves TEMPORAL_* out, for the embedded dev server.
	IgnoreEnv bool
	// Lazy returns a client without connecting; the first call connects. Ingress uses it so that
	// it starts and serves health checks while Temporal is unreachable.
	Lazy bool
	// NoCompression sends gRPC requests uncompressed. The embedded dev server is on loopback,
	// where gzip costs CPU on both ends (4.5 % of the relay benchmark's profile) and saves
	// nothing; over a network the SDK's default (gzip) stays.
	NoCompression bool
	// PayloadCodec encrypts every payload the client writes (workflow and activity inputs and
	// results, signals, memos, queries, updates) and decrypts what it reads; plain payloads read
	// as they are. Nil: the keys of FLEXCORD_PAYLOAD_KEYS or FLEXCORD_PAYLOAD_KEY_FILE, unless
	// IgnoreEnv; without keys, payloads are written plain.
	PayloadCodec *payloadcodec.Codec
}

// ClientOptions builds client options from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_API_KEY, TEMPORAL_TLS_* (and a temporal.toml profile, if present),
// FLEXCORD_PAYLOAD_KEYS or FLEXCORD_PAYLOAD_KEY_FILE, then opts.
func ClientOptions(opts Options) (client.Options, error) {
	var co client.Options
	codec := opts.PayloadCodec
	if !opts.IgnoreEnv {
		var err error
		if co, err = envconfig.LoadDefaultClientOptions(); err != nil {
			return client.Options{}, fmt.Errorf("read the Temporal client settings (TEMPORAL_*): %w", err)
		}
		if codec == nil {
			if codec, err = payloadcodec.FromEnv(os.LookupEnv); err != nil {
				return client.Options{}, err
			}
		}
	}
	if codec != nil {
		// Search attributes stay plain: the SDK writes them with the default converter, so that
		// the server can index them.
		co.DataConverter = payloadcodec.DataConverter(codec)
		co.FailureConverter = payloadcodec.FailureConverter(codec)
	}
	if opts.HostPort != "" {
		co.HostPort = opts.HostPort
	}
	if co.HostPort == "" {
		co.HostPort = client.DefaultHostPort
	}
	if opts.Namespace != "" {
		co.Namespace = opts.Namespace
	}
	if co.Namespace == "" {
		co.Namespace = client.DefaultNamespace
	}
	if opts.Logger != nil {
		co.Logger = sdklog.NewStructuredLogger(opts.Logger.With("component", "temporal-sdk"))
	}
	if opts.Telemetry != nil {
		tracer, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
			Tracer: opts.Telemetry.TracerProvider.Tracer("github.com/flexcord/flexcord/temporal"),
		})
		if err != nil {
			return client.Options{}, fmt.Errorf("create the Temporal tracing interceptor: %w", err)
		}
		co.Interceptors = append(co.Interceptors, interceptor.ClientInterceptor(tracer))
		co.MetricsHandler = MetricsHandler(opts.Telemetry)
	}
	if opts.NoCompression {
		co.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	return co, nil
}

// MetricsHandler is the Temporal SDK's metrics handler over tel's meter: what the SDK, the
// workflows (workflow.GetMetricsHandler) and the activities emit ends up in tel's /metrics, with
// the help texts and buckets of telemetry.Metrics. Counters are monotonic, so Prometheus sees
// them as counters (name_total) rather than gauges.
func MetricsHandler(tel *telemetry.Telemetry) client.MetricsHandler {
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{Meter: tel.Meter, UseMonotonicCounters: true})
}

// Dial connects to Temporal and returns the client with the options it was built from.
func Dial(opts Options) (client.Client, client.Options, error) {
	co, err := ClientOptions(opts)
	if err != nil {
		return nil, co, err
	}
	if opts.Lazy {
		c, err := client.NewLazyClient(co)
		if err != nil {
			return nil, co, fmt.Errorf("create a Temporal client for %s: %w", co.HostPort, err)
		}
		return c, co, nil
	}
	c, err := client.Dial(co)
	if err != nil {
		return nil, co, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", co.HostPort, co.Namespace, err)
	}
	return c, co, nil
}
