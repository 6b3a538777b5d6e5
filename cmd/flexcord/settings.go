package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/workflows"
)

// common holds the settings every long-running command shares.
type common struct {
	logFormat, logLevel string
	conv                workflows.ConversationOptions
	maxInFlight         int
	maxBacklogAge       time.Duration
	maxSignalRate       int
	attachmentMB        int
}

func (c *common) bind(b *config.Binder) {
	b.String(&c.logFormat, "log-format", "FLEXCORD_LOG_FORMAT", "json", "log format: json or text")
	b.String(&c.logLevel, "log-level", "FLEXCORD_LOG_LEVEL", "info", "log level: debug, info, warn or error")
}

func (c *common) bindConversation(b *config.Binder) {
	b.Duration(&c.conv.InactivityTimeout, "inactivity-timeout", "FLEXCORD_INACTIVITY_TIMEOUT", 30*time.Minute, "close a conversation still with the bot after this long without a message")
	b.Duration(&c.conv.RatingTimeout, "rating-timeout", "FLEXCORD_RATING_TIMEOUT", 24*time.Hour, "how long a resolved conversation waits for the member's rating")
	b.Duration(&c.conv.QueueTimeout, "queue-timeout", "FLEXCORD_QUEUE_TIMEOUT", 10*time.Minute, "tell a member no agent is free after this long in the queue, and offer to keep waiting or leave a message")
	b.Duration(&c.conv.ChoiceTimeout, "choice-timeout", "FLEXCORD_CHOICE_TIMEOUT", 30*time.Minute, "leave a message for a member who chose neither after no agent was free")
	b.Duration(&c.conv.LiveCheckAfter, "live-check-after", "FLEXCORD_LIVE_CHECK_AFTER", time.Hour, "check that Flex still has a live chat after this long with no message either way")
	b.Duration(&c.conv.LiveMaxSilence, "live-max-silence", "FLEXCORD_LIVE_MAX_SILENCE", 24*time.Hour, "resolve a live chat with no message either way for this long")
	b.Int(&c.conv.ContinueAsNewAfter, "continue-as-new-after", "FLEXCORD_CONTINUE_AS_NEW_AFTER", 2000, "signals per workflow run before it continues as new")
	c.bindAttachments(b)
}

// bindAttachments binds the cap on one attachment: ingress puts it in the conversations it
// starts, the worker applies it to the files it fetches.
func (c *common) bindAttachments(b *config.Binder) {
	b.Int(&c.attachmentMB, "max-attachment-mb", "FLEXCORD_MAX_ATTACHMENT_MB", activities.DefaultMaxFileBytes>>20, "largest attachment passed on either way, in MB (Discord itself takes at most 10 MB per file from a bot without boosts)")
}

// attachmentBytes is the attachment cap in bytes, once the flags are parsed (below 1 MB: the
// default).
func (c *common) attachmentBytes() int64 {
	if c.attachmentMB < 1 {
		return activities.DefaultMaxFileBytes
	}
	return int64(c.attachmentMB) << 20
}

// conversation is the options of the conversations this process starts, once the flags are
// parsed.
func (c *common) conversation() workflows.ConversationOptions {
	o := c.conv
	o.Attachments.MaxBytes = c.attachmentBytes()
	return o
}

func (c *common) bindIngress(b *config.Binder) {
	b.Int(&c.maxInFlight, "max-inflight-signals", "FLEXCORD_MAX_INFLIGHT_SIGNALS", 256, "signals ingress sends to Temporal at once before answering 503")
}

// bindBacklog binds the backlog admission of flexcord ingress, flexcord gateway and flexcord dev.
func (c *common) bindBacklog(b *config.Binder) {
	b.Int(&c.maxSignalRate, "max-signal-rate", "FLEXCORD_MAX_SIGNAL_RATE", 0, "relayed messages (member DMs, agent messages) this process signals per second before it refuses agents' messages (503 with Retry-After; members' DMs are never refused, they take their share); size it from make bench's saturated msg/s divided by the ingress replicas; 0: no bound")
	b.Duration(&c.maxBacklogAge, "max-backlog-age", "FLEXCORD_MAX_BACKLOG_AGE", 30*time.Second, "refuse agents' messages (503 with Retry-After) while the oldest workflow task waiting for a worker is older than this; 0 disables")
}

func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	return telemetry.NewLogger(w, c.logFormat, c.logLevel)
}

