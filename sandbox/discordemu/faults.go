package discordemu

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Fault makes the next requests to a route fail or slow down.
type Fault struct {
	// Route is a route key such as RouteCreateMessage
	// ("POST /channels/{id}/messages"), or "*" for every REST route.
	Route string
	// Count is how many requests the fault affects; zero means one.
	Count int
	// Status is the HTTP status to answer: 429, or a 5xx. Zero answers
	// normally (after Latency).
	Status int
	// RetryAfter is the retry_after of a 429 (default 1 s).
	RetryAfter time.Duration
	// Global marks a 429 as the global rate limit.
	Global bool
	// Scope is the 429's X-RateLimit-Scope: "user" (default), "global" or
	// "shared".
	Scope string
	// Code and Message fill a 5xx JSON error body (for example 130000
	// "API resource is currently overloaded.").
	Code    int
	Message string
	// Latency delays the answer.
	Latency time.Duration
	// After carries the request out first and then answers with Status
	// (or drops the connection, with Drop) whatever the outcome, as when
	// Discord created a message but the answer was lost. Latency then comes
	// after the request too. A 429 or 5xx with After is an ambiguous
	// failure: the client cannot tell that the request took effect.
	After bool
	// Drop closes the connection without answering (before the request is
	// carried out, or after it with After); Status is then ignored. Go's
	// HTTP client silently resends an idempotent request (GET) whose reused
	// connection was dropped, so Drop is meant for POST and PATCH routes.
	Drop bool
}

type faultState struct {
	f    Fault
	left int
}

// InjectFault queues a fault. Faults for the same route apply in the order
// they were injected.
func (s *Server) InjectFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{f: f, left: f.Count})
}

// ClearFaults removes all pending faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault consumes the next fault for the route, if any.
func (s *Server) takeFault(route string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range s.faults {
		if st.f.Route == route || st.f.Route == "*" {
			st.left--
			if st.left <= 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
			c := st.f
			return &c
		}
	}
	return nil
}

// apply waits the fault's latency and returns the error to answer a request
// of the route with, if any (none for a pure latency fault or a Drop).
func (f *Fault) apply(ctx context.Context, route string) error {
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("request cancelled during injected latency: %w", ctx.Err())
		}
	}
	switch {
	case f.Drop:
		return nil
	case f.Status == http.StatusTooManyRequests:
		ra := f.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		scope := f.Scope
		if scope == "" {
			scope = "user"
			if f.Global {
				scope = "global"
			}
		}
		return &rateLimited{retryAfter: ra, global: f.Global, scope: scope, bucket: bucketHash(route)}
	case f.Status >= 400:
		msg := f.Message
		if msg == "" {
			msg = fmt.Sprintf("%d: %s", f.Status, http.StatusText(f.Status))
		}
		return errorf(f.Status, f.Code, msg)
	}
	return nil
}

// dropConnection closes the client's connection without an answer. When the
// connection cannot be taken over (a wrapping ResponseWriter without
// Hijack), the handler is aborted, which net/http also answers by closing
// the connection.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
