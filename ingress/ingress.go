// Package ingress is flexcord's stateless front door: it receives Discord interactions and
// gateway events and Twilio webhooks, checks their signatures, maps each to a workflow signal and
// answers at once. It never waits on a worker, so it keeps answering while workers are down or
// busy; the Temporal server holds the signals until a worker picks them up.
package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/workflows"
)

// Config configures a Server.
type Config struct {
	// Temporal is the client signals go through.
	Temporal client.Client
	Log      *slog.Logger
	// Telemetry supplies the meter, the tracer and the /metrics handler; nil disables them.
	Telemetry *telemetry.Telemetry
	// MaxInFlight bounds the signals being sent to Temporal at once (default 256). Beyond it,
	// provider routes answer 503 with Retry-After instead of queueing without bound.
	MaxInFlight int
	// MaxBacklogAge turns agents' messages away (ErrBusy: 503 with Retry-After; see admit) while
	// the oldest workflow task waiting in workflows.TaskQueue is older than this: the workers
	// are that far behind. Zero disables it; flexcord ingress, gateway and dev default to 30 s
	// (FLEXCORD_MAX_BACKLOG_AGE). See backlogMonitor for how the backlog is read.
	MaxBacklogAge time.Duration
	// MaxSignalRate bounds the relayed messages this ingress signals per second (with a burst of
	// one second's worth): beyond it agents' messages are turned away with a Retry-After of when
	// the next may pass, while members' DMs are sent and take their share (see admit). Size it
	// from the relay's measured capacity (make bench: saturated msg/s) divided by the ingress
	// replicas. Zero: no bound.
	MaxSignalRate float64
	// BacklogPollInterval is how often the backlog is read while signals come in (default
	// 500 ms). The Temporal server itself recomputes the stats only every few seconds.
	BacklogPollInterval time.Duration
	// Namespace is the Temporal namespace of the client, whose task queue's backlog is read
	// (default "default").
	Namespace string
	// Conversation options are passed to every Conversation ingress starts.
	Conversation workflows.ConversationOptions
	// Routes adds provider routes (Discord, Twilio) to the router.
	Routes []func(s *Server, r *mux.Router)
	// Codec serves the codec endpoint (/codec/encode, /codec/decode) when keys and a token are set.
	Codec CodecConfig
}

// Server is the ingress HTTP server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	router   *mux.Router
	inFlight chan struct{}
	tracer   trace.Tracer
	requests metric.Int64Counter
	latency  metric.Float64Histogram
	signals  metric.Int64Counter
	// backlog is nil when MaxBacklogAge is zero.
	backlog *backlogMonitor
	// rate holds the MaxSignalRate bucket, nil when there is no bound.
	rate atomic.Pointer[signalRate]
}

// New builds the router with the health, readiness and metrics routes and cfg.Routes.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	s := &Server{cfg: cfg, log: cfg.Log, router: mux.NewRouter(), inFlight: make(chan struct{}, cfg.MaxInFlight)}
	s.SetMaxSignalRate(cfg.MaxSignalRate)
	if cfg.MaxBacklogAge > 0 && cfg.Temporal != nil {
		s.backlog = newBacklogMonitor(cfg.Temporal, cfg.Namespace, cfg.MaxBacklogAge, cfg.BacklogPollInterval, cfg.Log)
	}
	if cfg.Telemetry != nil {
		s.tracer = cfg.Telemetry.TracerProvider.Tracer("github.com/flexcord/flexcord/ingress")
		meter := cfg.Telemetry.Meter
		s.requests, _ = meter.Int64Counter(telemetry.MetricIngressRequests,
			metric.WithDescription(telemetry.Help(telemetry.MetricIngressRequests)))
		s.latency, _ = meter.Float64Histogram(telemetry.MetricIngressRequestDuration,
			metric.WithDescription(telemetry.Help(telemetry.MetricIngressRequestDuration)), metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(telemetry.SecondsBuckets...))
		s.signals, _ = meter.Int64Counter(telemetry.MetricSignals,
			metric.WithDescription(telemetry.Help(telemetry.MetricSignals)))
	}
	s.router.Use(s.observe)
	s.router.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	s.router.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	if cfg.Telemetry != nil {
		s.router.Handle("/metrics", cfg.Telemetry.MetricsHandler).Methods(http.MethodGet)
	}
	addCodecRoutes(s.router, cfg.Codec)
	for _, add := range cfg.Routes {
		add(s, s.router)
	}
	return s
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.router }

