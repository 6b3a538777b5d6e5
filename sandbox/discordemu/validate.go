package discordemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/flexcord/flexcord/sandbox/oapi"
)

// DefaultSpecPath returns the path of the vendored Discord OpenAPI spec
// (testdata/openapi.json next to this package's sources). It is meant for
// tests in this repository; binaries built with -trimpath cannot use it.
func DefaultSpecPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "openapi.json")
}

var specCache sync.Map // path → *specEntry

type specEntry struct {
	once sync.Once
	spec *oapi.Spec
	err  error
}

// LoadSpec loads the Discord OpenAPI spec at path, configured for the
// emulator: /api/v9 mapped to /api/v10, and default_member_permissions
// accepted as a string of digits (the API documents and discordgo sends a
// string; the spec says integer), and field errors of 50035 bodies accepted
// with string codes such as "BASE_TYPE_MAX_LENGTH" (as the API and its docs
// send them; the spec's Error schema says integer). Specs are cached per path, so every
// Server in a test binary shares one.
func LoadSpec(path string) (*oapi.Spec, error) {
	v, _ := specCache.LoadOrStore(path, &specEntry{})
	e := v.(*specEntry)
	e.once.Do(func() {
		e.spec, e.err = oapi.Load(path, oapi.Options{
			RewritePath:    rewriteV9,
			CoerceRequest:  coerceDiscordRequest,
			CoerceResponse: coerceDiscordResponse,
		})
		if e.err != nil {
			e.err = fmt.Errorf("load Discord spec: %w", e.err)
		}
	})
	return e.spec, e.err
}

// rewriteV9 maps discordgo's API v9 paths onto the spec's v10 paths.
func rewriteV9(p string) string {
	if rest, found := strings.CutPrefix(p, "/api/v9/"); found {
		return "/api/v10/" + rest
	}
	return p
}

// coerceDiscordRequest turns default_member_permissions strings into
// numbers in application command bodies, and numeric attachment ids (the
// n of files[n], which the docs give as numbers) into strings in message
// bodies.
func coerceDiscordRequest(op oapi.Operation, mediaType string, body []byte) []byte {
	if mediaType != "application/json" {
		return body
	}
	if !strings.Contains(op.Path, "/commands") {
		return coerceAttachmentIDs(body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	fix := func(c any) {
		m, isMap := c.(map[string]any)
		if !isMap {
			return
		}
		if p, isString := m["default_member_permissions"].(string); isString && p != "" && strings.Trim(p, "0123456789") == "" {
			m["default_member_permissions"] = json.Number(p)
		}
	}
	if list, isList := v.([]any); isList {
		for _, c := range list {
			fix(c)
		}
	} else {
		fix(v)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// coerceAttachmentIDs rewrites {"attachments":[{"id":0}]} (at any depth,
// for interaction responses) as {"attachments":[{"id":"0"}]}: the docs type
// the id "snowflake or number", the spec a string.
func coerceAttachmentIDs(body []byte) []byte {
	if !bytes.Contains(body, []byte(`"attachments"`)) {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	changed := false
	var walk func(any)
	walk = func(n any) {
		m, isMap := n.(map[string]any)
		if !isMap {
			return
		}
		for k, child := range m {
			if list, isList := child.([]any); isList && k == "attachments" {
				for _, a := range list {
					if am, isMap := a.(map[string]any); isMap {
						if id, isNumber := am["id"].(json.Number); isNumber {
							am["id"] = id.String()
							changed = true
						}
					}
				}
				continue
			}
			walk(child)
		}
	}
	walk(v)
	if !changed {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// coerceDiscordResponse replaces the string codes of field errors
// ({"errors":{"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH",...}]}}})
// with 0 so that the rest of the error body is still checked.
func coerceDiscordResponse(_ oapi.Operation, mediaType string, body []byte) []byte {
	if mediaType != "application/json" || !bytes.Contains(body, []byte(`"_errors"`)) {
		return body
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		return body
	}
	var walk func(any)
	walk = func(n any) {
		m, isMap := n.(map[string]any)
		if !isMap {
			return
		}
		for k, child := range m {
			if k != "_errors" {
				walk(child)
				continue
			}
			list, _ := child.([]any)
			for _, e := range list {
				if em, isMap := e.(map[string]any); isMap {
					if _, isString := em["code"].(string); isString {
						em["code"] = 0
					}
				}
			}
		}
	}
	walk(v["errors"])
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// validateRequest checks a request against the spec. A multipart/form-data
// body is checked as its JSON payload (payload_json), since the spec's
// multipart schemas describe files[n] beside the JSON fields, and its file
// parts must be named files[n].
func (s *Server) validateRequest(r *http.Request, body []byte) {
	if s.spec == nil {
		return
	}
	if isMultipart(r) {
		ct := r.Header.Get("Content-Type")
		for _, p := range formProblems(ct, body) {
			s.recordViolation(fmt.Sprintf("request %s %s: %s", r.Method, r.URL.Path, p))
		}
		payload, _, err := readForm(ct, body)
		if err != nil {
			s.recordViolation(fmt.Sprintf("request %s %s: malformed multipart/form-data body: %v", r.Method, r.URL.Path, err))
			return
		}
		jr := r.Clone(r.Context())
		jr.Header.Set("Content-Type", "application/json")
		r, body = jr, payload
	}
	if err := s.spec.ValidateRequest(r, body); err != nil {
		s.recordViolation(err.Error())
	}
}

func (s *Server) validateResponse(r *http.Request, status int, header http.Header, body []byte) {
	if s.spec == nil {
		return
	}
	if err := s.spec.ValidateResponse(r, status, header, body); err != nil {
		s.recordViolation(err.Error())
	}
}

func (s *Server) recordViolation(v string) {
	s.log.Warn("discord emulator: contract violation", "violation", v)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, v)
	s.publishLocked(Event{Type: EventViolation, Detail: v})
}

// Violations returns the contract violations seen so far: requests and
// responses that do not match the OpenAPI spec, and calls to routes the
// emulator does not implement.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// TakeViolations returns the violations seen so far and forgets them (for
// tests that provoke one on purpose).
func (s *Server) TakeViolations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.violations
	s.violations = nil
	return v
}

// CheckContracts makes t fail at cleanup if any contract violation was
// recorded (and not taken with TakeViolations) by then.
func (s *Server) CheckContracts(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		for _, v := range s.Violations() {
			t.Errorf("Discord contract violation: %s", v)
		}
	})
}

// NewTest starts a Server for a test on a free local port, validating
// against the vendored spec (unless opts.Spec or opts.SpecPath say
// otherwise), closes it at cleanup and fails the test on contract
// violations.
func NewTest(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Spec == nil && opts.SpecPath == "" {
		opts.SpecPath = DefaultSpecPath()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("new Discord emulator: %v", err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("start Discord emulator: %v", err)
	}
	s.CheckContracts(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}
