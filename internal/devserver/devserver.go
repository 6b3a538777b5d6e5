// Package devserver runs a complete Temporal server, and optionally the Temporal UI, inside the
// flexcord process, backed by SQLite. `flexcord dev` and the integration tests use it; production
// runs the worker against a real cluster instead.
//
// The server ships tuned for latency: with Temporal's defaults, history task processors poll at
// most 20 times a second per shard and task queues have four partitions, which adds a ~50 ms floor
// to every workflow step under steady traffic on a small machine.
package devserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// Options configure an embedded server. Zero values are sensible for tests.
type Options struct {
	// DataDir holds the SQLite database (temporal.db). Empty means in memory: nothing survives
	// the process.
	DataDir string
	// Namespace is created at start-up (default "default").
	Namespace string
	// IP the frontend and UI listen on (default 127.0.0.1).
	IP string
	// FrontendPort is the gRPC port clients dial (0 picks a free port).
	FrontendPort int
	// UIPort serves the Temporal UI when UI is set (0 picks a free port).
	UIPort int
	// UI enables the Temporal web UI.
	UI bool
	// SearchAttributes are registered on the namespace when it is created.
	SearchAttributes map[string]enumspb.IndexedValueType
	// LogLevel of the server's own logs: debug, info, warn, error or fatal (default warn).
	LogLevel string
	// Logger receives the server's own logs (at LogLevel and above), so that they share the
	// format of the process's other logs. Nil writes JSON to standard error.
	Logger *slog.Logger
	// Untuned runs with Temporal's default dynamic configuration, for side-by-side benchmarks.
	Untuned bool
	// Codec points the UI at a codec server, so that it shows encrypted payloads decoded.
	Codec UICodec
}

// UICodec is the codec server the Temporal UI decodes payloads through: flexcord ingress's
// /codec (see ingress.CodecConfig).
type UICodec struct {
	// Endpoint is the codec server's base URL, to which /encode and /decode are appended (e.g.
	// http://127.0.0.1:8080/codec). Empty: the UI shows payloads as they are stored.
	Endpoint string
	// Token, when set, is the endpoint's bearer token. The Temporal UI cannot send a fixed token
	// itself, so the UI's own address serves /codec/encode and /codec/decode and forwards them to
	// Endpoint with the token; the UI calls those. Whoever can reach the UI can then decode
	// payloads, as they can already read and change every workflow there. Without a token the
	// browser calls Endpoint directly.
	Token string
	// PassAccessToken and IncludeCredentials are the UI's settings of the same names, for a
	// browser that calls Endpoint directly: send the UI user's access token (only to https
	// endpoints), and send cookies cross-origin.
	PassAccessToken, IncludeCredentials bool
}

// Server is a running embedded Temporal server.
type Server struct {
	// FrontendAddr is the host:port of the frontend gRPC service.
	FrontendAddr string
	// UIURL is the address of the Temporal UI, empty without UI.
	UIURL string
	// Namespace is the namespace created at start-up.
	Namespace string

	server   temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{}
	uiFront  *http.Server
	stopping *atomic.Bool
}

// PortInUseError reports a port that another process holds.
type PortInUseError struct {
	What string
	Addr string
	Err  error
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("%s port %s is already in use: %v", e.What, e.Addr, e.Err)
}

func (e *PortInUseError) Unwrap() error { return e.Err }

// Start starts a server and returns once its frontend answers.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	var err error
	if opts.FrontendPort, err = claimPort(opts.IP, opts.FrontendPort, "Temporal frontend"); err != nil {
		return nil, err
	}
	if opts.UI {
		if opts.UIPort, err = claimPort(opts.IP, opts.UIPort, "Temporal UI"); err != nil {
			return nil, err
		}
	}

	sqlCfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{},
	}
	if opts.DataDir == "" {
		sqlCfg.DatabaseName = "flexcord-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		sqlCfg.ConnectAttributes["mode"] = "memory"
		sqlCfg.ConnectAttributes["cache"] = "shared"
	} else {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		sqlCfg.DatabaseName = filepath.Join(opts.DataDir, "temporal.db")
		sqlCfg.ConnectAttributes["mode"] = "rwc"
		// WAL with synchronous=NORMAL is about 1.5 times faster than the default FULL and still
		// survives a process crash (only an OS crash can lose the last transactions).
		sqlCfg.ConnectAttributes["journal_mode"] = "wal"
		sqlCfg.ConnectAttributes["synchronous"] = "normal"
		sqlCfg.ConnectAttributes["busy_timeout"] = "10000"
		if _, err := os.Stat(sqlCfg.DatabaseName); errors.Is(err, os.ErrNotExist) {
			if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
				return nil, fmt.Errorf("set up the SQLite schema in %s: %w", sqlCfg.DatabaseName, err)
			}
		}
	}

	cfg, err := serverConfig(opts, sqlCfg)
	if err != nil {
		return nil, err
	}
	ns, err := sqliteschema.NewNamespaceConfig(cfg.ClusterMetadata.CurrentClusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", opts.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", opts.Namespace, err)
	}

	start, stopping := newStartLog(), new(atomic.Bool)
	logger := newServerLogger(opts.Logger, opts.LogLevel, start, stopping)
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(dynamicConfig(opts.Untuned)),
	)
	if err != nil {
		return nil, fmt.Errorf("create Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		start.flush()
		return nil, fmt.Errorf("start Temporal server: %w", err)
	}
	s := &Server{
		FrontendAddr: net.JoinHostPort(opts.IP, strconv.Itoa(opts.FrontendPort)),
		Namespace:    opts.Namespace,
		server:       srv,
		stopping:     stopping,
	}
	if err := s.waitReady(ctx); err != nil {
		start.flush()
		stopping.Store(true)
		_ = srv.Stop()
		return nil, err
	}
	start.started()
	if opts.UI {
		if err := s.startUI(opts); err != nil {
			stopping.Store(true)
			_ = srv.Stop()
			return nil, err
		}
	}
	return s, nil
}

