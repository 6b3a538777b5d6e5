package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

// syncBuffer is a bytes.Buffer that a running command and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// role is a flexcord command running in the test's process, as its own process would.
type role struct {
	name           string
	url            string // http://<its FLEXCORD_HTTP_ADDR>
	stdout, stderr *syncBuffer
	done           chan error
	cancel         context.CancelFunc
}

// startRole runs `flexcord args…` until the test ends (or stop), and waits until it listens.
// Its logs are JSON; the address comes from its "… listening" line.
func startRole(t *testing.T, args ...string) *role {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &role{name: args[0], stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- run(ctx, args, r.stdout, r.stderr) }()
	t.Cleanup(func() { r.stop(t) })
	var exited error
	waitFor(t, 30*time.Second, r.name+" listening", func() bool {
		select {
		case err := <-r.done:
			exited = fmt.Errorf("exited: %v", err)
			r.done <- err
			return true
		default:
		}
		for _, e := range logEntries(r.stderr.String()) {
			if strings.HasSuffix(fmt.Sprint(e["msg"]), " listening") && e["addr"] != nil {
				r.url = "http://" + fmt.Sprint(e["addr"])
				return true
			}
		}
		return false
	})
	if exited != nil {
		t.Fatalf("flexcord %s %v\n%s", strings.Join(args, " "), exited, r.stderr.String())
	}
	return r
}

// stop cancels the role and waits for it to return.
func (r *role) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("flexcord %s: %v", r.name, err)
		}
		close(r.done)
	case <-time.After(30 * time.Second):
		t.Errorf("flexcord %s did not stop within 30 s", r.name)
	}
}

// logEntries parses JSON log lines (other lines are skipped).
func logEntries(logs string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// get fetches url and returns its status and body (status 0 when it cannot connect).
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// waitReadyz polls url/readyz until its answer has status and contains every want (and, with
// status 200, until it says "ready"). It returns the last body.
func waitReadyz(t *testing.T, url string, status int, want ...string) string {
	t.Helper()
	var body string
	var code int
	waitFor(t, 30*time.Second, fmt.Sprintf("%s/readyz to answer %d with %q", url, status, want), func() bool {
		code, body = get(url + "/readyz")
		if code != status {
			return false
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	})
	return body
}

func startSandbox(t *testing.T, opts devstack.SandboxOptions) *devstack.Sandbox {
	t.Helper()
	sb, err := devstack.StartSandbox(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	return sb
}

// shortRetries makes the start-up loops retry every few milliseconds for one test.
func shortRetries(t *testing.T) {
	initial, maxWait := retryInitial, retryMax
	retryInitial, retryMax = 20*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { retryInitial, retryMax = initial, maxWait })
}

// TestRolesStartWithoutTemporal: with Temporal unreachable, each role starts, answers /healthz
// and says in /readyz that Temporal is what is missing; its retries are logged once per back-off
// step, each step twice as long as the one before.
func TestRolesStartWithoutTemporal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the roles")
	}
	t.Setenv("TEMPORAL_ADDRESS", closedAddr(t))
	sb := startSandbox(t, devstack.SandboxOptions{})
	for _, args := range [][]string{
		{"worker", "--http-addr", "127.0.0.1:0"},
		{"ingress", "--http-addr", "127.0.0.1:0"},
		{"gateway", "--http-addr", "127.0.0.1:0", "--sandbox-url", sb.URL},
	} {
		t.Run(args[0], func(t *testing.T) {
			r := startRole(t, args...)
			if code, body := get(r.url + "/healthz"); code != http.StatusOK {
				t.Fatalf("/healthz = %d %q", code, body)
			}
			want := []string{"temporal: unreachable (", "connection refused"}
			if args[0] == "worker" {
				want = append(want, "worker: not running (",
					"discord: not configured (set DISCORD_TOKEN and DISCORD_APPLICATION_ID): this worker cannot run ", "SendDirectMessage",
					"twilio: not configured", "CreateFlexInteraction")
			}
			body := waitReadyz(t, r.url, http.StatusServiceUnavailable, want...)
			t.Logf("%s /readyz:\n%s", args[0], body)
			switch args[0] {
			case "worker":
				// One line per attempt, each wait twice the one before: 1 s, then 2 s.
				var waits []string
				waitFor(t, 10*time.Second, "two retries logged", func() bool {
					waits = nil
					for _, e := range logEntries(r.stderr.String()) {
						if e["msg"] == "worker not running; retrying" {
							waits = append(waits, fmt.Sprint(e["retry_in"]))
						}
					}
					return len(waits) >= 2
				})
				if waits[0] != "1s" || waits[1] != "2s" {
					t.Errorf("retry waits %q, want 1s then 2s", waits)
				}
			case "gateway":
				// Discord answers: the gateway connects although Temporal does not.
				body = waitReadyz(t, r.url, http.StatusServiceUnavailable, "temporal: unreachable")
				waitFor(t, 20*time.Second, "the gateway connected", func() bool {
					_, body = get(r.url + "/readyz")
					return !strings.Contains(body, "discord gateway")
				})
			}
			if code, _ := get(r.url + "/metrics"); code != http.StatusOK {
				t.Errorf("/metrics = %d", code)
			}
		})
	}
}