// parse parses args and reports malformed environment values, one line each.
func parse(fs *flag.FlagSet, b *config.Binder, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := b.Err(); err != nil {
		return fmt.Errorf("bad setting: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// newFlagSet returns a flag set for a command. Its help is completed by config.NewBinder (the
// flags, then every variable with its default); setIntro gives it an introduction.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("flexcord "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = nil
	return fs
}

// setIntro makes -h print intro before the flags and variables (config.NewBinder adds those);
// call it before config.NewBinder.
func setIntro(fs *flag.FlagSet, intro string) {
	fs.Usage = func() { fmt.Fprint(fs.Output(), intro) }
}

// describeTemporal documents the variables the Temporal client reads (through the SDK's
// envconfig: TEMPORAL_* and an optional temporal.toml profile), for -h.
func describeTemporal(b *config.Binder) {
	for _, v := range []struct{ env, def, usage string }{
		{"TEMPORAL_ADDRESS", "localhost:7233", "Temporal frontend host:port"},
		{"TEMPORAL_NAMESPACE", "default", "Temporal namespace"},
		{"TEMPORAL_API_KEY", "", "API key (Temporal Cloud); turns TLS on"},
		{"TEMPORAL_TLS", "", "true to connect with TLS (on by default with an API key or a client certificate)"},
		{"TEMPORAL_TLS_CLIENT_CERT_PATH", "", "client certificate file (mTLS)"},
		{"TEMPORAL_TLS_CLIENT_CERT_DATA", "", "client certificate, PEM, instead of the file"},
		{"TEMPORAL_TLS_CLIENT_KEY_PATH", "", "client private key file (mTLS)"},
		{"TEMPORAL_TLS_CLIENT_KEY_DATA", "", "client private key, PEM, instead of the file"},
		{"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "", "CA certificate file that verifies the server"},
		{"TEMPORAL_TLS_SERVER_CA_CERT_DATA", "", "CA certificate, PEM, instead of the file"},
		{"TEMPORAL_TLS_SERVER_NAME", "", "server name to verify (SNI), when it differs from the address"},
		{"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "false", "skip the server's host name check"},
		{"TEMPORAL_CLIENT_AUTHORITY", "", "authority (:authority header) to send"},
		{"TEMPORAL_GRPC_META_<NAME>", "", "gRPC header <name> to send with every call"},
		{"TEMPORAL_PROFILE", "default", "profile of the configuration file to use"},
		{"TEMPORAL_CONFIG_FILE", "", "Temporal client configuration file (TOML; default: temporal.toml in the user's config directory, when present)"},
	} {
		b.Describe(v.env, v.def, v.usage, v.env == "TEMPORAL_API_KEY" || strings.HasSuffix(v.env, "_KEY_DATA"))
	}
	describePayloadKeys(b)
}

// describePayloadKeys documents the payload keys every Temporal client reads
// (temporalclient.ClientOptions, through payloadcodec.FromEnv), for -h.
func describePayloadKeys(b *config.Binder) {
	b.Describe("FLEXCORD_PAYLOAD_KEYS", "", "encrypt every payload written to Temporal (signals, inputs, results, memos, queries, updates) with AES-256-GCM: id:base64key[,id:base64key…], 32-byte keys; the first encrypts, all decrypt (rotate by putting a new key first); give every worker, ingress, gateway and CLI the same keys", true)
	b.Describe("FLEXCORD_PAYLOAD_KEY_FILE", "", "file of payload keys instead of FLEXCORD_PAYLOAD_KEYS: the same id:base64key entries, one per line or comma-separated, # comments", false)
}

// codecSettings are the settings of ingress's codec endpoint (/codec/encode, /codec/decode).
type codecSettings struct {
	token, origins string
}

func (s *codecSettings) bind(b *config.Binder) {
	b.Secret(&s.token, "", "FLEXCORD_CODEC_TOKEN", "bearer token of the codec endpoint /codec/encode and /codec/decode, for the Temporal UI and CLI (at least 16 characters; the endpoint is off without it or without payload keys)")
	b.String(&s.origins, "", "FLEXCORD_CODEC_CORS_ORIGINS", "", "origins of Temporal UIs allowed to call the codec endpoint from the browser, comma-separated (e.g. https://temporal.example.com)")
}

// config checks the settings and returns the codec endpoint's configuration over codec (nil:
// no payload keys).
func (s *codecSettings) config(codec *payloadcodec.Codec) (ingress.CodecConfig, error) {
	cfg := ingress.CodecConfig{Codec: codec, Token: strings.TrimSpace(s.token)}
	if cfg.Token != "" && len(cfg.Token) < 16 {
		return cfg, fmt.Errorf("FLEXCORD_CODEC_TOKEN: %d characters, want at least 16", len(cfg.Token))
	}
	for o := range strings.SplitSeq(s.origins, ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return cfg, fmt.Errorf("FLEXCORD_CODEC_CORS_ORIGINS: %q is not an origin such as https://temporal.example.com", o)
		}
		cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
	}
	return cfg, nil
}

// describe logs whether the codec endpoint is served.
func (s *codecSettings) describe(cfg ingress.CodecConfig, log *slog.Logger) {
	switch {
	case cfg.Codec != nil && cfg.Token != "":
		log.Info("codec endpoint on: /codec/encode and /codec/decode", "key_ids", cfg.Codec.KeyIDs(), "cors_origins", cfg.AllowedOrigins)
	case cfg.Codec != nil:
		log.Info("payloads are encrypted; the codec endpoint is off (set FLEXCORD_CODEC_TOKEN to serve it)", "key_ids", cfg.Codec.KeyIDs())
	case cfg.Token != "":
		log.Warn("FLEXCORD_CODEC_TOKEN is set but no payload key is: the codec endpoint is off")
	}
}

// describeTelemetry documents the OpenTelemetry variables telemetry.Setup reads, for -h.
func describeTelemetry(b *config.Binder) {
	b.Describe("OTEL_EXPORTER_OTLP_ENDPOINT", "", "also send traces and metrics over OTLP/gRPC to this endpoint (metrics are always at /metrics)", false)
	b.Describe("OTEL_EXPORTER_OTLP_HEADERS", "", "headers for the OTLP exporters (key=value,…); the other OTEL_EXPORTER_OTLP_* variables apply too", true)
	b.Describe("OTEL_RESOURCE_ATTRIBUTES", "", "extra resource attributes of traces and metrics (key=value,…)", false)
}

// describeFeedSecrets documents the push secrets of #announcements sources, for -h.
func describeFeedSecrets(b *config.Binder) {
	b.Describe("FLEXCORD_FEED_SECRET_<NAME>", "", "HMAC secret of pushes to POST /announcements/<name> (name upper-cased, - as _); sources without one refuse pushes", true)
}

// discardLogger is for short-lived operator commands, whose output is their answer.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// shutdownWithin calls f with a deadline.
func shutdownWithin(f func(context.Context) error, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = f(ctx)
}
