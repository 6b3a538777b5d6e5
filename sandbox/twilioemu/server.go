package twilioemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Product host names served by the emulator.
const (
	HostConversations = "conversations.twilio.com"
	HostFlex          = "flex-api.twilio.com"
	HostTaskRouter    = "taskrouter.twilio.com"
	// HostMCS is the Media Content Service, which Twilio serves as
	// mcs.us1.twilio.com (any edge/region labels match).
	HostMCS = "mcs.twilio.com"
	// HostMedia serves the temporary media URLs of the Media Content
	// Service (media.us1.twilio.com/{MediaSid}?Expires=...).
	HostMedia = "media.twilio.com"
)

// ControlPrefix is the path prefix of the emulator's JSON control API.
const ControlPrefix = "/_emu/twilio/"

// Server is the Twilio emulator. It is an http.Handler; [Server.Start]
// serves it on a TCP address. All methods are safe for concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	spec    *contract // nil when validation is off
	faults  faultSet
	events  broker
	hooks   *deliverer
	control *http.ServeMux

	// Fixed SIDs of the simulated Flex account.
	chatServiceSID string
	queueSID       string
	taskChannelSID string
	activitySID    string

	mu            sync.Mutex
	conversations map[string]*conversation // by SID
	uniqueNames   map[string]string        // unique name → SID
	convOrder     []string
	interactions  map[string]*interaction
	tasks         map[string]*task
	taskOrder     []string
	workers       map[string]*worker // by name
	workspace     workspace
	media         map[string]*media // by SID
	mediaKey      []byte            // signs temporary media URLs
	violations    []string
	checked       int // violations already reported by CheckViolations

	clockMu     sync.Mutex
	clockOffset time.Duration // added to the wall clock by AdvanceClock

	lifeMu   sync.Mutex
	srv      *http.Server
	baseURL  string
	closing  chan struct{}
	closed   bool
	serveErr chan error
}

// New returns an emulator configured by opts. It does not listen anywhere
// until [Server.Start] is called; it can also be mounted as a handler.
func New(opts Options) (*Server, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("twilioemu: invalid options: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WorkspaceSID == "" {
		opts.WorkspaceSID = newSID(prefixWorkspace)
	}
	if opts.WorkflowSID == "" {
		opts.WorkflowSID = newSID(prefixWorkflow)
	}
	if opts.MaxMediaSize <= 0 {
		opts.MaxMediaSize = DefaultMaxMediaSize
	}
	if opts.MediaURLLifetime <= 0 {
		opts.MediaURLLifetime = DefaultMediaURLLifetime
	}
	opts.Retry = opts.Retry.withDefaults()
	s := &Server{
		opts:           opts,
		log:            opts.Logger.With("component", "twilioemu"),
		chatServiceSID: newSID(prefixChatService),
		queueSID:       newSID(prefixTaskQueue),
		taskChannelSID: newSID(prefixTaskChannel),
		activitySID:    newSID(prefixActivity),
		conversations:  make(map[string]*conversation),
		uniqueNames:    make(map[string]string),
		interactions:   make(map[string]*interaction),
		tasks:          make(map[string]*task),
		workers:        make(map[string]*worker),
		media:          make(map[string]*media),
		mediaKey:       []byte(newSID("")),
		closing:        make(chan struct{}),
	}
	now := s.now()
	s.workspace = workspace{
		sid:              opts.WorkspaceSID,
		friendlyName:     "Flex Task Assignment",
		eventCallbackURL: opts.EventCallbackURL,
		eventsFilter:     opts.EventsFilter,
		multiTask:        true,
		queueOrder:       "FIFO",
		created:          now,
		updated:          now,
	}
	if opts.SpecDir != "" {
		c, err := loadContract(opts.SpecDir)
		if err != nil {
			return nil, fmt.Errorf("twilioemu: %w", err)
		}
		s.spec = c
	}
	client := opts.WebhookClient
	if client == nil {
		client = &http.Client{}
	}
	s.control = s.newControlMux()
	s.hooks = newDeliverer(client, opts.AuthToken, opts.Retry, s.log, s.deliveryUpdated)
	go s.runTimers(opts.TimerInterval)
	return s, nil
}