// TestGatewayRetriesUntilDiscordAnswers: Discord failing at start does not stop the gateway; it
// says so in /readyz and connects once Discord answers.
func TestGatewayRetriesUntilDiscordAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the gateway")
	}
	shortRetries(t)
	t.Setenv("TEMPORAL_ADDRESS", closedAddr(t))
	sb := startSandbox(t, devstack.SandboxOptions{})
	sb.Discord.InjectFault(discordemu.Fault{Route: discordemu.RouteGateway, Status: http.StatusBadGateway, Count: 1 << 20})
	r := startRole(t, "gateway", "--http-addr", "127.0.0.1:0", "--sandbox-url", sb.URL)
	if code, _ := get(r.url + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	body := waitReadyz(t, r.url, http.StatusServiceUnavailable, "temporal: unreachable (", "discord gateway: not connected (", "502")
	t.Logf("/readyz while Discord fails:\n%s", body)
	if n := len(sb.Discord.GatewaySessions()); n != 0 {
		t.Fatalf("%d gateway sessions while Discord fails", n)
	}
	sb.Discord.ClearFaults()
	waitFor(t, 20*time.Second, "the gateway connected", func() bool {
		_, body = get(r.url + "/readyz")
		return !strings.Contains(body, "discord gateway") && connectedSessions(sb.Discord) == 1
	})
}

func connectedSessions(emu *discordemu.Server) int {
	n := 0
	for _, s := range emu.GatewaySessions() {
		if s.Connected {
			n++
		}
	}
	return n
}

