package twilioemu

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiError is a Twilio REST error; it is written as the JSON body twilio-go
// decodes into client.TwilioRestError.
type apiError struct {
	Status  int
	Code    int
	Message string
	// RetryAfter is the Retry-After of a 429 answer in seconds (0: 1).
	RetryAfter int
}

func (e *apiError) Error() string {
	return fmt.Sprintf("twilio error %d (HTTP %d): %s", e.Code, e.Status, e.Message)
}

func (e *apiError) body() map[string]any {
	return map[string]any{
		"code":      e.Code,
		"message":   e.Message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", e.Code),
		"status":    e.Status,
	}
}

func errNotFound(path string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: 20404,
		Message: fmt.Sprintf("The requested resource %s was not found", path)}
}

func errInvalid(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: 20001, Message: fmt.Sprintf(format, args...)}
}

func errClosed(sid string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: 50377,
		Message: fmt.Sprintf("Can't update conversation %s as it's in final closed state", sid)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	switch e.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(max(e.RetryAfter, 1)))
	}
	writeJSON(w, e.Status, e.body())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":20500,"message":"Internal Server Error","more_info":"https://www.twilio.com/docs/errors/20500","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// call is one API request being handled.
type call struct {
	r       *http.Request
	host    string
	form    url.Values        // POST form body, or the query for GET/DELETE
	params  map[string]string // path parameters
	pattern string
	fault   *Fault // the fault that matched the request, if any
	body    []byte // the raw body (raw routes: an uploaded file)
}

func (c *call) param(name string) string { return c.params[name] }

// has reports whether the form carries key (even with an empty value).
func (c *call) has(key string) bool { _, ok := c.form[key]; return ok }

// webhookEnabled reports whether X-Twilio-Webhook-Enabled is "true".
func (c *call) webhookEnabled() bool {
	return strings.EqualFold(c.r.Header.Get("X-Twilio-Webhook-Enabled"), "true")
}

// path returns the request path for error messages.
func (c *call) path() string { return c.r.URL.Path }

type handlerFunc func(s *Server, c *call) (int, any)

type route struct {
	host, method, pattern string
	segs                  []string
	h                     handlerFunc
	// raw routes take any body (a file) instead of a form, up to
	// Options.MaxMediaSize.
	raw bool
}

// routes lists every API operation the emulator implements.
var routes = func() []route {
	rs := []route{
		{host: HostConversations, method: http.MethodPost, pattern: "/v1/Conversations", h: (*Server).createConversation},
		{host: HostConversations, method: http.MethodGet, pattern: "/v1/Conversations", h: (*Server).listConversations},
		{host: HostConversations, method: http.MethodGet, pattern: "/v1/Conversations/{Sid}", h: (*Server).fetchConversation},
		{host: HostConversations, method: http.MethodPost, pattern: "/v1/Conversations/{Sid}", h: (*Server).updateConversation},
		{host: HostConversations, method: http.MethodDelete, pattern: "/v1/Conversations/{Sid}", h: (*Server).deleteConversation},
		{host: HostConversations, method: http.MethodPost, pattern: "/v1/Conversations/{ConversationSid}/Participants", h: (*Server).createParticipant},
		{host: HostConversations, method: http.MethodGet, pattern: "/v1/Conversations/{ConversationSid}/Participants", h: (*Server).listParticipants},
		{host: HostConversations, method: http.MethodGet, pattern: "/v1/Conversations/{ConversationSid}/Participants/{Sid}", h: (*Server).fetchParticipant},
		{host: HostConversations, method: http.MethodDelete, pattern: "/v1/Conversations/{ConversationSid}/Participants/{Sid}", h: (*Server).deleteParticipant},
		{host: HostConversations, method: http.MethodPost, pattern: "/v1/Conversations/{ConversationSid}/Webhooks", h: (*Server).createWebhook},
		{host: HostConversations, method: http.MethodGet, pattern: "/v1/Conversations/{ConversationSid}/Webhooks", h: (*Server).listWebhooks},
		{host: HostConversations, method: http.MethodGet, pattern: "/v1/Conversations/{ConversationSid}/Webhooks/{Sid}", h: (*Server).fetchWebhook},
		{host: HostConversations, method: http.MethodDelete, pattern: "/v1/Conversations/{ConversationSid}/Webhooks/{Sid}", h: (*Server).deleteWebhook},
		{host: HostConversations, method: http.MethodPost, pattern: "/v1/Conversations/{ConversationSid}/Messages", h: (*Server).createMessage},
		{host: HostConversations, method: http.MethodGet, pattern: "/v1/Conversations/{ConversationSid}/Messages", h: (*Server).listMessages},
		{host: HostConversations, method: http.MethodGet, pattern: "/v1/Conversations/{ConversationSid}/Messages/{Sid}", h: (*Server).fetchMessage},
		{host: HostConversations, method: http.MethodDelete, pattern: "/v1/Conversations/{ConversationSid}/Messages/{Sid}", h: (*Server).deleteMessage},

		{host: HostFlex, method: http.MethodPost, pattern: "/v1/Interactions", h: (*Server).createInteraction},
		{host: HostFlex, method: http.MethodGet, pattern: "/v1/Interactions/{Sid}", h: (*Server).fetchInteraction},
		{host: HostFlex, method: http.MethodGet, pattern: "/v1/Interactions/{InteractionSid}/Channels", h: (*Server).listInteractionChannels},
		{host: HostFlex, method: http.MethodGet, pattern: "/v1/Interactions/{InteractionSid}/Channels/{Sid}", h: (*Server).fetchInteractionChannel},
		{host: HostFlex, method: http.MethodPost, pattern: "/v1/Interactions/{InteractionSid}/Channels/{Sid}", h: (*Server).updateInteractionChannel},
		{host: HostFlex, method: http.MethodGet, pattern: "/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Participants", h: (*Server).listChannelParticipants},
		{host: HostFlex, method: http.MethodPost, pattern: "/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Participants", h: (*Server).createChannelParticipant},
		{host: HostFlex, method: http.MethodPost, pattern: "/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Participants/{Sid}", h: (*Server).updateChannelParticipant},

		{host: HostTaskRouter, method: http.MethodGet, pattern: "/v1/Workspaces/{Sid}", h: (*Server).fetchWorkspace},
		{host: HostTaskRouter, method: http.MethodPost, pattern: "/v1/Workspaces/{Sid}", h: (*Server).updateWorkspace},
		{host: HostTaskRouter, method: http.MethodGet, pattern: "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}", h: (*Server).fetchTask},
		{host: HostTaskRouter, method: http.MethodPost, pattern: "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}", h: (*Server).updateTask},

		{host: HostMCS, method: http.MethodPost, pattern: "/v1/Services/{ChatServiceSid}/Media", h: (*Server).createMedia, raw: true},
		{host: HostMCS, method: http.MethodGet, pattern: "/v1/Services/{ChatServiceSid}/Media/{Sid}", h: (*Server).fetchMedia},
		{host: HostMCS, method: http.MethodGet, pattern: "/v1/Services/{ChatServiceSid}/Media/{Sid}/Content", h: (*Server).fetchMediaContent},
	}
	for i := range rs {
		rs[i].segs = splitPath(rs[i].pattern)
	}
	return rs
}()

