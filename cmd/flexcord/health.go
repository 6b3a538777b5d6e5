package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/flexcord/flexcord/internal/telemetry"
)

// readiness is what a role's /readyz answers: a list of named checks, each nil when its piece is
// there, or an error saying what is missing. The answer is 200 "ready" when every check passes,
// else 503 with one line per missing piece, such as
//
//	temporal: unreachable (dial tcp 127.0.0.1:7233: connect: connection refused)
//	discord gateway: not connected
type readiness struct {
	mu     sync.Mutex
	checks []namedCheck
}

type namedCheck struct {
	name  string
	check func(context.Context) error
}

// readyzTimeout bounds one readiness probe.
const readyzTimeout = 2 * time.Second

// add appends a check; the answer lists missing pieces in the order they were added.
func (r *readiness) add(name string, check func(context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, namedCheck{name, check})
}

// missing runs every check at once and returns a line per failing one, in order.
func (r *readiness) missing(ctx context.Context) []string {
	r.mu.Lock()
	checks := append([]namedCheck(nil), r.checks...)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, readyzTimeout)
	defer cancel()
	lines := make([]string, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			if err := c.check(ctx); err != nil {
				lines[i] = c.name + ": " + err.Error()
			}
		})
	}
	wg.Wait()
	out := lines[:0]
	for _, l := range lines {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// ServeHTTP answers /readyz.
func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if missing := r.missing(req.Context()); len(missing) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, strings.Join(missing, "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// componentState is the state of a piece that a background loop brings up (the worker, the
// gateway connection, the sandbox's settings): its check fails with the loop's latest error
// until the loop reports success.
type componentState struct {
	mu  sync.Mutex
	err error
}

// newComponentState starts failing with notYet ("not started yet").
func newComponentState(notYet string) *componentState {
	return &componentState{err: errors.New(notYet)}
}

// set records the piece's state: nil is up.
func (s *componentState) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// check is a readiness check.
func (s *componentState) check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// temporalCheck reports whether the Temporal frontend answers a health check.
func temporalCheck(tc client.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return fmt.Errorf("unreachable (%s)", grpcReason(err))
		}
		return nil
	}
}

// grpcReason shortens a gRPC error to its cause: "rpc error: code = Unavailable desc =
// connection error: desc = \"transport: Error while dialing: dial tcp …: connection refused\""
// becomes "dial tcp …: connection refused".
func grpcReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "desc = "); i >= 0 {
		msg = msg[i+len("desc = "):]
	}
	msg = strings.Trim(msg, `"`)
	for _, prefix := range []string{"transport: Error while dialing: ", "transport: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
}

// backoff spaces the retries of a role's start-up steps: 1 s, 2 s, 4 s, … up to 30 s. Each failed
// attempt is logged once, with the wait before the next, so an unreachable dependency gives a
// line per step rather than a flood.
type backoff struct{ next time.Duration }

// Retry timing of the start-up loops; variables so that tests can shorten them.
var (
	retryInitial = time.Second
	retryMax     = 30 * time.Second
)

// wait returns the next delay and doubles the one after.
func (b *backoff) wait() time.Duration {
	if b.next == 0 {
		b.next = retryInitial
	}
	d := b.next
	b.next = min(2*b.next, retryMax)
	return d
}

// sleep waits d or until ctx is done, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// roleServer is the HTTP server every role runs: /healthz answers 200 as soon as the process
// runs, /readyz says what is missing, /metrics serves the Prometheus exposition, and every other
// path goes to the role's own handler once it is set (503 until then, while the role waits for
// what it needs to build it).
type roleServer struct {
	ready   *readiness
	metrics http.Handler
	inner   atomic.Pointer[http.Handler]
}

func newRoleServer(ready *readiness, tel *telemetry.Telemetry) *roleServer {
	s := &roleServer{ready: ready}
	if tel != nil {
		s.metrics = tel.MetricsHandler
	}
	return s
}

// setHandler serves h for every path but /healthz, /readyz and /metrics.
func (s *roleServer) setHandler(h http.Handler) { s.inner.Store(&h) }

// ServeHTTP implements http.Handler.
func (s *roleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case r.URL.Path == "/healthz" && get:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
		return
	case r.URL.Path == "/readyz" && get:
		s.ready.ServeHTTP(w, r)
		return
	case r.URL.Path == "/metrics" && get && s.metrics != nil:
		s.metrics.ServeHTTP(w, r)
		return
	}
	if h := s.inner.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "starting: "+strings.Join(s.ready.missing(r.Context()), "; "), http.StatusServiceUnavailable)
}

// serve serves on ln until ctx is done, then shuts down, giving requests in progress up to five
// seconds.
func (s *roleServer) serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("HTTP server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	return nil
}

// listen opens a role's HTTP address; a taken address is a start-up error naming the setting.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (set --http-addr or FLEXCORD_HTTP_ADDR): %w", addr, err)
	}
	return ln, nil
}
