package twilioemu

import (
	"testing"
)

// StartTest starts an emulator for t on a free loopback port. When t ends
// it fails t for every contract violation that is still unreported (see
// [Server.CheckViolations]) and closes the emulator.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("twilioemu.New: %v", err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("twilioemu.Start: %v", err)
	}
	t.Cleanup(func() {
		s.CheckViolations(t)
		if err := s.Close(); err != nil {
			t.Errorf("twilioemu.Close: %v", err)
		}
	})
	return s
}

// CheckViolations fails t with every contract violation recorded since the
// previous call, so that with an emulator shared by several tests each
// violation fails the test that caused it. Call it at the end of each test
// (or from t.Cleanup).
func (s *Server) CheckViolations(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	fresh := append([]string(nil), s.violations[s.checked:]...)
	s.checked = len(s.violations)
	s.mu.Unlock()
	for _, v := range fresh {
		t.Errorf("Twilio contract violation: %s", v)
	}
}