// Log returns the server's logger, for provider routes.
func (s *Server) Log() *slog.Logger { return s.log }

// Temporal returns the Temporal client, for provider routes.
func (s *Server) Temporal() client.Client { return s.cfg.Temporal }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers 200 only while Temporal answers a health check.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, err := s.cfg.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "temporal unavailable: %v\n", err)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// observe traces every request as a span named after its route and records its status and duration.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := r.URL.Path
		if cr := mux.CurrentRoute(r); cr != nil {
			if tmpl, err := cr.GetPathTemplate(); err == nil {
				route = tmpl
			}
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		ctx := r.Context()
		var span trace.Span
		if s.tracer != nil {
			ctx, span = s.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
		}
		next.ServeHTTP(rec, r.WithContext(ctx))
		attrs := metric.WithAttributes(attribute.String("route", route), attribute.String("status", strconv.Itoa(rec.status)))
		if s.requests != nil {
			s.requests.Add(ctx, 1, attrs)
			s.latency.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("route", route)))
		}
		if span != nil {
			span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
			if rec.status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(rec.status))
			}
		}
	})
}

// SetMaxSignalRate changes Config.MaxSignalRate while the server runs (zero or less: no
// bound); the bucket starts full.
func (s *Server) SetMaxSignalRate(perSecond float64) {
	if perSecond <= 0 {
		s.rate.Store(nil)
		return
	}
	s.rate.Store(newSignalRate(perSecond, time.Now))
}

// ErrBusy means admission control turned a signal away before sending it: ingress already had
// MaxInFlight signals under way, or the workers were more than MaxBacklogAge behind. The error
// is a *BusyError wrapping ErrBusy; the caller should answer 503 with the Retry-After that
// RetryAfter returns, so that the provider sends again later.
var ErrBusy = errors.New("ingress is busy")

// admit takes an in-flight slot, or fails fast with a BusyError. Past the in-flight bound, what
// else applies depends on the signal:
//   - An agent's message (Twilio re-sends a refused webhook, and the conversation fetches what
//     Twilio gave up on) is turned away while the workers' backlog is too old (MaxBacklogAge) or
//     beyond MaxSignalRate: under overload, this is where load is shed.
//   - A member's DM comes from the gateway, which cannot have Discord send it again: refusing it
//     would only move it from Temporal, which holds it durably, to the gateway's memory. It is
//     signalled, and takes its share of MaxSignalRate, so that agents' messages are refused in
//     its place.
//   - Other signals (a button, an agent joining or wrapping up, a feed push) are rare and move
//     things on, and a provider does not always send them again: the in-flight bound only.
func (s *Server) admit(signal string) (release func(), err error) {
	switch signal {
	case workflows.SignalAgentMessage:
		if s.backlog != nil {
			if err := s.backlog.check(); err != nil {
				return nil, err
			}
		}
		if r := s.rate.Load(); r != nil {
			if err := r.take(); err != nil {
				return nil, err
			}
		}
	case workflows.SignalUserMessage:
		if r := s.rate.Load(); r != nil {
			r.use()
		}
	}
	select {
	case s.inFlight <- struct{}{}:
		return func() { <-s.inFlight }, nil
	default:
		return nil, &BusyError{Reason: fmt.Sprintf("%d signals in flight", cap(s.inFlight)), RetryAfter: minRetryAfter}
	}
}

// signalTimeout bounds one signal to the Temporal server; the provider re-sends on failure.
const signalTimeout = 5 * time.Second

// StartConversation delivers a member's event to their Conversation, starting one if none runs.
func (s *Server) StartConversation(ctx context.Context, member workflows.Member, guildID, guildName, locale, signal string, arg any) (err error) {
	defer func() { s.countSignal(ctx, signal, err) }()
	release, err := s.admit(signal)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	opts := client.StartWorkflowOptions{
		ID:            workflows.ConversationWorkflowID(member.UserID),
		TaskQueue:     workflows.TaskQueue,
		StaticSummary: "Support · " + member.Name() + " · " + orDefault(guildName, orDefault(guildID, "direct message")),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrDiscordUserID.ValueSet(member.UserID),
			workflows.SearchAttrStage.ValueSet(string(workflows.StageBot)),
		),
	}
	in := workflows.ConversationInput{Member: member, GuildID: guildID, GuildName: guildName, Locale: locale, Options: s.cfg.Conversation}
	_, err = s.cfg.Temporal.SignalWithStartWorkflow(ctx, opts.ID, signal, arg, opts, workflows.Conversation, in)
	if err != nil {
		return fmt.Errorf("signal-with-start %s for member %s: %w", signal, member.UserID, err)
	}
	return nil
}

