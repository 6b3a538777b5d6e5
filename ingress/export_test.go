package ingress

import "time"

// SetGatewayTiming shortens the gateway's retry timing for a test and returns a function that
// restores it. Tests that use it must not run in parallel.
func SetGatewayTiming(backoff, maxBackoff, backfillRetry time.Duration) (restore func()) {
	b, m, r := dmBackoff, dmMaxBackoff, backfillRetryDelay
	dmBackoff, dmMaxBackoff, backfillRetryDelay = backoff, maxBackoff, backfillRetry
	return func() { dmBackoff, dmMaxBackoff, backfillRetryDelay = b, m, r }
}

// SetSignalRateClock makes the MaxSignalRate bucket of s read the time from now.
func SetSignalRateClock(s *Server, now func() time.Time) { s.rate.Load().now = now }
