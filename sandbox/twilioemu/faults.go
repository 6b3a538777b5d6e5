package twilioemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault makes matching API requests fail or slow down.
type Fault struct {
	// Host restricts the fault to one product host, for example
	// "conversations.twilio.com" (or just "conversations"); empty matches
	// every host.
	Host string `json:"host,omitempty"`
	// Method restricts the fault to one HTTP method; empty matches all.
	Method string `json:"method,omitempty"`
	// Path is a path pattern such as "/v1/Conversations/*/Messages", where
	// "*" or "{Name}" matches one segment; empty matches every path.
	Path string `json:"path,omitempty"`
	// Count is how many matching requests the fault affects: the next
	// Count ones. Zero means 1; a negative Count means every request until
	// the fault is removed.
	Count int `json:"count,omitempty"`
	// Status is the HTTP status to answer (for example 500, 503 or 429).
	// Zero injects only Latency.
	Status int `json:"status,omitempty"`
	// Code is the Twilio error code of the answer; zero picks 20429 for
	// 429, 20503 for 503 and 20500 otherwise.
	Code int `json:"code,omitempty"`
	// Message is the error message; empty picks a standard one.
	Message string `json:"message,omitempty"`
	// After performs the operation first and then answers with Status,
	// as when Twilio stored something but the answer was lost. Latency is
	// then added after the operation too.
	After bool `json:"after,omitempty"`
	// Latency delays the answer (before the operation unless After).
	// Latency is written as latency_ms (milliseconds) in JSON.
	Latency time.Duration `json:"-"`
	// RetryAfter is the Retry-After header (in seconds) of a 429 answer;
	// zero sends "1".
	RetryAfter int `json:"retry_after,omitempty"`
	// ChannelStatus makes the next interactions created (POST
	// flex-api /v1/Interactions; Host, Method and Path are implied) answer
	// 200 but come out with this interaction channel status instead of
	// active: "failed" (the channel never works: it reports error_code,
	// Code or 45361, and error_message, Message or a standard one, and no
	// task is routed) or "setup" (the first fetch of the channel still
	// sees setup, later ones active). Status must be zero.
	ChannelStatus string `json:"channel_status,omitempty"`
}

// faultJSON is Fault's JSON form, with the latency in milliseconds.
type faultJSON struct {
	faultAlias
	LatencyMS int64 `json:"latency_ms,omitempty"`
}

type faultAlias Fault

// MarshalJSON writes the fault with "latency_ms".
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultJSON{faultAlias: faultAlias(f), LatencyMS: f.Latency.Milliseconds()})
}

// UnmarshalJSON reads the fault with "latency_ms".
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Fault(j.faultAlias)
	f.Latency = time.Duration(j.LatencyMS) * time.Millisecond
	return nil
}

// FaultStatus is an injected fault and how much of it is left.
type FaultStatus struct {
	ID    string `json:"id"`
	Fault Fault  `json:"fault"`
	// Remaining is how many more requests it affects (-1: unlimited).
	Remaining int `json:"remaining"`
	// Hits is how many requests it has affected.
	Hits int `json:"hits"`
}

func (f *Fault) validate() error {
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("fault status %d is not a 4xx or 5xx", f.Status)
	}
	switch f.ChannelStatus {
	case "":
	case channelFailed, channelSetup:
		if f.Status != 0 {
			return errors.New("a channel status fault cannot have an HTTP status")
		}
	default:
		return fmt.Errorf("fault channel status %q is not failed or setup", f.ChannelStatus)
	}
	if f.Status == 0 && f.Latency <= 0 && f.ChannelStatus == "" {
		return errors.New("fault needs a status, a latency, a channel status or a combination")
	}
	if f.RetryAfter < 0 {
		return errors.New("fault retry_after is negative")
	}
	if f.Latency < 0 {
		return errors.New("fault latency is negative")
	}
	return nil
}

func (f *Fault) apiError() *apiError {
	e := &apiError{Status: f.Status, Code: f.Code, Message: f.Message, RetryAfter: f.RetryAfter}
	if e.Code == 0 {
		switch f.Status {
		case http.StatusTooManyRequests:
			e.Code = 20429
		case http.StatusServiceUnavailable:
			e.Code = 20503
		default:
			e.Code = 20500
		}
	}
	if e.Message == "" {
		switch f.Status {
		case http.StatusTooManyRequests:
			e.Message = "Too Many Requests"
		case http.StatusServiceUnavailable:
			e.Message = "Service Unavailable"
		default:
			e.Message = http.StatusText(f.Status)
			if e.Message == "" {
				e.Message = "Injected fault"
			}
		}
	}
	return e
}

func (f *Fault) matches(host, method, path string) bool {
	if f.ChannelStatus != "" && (host != HostFlex || method != http.MethodPost || path != "/v1/Interactions") {
		return false
	}
	if f.Host != "" {
		h := strings.ToLower(f.Host)
		if !strings.Contains(h, ".") {
			h += ".twilio.com"
		}
		if h != host {
			return false
		}
	}
	if f.Method != "" && !strings.EqualFold(f.Method, method) {
		return false
	}
	if f.Path != "" {
		if _, ok := matchSegs(splitPath(f.Path), splitPath(path)); !ok {
			return false
		}
	}
	return true
}

type faultSet struct {
	mu     sync.Mutex
	faults []*FaultStatus
	nextID int
}

// take returns the first fault matching the request and uses one of its
// requests up, or nil.
func (fs *faultSet) take(host, method, path string) *Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.faults {
		if !f.Fault.matches(host, method, path) {
			continue
		}
		f.Hits++
		if f.Remaining > 0 {
			f.Remaining--
			if f.Remaining == 0 {
				fs.faults = append(fs.faults[:i], fs.faults[i+1:]...)
			}
		}
		out := f.Fault
		return &out
	}
	return nil
}

// InjectFault adds a fault and returns its ID. Faults are tried in the
// order they were added; a request triggers at most one.
func (s *Server) InjectFault(f Fault) (string, error) {
	if err := f.validate(); err != nil {
		return "", fmt.Errorf("twilioemu: inject fault: %w", err)
	}
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	st := &FaultStatus{ID: fmt.Sprintf("F%d", fs.nextID), Fault: f, Remaining: f.Count}
	switch {
	case f.Count == 0:
		st.Remaining = 1
	case f.Count < 0:
		st.Remaining = -1
	}
	fs.faults = append(fs.faults, st)
	return st.ID, nil
}

// RemoveFault removes one fault; it reports whether it was still there.
func (s *Server) RemoveFault(id string) bool {
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.faults {
		if f.ID == id {
			fs.faults = append(fs.faults[:i], fs.faults[i+1:]...)
			return true
		}
	}
	return false
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = nil
}

// Faults returns the faults that are still active.
func (s *Server) Faults() []FaultStatus {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make([]FaultStatus, 0, len(s.faults.faults))
	for _, f := range s.faults.faults {
		out = append(out, *f)
	}
	return out
}