// SignalConversation delivers an event to a member's running Conversation.
func (s *Server) SignalConversation(ctx context.Context, discordUserID, signal string, arg any) (err error) {
	defer func() { s.countSignal(ctx, signal, err) }()
	release, err := s.admit(signal)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	if err := s.cfg.Temporal.SignalWorkflow(ctx, workflows.ConversationWorkflowID(discordUserID), "", signal, arg); err != nil {
		return fmt.Errorf("signal %s to the conversation of member %s: %w", signal, discordUserID, err)
	}
	return nil
}

// SignalFeed delivers an event to the running Feed of an #announcements source.
func (s *Server) SignalFeed(ctx context.Context, source, signal string, arg any) (err error) {
	defer func() { s.countSignal(ctx, signal, err) }()
	release, err := s.admit(signal)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	if err := s.cfg.Temporal.SignalWorkflow(ctx, workflows.FeedWorkflowID(source), "", signal, arg); err != nil {
		return fmt.Errorf("signal %s to the feed of source %s: %w", signal, source, err)
	}
	return nil
}

// countSignal counts a signal sent (or not) to a workflow, by name and outcome: ok, error, or
// busy when admission control (the in-flight bound or the workers' backlog) turned it away
// before it was sent.
func (s *Server) countSignal(ctx context.Context, signal string, err error) {
	if s.signals == nil {
		return
	}
	outcome := "ok"
	switch {
	case errors.Is(err, ErrBusy):
		outcome = "busy"
	case err != nil:
		outcome = "error"
	}
	s.signals.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("signal", signal), attribute.String("outcome", outcome)))
}

// WriteBusy answers 503 with a Retry-After of one second, for ErrBusy; routes that have the
// error answer with WriteBusyError, which says how long the refusal asks to wait. A 5xx is what
// makes every provider send again: Discord and most clients honour Retry-After, while Twilio
// ignores it and retries any webhook whose answer is not 2xx (or is slow) on its own schedule.
func WriteBusy(w http.ResponseWriter) {
	WriteBusyError(w, ErrBusy)
}

// Bounds of the calls that read conversations for the gateway's backfill.
const (
	listTimeout      = 30 * time.Second
	queryTimeout     = 10 * time.Second
	listPageSize     = 500
	openConversation = "WorkflowType = 'Conversation' AND ExecutionStatus = 'Running'"
)

// ListOpenConversations returns the Discord user ids of every running Conversation, from
// visibility, page by page.
func (s *Server) ListOpenConversations(ctx context.Context) ([]string, error) {
	var ids []string
	var token []byte
	for {
		pctx, cancel := context.WithTimeout(ctx, listTimeout)
		resp, err := s.cfg.Temporal.ListWorkflow(pctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: openConversation, PageSize: listPageSize, NextPageToken: token,
		})
		cancel()
		if err != nil {
			return ids, fmt.Errorf("list open conversations: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			if id, ok := workflows.DiscordUserIDFromWorkflowID(e.GetExecution().GetWorkflowId()); ok {
				ids = append(ids, id)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return ids, nil
		}
	}
}

// ConversationStatus queries the status of a member's Conversation. It needs a worker to answer.
func (s *Server) ConversationStatus(ctx context.Context, discordUserID string) (workflows.ConversationStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var st workflows.ConversationStatus
	v, err := s.cfg.Temporal.QueryWorkflow(ctx, workflows.ConversationWorkflowID(discordUserID), "", workflows.QueryStatus)
	if err != nil {
		return st, fmt.Errorf("query the conversation of member %s: %w", discordUserID, err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("decode the status of the conversation of member %s: %w", discordUserID, err)
	}
	return st, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Serve serves the handler on ln until ctx is done, then shuts down, giving requests in progress
// up to five seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ingress on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	return nil
}