func splitPath(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

// matchSegs matches path segments against pattern segments, where "{name}"
// and "*" match any one segment. It returns the named values.
func matchSegs(pattern, path []string) (map[string]string, bool) {
	if len(pattern) != len(path) {
		return nil, false
	}
	var params map[string]string
	for i, p := range pattern {
		switch {
		case p == "*":
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			if path[i] == "" {
				return nil, false
			}
			if params == nil {
				params = make(map[string]string)
			}
			params[p[1:len(p)-1]] = path[i]
		case p != path[i]:
			return nil, false
		}
	}
	return params, true
}

// findRoute returns the route for host, method and path; pathKnown reports
// whether the path exists at all (with this or another method).
func findRoute(host, method, path string) (rt *route, params map[string]string, pathKnown bool) {
	segs := splitPath(path)
	for i := range routes {
		r := &routes[i]
		if r.host != host {
			continue
		}
		p, ok := matchSegs(r.segs, segs)
		if !ok {
			continue
		}
		pathKnown = true
		if r.method == method {
			return r, p, true
		}
	}
	return nil, nil, pathKnown
}

func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	if eq(user, s.opts.AccountSID) && eq(pass, s.opts.AuthToken) {
		return true
	}
	return s.opts.APIKeySID != "" && eq(user, s.opts.APIKeySID) && eq(pass, s.opts.APIKeySecret)
}

const maxBody = 1 << 20