// TestIngressReplicasOpenNoGateway: two ingress processes with the bot token never open a
// gateway connection; one asked to (FLEXCORD_INGRESS_GATEWAY) opens exactly one.
func TestIngressReplicasOpenNoGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ingress")
	}
	t.Setenv("TEMPORAL_ADDRESS", closedAddr(t))
	sb := startSandbox(t, devstack.SandboxOptions{})
	var replicas []*role
	for range 2 {
		r := startRole(t, "ingress", "--http-addr", "127.0.0.1:0", "--sandbox-url", sb.URL)
		replicas = append(replicas, r)
		// Set up with the sandbox's token and key: Discord's route answers (401 for an
		// unsigned request), and only Temporal is missing.
		body := waitReadyz(t, r.url, http.StatusServiceUnavailable, "temporal: unreachable")
		if strings.Contains(body, "sandbox") || strings.Contains(body, "discord gateway") {
			t.Fatalf("replica /readyz:\n%s", body)
		}
		resp, err := http.Post(r.url+"/discord/interactions", "application/json", strings.NewReader(`{"type":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unsigned interaction: %d, want 401", resp.StatusCode)
		}
	}
	for _, r := range replicas {
		if !strings.Contains(r.stderr.String(), "the gateway connection (DMs) is `flexcord gateway`'s") {
			t.Errorf("replica does not say that the gateway is not its own:\n%s", r.stderr.String())
		}
	}
	// The same setting with the gateway asked for opens one connection, which shows that the
	// emulator would have seen the replicas' had they opened any.
	single := startRole(t, "ingress", "--http-addr", "127.0.0.1:0", "--sandbox-url", sb.URL, "--gateway")
	waitFor(t, 20*time.Second, "the single ingress's gateway connection", func() bool {
		_, body := get(single.url + "/readyz")
		return connectedSessions(sb.Discord) >= 1 && !strings.Contains(body, "discord gateway")
	})
	if n := len(sb.Discord.GatewaySessions()); n != 1 {
		t.Fatalf("%d gateway sessions, want 1 (the replicas opened some)", n)
	}
}

// TestRolesThroughSandbox: worker, ingress and gateway as separate roles, pointed at a sandbox
// by FLEXCORD_SANDBOX_URL alone, carry a member from /helpme through the bot to a Flex agent and
// back.
func TestRolesThroughSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal, the sandbox and the roles")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: worker.SearchAttributeTypes(), LogLevel: "fatal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	t.Setenv("TEMPORAL_ADDRESS", srv.FrontendAddr)
	t.Setenv("TEMPORAL_NAMESPACE", srv.Namespace)
	t.Setenv("FLEXCORD_BLOB_DIR", t.TempDir()) // the worker's transcripts, not in the source tree
	ingressAddr := closedAddr(t)               // free now; ingress takes it below
	sb := startSandbox(t, devstack.SandboxOptions{IngressURL: "http://" + ingressAddr})

	w := startRole(t, "worker", "--http-addr", "127.0.0.1:0", "--sandbox-url", sb.URL)
	in := startRole(t, "ingress", "--http-addr", ingressAddr, "--sandbox-url", sb.URL)
	gw := startRole(t, "gateway", "--http-addr", "127.0.0.1:0", "--sandbox-url", sb.URL)
	for _, r := range []*role{w, in, gw} {
		waitReadyz(t, r.url, http.StatusOK, "ready")
	}

	dc, tw := sb.Discord, sb.Twilio
	member := devstack.SandboxMembers[0]
	botSaid := func(s string) bool {
		for _, r := range dc.UserMessages(member.ID) {
			if r.FromBot && strings.Contains(r.Message.Content, s) {
				return true
			}
		}
		return false
	}
	if _, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "helpme", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxGeneralChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the greeting DM", func() bool { return botSaid("Hi Mika") })

	if _, err := dc.SendDM(member.ID, "I forgot my password and can't log in"); err != nil {
		t.Fatal(err)
	}
	var answer discordemu.Record
	waitFor(t, 30*time.Second, "the bot's answer to the DM (through the gateway role)", func() bool {
		for _, r := range dc.UserMessages(member.ID) {
			if r.FromBot && strings.Contains(r.Message.Content, "Here's what I found") {
				answer = r
				return true
			}
		}
		return false
	})

	if _, err := dc.ClickButton(ctx, member.ID, discordemu.ButtonInput{MessageID: answer.Message.ID, CustomID: workflows.ButtonCustomID(workflows.ActionTalkToHuman, 0)}); err != nil {
		t.Fatal(err)
	}
	var task twilioemu.TaskView
	waitFor(t, 30*time.Second, "the Flex task", func() bool {
		tasks := tw.Tasks(twilioemu.TaskWaiting)
		if len(tasks) > 0 {
			task = tasks[0]
		}
		return len(tasks) > 0
	})
	if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "Ana joined", func() bool { return botSaid("Ana joined") })
	if _, err := tw.SendAgentMessage(task.SID, "Hello Mika, let's reset it together."); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the agent's reply in the DM", func() bool { return botSaid("let's reset it together") })
	if _, err := dc.SendDM(member.ID, "thank you!"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the member's reply in Flex", func() bool {
		msgs, err := tw.ConversationMessages(task.ConversationSID)
		if err != nil {
			return false
		}
		for _, m := range msgs {
			if strings.Contains(m.Body, "thank you!") {
				return true
			}
		}
		return false
	})
	if n := len(dc.GatewaySessions()); n != 1 {
		t.Errorf("%d gateway sessions, want the gateway role's only", n)
	}
	if v := dc.Violations(); len(v) > 0 {
		t.Errorf("Discord contract violations: %q", v)
	}
	if v := tw.Violations(); len(v) > 0 {
		t.Errorf("Twilio contract violations: %q", v)
	}
}