// Start serves the emulator on addr (for example "127.0.0.1:0" for a free
// port) in the background. Use [Server.URL] for the address it got.
func (s *Server) Start(addr string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return errors.New("twilioemu: server is closed")
	}
	if s.srv != nil {
		return errors.New("twilioemu: server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("twilioemu: listen on %s: %w", addr, err)
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.baseURL = "http://" + ln.Addr().String()
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.srv.Serve(ln) }()
	s.log.Info("twilio emulator listening", "url", s.baseURL)
	return nil
}

// URL returns the base URL ("http://127.0.0.1:PORT") the emulator listens
// on, or "" before [Server.Start].
func (s *Server) URL() string {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.baseURL
}

// Transport returns a RoundTripper that sends requests for the Twilio
// product hosts to this emulator (see the package documentation). It needs
// [Server.Start]; for an emulator mounted elsewhere use [NewTransport].
func (s *Server) Transport() http.RoundTripper {
	return NewTransport(s.URL(), nil)
}

// Close stops the listener, waits for webhook deliveries in progress (they
// are abandoned, not retried) and ends all subscriptions.
func (s *Server) Close() error {
	s.lifeMu.Lock()
	if s.closed {
		s.lifeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	srv := s.srv
	s.lifeMu.Unlock()

	var err error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e := srv.Shutdown(ctx); e != nil {
			err = fmt.Errorf("twilioemu: shut down: %w", e)
			_ = srv.Close()
		}
		if e := <-s.serveErr; e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = errors.Join(err, fmt.Errorf("twilioemu: serve: %w", e))
		}
	}
	s.hooks.close()
	s.events.close()
	return err
}

// ServeHTTP serves the Twilio REST APIs (dispatched by Host) and, under
// [ControlPrefix] on any host, the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ControlPrefix) || r.URL.Path == strings.TrimSuffix(ControlPrefix, "/") {
		s.serveControl(w, r)
		return
	}
	host := productHost(r.Host)
	switch host {
	case "":
		writeError(w, &apiError{Status: http.StatusNotFound, Code: 20404,
			Message: fmt.Sprintf("The requested host %s is not emulated", r.Host)})
	case HostMedia:
		s.serveTemporaryMedia(w, r)
	default:
		s.serveAPI(w, r, host)
	}
}

// productHost maps a Host header to the canonical product host it names
// ("conversations.twilio.com" for "conversations.us1.twilio.com:443"), or
// "" if it names none.
func productHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	if !strings.HasSuffix(host, ".twilio.com") {
		return ""
	}
	product, _, _ := strings.Cut(host, ".")
	switch product + ".twilio.com" {
	case HostConversations, HostFlex, HostTaskRouter, HostMCS, HostMedia:
		return product + ".twilio.com"
	}
	return ""
}

// NewTransport returns a RoundTripper that rewrites requests for the Twilio
// product hosts (conversations, flex-api, taskrouter, mcs and media
// .twilio.com, with any edge/region labels) to the
// emulator at baseURL, keeping the original Host header, and passes every
// other request to base (http.DefaultTransport when nil).
func NewTransport(baseURL string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	target, err := url.Parse(baseURL)
	if err != nil || target.Host == "" {
		return errTransport{fmt.Errorf("twilioemu: invalid emulator URL %q (is the server started?)", baseURL)}
	}
	return &rewriteTransport{base: base, target: target}
}

type rewriteTransport struct {
	base   http.RoundTripper
	target *url.URL
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if productHost(req.URL.Host) == "" {
		return t.base.RoundTrip(req)
	}
	out := req.Clone(req.Context())
	out.Host = req.URL.Host
	out.URL.Scheme = t.target.Scheme
	out.URL.Host = t.target.Host
	return t.base.RoundTrip(out)
}

type errTransport struct{ err error }

func (t errTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return nil, t.err
}