// serveAPI runs one REST call through authentication, contract validation,
// fault injection and its handler.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, host string) {
	rt, params, pathKnown := findRoute(host, r.Method, r.URL.Path)
	limit := int64(maxBody)
	if rt != nil && rt.raw {
		limit = s.opts.MaxMediaSize
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeError(w, errInvalid("could not read the request body"))
		return
	}
	if int64(len(body)) > limit {
		if rt != nil && rt.raw {
			writeError(w, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeMediaTooBig,
				Message: fmt.Sprintf("Media size exceeds the limit of %d bytes", limit)})
			return
		}
		writeError(w, errInvalid("could not read the request body"))
		return
	}
	label := r.Method + " " + host + r.URL.Path
	if !s.authorized(r) {
		s.log.Debug("unauthenticated request", "request", label)
		writeError(w, &apiError{Status: http.StatusUnauthorized, Code: 20003, Message: "Authenticate"})
		return
	}
	if s.spec != nil {
		if err := s.spec.checkRequest(host, r, body); err != nil {
			s.addViolation(label, err)
		}
	}
	if rt == nil {
		if pathKnown {
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: 20004, Message: "Method not allowed"})
			return
		}
		writeError(w, errNotFound(r.URL.Path))
		return
	}

	f := s.faults.take(host, r.Method, r.URL.Path)
	if f != nil && !f.After {
		s.log.Info("injecting fault before the operation", "request", label, "status", f.Status, "latency", f.Latency)
		if !sleepCtx(r.Context(), f.Latency) {
			return
		}
		if f.Status != 0 {
			writeError(w, f.apiError())
			return
		}
	}

	c := &call{r: r, host: host, params: params, pattern: rt.pattern, fault: f, body: body}
	if r.Method == http.MethodPost && !rt.raw {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "" && mt != "application/x-www-form-urlencoded" {
			writeError(w, &apiError{Status: http.StatusUnsupportedMediaType, Code: 20415,
				Message: "Unsupported media type " + mt})
			return
		}
		c.form, err = url.ParseQuery(string(body))
		if err != nil {
			writeError(w, errInvalid("malformed form body: %v", err))
			return
		}
	} else {
		c.form = r.URL.Query()
	}

	status, v := rt.h(s, c)

	if f != nil && f.After {
		s.log.Info("injecting fault after the operation", "request", label, "status", f.Status, "latency", f.Latency)
		if !sleepCtx(r.Context(), f.Latency) {
			return
		}
		if f.Status != 0 {
			writeError(w, f.apiError())
			return
		}
	}
	if e, ok := v.(*apiError); ok {
		s.log.Debug("API error", "request", label, "status", e.Status, "code", e.Code, "message", e.Message)
		writeError(w, e)
		return
	}
	s.writeResult(w, r, host, label, status, v)
}

func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, host, label string, status int, v any) {
	h := w.Header()
	h.Set("Twilio-Request-Id", newSID(prefixRequest))
	if host == HostTaskRouter {
		h.Set("X-Rate-Limit-Limit", "50")
		h.Set("X-Rate-Limit-Remaining", "49")
		h.Set("X-Rate-Limit-Config", "TaskRouter")
	}
	if raw, isRaw := v.(rawContent); isRaw {
		writeContent(w, r, raw)
		return
	}
	if status == http.StatusNoContent {
		if s.spec != nil {
			if err := s.spec.checkResponse(host, r, status, h, nil); err != nil {
				s.addViolation(label, err)
			}
		}
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode response", "request", label, "err", err)
		writeError(w, &apiError{Status: http.StatusInternalServerError, Code: 20500, Message: "Internal Server Error"})
		return
	}
	h.Set("Content-Type", "application/json")
	if s.spec != nil {
		if err := s.spec.checkResponse(host, r, status, h, b); err != nil {
			s.addViolation(label, err)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// sleepCtx waits for d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// page is the paging state of a list request.
type page struct {
	number, size int
}

// readPage reads Page and PageSize (default 50, at most maxSize).
func readPage(c *call, maxSize int) (page, *apiError) {
	p := page{size: 50}
	if v := c.form.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, errInvalid("Invalid PageSize %q", v)
		}
		p.size = min(n, maxSize)
	}
	if v := c.form.Get("Page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, errInvalid("Invalid Page %q", v)
		}
		p.number = n
	}
	return p, nil
}

// bounds returns the slice bounds of this page in a list of n items.
func (p page) bounds(n int) (lo, hi int) {
	lo = min(p.number*p.size, n)
	hi = min(lo+p.size, n)
	return lo, hi
}

// meta builds the "meta" block of a list response. extra holds query
// parameters (such as Order) repeated in every page URL.
func (p page) meta(base, key string, n int, extra url.Values) map[string]any {
	pageURL := func(number int) string {
		q := url.Values{}
		for k, v := range extra {
			q[k] = v
		}
		q.Set("PageSize", strconv.Itoa(p.size))
		q.Set("Page", strconv.Itoa(number))
		if number > 0 {
			q.Set("PageToken", "PT"+strconv.Itoa(number*p.size))
		}
		return base + "?" + q.Encode()
	}
	var next, prev any
	if (p.number+1)*p.size < n {
		next = pageURL(p.number + 1)
	}
	if p.number > 0 {
		prev = pageURL(p.number - 1)
	}
	return map[string]any{
		"page":              p.number,
		"page_size":         p.size,
		"first_page_url":    pageURL(0),
		"previous_page_url": prev,
		"next_page_url":     next,
		"url":               pageURL(p.number),
		"key":               key,
	}
}

// nullable returns nil for "" so that JSON gets null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// splitList splits a comma-separated list and trims its items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// validJSON reports whether s is valid JSON.
func validJSON(s string) bool { return json.Valid([]byte(s)) }