func dynamicConfig(untuned bool) dynamicconfig.StaticClient {
	if untuned {
		return dynamicconfig.StaticClient{
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		}
	}
	return TunedDynamicConfig()
}

// TunedDynamicConfig is the dynamic configuration the embedded server runs with.
func TunedDynamicConfig() dynamicconfig.StaticClient {
	one := []dynamicconfig.ConstrainedValue{{Value: 1}}
	fast := []dynamicconfig.ConstrainedValue{{Value: 1000}}
	return dynamicconfig.StaticClient{
		// History task processors: poll up to 1000 times a second instead of 20.
		dynamicconfig.TransferProcessorMaxPollRPS.Key():   fast,
		dynamicconfig.TimerProcessorMaxPollRPS.Key():      fast,
		dynamicconfig.VisibilityProcessorMaxPollRPS.Key(): fast,
		// One partition per task queue: with few pollers, four partitions add ~100 ms p95 to
		// tasks that miss the sticky queue.
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  one,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): one,
		// Search attributes registered at start-up are usable at once.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
	}
}

// servicePorts are the internal ports of the four services. With a data directory they are kept
// in ports.json and reused: the cluster membership is persisted with the database, and members
// at addresses that no longer answer hold up routing for most of a minute after a restart.
type servicePorts map[string][2]int // service name → gRPC port, membership port

func loadPorts(dataDir string) servicePorts {
	ports := servicePorts{}
	if dataDir == "" {
		return ports
	}
	if raw, err := os.ReadFile(filepath.Join(dataDir, "ports.json")); err == nil {
		_ = json.Unmarshal(raw, &ports)
	}
	return ports
}

func savePorts(dataDir string, ports servicePorts) {
	if dataDir == "" {
		return
	}
	raw, _ := json.Marshal(ports)
	_ = os.WriteFile(filepath.Join(dataDir, "ports.json"), raw, 0o644)
}

// reuse returns port if it is still free, else a free one.
func reuse(port int) (int, error) {
	if port > 0 {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			_ = ln.Close()
			return port, nil
		}
	}
	return freePort("127.0.0.1")
}

func serverConfig(opts Options, sqlCfg *config.SQL) (*config.Config, error) {
	services := map[string]config.Service{}
	ports := loadPorts(opts.DataDir)
	for i, name := range []string{"frontend", "history", "matching", "worker"} {
		grpcPort := opts.FrontendPort
		if i > 0 {
			p, err := reuse(ports[name][0])
			if err != nil {
				return nil, err
			}
			grpcPort = p
		}
		memberPort, err := reuse(ports[name][1])
		if err != nil {
			return nil, err
		}
		ports[name] = [2]int{grpcPort, memberPort}
		svc := config.Service{RPC: config.RPC{GRPCPort: grpcPort, MembershipPort: memberPort, BindOnLocalHost: true}}
		if i == 0 {
			svc.RPC.BindOnLocalHost = false
			svc.RPC.BindOnIP = opts.IP
		}
		services[name] = svc
	}
	savePorts(opts.DataDir, ports)
	frontend := net.JoinHostPort(opts.IP, strconv.Itoa(opts.FrontendPort))
	return &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: "127.0.0.1"},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        "active",
			CurrentClusterName:       "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            services,
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: frontend},
	}, nil
}

// waitReady polls the frontend until the namespace answers.
func (s *Server) waitReady(ctx context.Context) error {
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddr, Namespace: s.Namespace, Logger: nopLogger{}})
	if err != nil {
		return fmt.Errorf("dial embedded Temporal server: %w", err)
	}
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.WorkflowService().DescribeNamespace(cctx, &workflowservice.DescribeNamespaceRequest{Namespace: s.Namespace})
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("embedded Temporal server did not become ready: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) startUI(opts Options) error {
	cfg := &uiconfig.Config{
		TemporalGRPCAddress: s.FrontendAddr,
		Host:                opts.IP,
		Port:                opts.UIPort,
		EnableUI:            true,
		DefaultNamespace:    opts.Namespace,
		HideLogs:            true,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		DisableNewsFetch:    true,
	}
	cfg.Codec.Endpoint = opts.Codec.Endpoint
	cfg.Codec.PassAccessToken = opts.Codec.PassAccessToken
	cfg.Codec.IncludeCredentials = opts.Codec.IncludeCredentials
	s.UIURL = fmt.Sprintf("http://%s", net.JoinHostPort(opts.IP, strconv.Itoa(opts.UIPort)))
	var front net.Listener
	if opts.Codec.Endpoint != "" && opts.Codec.Token != "" {
		// The UI's address is served by front, which forwards the codec calls with the token
		// and everything else to the UI server on a port of its own.
		target, err := url.Parse(opts.Codec.Endpoint)
		if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
			return fmt.Errorf("codec endpoint %q: want an http(s) URL", opts.Codec.Endpoint)
		}
		addr := net.JoinHostPort(opts.IP, strconv.Itoa(opts.UIPort))
		if front, err = net.Listen("tcp", addr); err != nil {
			return &PortInUseError{What: "Temporal UI", Addr: addr, Err: err}
		}
		if cfg.Port, err = freePort("127.0.0.1"); err != nil {
			_ = front.Close()
			return err
		}
		cfg.Host = "127.0.0.1"
		// A path without scheme and host: the browser calls the address it shows the UI at,
		// whichever name it was opened with (127.0.0.1 or localhost). The UI appends /decode.
		cfg.Codec.Endpoint = uiCodecPath
		cfg.Codec.PassAccessToken, cfg.Codec.IncludeCredentials = false, false
		s.uiFront = &http.Server{
			Handler:           uiFront(fmt.Sprintf("http://127.0.0.1:%d", cfg.Port), target, opts.Codec.Token),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          log.New(io.Discard, "", 0),
		}
	}
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(cfg))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = s.ui.Start()
	}()
	if s.uiFront != nil {
		go func() { _ = s.uiFront.Serve(front) }()
	}
	return nil
}

// uiCodecPath is where the UI's address serves the codec calls it forwards.
const uiCodecPath = "/codec"

// uiFront serves the UI's address: POST /codec/encode and /codec/decode go to codec (its path
// prefix in place of /codec) with the bearer token, everything else to the UI server at ui.
func uiFront(ui string, codec *url.URL, token string) http.Handler {
	uiURL, _ := url.Parse(ui)
	unreachable := func(what string) func(http.ResponseWriter, *http.Request, error) {
		return func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, what+" not reachable: "+err.Error(), http.StatusBadGateway)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(uiURL)
			pr.Out.Host = pr.In.Host
		},
		ErrorHandler: unreachable("the Temporal UI server"),
	})
	toCodec := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(codec)
			pr.Out.URL.Path = strings.TrimSuffix(codec.Path, "/") + strings.TrimPrefix(pr.In.URL.Path, uiCodecPath)
			pr.Out.URL.RawPath = ""
			pr.Out.Header.Set("Authorization", "Bearer "+token)
			// The UI's cookies and origin are the UI's business, not the codec server's.
			pr.Out.Header.Del("Cookie")
			pr.Out.Header.Del("Origin")
		},
		ErrorHandler: unreachable("the codec endpoint " + codec.String()),
	}
	sameOrigin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The UI's own pages only: another site's page in the same browser is refused.
		if o := r.Header.Get("Origin"); o != "" {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				http.Error(w, "cross-origin codec call", http.StatusForbidden)
				return
			}
		}
		toCodec.ServeHTTP(w, r)
	})
	for _, op := range []string{"/encode", "/decode"} {
		mux.Handle("POST "+uiCodecPath+op, sameOrigin)
	}
	return mux
}

// FrontendPort is the port of FrontendAddr.
func (s *Server) FrontendPort() int {
	_, p, _ := net.SplitHostPort(s.FrontendAddr)
	n, _ := strconv.Atoi(p)
	return n
}

// Stop stops the UI and the server. What the server's services report while they go away one
// after the other (peers that no longer answer) is logged at debug level only.
func (s *Server) Stop() error {
	s.stopping.Store(true)
	if s.uiFront != nil {
		_ = s.uiFront.Close()
	}
	if s.ui != nil {
		s.ui.Stop()
		<-s.uiDone
	}
	return s.server.Stop()
}

// claimPort checks that ip:port is free (a port of 0 is replaced by a free one).
func claimPort(ip string, port int, what string) (int, error) {
	if port == 0 {
		return freePort(ip)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, &PortInUseError{What: what, Addr: addr, Err: err}
	}
	_ = ln.Close()
	return port, nil
}

// handedOut are the ports freePort returned.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a TCP port that is free on ip. It picks one between 20000 and 32767, below
// Linux's default range of ephemeral ports (32768 and up): the server binds the port a moment
// after this check, and a port of the ephemeral range can be taken in between as the local port
// of any outgoing connection on the machine (seen as "bind: address already in use" while other
// tests ran). Only when none is free there does it ask the kernel for one. It never returns a
// port it returned before in this process: a server asks for several at once and binds them
// only later.
func freePort(ip string) (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 200 {
		port := 20000 + rand.IntN(12768)
		if handedOut.ports[port] {
			continue
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
			_ = ln.Close()
			handedOut.ports[port] = true
			return port, nil
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// nopLogger silences the SDK client used for the readiness probe.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}
